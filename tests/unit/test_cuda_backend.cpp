// The CUDA backend against the CPU reference (house rule 1): every op of the
// contract on random inputs, CpuBackend<float> vs CudaBackend, compared by
// ||out - ref|| / ||ref||, with outputs poisoned (NaN) beforehand so that an
// element the kernel forgot fails; in-place variants and edge shapes; the GEMM
// precision modes; the overflow check and Adam's unscaling that fp16 loss
// scaling uses; a whole PointNet training step (and 5 Adam steps) on both
// backends from identical parameters; and fp16 training backing off from a huge
// loss scale.
//
// Every test skips cleanly ("no CUDA device: <reason>") where there is no GPU,
// and in builds without the CUDA backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "cuda/cuda_backend.h"

namespace pointnet {
namespace {

TEST(CudaPrecision, NamesRoundTrip) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16}) {
    Precision parsed = Precision::FP32;
    ASSERT_TRUE(parse_precision(precision_name(p), &parsed)) << precision_name(p);
    EXPECT_EQ(parsed, p);
  }
  Precision unused;
  EXPECT_FALSE(parse_precision("fp8", &unused));
}

TEST(CudaDevice, AvailabilityAnswersWithAReason) {
  std::string why;
  const bool available = cuda_device_available(&why);
  EXPECT_FALSE(why.empty());
  if (!available) {
    EXPECT_THROW(make_cuda_backend(Precision::FP32), Error);
    GTEST_SKIP() << "no CUDA device: " << why;
  }
  std::cout << "[ info     ] CUDA device: " << why << "\n";
}

}  // namespace
}  // namespace pointnet

#ifdef POINTNET_HAS_CUDA

#include "core/rng.h"
#include "cpu/cpu_backend.h"
#include "model/pointnet.h"
#include "train/adam.h"
#include "train/train_step.h"

namespace pointnet {
namespace {

#define PN_REQUIRE_CUDA()                                                   \
  do {                                                                      \
    std::string pn_why_;                                                    \
    if (!cuda_device_available(&pn_why_)) GTEST_SKIP() << "no CUDA device: " << pn_why_; \
  } while (0)

// Tolerances (DESIGN.md: derive each from the dtype, write the reason).
// Data movement and single-rounding element-wise ops: the same float operation
// on both sides gives the same bits.
constexpr double kExact = 0.0;
// Element-wise float formulas of a few operations (Adam, BatchNorm's apply):
// nvcc contracts a*b+c to one FMA where gcc may round twice: a few ulp (6e-8).
constexpr double kElementwise = 1e-6;
// fp32 sums in a different order (GEMMs with K up to ~4000, reductions): each
// sum of K terms may differ by ~sqrt(K) ulp, i.e. ~4e-6 at K = 4096.
constexpr double kFp32 = 1e-5;
// TF32 rounds GEMM operands to 10 mantissa bits (unit roundoff 2^-11 = 4.9e-4);
// over K = 1024 random-sign terms the relative error of the result stays near
// that per-term figure: ~3e-4 (DESIGN.md), bound 1e-3.
constexpr double kTf32 = 1e-3;
// fp16 operands: 10 mantissa bits, as TF32 (~5e-4); bf16 operands: 7 bits
// (unit roundoff 2^-8 = 3.9e-3, measured ~2e-3 over random-sign sums). 1e-2
// for both, with fp32 accumulation.
constexpr double kHalf = 1e-2;

const float kNaN = std::numeric_limits<float>::quiet_NaN();

size_t count_nonfinite(const std::vector<float>& v) {
  size_t n = 0;
  for (float x : v) n += !std::isfinite(x);
  return n;
}

// ||a - ref|| / ||ref|| (absolute when ref is 0); infinity on a size mismatch
// or any non-finite value: NaN never passes.
double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size() || count_nonfinite(a) || count_nonfinite(ref))
    return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - ref[i];
    diff += d * d;
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

#define EXPECT_CLOSE(out, ref, tolerance)                                          \
  do {                                                                            \
    const std::vector<float>& pn_out_ = (out);                                    \
    EXPECT_EQ(count_nonfinite(pn_out_), 0u) << #out << ": elements not written (NaN poison left) or non-finite"; \
    const double pn_err_ = rel_error(pn_out_, (ref));                             \
    if ((tolerance) == 0.0) EXPECT_EQ(pn_err_, 0.0) << #out << " vs " << #ref;     \
    else EXPECT_LT(pn_err_, (tolerance)) << #out << " vs " << #ref;                \
  } while (0)

// A float array in the CUDA backend's memory.
class Dev {
 public:
  Dev(CudaBackend& be, size_t n) : be_(&be), n_(n), p_(be.allocate(n)) {}
  Dev(CudaBackend& be, const std::vector<float>& host) : Dev(be, host.size()) {
    be.upload(p_, host.data(), n_);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { be_->release(p_); }
  float* get() const { return p_; }
  operator float*() const { return p_; }
  std::vector<float> host() const {
    std::vector<float> h(n_);
    be_->download(h.data(), p_, n_);
    return h;
  }
  void poison() { be_->fill(p_, kNaN, n_); }

 private:
  CudaBackend* be_;
  size_t n_;
  float* p_;
};

class DevIndex {
 public:
  DevIndex(CudaBackend& be, size_t n) : be_(&be), n_(n), p_(be.allocate_index(n)) {}
  DevIndex(CudaBackend& be, const std::vector<int32_t>& host) : DevIndex(be, host.size()) {
    be.upload_index(p_, host.data(), n_);
  }
  DevIndex(const DevIndex&) = delete;
  DevIndex& operator=(const DevIndex&) = delete;
  ~DevIndex() { be_->release_index(p_); }
  operator int32_t*() const { return p_; }
  std::vector<int32_t> host() const {
    std::vector<int32_t> h(n_);
    be_->download_index(h.data(), p_, n_);
    return h;
  }
  void poison() {
    std::vector<int32_t> bad(n_, -7);
    be_->upload_index(p_, bad.data(), n_);
  }

 private:
  CudaBackend* be_;
  size_t n_;
  int32_t* p_;
};

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    PN_REQUIRE_CUDA();
    gpu = std::make_unique<CudaBackend>(Precision::FP32);
  }

  std::vector<float> randn(size_t n, float scale = 1.0f, float shift = 0.0f) {
    std::vector<float> v(n);
    for (float& x : v) x = shift + scale * rng.normal();
    return v;
  }
  // Small integers: many exact ties (argmax must keep the first, as the CPU).
  std::vector<float> ties(size_t n, uint32_t levels = 4) {
    std::vector<float> v(n);
    for (float& x : v) x = static_cast<float>(rng.below(levels));
    return v;
  }

  CpuBackend<float> cpu;
  std::unique_ptr<CudaBackend> gpu;
  Rng rng{1234};
};

// ------------------------------------------------------------ element-wise

TEST_F(CudaOps, FillCopyAddMultiply) {
  for (size_t n : {size_t(1), size_t(255), size_t(257), size_t(100003)}) {
    const std::vector<float> x = randn(n), y0 = randn(n), mask = ties(n, 2);
    Dev dx(*gpu, x), dy(*gpu, y0), dm(*gpu, mask);

    gpu->fill(dy, 2.5f, n);
    EXPECT_CLOSE(dy.host(), std::vector<float>(n, 2.5f), kExact);

    dy.poison();
    gpu->copy(dy, dx, n);
    EXPECT_CLOSE(dy.host(), x, kExact);

    std::vector<float> ref = y0;
    cpu.add_accumulate(ref.data(), x.data(), n);
    gpu->upload(dy, y0.data(), n);
    gpu->add_accumulate(dy, dx, n);  // +=
    EXPECT_CLOSE(dy.host(), ref, kExact);

    cpu.multiply(ref.data(), x.data(), mask.data(), n);
    dy.poison();
    gpu->multiply(dy, dx, dm, n);
    EXPECT_CLOSE(dy.host(), ref, kExact);
    gpu->multiply(dx, dx, dm, n);  // in place, as dense_forward does for dropout
    EXPECT_CLOSE(dx.host(), ref, kExact);
  }
}

TEST_F(CudaOps, ReluForwardBackwardInPlace) {
  for (size_t n : {size_t(1), size_t(1000), size_t(65537)}) {
    const std::vector<float> x = randn(n), dy = randn(n);
    std::vector<float> y(n), dx(n);
    cpu.relu_forward(y.data(), x.data(), n);
    cpu.relu_backward(dx.data(), dy.data(), y.data(), n);

    Dev gx(*gpu, x), gy(*gpu, n), gdy(*gpu, dy), gdx(*gpu, n);
    gy.poison();
    gdx.poison();
    gpu->relu_forward(gy, gx, n);
    gpu->relu_backward(gdx, gdy, gy, n);
    EXPECT_CLOSE(gy.host(), y, kExact);
    EXPECT_CLOSE(gdx.host(), dx, kExact);
    // In place, as dense_forward / dense_backward use them.
    gpu->relu_forward(gx, gx, n);
    EXPECT_CLOSE(gx.host(), y, kExact);
    gpu->relu_backward(gdy, gdy, gy, n);
    EXPECT_CLOSE(gdy.host(), dx, kExact);
  }
}

// ------------------------------------------------------------ linear

struct LinearShape {
  int M, Cin, Cout;
};
// M not a multiple of any block size, Cin = 3 (xyz), K = 64 and 1024, one row.
const LinearShape kLinearShapes[] = {{1000, 3, 64}, {37, 64, 128}, {257, 128, 1024},
                                     {1, 1024, 512}, {33, 1024, 40}, {4097, 64, 9}};

TEST_F(CudaOps, LinearForward) {
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " Cin=" + std::to_string(s.Cin) + " Cout=" + std::to_string(s.Cout));
    const std::vector<float> x = randn(size_t(s.M) * s.Cin), w = randn(size_t(s.Cout) * s.Cin, 0.1f),
                             b = randn(s.Cout);
    std::vector<float> y(size_t(s.M) * s.Cout), y_nobias(y.size());
    cpu.linear_forward(y.data(), x.data(), w.data(), b.data(), s.M, s.Cin, s.Cout);
    cpu.linear_forward(y_nobias.data(), x.data(), w.data(), nullptr, s.M, s.Cin, s.Cout);
    Dev gx(*gpu, x), gw(*gpu, w), gb(*gpu, b), gy(*gpu, y.size());
    gy.poison();
    gpu->linear_forward(gy, gx, gw, gb, s.M, s.Cin, s.Cout);
    EXPECT_CLOSE(gy.host(), y, kFp32);
    gy.poison();
    gpu->linear_forward(gy, gx, gw, nullptr, s.M, s.Cin, s.Cout);
    EXPECT_CLOSE(gy.host(), y_nobias, kFp32);
  }
}

TEST_F(CudaOps, LinearBackward) {
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " Cin=" + std::to_string(s.Cin) + " Cout=" + std::to_string(s.Cout));
    const std::vector<float> x = randn(size_t(s.M) * s.Cin), w = randn(size_t(s.Cout) * s.Cin, 0.1f),
                             dy = randn(size_t(s.M) * s.Cout);
    std::vector<float> dx(x.size()), dw(w.size()), db(s.Cout);
    cpu.linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), s.M, s.Cin, s.Cout);
    Dev gx(*gpu, x), gw(*gpu, w), gdy(*gpu, dy), gdx(*gpu, dx.size()), gdw(*gpu, dw.size()), gdb(*gpu, db.size());
    gdx.poison();
    gdw.poison();
    gdb.poison();
    gpu->linear_backward(gdx, gdw, gdb, gdy, gx, gw, s.M, s.Cin, s.Cout);
    EXPECT_CLOSE(gdx.host(), dx, kFp32);
    EXPECT_CLOSE(gdw.host(), dw, kFp32);
    EXPECT_CLOSE(gdb.host(), db, kFp32);
    // dx not needed (the first layer): the others still overwritten.
    gdw.poison();
    gdb.poison();
    gpu->linear_backward(nullptr, gdw, gdb, gdy, gx, gw, s.M, s.Cin, s.Cout);
    EXPECT_CLOSE(gdw.host(), dw, kFp32);
    EXPECT_CLOSE(gdb.host(), db, kFp32);
  }
}

// ------------------------------------------------------------ batch norm

struct RowsChannels {
  int M, C;
};
// Two rows (the minimum), C = 3, one partial chunk, many chunks with a tail.
const RowsChannels kBatchNormShapes[] = {{2, 3}, {1000, 64}, {33, 1024}, {4097, 128}, {8, 512}};

TEST_F(CudaOps, BatchNormForwardTrain) {
  for (const RowsChannels& s : kBatchNormShapes) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " C=" + std::to_string(s.C));
    const size_t n = size_t(s.M) * s.C;
    // A mean far from 0 exercises the variance's cancellation.
    const std::vector<float> x = randn(n, 2.0f, 3.0f), gamma = randn(s.C, 0.5f, 1.0f),
                             beta = randn(s.C), rm0 = randn(s.C), rv0 = ties(s.C, 3);
    std::vector<float> y(n), mean(s.C), invstd(s.C), rm = rm0, rv = rv0;
    cpu.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(),
                                gamma.data(), beta.data(), s.M, s.C, 1e-5, 0.1);
    Dev gx(*gpu, x), gg(*gpu, gamma), gb(*gpu, beta), grm(*gpu, rm0), grv(*gpu, rv0), gy(*gpu, n),
        gmean(*gpu, s.C), ginvstd(*gpu, s.C);
    gy.poison();
    gmean.poison();
    ginvstd.poison();
    gpu->batchnorm_forward_train(gy, gmean, ginvstd, grm, grv, gx, gg, gb, s.M, s.C, 1e-5, 0.1);
    // Statistics in double on both sides, then rounded: ulps. The output is
    // x * scale + shift in float (one FMA or two roundings).
    EXPECT_CLOSE(gmean.host(), mean, kElementwise);
    EXPECT_CLOSE(ginvstd.host(), invstd, kElementwise);
    EXPECT_CLOSE(grm.host(), rm, kElementwise);
    EXPECT_CLOSE(grv.host(), rv, kElementwise);
    EXPECT_CLOSE(gy.host(), y, kFp32);
    // In place (y == x): statistics first, then the apply.
    gpu->upload(grm, rm0.data(), s.C);
    gpu->upload(grv, rv0.data(), s.C);
    gpu->batchnorm_forward_train(gx, gmean, ginvstd, grm, grv, gx, gg, gb, s.M, s.C, 1e-5, 0.1);
    EXPECT_CLOSE(gx.host(), y, kFp32);
    EXPECT_CLOSE(grv.host(), rv, kElementwise);
  }
}

TEST_F(CudaOps, BatchNormTrainNeedsTwoRows) {
  Dev x(*gpu, 3), y(*gpu, 3), stat(*gpu, 3), rm(*gpu, 3), rv(*gpu, 3), g(*gpu, 3), b(*gpu, 3);
  EXPECT_THROW(gpu->batchnorm_forward_train(y, stat, stat, rm, rv, x, g, b, 1, 3, 1e-5, 0.1), Error);
}

TEST_F(CudaOps, BatchNormForwardEval) {
  for (const RowsChannels& s : kBatchNormShapes) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " C=" + std::to_string(s.C));
    const size_t n = size_t(s.M) * s.C;
    std::vector<float> rv = randn(s.C);
    for (float& v : rv) v = std::fabs(v) + 0.1f;
    const std::vector<float> x = randn(n, 2.0f, 1.0f), gamma = randn(s.C), beta = randn(s.C), rm = randn(s.C);
    std::vector<float> y(n);
    cpu.batchnorm_forward_eval(y.data(), x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), s.M, s.C, 1e-5);
    Dev gx(*gpu, x), gg(*gpu, gamma), gb(*gpu, beta), grm(*gpu, rm), grv(*gpu, rv), gy(*gpu, n);
    gy.poison();
    gpu->batchnorm_forward_eval(gy, gx, gg, gb, grm, grv, s.M, s.C, 1e-5);
    EXPECT_CLOSE(gy.host(), y, kElementwise);
  }
}

TEST_F(CudaOps, BatchNormBackward) {
  // Not M = 2: there dx is exactly 0 in exact arithmetic (xhat = +-1), so both
  // sides return rounding noise and a relative comparison means nothing.
  for (const RowsChannels& s : {RowsChannels{3, 3}, RowsChannels{1000, 64}, RowsChannels{33, 1024},
                                RowsChannels{4097, 128}, RowsChannels{8, 512}}) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " C=" + std::to_string(s.C));
    const size_t n = size_t(s.M) * s.C;
    const std::vector<float> x = randn(n, 2.0f, 3.0f), gamma = randn(s.C, 0.5f, 1.0f), beta = randn(s.C),
                             dy = randn(n);
    std::vector<float> y(n), mean(s.C), invstd(s.C), rm(s.C, 0.0f), rv(s.C, 1.0f);
    cpu.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(),
                                gamma.data(), beta.data(), s.M, s.C, 1e-5, 0.1);
    std::vector<float> dx(n), dgamma(s.C), dbeta(s.C);
    cpu.batchnorm_backward(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), gamma.data(),
                           mean.data(), invstd.data(), s.M, s.C);
    // The saved statistics come from the CPU so both sides use the same ones.
    Dev gx(*gpu, x), gg(*gpu, gamma), gmean(*gpu, mean), ginvstd(*gpu, invstd), gdy(*gpu, dy),
        gdx(*gpu, n), gdg(*gpu, s.C), gdb(*gpu, s.C);
    gdx.poison();
    gdg.poison();
    gdb.poison();
    gpu->batchnorm_backward(gdx, gdg, gdb, gdy, gx, gg, gmean, ginvstd, s.M, s.C);
    // Sums in double on both sides, per-element terms in double, rounded once:
    // ulps; kFp32 leaves room for rows where dx cancels to much less than dy.
    EXPECT_CLOSE(gdx.host(), dx, kFp32);
    EXPECT_CLOSE(gdg.host(), dgamma, kElementwise);
    EXPECT_CLOSE(gdb.host(), dbeta, kElementwise);
    // In place (dx == dy) without the parameter gradients, as the model may.
    gpu->batchnorm_backward(gdy, nullptr, nullptr, gdy, gx, gg, gmean, ginvstd, s.M, s.C);
    EXPECT_CLOSE(gdy.host(), dx, kFp32);
  }
}

// ------------------------------------------------------------ pooling, concat

struct CloudShape {
  int B, N, C;
};
const CloudShape kPoolShapes[] = {{1, 1, 3}, {2, 1000, 64}, {3, 37, 1024}, {2, 2500, 1024}, {5, 9, 40}};

TEST_F(CudaOps, MaxOverPointsKeepsFirstMaximum) {
  for (const CloudShape& s : kPoolShapes) {
    for (bool with_ties : {false, true}) {
      SCOPED_TRACE("B=" + std::to_string(s.B) + " N=" + std::to_string(s.N) + " C=" + std::to_string(s.C) +
                   (with_ties ? " ties" : ""));
      const size_t n = size_t(s.B) * s.N * s.C, out = size_t(s.B) * s.C;
      const std::vector<float> x = with_ties ? ties(n) : randn(n);
      std::vector<float> y(out);
      std::vector<int32_t> arg(out);
      cpu.max_over_points_forward(y.data(), arg.data(), x.data(), s.B, s.N, s.C);
      Dev gx(*gpu, x), gy(*gpu, out);
      DevIndex garg(*gpu, out);
      gy.poison();
      garg.poison();
      gpu->max_over_points_forward(gy, garg, gx, s.B, s.N, s.C);
      EXPECT_CLOSE(gy.host(), y, kExact);
      EXPECT_EQ(garg.host(), arg);

      const std::vector<float> dy = randn(out);
      std::vector<float> dx(n);
      cpu.max_over_points_backward(dx.data(), dy.data(), arg.data(), s.B, s.N, s.C);
      Dev gdy(*gpu, dy), gdx(*gpu, n);
      gdx.poison();
      gpu->max_over_points_backward(gdx, gdy, garg, s.B, s.N, s.C);
      EXPECT_CLOSE(gdx.host(), dx, kExact);
    }
  }
}

TEST_F(CudaOps, ConcatGlobal) {
  struct Shape {
    int B, N, G, P;
  };
  for (const Shape& s : {Shape{2, 37, 1024, 64}, Shape{1, 1, 3, 2}, Shape{3, 300, 40, 7}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " N=" + std::to_string(s.N));
    const size_t rows = size_t(s.B) * s.N, width = s.G + s.P;
    const std::vector<float> global = randn(size_t(s.B) * s.G), pf = randn(rows * s.P), dy = randn(rows * width);
    std::vector<float> y(rows * width), dglobal(size_t(s.B) * s.G), dpf(rows * s.P);
    cpu.concat_global_forward(y.data(), global.data(), pf.data(), s.B, s.N, s.G, s.P);
    cpu.concat_global_backward(dglobal.data(), dpf.data(), dy.data(), s.B, s.N, s.G, s.P);
    Dev gglobal(*gpu, global), gpf(*gpu, pf), gy(*gpu, y.size()), gdy(*gpu, dy), gdglobal(*gpu, dglobal.size()),
        gdpf(*gpu, dpf.size());
    gy.poison();
    gdglobal.poison();
    gdpf.poison();
    gpu->concat_global_forward(gy, gglobal, gpf, s.B, s.N, s.G, s.P);
    gpu->concat_global_backward(gdglobal, gdpf, gdy, s.B, s.N, s.G, s.P);
    EXPECT_CLOSE(gy.host(), y, kExact);
    EXPECT_CLOSE(gdpf.host(), dpf, kExact);
    // Sums over N points in double on both sides, then rounded.
    EXPECT_CLOSE(gdglobal.host(), dglobal, kElementwise);
    // Either gradient alone.
    gdglobal.poison();
    gpu->concat_global_backward(gdglobal, nullptr, gdy, s.B, s.N, s.G, s.P);
    EXPECT_CLOSE(gdglobal.host(), dglobal, kElementwise);
    gdpf.poison();
    gpu->concat_global_backward(nullptr, gdpf, gdy, s.B, s.N, s.G, s.P);
    EXPECT_CLOSE(gdpf.host(), dpf, kExact);
  }
}

// ------------------------------------------------------------ transforms

TEST_F(CudaOps, TransformForwardBackward) {
  for (const CloudShape& s : {CloudShape{1, 1000, 3}, CloudShape{4, 37, 64}, CloudShape{2, 1, 3},
                              CloudShape{3, 2500, 64}}) {
    const int B = s.B, N = s.N, K = s.C;
    SCOPED_TRACE("B=" + std::to_string(B) + " N=" + std::to_string(N) + " K=" + std::to_string(K));
    const size_t nx = size_t(B) * N * K, nt = size_t(B) * K * K;
    const std::vector<float> x = randn(nx), t = randn(nt, 0.3f), dy = randn(nx);
    std::vector<float> y(nx), dx(nx), dt(nt);
    cpu.transform_forward(y.data(), x.data(), t.data(), B, N, K);
    cpu.transform_backward(dx.data(), dt.data(), dy.data(), x.data(), t.data(), B, N, K);
    Dev gx(*gpu, x), gt(*gpu, t), gdy(*gpu, dy), gy(*gpu, nx), gdx(*gpu, nx), gdt(*gpu, nt);
    gy.poison();
    gdx.poison();
    gdt.poison();
    gpu->transform_forward(gy, gx, gt, B, N, K);
    gpu->transform_backward(gdx, gdt, gdy, gx, gt, B, N, K);
    EXPECT_CLOSE(gy.host(), y, kFp32);
    EXPECT_CLOSE(gdx.host(), dx, kFp32);
    EXPECT_CLOSE(gdt.host(), dt, kFp32);
    // The input transform needs dt only.
    gdt.poison();
    gpu->transform_backward(nullptr, gdt, gdy, gx, gt, B, N, K);
    EXPECT_CLOSE(gdt.host(), dt, kFp32);
  }
}

TEST_F(CudaOps, AddIdentity) {
  for (int K : {3, 64}) {
    const int B = 5;
    const std::vector<float> t0 = randn(size_t(B) * K * K);
    std::vector<float> t = t0;
    cpu.add_identity(t.data(), B, K);
    Dev gt(*gpu, t0);
    gpu->add_identity(gt, B, K);
    EXPECT_CLOSE(gt.host(), t, kExact);
  }
}

TEST_F(CudaOps, TransformRegularizer) {
  for (int K : {3, 64}) {
    for (int B : {1, 4}) {
      SCOPED_TRACE("B=" + std::to_string(B) + " K=" + std::to_string(K));
      const size_t nt = size_t(B) * K * K;
      std::vector<float> t = randn(nt, 0.1f);
      cpu.add_identity(t.data(), B, K);
      if (B > 1) {  // one exact orthogonal transform: ||.|| = 0, the gradient is skipped there
        std::fill(t.begin(), t.begin() + size_t(K) * K, 0.0f);
        for (int i = 0; i < K; ++i) t[size_t(i) * K + i] = 1.0f;
      }
      Dev gt(*gpu, t);
      // Products and norms in double on both sides.
      const double ref = cpu.transform_regularizer(t.data(), B, K);
      const double got = gpu->transform_regularizer(gt, B, K);
      EXPECT_LT(std::fabs(got - ref), 1e-9 * std::fabs(ref) + 1e-12) << got << " vs " << ref;

      const std::vector<float> dt0 = randn(nt, 1e-3f);  // += onto existing values
      std::vector<float> dt = dt0;
      cpu.transform_regularizer_backward_accumulate(dt.data(), t.data(), B, K, 0.001f);
      Dev gdt(*gpu, dt0);
      gpu->transform_regularizer_backward_accumulate(gdt, gt, B, K, 0.001f);
      EXPECT_CLOSE(gdt.host(), dt, kElementwise);
    }
  }
}

// ------------------------------------------------------------ loss

TEST_F(CudaOps, LogSoftmaxNllAndArgmax) {
  for (const RowsChannels& s : {RowsChannels{1, 2}, RowsChannels{37, 40}, RowsChannels{1000, 50},
                                RowsChannels{5, 100}}) {
    const int M = s.M, K = s.C;
    SCOPED_TRACE("M=" + std::to_string(M) + " K=" + std::to_string(K));
    const size_t n = size_t(M) * K;
    const std::vector<float> x = randn(n, 3.0f);
    std::vector<int32_t> target(M);
    for (int32_t& t : target) t = static_cast<int32_t>(rng.below(K));
    std::vector<float> logp(n);
    cpu.log_softmax_forward(logp.data(), x.data(), M, K);
    Dev gx(*gpu, x), glogp(*gpu, n);
    DevIndex gtarget(*gpu, target);
    glogp.poison();
    gpu->log_softmax_forward(glogp, gx, M, K);
    // exp and log-sum in double on both sides: ulps of the float result.
    EXPECT_CLOSE(glogp.host(), logp, kElementwise);

    // Loss and accuracy from the same log-probabilities on both sides.
    gpu->upload(glogp, logp.data(), n);
    int64_t correct_cpu = -1, correct_gpu = -2;
    const double loss_cpu = cpu.nll_loss(&correct_cpu, logp.data(), target.data(), M, K);
    const double loss_gpu = gpu->nll_loss(&correct_gpu, glogp, gtarget, M, K);
    EXPECT_LT(std::fabs(loss_gpu - loss_cpu), 1e-12 * std::fabs(loss_cpu)) << "sums of floats in double";
    EXPECT_EQ(correct_gpu, correct_cpu);

    std::vector<float> dx(n);
    const float scale = 1.0f / M;
    cpu.log_softmax_nll_backward(dx.data(), logp.data(), target.data(), M, K, scale);
    Dev gdx(*gpu, n);
    gdx.poison();
    gpu->log_softmax_nll_backward(gdx, glogp, gtarget, M, K, scale);
    // dx = scale exp(logp) - scale [target]: each side's expf is within 2 ulp
    // (CUDA) or 1 ulp (glibc) of exp, i.e. <= 2 eps * scale absolute; at the
    // target the subtraction can cancel (p near 1), so bound each element by
    // 4 eps |scale| rather than relatively.
    const std::vector<float> hdx = gdx.host();
    EXPECT_EQ(count_nonfinite(hdx), 0u) << "elements not written";
    double worst = 0.0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(static_cast<double>(hdx[i]) - dx[i]));
    EXPECT_LE(worst, 4.0 * std::numeric_limits<float>::epsilon() * scale);

    const std::vector<float> tied = ties(n, 3);
    std::vector<int32_t> arg(M);
    cpu.argmax_rows(arg.data(), tied.data(), M, K);
    Dev gtied(*gpu, tied);
    DevIndex garg(*gpu, M);
    garg.poison();
    gpu->argmax_rows(garg, gtied, M, K);
    EXPECT_EQ(garg.host(), arg);
  }
}

TEST_F(CudaOps, NllLossRejectsTargetsOutOfRange) {
  Dev logp(*gpu, std::vector<float>(6, -1.0f));
  DevIndex target(*gpu, std::vector<int32_t>{0, 3});
  int64_t correct = 0;
  EXPECT_THROW(gpu->nll_loss(&correct, logp, target, 2, 3), Error);
}

// ------------------------------------------------------------ optimizer

TEST_F(CudaOps, AdamSteps) {
  const size_t n = 100013;
  // grad_scale 1 (plain) and 2^-16 on gradients scaled by 2^16 (fp16's loss
  // scale): the unscaling is exact, so both must match the CPU's plain steps.
  for (double grad_scale : {1.0, 1.0 / 65536.0}) {
    std::vector<float> p = randn(n), m(n, 0.0f), v(n, 0.0f);
    Dev gp(*gpu, p), gm(*gpu, m), gv(*gpu, v);
    for (int64_t step = 1; step <= 3; ++step) {
      const std::vector<float> g = randn(n, 0.01f);
      cpu.adam_step(p.data(), g.data(), m.data(), v.data(), n, 1e-3, 0.9, 0.999, 1e-8, step, 1.0);
      std::vector<float> scaled = g;
      for (float& x : scaled) x = static_cast<float>(x / grad_scale);
      Dev gg(*gpu, scaled);
      gpu->adam_step(gp, gg, gm, gv, n, 1e-3, 0.9, 0.999, 1e-8, step, grad_scale);
    }
    EXPECT_CLOSE(gp.host(), p, kElementwise);
    EXPECT_CLOSE(gm.host(), m, kElementwise);
    EXPECT_CLOSE(gv.host(), v, kElementwise);
  }
}

// ------------------------------------------------------------ overflow check

// The loss scaler's check: the same answer as the CPU for inf, -inf and NaN at
// the first, a block-boundary and the last element, sizes across one block,
// many blocks and more than the grid covers in one pass (65536 blocks x 256).
TEST_F(CudaOps, AllFiniteMatchesCpu) {
  const float inf = std::numeric_limits<float>::infinity();
  for (size_t n : {size_t(1), size_t(255), size_t(257), size_t(100003), size_t(65536) * 256 + 3}) {
    std::vector<float> x = randn(n, 1e4f);
    Dev gx(*gpu, x);
    ASSERT_TRUE(cpu.all_finite(x.data(), n));
    EXPECT_TRUE(gpu->all_finite(gx, n)) << "n=" << n;
    for (float bad : {inf, -inf, kNaN}) {
      for (size_t at : {size_t(0), std::min(n - 1, size_t(256)), n - 1}) {
        const float keep = x[at];
        x[at] = bad;
        gpu->upload(gx.get() + at, &x[at], 1);
        EXPECT_EQ(gpu->all_finite(gx, n), cpu.all_finite(x.data(), n)) << "n=" << n << ", " << bad << " at " << at;
        EXPECT_FALSE(gpu->all_finite(gx, n)) << "n=" << n << ", " << bad << " at " << at;
        x[at] = keep;
        gpu->upload(gx.get() + at, &x[at], 1);
      }
    }
    // Only within count; and the flag is reset by each call (a clean array after a bad one).
    x[n - 1] = kNaN;
    gpu->upload(gx.get() + n - 1, &x[n - 1], 1);
    EXPECT_FALSE(gpu->all_finite(gx, n));
    if (n > 1) {
      EXPECT_TRUE(gpu->all_finite(gx, n - 1)) << "n=" << n;
    }
  }
  const std::vector<float> extremes = {std::numeric_limits<float>::max(), -std::numeric_limits<float>::max(),
                                       std::numeric_limits<float>::denorm_min(), -0.0f};
  Dev ge(*gpu, extremes);
  EXPECT_TRUE(gpu->all_finite(ge, extremes.size()));
  EXPECT_TRUE(gpu->all_finite(ge, 0));
}

// ------------------------------------------------------------ determinism

TEST_F(CudaOps, ReductionsAreBitwiseReproducible) {
  const int M = 4097, C = 1024;
  const size_t n = size_t(M) * C;
  const std::vector<float> x = randn(n, 1.0f, 2.0f), dy = randn(n), gamma = randn(C);
  Dev gx(*gpu, x), gdy(*gpu, dy), gg(*gpu, gamma), w(*gpu, randn(size_t(C) * 64)), stats(*gpu, 4 * C),
      y(*gpu, n), dx(*gpu, n), dg(*gpu, C), db(*gpu, C), dw(*gpu, size_t(C) * 64), dlin(*gpu, C);
  std::vector<float> first;
  for (int run = 0; run < 2; ++run) {
    gpu->fill(stats, 0.0f, 4 * C);
    gpu->batchnorm_forward_train(y, stats.get(), stats.get() + C, stats.get() + 2 * C, stats.get() + 3 * C, gx,
                                 gg, gg, M, C, 1e-5, 0.1);
    gpu->batchnorm_backward(dx, dg, db, gdy, gx, gg, stats.get(), stats.get() + C, M, C);
    gpu->linear_backward(nullptr, nullptr, dlin, gdy, gx, w, M, 64, C);
    std::vector<float> all;
    for (const Dev* d : {&stats, &y, &dx, &dg, &db, &dlin}) {
      const std::vector<float> h = d->host();
      all.insert(all.end(), h.begin(), h.end());
    }
    if (run == 0) first = all;
    else EXPECT_TRUE(all == first) << "two runs on the same input differ";
  }
}

// ------------------------------------------------------------ precision modes

struct ModeCase {
  Precision precision;
  double tolerance;
};

TEST(CudaPrecisionModes, GemmsWithinDtypeTolerance) {
  PN_REQUIRE_CUDA();
  CpuBackend<float> cpu;
  Rng rng(99);
  auto randn = [&](size_t n, float scale) {
    std::vector<float> v(n);
    for (float& x : v) x = scale * rng.normal();
    return v;
  };
  // K = 1024 (the widest layer's input), M not a multiple of a tile.
  const int M = 1000, Cin = 1024, Cout = 256;
  const std::vector<float> x = randn(size_t(M) * Cin, 1.0f), w = randn(size_t(Cout) * Cin, 0.03f),
                           b = randn(Cout, 1.0f), dy = randn(size_t(M) * Cout, 1.0f);
  std::vector<float> y(size_t(M) * Cout), dx(x.size()), dw(w.size()), db(Cout);
  cpu.linear_forward(y.data(), x.data(), w.data(), b.data(), M, Cin, Cout);
  cpu.linear_backward(dx.data(), dw.data(), db.data(), dy.data(), x.data(), w.data(), M, Cin, Cout);
  // The feature transform: K = 64 per cloud.
  const int B = 4, N = 500, K = 64;
  const std::vector<float> tx = randn(size_t(B) * N * K, 1.0f), tt = randn(size_t(B) * K * K, 0.2f),
                           tdy = randn(size_t(B) * N * K, 1.0f);
  std::vector<float> ty(tx.size()), tdx(tx.size()), tdt(tt.size());
  cpu.transform_forward(ty.data(), tx.data(), tt.data(), B, N, K);
  cpu.transform_backward(tdx.data(), tdt.data(), tdy.data(), tx.data(), tt.data(), B, N, K);

  for (const ModeCase& mode : {ModeCase{Precision::TF32, kTf32}, ModeCase{Precision::FP16, kHalf},
                               ModeCase{Precision::BF16, kHalf}}) {
    SCOPED_TRACE(precision_name(mode.precision));
    CudaBackend gpu(mode.precision);
    Dev gx(gpu, x), gw(gpu, w), gb(gpu, b), gdy(gpu, dy), gy(gpu, y.size()), gdx(gpu, dx.size()),
        gdw(gpu, dw.size()), gdb(gpu, db.size());
    for (Dev* d : {&gy, &gdx, &gdw, &gdb}) d->poison();
    gpu.linear_forward(gy, gx, gw, gb, M, Cin, Cout);
    gpu.linear_backward(gdx, gdw, gdb, gdy, gx, gw, M, Cin, Cout);
    const std::vector<float> hy = gy.host();
    EXPECT_CLOSE(hy, y, mode.tolerance);
    EXPECT_CLOSE(gdx.host(), dx, mode.tolerance);
    EXPECT_CLOSE(gdw.host(), dw, mode.tolerance);
    EXPECT_CLOSE(gdb.host(), db, kFp32);  // the bias gradient is a fp32 reduction in every mode
    // The mode is really in effect: reduced-precision operands leave a trace.
    EXPECT_GT(rel_error(hy, y), 1e-6) << "GEMM looks like plain fp32";
    std::cout << "[ info     ] " << precision_name(mode.precision) << " linear forward K=1024: rel error "
              << rel_error(hy, y) << "\n";

    Dev gtx(gpu, tx), gtt(gpu, tt), gtdy(gpu, tdy), gty(gpu, ty.size()), gtdx(gpu, tdx.size()), gtdt(gpu, tdt.size());
    for (Dev* d : {&gty, &gtdx, &gtdt}) d->poison();
    gpu.transform_forward(gty, gtx, gtt, B, N, K);
    gpu.transform_backward(gtdx, gtdt, gtdy, gtx, gtt, B, N, K);
    EXPECT_CLOSE(gty.host(), ty, mode.tolerance);
    EXPECT_CLOSE(gtdx.host(), tdx, mode.tolerance);
    EXPECT_CLOSE(gtdt.host(), tdt, mode.tolerance);
  }
}

// ------------------------------------------------------------ whole model
//
// PointNet<float> on the CPU and on CUDA from identical parameters and inputs.
// Two things make a naive comparison of two correct fp32 implementations fail,
// measured with the CPU in float against the CPU in double (same seed, B = 8,
// N = 128): (1) kinks. One ReLU input or max-pool tie within rounding of its
// kink, decided differently, changes gradients by ~1e-3 relative (1-3 such
// elements per step among millions); after one Adam step hundreds differ and
// the loss curves drift apart by 1e-4..1e-2 within 5 steps. (2) Adam's first
// steps are lr * sign(g): gradients that are rounding noise (exactly zero in
// exact arithmetic: biases before BatchNorm, BatchNorm betas before a max-pool
// feeding fc + BatchNorm) become +-lr steps of random sign.
// So the CUDA model runs through KinkAligner, which takes the CPU run's side of
// every kink the two cross differently (the values there are within rounding of
// the kink, and it counts them), and before each Adam step the gradient
// elements on which the two backends disagree by more than 10% (noise) are
// zeroed on both sides (counted, and bounded at 1% of the parameters). With
// both, CPU float vs CPU double agree within 3e-5 on gradients and 2e-5 on the
// 5-step loss curves; the bounds below are 1e-4.

// Forwards every op to another backend.
class Forwarding : public Backend<float> {
 public:
  explicit Forwarding(Backend<float>& inner) : in_(inner) {}
  const char* name() const override { return in_.name(); }
  float* allocate(size_t n) override { return in_.allocate(n); }
  void release(float* p) override { in_.release(p); }
  int32_t* allocate_index(size_t n) override { return in_.allocate_index(n); }
  void release_index(int32_t* p) override { in_.release_index(p); }
  void upload(float* d, const float* h, size_t n) override { in_.upload(d, h, n); }
  void download(float* h, const float* d, size_t n) override { in_.download(h, d, n); }
  void upload_index(int32_t* d, const int32_t* h, size_t n) override { in_.upload_index(d, h, n); }
  void download_index(int32_t* h, const int32_t* d, size_t n) override { in_.download_index(h, d, n); }
  void fill(float* x, float v, size_t n) override { in_.fill(x, v, n); }
  void copy(float* y, const float* x, size_t n) override { in_.copy(y, x, n); }
  void add_accumulate(float* y, const float* x, size_t n) override { in_.add_accumulate(y, x, n); }
  void multiply(float* y, const float* x, const float* m, size_t n) override { in_.multiply(y, x, m, n); }
  void linear_forward(float* y, const float* x, const float* w, const float* b, int M, int Ci, int Co) override {
    in_.linear_forward(y, x, w, b, M, Ci, Co);
  }
  void linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, int M,
                       int Ci, int Co) override {
    in_.linear_backward(dx, dw, db, dy, x, w, M, Ci, Co);
  }
  void batchnorm_forward_train(float* y, float* mean, float* is, float* rm, float* rv, const float* x,
                               const float* g, const float* b, int M, int C, double eps, double mom) override {
    in_.batchnorm_forward_train(y, mean, is, rm, rv, x, g, b, M, C, eps, mom);
  }
  void batchnorm_forward_eval(float* y, const float* x, const float* g, const float* b, const float* rm,
                              const float* rv, int M, int C, double eps) override {
    in_.batchnorm_forward_eval(y, x, g, b, rm, rv, M, C, eps);
  }
  void batchnorm_backward(float* dx, float* dg, float* db, const float* dy, const float* x, const float* g,
                          const float* mean, const float* is, int M, int C) override {
    in_.batchnorm_backward(dx, dg, db, dy, x, g, mean, is, M, C);
  }
  void relu_forward(float* y, const float* x, size_t n) override { in_.relu_forward(y, x, n); }
  void relu_backward(float* dx, const float* dy, const float* y, size_t n) override { in_.relu_backward(dx, dy, y, n); }
  void max_over_points_forward(float* y, int32_t* arg, const float* x, int B, int N, int C) override {
    in_.max_over_points_forward(y, arg, x, B, N, C);
  }
  void max_over_points_backward(float* dx, const float* dy, const int32_t* arg, int B, int N, int C) override {
    in_.max_over_points_backward(dx, dy, arg, B, N, C);
  }
  void transform_forward(float* y, const float* x, const float* t, int B, int N, int K) override {
    in_.transform_forward(y, x, t, B, N, K);
  }
  void transform_backward(float* dx, float* dt, const float* dy, const float* x, const float* t, int B, int N,
                          int K) override {
    in_.transform_backward(dx, dt, dy, x, t, B, N, K);
  }
  void add_identity(float* t, int B, int K) override { in_.add_identity(t, B, K); }
  void concat_global_forward(float* y, const float* g, const float* p, int B, int N, int G, int P) override {
    in_.concat_global_forward(y, g, p, B, N, G, P);
  }
  void concat_global_backward(float* dg, float* dp, const float* dy, int B, int N, int G, int P) override {
    in_.concat_global_backward(dg, dp, dy, B, N, G, P);
  }
  void log_softmax_forward(float* y, const float* x, int M, int K) override { in_.log_softmax_forward(y, x, M, K); }
  double nll_loss(int64_t* c, const float* lp, const int32_t* t, int M, int K) override {
    return in_.nll_loss(c, lp, t, M, K);
  }
  void log_softmax_nll_backward(float* dx, const float* lp, const int32_t* t, int M, int K, float s) override {
    in_.log_softmax_nll_backward(dx, lp, t, M, K, s);
  }
  void argmax_rows(int32_t* a, const float* x, int M, int K) override { in_.argmax_rows(a, x, M, K); }
  double transform_regularizer(const float* t, int B, int K) override { return in_.transform_regularizer(t, B, K); }
  void transform_regularizer_backward_accumulate(float* dt, const float* t, int B, int K, float w) override {
    in_.transform_regularizer_backward_accumulate(dt, t, B, K, w);
  }
  void wide_max_forward_train(float* y, const WideMaxSaved<float>& s, float* rm, float* rv, const float* x,
                              const float* w, const float* b, const float* g, const float* be, int B, int N, int K,
                              int C, bool relu, double eps, double mom) override {
    in_.wide_max_forward_train(y, s, rm, rv, x, w, b, g, be, B, N, K, C, relu, eps, mom);
  }
  void wide_max_forward_eval(float* y, const float* x, const float* w, const float* b, const float* g,
                             const float* be, const float* rm, const float* rv, int B, int N, int K, int C, bool relu,
                             double eps) override {
    in_.wide_max_forward_eval(y, x, w, b, g, be, rm, rv, B, N, K, C, relu, eps);
  }
  void wide_max_backward(float* dx, float* dw, float* db, float* dg, float* dbe, const float* dy, const float* y,
                         const WideMaxSaved<float>& s, const float* x, const float* w, const float* g, int B, int N,
                         int K, int C, bool relu) override {
    in_.wide_max_backward(dx, dw, db, dg, dbe, dy, y, s, x, w, g, B, N, K, C, relu);
  }
  bool all_finite(const float* x, size_t n) override { return in_.all_finite(x, n); }
  void adam_step(float* p, const float* g, float* m, float* v, size_t n, double lr, double b1, double b2,
                 double eps, int64_t step, double grad_scale) override {
    in_.adam_step(p, g, m, v, n, lr, b1, b2, eps, step, grad_scale);
  }

 protected:
  Backend<float>& in_;
};

// Records, per call, each ReLU's input signs and outputs and each max-pool's argmax.
class KinkRecorder final : public Forwarding {
 public:
  using Forwarding::Forwarding;
  std::vector<std::vector<uint8_t>> relu_positive;
  std::vector<std::vector<float>> relu_output;
  std::vector<std::vector<int32_t>> argmax;
  void clear() {
    relu_positive.clear();
    relu_output.clear();
    argmax.clear();
  }
  void relu_forward(float* y, const float* x, size_t n) override {
    std::vector<float> host(n);
    in_.download(host.data(), x, n);  // before: the model calls it in place
    std::vector<uint8_t> positive(n);
    for (size_t i = 0; i < n; ++i) positive[i] = host[i] > 0.0f;
    relu_positive.push_back(std::move(positive));
    in_.relu_forward(y, x, n);
    in_.download(host.data(), y, n);
    relu_output.push_back(std::move(host));
  }
  void max_over_points_forward(float* y, int32_t* arg, const float* x, int B, int N, int C) override {
    in_.max_over_points_forward(y, arg, x, B, N, C);
    std::vector<int32_t> host(size_t(B) * C);
    in_.download_index(host.data(), arg, host.size());
    argmax.push_back(std::move(host));
  }
};

// Takes the recorded run's side of every kink crossed differently: a ReLU
// output gets the recorded value (within rounding of 0), a max-pool the
// recorded argmax and this run's own value there (within rounding of its max).
class KinkAligner final : public Forwarding {
 public:
  KinkAligner(Backend<float>& inner, const KinkRecorder& reference) : Forwarding(inner), ref_(reference) {}
  size_t steered = 0;
  void restart() { relu_call_ = max_call_ = 0; }
  void relu_forward(float* y, const float* x, size_t n) override {
    std::vector<float> hx(n), hy;
    in_.download(hx.data(), x, n);
    in_.relu_forward(y, x, n);
    ASSERT_LT(relu_call_, ref_.relu_positive.size()) << "the two models call relu_forward differently";
    const std::vector<uint8_t>& positive = ref_.relu_positive[relu_call_];
    const std::vector<float>& out = ref_.relu_output[relu_call_];
    ++relu_call_;
    ASSERT_EQ(positive.size(), n);
    for (size_t i = 0; i < n; ++i) {
      if ((hx[i] > 0.0f) == (positive[i] != 0)) continue;
      if (hy.empty()) {
        hy.resize(n);
        in_.download(hy.data(), y, n);
      }
      hy[i] = out[i];
      ++steered;
    }
    if (!hy.empty()) in_.upload(y, hy.data(), n);
  }
  void max_over_points_forward(float* y, int32_t* arg, const float* x, int B, int N, int C) override {
    in_.max_over_points_forward(y, arg, x, B, N, C);
    ASSERT_LT(max_call_, ref_.argmax.size()) << "the two models call max_over_points_forward differently";
    const std::vector<int32_t>& ref = ref_.argmax[max_call_++];
    std::vector<int32_t> ha(size_t(B) * C);
    in_.download_index(ha.data(), arg, ha.size());
    if (ha == ref) return;
    std::vector<float> hx(size_t(B) * N * C), hy(size_t(B) * C);
    in_.download(hx.data(), x, hx.size());
    in_.download(hy.data(), y, hy.size());
    for (size_t i = 0; i < ha.size(); ++i) {
      if (ha[i] == ref[i]) continue;
      const size_t b = i / C, c = i % C;
      ha[i] = ref[i];
      hy[i] = hx[(b * N + ref[i]) * C + c];
      ++steered;
    }
    in_.upload_index(arg, ha.data(), ha.size());
    in_.upload(y, hy.data(), hy.size());
  }

 private:
  const KinkRecorder& ref_;
  size_t relu_call_ = 0, max_call_ = 0;
};

struct ModelCase {
  ModelTask task;
  bool feature_transform;
  const char* name;
};

class CudaModel : public ::testing::TestWithParam<ModelCase> {};

std::vector<float> slice(const float* data, const ParamInfo& info) {
  return std::vector<float>(data + info.offset, data + info.offset + info.count);
}

double norm_of(const std::vector<float>& v) {
  double s = 0.0;
  for (float x : v) s += static_cast<double>(x) * x;
  return std::sqrt(s);
}

TEST_P(CudaModel, TrainingStepsMatchCpu) {
  PN_REQUIRE_CUDA();
  const ModelCase c = GetParam();
  CpuBackend<float> cpu_inner;
  CudaBackend gpu(Precision::FP32);
  KinkRecorder cpu(cpu_inner);
  KinkAligner aligned(gpu, cpu);
  ModelConfig config;
  config.task = c.task;
  config.num_classes = c.task == ModelTask::Classification ? 5 : 4;
  config.feature_transform = c.feature_transform;
  PointNet<float> mc(config, cpu);
  PointNet<float> mg(config, aligned);

  // Identical parameters: initialise on the CPU, copy to the GPU. The T-Nets'
  // last layers are scaled down (as the gradient checks do) so the transforms
  // stay near the identity.
  Rng rng(21);
  mc.initialize(rng);
  for (const char* name : {"feat.stn.fc3.weight", "feat.fstn.fc3.weight"}) {
    const int index = mc.params().find(name);
    if (index < 0) continue;
    float* w = mc.params().value(index);
    for (size_t i = 0; i < mc.params().infos()[index].count; ++i) w[i] *= 0.1f;
  }
  const size_t count = mc.params().trainable_count(), buffers = mc.params().buffer_count();
  gpu.upload(mg.params().values(), mc.params().values(), count);
  gpu.upload(mg.params().buffers(), mc.params().buffers(), buffers);

  // Identical inputs: host arrays for the CPU model, device copies for the GPU one.
  const int B = 8, N = 128;
  std::vector<float> points(size_t(B) * N * 3);
  for (float& v : points) v = rng.normal();
  const int rows = c.task == ModelTask::Classification ? B : B * N;
  std::vector<int32_t> targets(rows);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng.below(config.num_classes));
  Dev gpoints(gpu, points);
  DevIndex gtargets(gpu, targets);
  // The dropout mask is given on the host (set_dropout_mask); the model uploads
  // it through the backend each training forward.
  if (c.task == ModelTask::Classification) {
    std::vector<float> mask(size_t(B) * 256);
    for (float& m : mask) m = rng.uniform() < 0.3f ? 0.0f : 1.0f / 0.7f;
    mc.set_dropout_mask(mask);
    mg.set_dropout_mask(mask);
  }

  const double lr = 1e-3;
  Adam<float> opt_c(cpu, count), opt_g(aligned, count);
  std::vector<double> losses_c, losses_g;
  size_t allocations_after_first_step = 0, zeroed_total = 0;
  std::vector<float> grads_g(count), values_g(count), bufs_g(buffers);
  for (int step = 0; step < 5; ++step) {
    cpu.clear();
    aligned.restart();
    mc.forward(points.data(), B, N, true);
    mg.forward(gpoints, B, N, true);
    if (HasFatalFailure()) return;
    const LossValue lc = mc.loss(targets.data());
    const LossValue lg = mg.loss(gtargets);
    losses_c.push_back(lc.total);
    losses_g.push_back(lg.total);
    mc.backward(targets.data());
    mg.backward(gtargets);
    gpu.download(grads_g.data(), mg.params().grads(), count);

    if (step == 0) {
      // Forward: ~1e-6 apart (measured 1-3e-6 for CPU float vs double).
      const size_t out = size_t(mg.output_rows()) * config.num_classes;
      std::vector<float> logp_g(out);
      gpu.download(logp_g.data(), mg.log_probs(), out);
      const double logp_err = rel_error(logp_g, std::vector<float>(mc.log_probs(), mc.log_probs() + out));
      EXPECT_LT(logp_err, 1e-5) << "log-probabilities";
      EXPECT_LT(std::fabs(lg.total - lc.total), 1e-5 * std::fabs(lc.total)) << lg.total << " vs " << lc.total;
      EXPECT_LT(std::fabs(lg.regularizer - lc.regularizer), 1e-5 * std::fabs(lc.regularizer) + 1e-12);
      EXPECT_EQ(lg.correct, lc.correct);

      // Running statistics: means of pre-BatchNorm activations are near 0, so
      // their error is relative to the activations' spread: 1e-4.
      gpu.download(bufs_g.data(), mg.params().buffers(), buffers);
      // Gradients: 1e-4 per tensor (measured <= 3e-5 for float vs double).
      // Tensors whose exact gradient is 0 (see above) hold rounding noise
      // (~1e-9 of the largest tensor's norm; real ones are >= 1e-3 of it): they
      // must be noise-sized on both sides and are not compared relatively.
      double largest = 0.0;
      for (const ParamInfo& info : mc.params().infos())
        if (info.trainable) largest = std::max(largest, norm_of(slice(mc.params().grads(), info)));
      double worst = 0.0;
      std::string worst_name;
      int noise_tensors = 0;
      for (const ParamInfo& info : mc.params().infos()) {
        if (!info.trainable) {
          EXPECT_LT(rel_error(slice(bufs_g.data(), info), slice(mc.params().buffers(), info)), 1e-4)
              << info.name << " (running statistics)";
          continue;
        }
        const std::vector<float> ref = slice(mc.params().grads(), info), got = slice(grads_g.data(), info);
        if (norm_of(ref) < 1e-5 * largest) {
          ++noise_tensors;
          EXPECT_LT(norm_of(got), 1e-5 * largest) << info.name << ": the CPU's gradient is rounding noise, the GPU's is not";
          continue;
        }
        const double err = rel_error(got, ref);
        EXPECT_LT(err, 1e-4) << info.name << " gradient";
        if (err > worst) {
          worst = err;
          worst_name = info.name;
        }
      }
      std::cout << "[ info     ] " << c.name << ": log-probs rel error " << logp_err << ", loss " << lc.total
                << " vs " << lg.total << ", worst gradient rel error " << worst << " (" << worst_name << "), "
                << noise_tensors << " noise-gradient tensors, " << aligned.steered << " kinks steered\n";
    }

    // Zero the noise elements on both sides before Adam (see above).
    size_t zeroed = 0;
    float* grads_c = mc.params().grads();
    for (size_t i = 0; i < count; ++i) {
      if (std::fabs(static_cast<double>(grads_g[i]) - grads_c[i]) > 0.1 * std::fabs(grads_c[i])) {
        grads_g[i] = grads_c[i] = 0.0f;
        ++zeroed;
      }
    }
    zeroed_total += zeroed;
    EXPECT_LT(zeroed, count / 100) << "step " << step << ": gradients disagree by > 10% on too many elements";
    gpu.upload(mg.params().grads(), grads_g.data(), count);
    const std::vector<float> before(mc.params().values(), mc.params().values() + count);
    opt_c.step(mc.params().values(), mc.params().grads(), lr);
    opt_g.step(mg.params().values(), mg.params().grads(), lr);

    // Adam: where the gradients agree within 10% (same sign), the first
    // updates lr g / (|g| + eps) agree within lr / 40; later steps add at most
    // as much again through the moments. Bound: 0.05 lr per step taken
    // (measured for float vs double: 0.026 lr after one step, 0.06 after five).
    gpu.download(values_g.data(), mg.params().values(), count);
    double worst_update = 0.0;
    for (size_t i = 0; i < count; ++i)
      worst_update = std::max(worst_update, std::fabs(static_cast<double>(values_g[i]) - mc.params().values()[i]));
    EXPECT_LT(worst_update, 0.05 * lr * (step + 1)) << "step " << step << ": parameters after the Adam step";
    EXPECT_LT(rel_error(values_g, std::vector<float>(mc.params().values(), mc.params().values() + count)), 1e-5);
    EXPECT_GT(rel_error(before, std::vector<float>(mc.params().values(), mc.params().values() + count)), 1e-6)
        << "the Adam step changed nothing";

    if (step == 0) {
      gpu.synchronize();
      allocations_after_first_step = gpu.device_allocations();
    }
  }
  // Steady state: the steps after the first allocate nothing on the device.
  EXPECT_EQ(gpu.device_allocations(), allocations_after_first_step);

  std::cout << "[ info     ] " << c.name << " loss curve cpu/gpu:";
  for (size_t i = 0; i < losses_c.size(); ++i) {
    std::cout << " " << losses_c[i] << "/" << losses_g[i];
    EXPECT_LT(std::fabs(losses_g[i] - losses_c[i]), 1e-4 * std::fabs(losses_c[i])) << "step " << i;
  }
  std::cout << "; " << aligned.steered << " kinks steered, " << zeroed_total << " noise gradient elements zeroed in 5 steps\n";
}

// fp16 training with dynamic loss scaling from an artificially large initial
// scale (the 2^24 cap): the backward's seed S/M alone exceeds fp16's largest
// value (65504) once converted for the first GEMM, so the first steps overflow
// and are skipped; the scale halves until the gradients fit, and the model then
// learns a fixed batch. (The CPU version, test_train_step.cpp, does the same in
// fp32 from 2^126 and checks the bits; fp16 rounding allows no bit check.)
TEST(CudaFp16, HugeLossScaleBacksOffThenLearns) {
  PN_REQUIRE_CUDA();
  CudaBackend gpu(Precision::FP16);
  ModelConfig config;
  config.num_classes = 4;
  config.feature_transform = true;
  PointNet<float> model(config, gpu);
  Rng rng(21);
  model.initialize(rng);
  const int B = 8, N = 128;
  std::vector<float> points(size_t(B) * N * 3), mask(size_t(B) * 256);
  for (float& v : points) v = rng.normal();
  std::vector<int32_t> targets(B);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng.below(config.num_classes));
  for (float& m : mask) m = rng.uniform() < 0.3f ? 0.0f : 1.0f / 0.7f;
  model.set_dropout_mask(mask);
  Dev gpoints(gpu, points);
  DevIndex gtargets(gpu, targets);

  const size_t count = model.params().trainable_count();
  Adam<float> adam(gpu, count);
  LossScalerConfig scaling;
  scaling.init_scale = scaling.max_scale;  // 2^24
  LossScaler scaler(scaling);
  TrainStep step(model, adam, scaler);
  const int steps = 60;
  int skipped = 0;
  double first_loss = 0.0, last_loss = 0.0;
  for (int i = 0; i < steps; ++i) {
    const StepResult r = step.run(gpoints, gtargets, B, N, 1e-3, nullptr);
    ASSERT_NE(r.outcome, StepOutcome::kDiverged) << "step " << i;
    if (r.outcome == StepOutcome::kSkipped) {
      ++skipped;
      continue;
    }
    if (first_loss == 0.0) first_loss = r.loss.total;
    last_loss = r.loss.total;
  }
  std::cout << "[ info     ] fp16 from 2^24: " << skipped << " steps skipped, scale now 2^"
            << std::log2(scaler.scale()) << "; loss " << first_loss << " -> " << last_loss << "\n";
  EXPECT_GE(skipped, 1) << "S/M = 2^21 must overflow fp16";
  EXPECT_EQ(scaler.skipped_steps(), skipped);
  EXPECT_LT(scaler.scale(), scaling.max_scale);
  EXPECT_GE(scaler.scale(), scaling.min_scale);
  EXPECT_EQ(adam.steps(), steps - skipped) << "skipped steps must not advance Adam's step count";
  EXPECT_LT(last_loss, 0.5 * first_loss) << "the model did not learn the batch";
  std::vector<float> values(count);
  gpu.download(values.data(), model.params().values(), count);
  EXPECT_EQ(count_nonfinite(values), 0u);
}

INSTANTIATE_TEST_SUITE_P(Cuda, CudaModel,
                         ::testing::Values(ModelCase{ModelTask::Classification, true, "cls_feature_transform"},
                                           ModelCase{ModelTask::Segmentation, false, "seg"},
                                           ModelCase{ModelTask::Segmentation, true, "seg_feature_transform"}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

}  // namespace
}  // namespace pointnet

#endif  // POINTNET_HAS_CUDA
