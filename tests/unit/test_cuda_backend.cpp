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
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/half.h"
#include "cuda/cuda_backend.h"
#include "../cuda_test_support.h"

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
#include "cuda/wide_extremes.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <random>
#include "model/pointnet.h"
#include "../scoped_env.h"
#include "train/adam.h"
#include "train/train_step.h"

namespace pointnet {
namespace {

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

// v rounded to bf16 (nearest even), as a float: the host's copy of the
// device conversion, for references on the values bf16's layers read.
float bf16_value(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;  // inf, NaN
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

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

using testing::Dev;

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

TEST_F(CudaOps, FillCopyMultiply) {
  for (size_t n : {size_t(1), size_t(255), size_t(257), size_t(100003)}) {
    const std::vector<float> x = randn(n), y0 = randn(n), mask = ties(n, 2);
    Dev dx(*gpu, x), dy(*gpu, y0), dm(*gpu, mask);

    gpu->fill(dy, 2.5f, n);
    EXPECT_CLOSE(dy.host(), std::vector<float>(n, 2.5f), kExact);

    dy.poison();
    gpu->copy(dy, dx, n);
    EXPECT_CLOSE(dy.host(), x, kExact);

    std::vector<float> ref(n);
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

// The bias in cuBLASLt's epilogue (the default) and broadcast into y before
// the GEMM (POINTNET_LINEAR_BIAS=broadcast).
TEST_F(CudaOps, LinearForward) {
  for (const char* bias : {"epilogue", "broadcast"})
  for (const LinearShape& s : kLinearShapes) {
    SCOPED_TRACE(std::string(bias) + " M=" + std::to_string(s.M) + " Cin=" + std::to_string(s.Cin) +
                 " Cout=" + std::to_string(s.Cout));
    testing::ScopedEnv env;
    env.set("POINTNET_LINEAR_BIAS", bias);
    const auto gpu = std::make_unique<CudaBackend>(Precision::FP32);
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
    // accumulate_dx: dx added onto what the buffer held (the segmenter's
    // conv2 onto the concat layer's dpointfeat), as the CPU does.
    const std::vector<float> before = randn(dx.size());
    std::vector<float> sum = before;
    cpu.linear_backward(sum.data(), nullptr, nullptr, dy.data(), x.data(), w.data(), s.M, s.Cin, s.Cout, nullptr,
                        nullptr, nullptr, true);
    Dev gsum(*gpu, before);
    gpu->linear_backward(gsum, nullptr, nullptr, gdy, gx, gw, s.M, s.Cin, s.Cout, nullptr, nullptr, nullptr, true);
    EXPECT_CLOSE(gsum.host(), sum, kFp32);
    for (size_t i = 0; i < sum.size(); ++i) ASSERT_NEAR(sum[i], before[i] + dx[i], 1e-4f * (1 + std::fabs(sum[i])));
  }
}

// accumulate_dx in the modes the segmenter trains in: dx += dy w is the plain
// product added onto what the buffer held (the same GEMM, then one fp32 add).
TEST(CudaPrecisionModes, AccumulatedDxIsTheProductAddedOn) {
  PN_REQUIRE_CUDA();
  Rng rng(29);
  const int M = 2500, Cin = 64, Cout = 128;
  auto normals = [&](size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = rng.normal();
    return v;
  };
  for (Precision p : {Precision::BF16, Precision::FP16, Precision::TF32}) {
    SCOPED_TRACE(precision_name(p));
    CudaBackend gpu(p);
    const std::vector<float> x = normals(size_t(M) * Cin), w = normals(size_t(Cout) * Cin), dy = normals(size_t(M) * Cout),
                             before = normals(size_t(M) * Cin);
    Dev gx(gpu, x), gw(gpu, w), gdy(gpu, dy), plain(gpu, x.size()), sum(gpu, before);
    gpu.linear_backward(plain, nullptr, nullptr, gdy, gx, gw, M, Cin, Cout);
    gpu.linear_backward(sum, nullptr, nullptr, gdy, gx, gw, M, Cin, Cout, nullptr, nullptr, nullptr, true);
    const std::vector<float> got = sum.host(), product = plain.host();
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      bad += !(std::fabs(got[i] - (before[i] + product[i])) <= 1e-5f * (1.0f + std::fabs(got[i])));
    EXPECT_EQ(bad, 0u);
  }
}

// The segmenter's head1 without the concat: CUDA vs CPU, forward and backward,
// at PointNet's widths and at odd small sizes (one cloud, one point).
TEST_F(CudaOps, ConcatLinear) {
  struct Shape { int B, N, G, P, C; };
  // The last: M = 80,000 rows, past the row add's 65,536 blocks (its grid-stride pass).
  for (const Shape& s : {Shape{4, 2500, 1024, 64, 512}, Shape{3, 7, 10, 4, 6}, Shape{1, 1, 5, 3, 2},
                         Shape{2, 40000, 8, 4, 8}}) {
    SCOPED_TRACE("B=" + std::to_string(s.B) + " N=" + std::to_string(s.N));
    const size_t M = size_t(s.B) * s.N;
    const std::vector<float> global = randn(size_t(s.B) * s.G), pointfeat = randn(M * s.P),
                             w = randn(size_t(s.C) * (s.G + s.P), 0.05f), b = randn(s.C), dy = randn(M * s.C);
    std::vector<float> y(M * s.C), dg(global.size()), dp(pointfeat.size()), dw(w.size()), db(s.C);
    cpu.concat_linear_forward(y.data(), global.data(), pointfeat.data(), w.data(), b.data(), s.B, s.N, s.G, s.P, s.C);
    cpu.concat_linear_backward(dg.data(), dp.data(), dw.data(), db.data(), dy.data(), global.data(), pointfeat.data(),
                               w.data(), s.B, s.N, s.G, s.P, s.C);
    Dev gglobal(*gpu, global), gpf(*gpu, pointfeat), gw(*gpu, w), gb(*gpu, b), gdy(*gpu, dy), gy(*gpu, y.size()),
        gdg(*gpu, dg.size()), gdp(*gpu, dp.size()), gdw(*gpu, dw.size()), gdb(*gpu, db.size());
    for (Dev* d : {&gy, &gdg, &gdp, &gdw, &gdb}) d->poison();
    gpu->concat_linear_forward(gy, gglobal, gpf, gw, gb, s.B, s.N, s.G, s.P, s.C);
    gpu->concat_linear_backward(gdg, gdp, gdw, gdb, gdy, gglobal, gpf, gw, s.B, s.N, s.G, s.P, s.C);
    EXPECT_CLOSE(gy.host(), y, kFp32);
    EXPECT_CLOSE(gdg.host(), dg, kFp32);
    EXPECT_CLOSE(gdp.host(), dp, kFp32);
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

// The fused BatchNorm + ReLU passes give the bits of the two passes, in place
// too, in training and in eval; and their statistics are the same.
TEST_F(CudaOps, BatchNormReluIsBatchNormThenRelu) {
  for (const RowsChannels& s : kBatchNormShapes) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " C=" + std::to_string(s.C));
    const size_t n = size_t(s.M) * s.C;
    const std::vector<float> x = randn(n, 0.0f, 1.0f), gamma = randn(s.C, 0.5f, 1.0f), beta = randn(s.C),
                             rv0 = ties(s.C, 3);
    const std::vector<float> rm0 = randn(s.C);
    Dev gx(*gpu, x), gg(*gpu, gamma), gb(*gpu, beta), y2(*gpu, n), y1(*gpu, x), mean2(*gpu, s.C),
        invstd2(*gpu, s.C), mean1(*gpu, s.C), invstd1(*gpu, s.C), rm2(*gpu, rm0), rv2(*gpu, rv0), rm1(*gpu, rm0),
        rv1(*gpu, rv0);
    gpu->batchnorm_forward_train(y2, mean2, invstd2, rm2, rv2, gx, gg, gb, s.M, s.C, 1e-5, 0.1);
    gpu->relu_forward(y2, y2, n);
    gpu->batchnorm_relu_forward_train(y1, mean1, invstd1, rm1, rv1, y1, gg, gb, s.M, s.C, 1e-5, 0.1);  // in place
    const std::vector<float> two = y2.host(), one = y1.host();
    EXPECT_CLOSE(one, two, kExact);
    EXPECT_CLOSE(mean1.host(), mean2.host(), kExact);
    EXPECT_CLOSE(invstd1.host(), invstd2.host(), kExact);
    EXPECT_CLOSE(rm1.host(), rm2.host(), kExact);
    EXPECT_CLOSE(rv1.host(), rv2.host(), kExact);
    if (n >= 1000) {
      EXPECT_GT(std::count(one.begin(), one.end(), 0.0f), 0) << "the ReLU cut nothing";
    }
    gpu->batchnorm_forward_eval(y2, gx, gg, gb, rm1, rv1, s.M, s.C, 1e-5);
    gpu->relu_forward(y2, y2, n);
    gpu->batchnorm_relu_forward_eval(y1, gx, gg, gb, rm1, rv1, s.M, s.C, 1e-5);
    EXPECT_CLOSE(y1.host(), y2.host(), kExact);
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

// The fused BatchNorm + ReLU backward recomputes the ReLU's mask from x and the
// saved statistics: the bits of relu_backward then batchnorm_backward on the
// fused forward's output, in place and not. beta is then set so that each
// channel's first row lands on the ReLU's kink: (x - mean) * scale + beta is
// the rounding residual of the product, and only the forward's own formula
// (one fused multiply-add) gets its sign right there, so a backward that
// recomputed the mask another way (two roundings, or the scale in double)
// would flip about half of those rows and fail.
TEST_F(CudaOps, BatchNormReluBackwardIsReluThenBatchNorm) {
  for (const RowsChannels& s : {RowsChannels{3, 3}, RowsChannels{1000, 64}, RowsChannels{1000, 6},
                                RowsChannels{33, 1024}, RowsChannels{4097, 128}, RowsChannels{8, 512}}) {
    SCOPED_TRACE("M=" + std::to_string(s.M) + " C=" + std::to_string(s.C));
    const size_t n = size_t(s.M) * s.C;
    const std::vector<float> x = randn(n, 0.0f, 2.0f), gamma = randn(s.C, 0.5f, 1.0f), dy = randn(n);
    std::vector<float> beta = randn(s.C);
    Dev gx(*gpu, x), gg(*gpu, gamma), gb(*gpu, beta), gy(*gpu, n), mean(*gpu, s.C), invstd(*gpu, s.C),
        rm(*gpu, s.C), rv(*gpu, s.C), gdy(*gpu, dy);
    gpu->batchnorm_relu_forward_train(gy, mean, invstd, rm, rv, gx, gg, gb, s.M, s.C, 1e-5, 0.1);
    // The kink: beta = -(x0 - mean) * (gamma * invstd), each product rounded
    // once on the host (no addition, so nothing to contract). The statistics
    // do not depend on beta.
    const std::vector<float> mu = mean.host(), is = invstd.host();
    for (int c = 0; c < s.C; ++c) {
      const volatile float d = x[c] - mu[c];
      const volatile float scale = gamma[c] * is[c];
      beta[c] = -(d * scale);
    }
    gpu->upload(gb, beta.data(), s.C);
    gpu->batchnorm_relu_forward_train(gy, mean, invstd, rm, rv, gx, gg, gb, s.M, s.C, 1e-5, 0.1);
    EXPECT_CLOSE(mean.host(), mu, kExact);
    Dev d2(*gpu, dy), d1(*gpu, n), dg2(*gpu, s.C), db2(*gpu, s.C), dg1(*gpu, s.C), db1(*gpu, s.C);
    for (Dev* d : {&d1, &dg1, &db1}) d->poison();
    gpu->relu_backward(d2, d2, gy, n);
    gpu->batchnorm_backward(d2, dg2, db2, d2, gx, gg, mean, invstd, s.M, s.C);
    gpu->batchnorm_relu_backward(d1, dg1, db1, gdy, gx, gy, gg, gb, mean, invstd, s.M, s.C);  // dx != dy
    EXPECT_CLOSE(d1.host(), d2.host(), kExact);
    EXPECT_CLOSE(dg1.host(), dg2.host(), kExact);
    EXPECT_CLOSE(db1.host(), db2.host(), kExact);
    EXPECT_CLOSE(gdy.host(), dy, kExact);  // dy untouched when dx is elsewhere
    gpu->batchnorm_relu_backward(gdy, dg1, db1, gdy, gx, gy, gg, gb, mean, invstd, s.M, s.C);  // in place
    EXPECT_CLOSE(gdy.host(), d2.host(), kExact);
    const std::vector<float> out = gy.host();
    if (n >= 1000) {
      EXPECT_GT(std::count(out.begin(), out.end(), 0.0f), 0) << "the ReLU cut nothing: the mask is untested";
    }
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
  // K = 100: a's 64 x 64 tiles with partial ones, and t's 32-column chunks with a tail.
  for (int K : {3, 64, 100}) {
    for (int B : {1, 4, 33}) {
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
  // Rows of 4, 8, 16 and 32 lanes (K <= 32, 64, 128, 256: loss.cu) and wider
  // rows (the general paths); the loss sums over blocks of 256 rows, with a
  // tail: 80,000 rows of 50 are the segmenter's (313 blocks).
  for (const RowsChannels& s : {RowsChannels{1, 2}, RowsChannels{37, 40}, RowsChannels{1000, 50},
                                RowsChannels{5, 100}, RowsChannels{5000, 50}, RowsChannels{80000, 50},
                                RowsChannels{700, 200}, RowsChannels{300, 1000}}) {
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

    // Targets outside [0, K) in the first, a middle and the last row: the loss
    // counts them (its error names how many) and the gradient only drops
    // their one-hot term (the CPU's would write out of bounds: no reference).
    std::vector<int32_t> bad = target;
    std::vector<size_t> bad_rows{0};
    if (M > 2) bad_rows.push_back(size_t(M) / 2);
    if (M > 1) bad_rows.push_back(size_t(M) - 1);
    const int32_t bad_values[] = {-1, K, -7};
    for (size_t i = 0; i < bad_rows.size(); ++i) bad[bad_rows[i]] = bad_values[i];
    DevIndex gbad(*gpu, bad);
    try {
      gpu->nll_loss(&correct_gpu, glogp, gbad, M, K);
      ADD_FAILURE() << "nll_loss accepted targets outside [0, K)";
    } catch (const Error& e) {
      const std::string expected = std::to_string(bad_rows.size()) + " of " + std::to_string(M) + " targets";
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
    for (size_t row : bad_rows)
      for (int k = 0; k < K; ++k) dx[row * K + k] = scale * std::exp(logp[row * K + k]);
    gdx.poison();
    gpu->log_softmax_nll_backward(gdx, glogp, gbad, M, K, scale);
    const std::vector<float> hdx_bad = gdx.host();
    EXPECT_EQ(count_nonfinite(hdx_bad), 0u) << "elements not written";
    worst = 0.0;
    for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(static_cast<double>(hdx_bad[i]) - dx[i]));
    EXPECT_LE(worst, 4.0 * std::numeric_limits<float>::epsilon() * scale);

    // Ties, and NaNs away from the target (a NaN in column 0 is the CPU's
    // argmax: nothing is > NaN; elsewhere it never is).
    std::vector<float> tied = ties(n, 3);
    if (target[0] != 0) tied[0] = kNaN;
    if (K > 1 && target[M - 1] != K - 1) tied[n - 1] = kNaN;
    std::vector<int32_t> arg(M);
    cpu.argmax_rows(arg.data(), tied.data(), M, K);
    Dev gtied(*gpu, tied);
    DevIndex garg(*gpu, M);
    garg.poison();
    gpu->argmax_rows(garg, gtied, M, K);
    EXPECT_EQ(garg.host(), arg);
    // The loss's argmax (a row's lanes combined) keeps the first maximum too;
    // its sum of small integers is exact in any order.
    const double tied_cpu = cpu.nll_loss(&correct_cpu, tied.data(), target.data(), M, K);
    const double tied_gpu = gpu->nll_loss(&correct_gpu, gtied, gtarget, M, K);
    EXPECT_EQ(tied_gpu, tied_cpu);
    EXPECT_EQ(correct_gpu, correct_cpu);
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
  // scale): the unscaling is exact, so both must match the CPU's plain steps;
  // and L2 weight decay (--weight-decay) on both sides.
  for (const auto& [grad_scale, weight_decay] : {std::pair{1.0, 0.0}, std::pair{1.0 / 65536.0, 0.0},
                                                 std::pair{1.0 / 65536.0, 0.05}}) {
    std::vector<float> p = randn(n), m(n, 0.0f), v(n, 0.0f);
    Dev gp(*gpu, p), gm(*gpu, m), gv(*gpu, v);
    for (int64_t step = 1; step <= 3; ++step) {
      const std::vector<float> g = randn(n, 0.01f);
      cpu.adam_step(p.data(), g.data(), m.data(), v.data(), n, 1e-3, 0.9, 0.999, 1e-8, step, 1.0, weight_decay);
      std::vector<float> scaled = g;
      for (float& x : scaled) x = static_cast<float>(x / grad_scale);
      Dev gg(*gpu, scaled);
      gpu->adam_step(gp, gg, gm, gv, n, 1e-3, 0.9, 0.999, 1e-8, step, grad_scale, weight_decay);
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

// --fp32-fc: under bf16, GEMMs marked per-cloud run with fp32 operands (as
// the fp32 backend's), per-point ones stay bf16, and the mark is undone.
TEST(CudaPrecisionModes, PerCloudGemmsKeepFp32WhenAsked) {
  PN_REQUIRE_CUDA();
  Rng rng(7);
  const int M = 64, Cin = 1024, Cout = 512;
  std::vector<float> x(size_t(M) * Cin), w(size_t(Cout) * Cin);
  for (float& v : x) v = rng.normal();
  for (float& v : w) v = 0.03f * rng.normal();
  CudaBackend fp32(Precision::FP32), bf16(Precision::BF16);
  bf16.set_fp32_per_cloud(true);
  Dev fx(fp32, x), fw(fp32, w), fy(fp32, size_t(M) * Cout);
  Dev bx(bf16, x), bw(bf16, w), by(bf16, size_t(M) * Cout);
  fp32.linear_forward(fy, fx, fw, nullptr, M, Cin, Cout);
  const std::vector<float> reference = fy.host();
  bf16.per_cloud_gemms(true);
  bf16.linear_forward(by, bx, bw, nullptr, M, Cin, Cout);
  EXPECT_CLOSE(by.host(), reference, kFp32);
  EXPECT_EQ(bf16.precision(), Precision::BF16);  // the mode itself is unchanged
  bf16.per_cloud_gemms(false);
  bf16.linear_forward(by, bx, bw, nullptr, M, Cin, Cout);
  const double err = rel_error(by.host(), reference);
  EXPECT_GT(err, 1e-4) << "per-point GEMMs should be bf16 again";
  EXPECT_LT(err, kHalf);
}

// The 2-byte activation copies (Backend::narrow_activations): BatchNorm+ReLU
// forward and backward write them, and a GEMM given one reads it instead of
// converting the fp32 tensor. The fp32 tensor handed beside the copy is zeros
// here, so a GEMM against the identity that still returns the values shows the
// copy was read and holds exactly the conversion's rounding. Then the passes
// that write only the copy (y null; dx null with dx's column sums, which must
// be linear_backward's db bit for bit), and the concat layer's pointfeat
// copy. C = 64: four at a time; C = 6 one by one. M = 301 rows: two of the
// sums' row chunks; M = 200: one (the sums written in place). In fp32, and
// with POINTNET_NARROW_ACTIVATIONS=off, no copy is written or read.
// linear_forward adds the bias in cuBLASLt's epilogue at the model's shapes
// (conv2, the segmenter's head, a fully connected layer over 32 clouds) in
// every mode: no broadcast pass is queued (gemm_counts). K = 3 (conv1 over
// xyz) may lack a plan for 2-byte operands (6-byte rows): reported, not required.
TEST(CudaPrecisionModes, BiasEpilogueTakenAtTheModelsShapes) {
  PN_REQUIRE_CUDA();
  Rng rng(17);
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::BF16, Precision::FP16}) {
    CudaBackend gpu(p);
    for (const LinearShape& s : {LinearShape{2500, 64, 128}, LinearShape{2500, 512, 256}, LinearShape{32, 1024, 512},
                                 LinearShape{2500, 3, 64}}) {
      SCOPED_TRACE(std::string(precision_name(p)) + " M=" + std::to_string(s.M) + " Cin=" + std::to_string(s.Cin));
      std::vector<float> x(size_t(s.M) * s.Cin), w(size_t(s.Cout) * s.Cin), b(s.Cout);
      for (float& v : x) v = rng.normal();
      for (float& v : w) v = 0.1f * rng.normal();
      for (float& v : b) v = rng.normal();
      Dev gx(gpu, x), gw(gpu, w), gb(gpu, b), gy(gpu, size_t(s.M) * s.Cout);
      const size_t before = gpu.gemm_counts().bias_broadcasts;
      gpu.linear_forward(gy, gx, gw, gb, s.M, s.Cin, s.Cout);
      const size_t broadcasts = gpu.gemm_counts().bias_broadcasts - before;
      if (s.Cin == 3) {
        std::cout << "[ info     ] " << precision_name(p) << " K=3 bias: " << (broadcasts ? "broadcast" : "epilogue")
                  << "\n";
      } else {
        EXPECT_EQ(broadcasts, 0u) << "cuBLASLt found no epilogue plan";
      }
    }
    testing::ScopedEnv env;
    env.set("POINTNET_LINEAR_BIAS", "broadcast");
    CudaBackend old_way(p);
    Dev gx(old_way, std::vector<float>(64 * 8, 1.0f)), gw(old_way, std::vector<float>(8 * 8, 1.0f)),
        gb(old_way, std::vector<float>(8, 1.0f)), gy(old_way, 64 * 8);
    old_way.linear_forward(gy, gx, gw, gb, 64, 8, 8);
    EXPECT_EQ(old_way.gemm_counts().bias_broadcasts, 1u) << "POINTNET_LINEAR_BIAS=broadcast not honoured";
  }
}

// The weights' 2-byte copy (narrow_weights) is read by the GEMMs inside its
// values and by no others, and is dropped when those values are written:
// every product equals, bit for bit, a backend that converts per GEMM.
TEST_F(CudaOps, WeightCopyIsReadOnlyWhileItsValuesStand) {
  const int M = 64, Cin = 32, Cout = 16;
  const std::vector<float> x = randn(size_t(M) * Cin), b = randn(Cout), w1 = randn(size_t(Cout) * Cin),
                           w2 = randn(size_t(Cout) * Cin);
  for (Precision p : {Precision::FP16, Precision::BF16}) {
    SCOPED_TRACE(precision_name(p));
    CudaBackend gpu(p);
    const auto expected = [&](const std::vector<float>& w) {  // converting per GEMM
      testing::ScopedEnv env;
      env.set("POINTNET_NARROW_WEIGHTS", "off");
      CudaBackend plain(p);
      Dev gx(plain, x), gw(plain, w), gb(plain, b), gy(plain, size_t(M) * Cout);
      plain.linear_forward(gy, gx, gw, gb, M, Cin, Cout);
      return gy.host();
    };
    const auto forward = [&](float* w) {
      Dev gx(gpu, x), gb(gpu, b), gy(gpu, size_t(M) * Cout);
      gpu.linear_forward(gy, gx, w, gb, M, Cin, Cout);
      return gy.host();
    };
    Dev values(gpu, w1);
    const size_t before = gpu.gemm_counts().conversions;
    gpu.narrow_weights(values, w1.size());
    EXPECT_EQ(forward(values), expected(w1));
    // The copy's one launch and x's conversion: the weight was not converted again.
    EXPECT_EQ(gpu.gemm_counts().conversions - before, 2u);
    // Written by upload, fill, copy: the next product reads the new values.
    gpu.upload(values, w2.data(), w2.size());
    EXPECT_EQ(forward(values), expected(w2));
    gpu.narrow_weights(values, w1.size());
    gpu.fill(values, 0.5f, w1.size());
    EXPECT_EQ(forward(values), expected(std::vector<float>(w1.size(), 0.5f)));
    gpu.narrow_weights(values, w1.size());
    Dev other(gpu, w1);
    gpu.copy(values, other, w1.size());
    EXPECT_EQ(forward(values), expected(w1));
    // An optimizer step on them: the product reads the stepped values.
    gpu.narrow_weights(values, w1.size());
    Dev grad(gpu, w2), m(gpu, w1.size()), v(gpu, w1.size());
    gpu.fill(m, 0.0f, w1.size());
    gpu.fill(v, 0.0f, w1.size());
    gpu.adam_step(values, grad, m, v, w1.size(), 0.1, 0.9, 0.999, 1e-8, 1, 1.0, 0.0);
    EXPECT_EQ(forward(values), expected(values.host()));
    // Dropped explicitly (narrow_weights(nullptr, 0)): converted per GEMM again.
    gpu.narrow_weights(values, w1.size());
    gpu.narrow_weights(nullptr, 0);
    const size_t dropped = gpu.gemm_counts().conversions;
    EXPECT_EQ(forward(values), expected(values.host()));
    EXPECT_EQ(gpu.gemm_counts().conversions - dropped, 2u) << "x and the weight, each converted";
  }
}

// host values -> the GEMM operand conversion of `gpu`'s mode, read back
// through a GEMM against the identity `eyes` (C x C).
std::vector<float> gpu_rounded(CudaBackend& gpu, const std::vector<float>& values, float* eyes, int M, int C) {
  Dev in(gpu, values), out(gpu, values.size());
  gpu.linear_forward(out, in, eyes, nullptr, M, C, C);
  return out.host();
}

TEST(CudaPrecisionModes, NarrowCopiesHoldTheConversionAndAreRead) {
  PN_REQUIRE_CUDA();
  Rng rng(13);
  struct Rows {
    int B, N;  // M = B N rows (clouds of N points, for the concat layer)
  };
  for (Precision p : {Precision::BF16, Precision::FP16, Precision::FP32})
  for (const Rows& rows : {Rows{7, 43}, Rows{8, 25}})
  for (int C : {64, 6}) {
    const int M = rows.B * rows.N;
    SCOPED_TRACE(std::string(precision_name(p)) + " M=" + std::to_string(M) + " C=" + std::to_string(C));
    const size_t n = size_t(M) * C;
    std::vector<float> eye(size_t(C) * C, 0.0f), z(n), dy(n), gamma(C), beta(C);
    for (int c = 0; c < C; ++c) eye[size_t(c) * C + c] = 1.0f;
    for (float& v : z) v = rng.normal();
    for (float& v : dy) v = rng.normal();
    for (float& v : gamma) v = 1.0f + 0.3f * rng.normal();
    for (float& v : beta) v = 0.3f * rng.normal();
    CudaBackend gpu(p);
    const bool narrow = p != Precision::FP32;
    EXPECT_EQ(gpu.narrow_activations(), narrow);
    const size_t copy_floats = Backend<float>::narrow_count(n);
    Dev gz(gpu, z), gg(gpu, gamma), gb(gpu, beta), gy(gpu, n), mean(gpu, C), invstd(gpu, C), rm(gpu, C),
        rv(gpu, C), copy(gpu, copy_floats), zeros(gpu, std::vector<float>(n, 0.0f)), eyes(gpu, eye),
        plain(gpu, n), from_copy(gpu, n), gdy(gpu, dy), dw_plain(gpu, size_t(C) * C), dw_copy(gpu, size_t(C) * C);
    copy.poison();
    gpu.batchnorm_relu_forward_train(gy, mean, invstd, rm, rv, gz, gg, gb, M, C, 1e-5, 0.1, copy);
    // y itself is as without the copy; the copy is y rounded.
    gpu.linear_forward(plain, gy, eyes, nullptr, M, C, C);
    gpu.linear_forward(from_copy, zeros, eyes, nullptr, M, C, C, copy);
    if (narrow) {
      EXPECT_CLOSE(from_copy.host(), plain.host(), kExact);
    } else {
      EXPECT_CLOSE(from_copy.host(), std::vector<float>(n, 0.0f), kExact);  // fp32: the copy is ignored
      EXPECT_EQ(count_nonfinite(copy.host()), copy_floats) << "fp32 wrote a copy";
    }
    // dW = dy^T x through x's copy; then the backward's copy of dz, read as dy.
    gpu.linear_backward(nullptr, dw_plain, nullptr, gdy, gy, eyes, M, C, C);
    gpu.linear_backward(nullptr, dw_copy, nullptr, gdy, zeros, eyes, M, C, C, nullptr, narrow ? copy.get() : nullptr);
    if (narrow) EXPECT_CLOSE(dw_copy.host(), dw_plain.host(), kExact);
    Dev dz(gpu, n), dgamma(gpu, C), dbeta(gpu, C);
    copy.poison();
    gpu.batchnorm_relu_backward(dz, dgamma, dbeta, gdy, gz, gy, gg, gb, mean, invstd, M, C, copy);
    gpu.linear_backward(plain, nullptr, nullptr, dz, gz, eyes, M, C, C);
    gpu.linear_backward(from_copy, nullptr, nullptr, zeros, gz, eyes, M, C, C, copy);
    if (narrow) EXPECT_CLOSE(from_copy.host(), plain.host(), kExact);
    else EXPECT_EQ(count_nonfinite(copy.host()), copy_floats) << "fp32 wrote a copy";
    if (!narrow) continue;
    // Only the copies: y null in the forward, dx null in the backward with
    // dx's column sums, the same bits as linear_backward's db from fp32 dx.
    const std::vector<float> y_kept = gy.host(), dz_kept = dz.host();
    Dev db_plain(gpu, C), db_fused(gpu, C), only(gpu, copy_floats);
    gpu.linear_backward(nullptr, nullptr, db_plain, dz, gz, eyes, M, C, C);
    only.poison();
    gpu.batchnorm_relu_forward_train(nullptr, mean, invstd, rm, rv, gz, gg, gb, M, C, 1e-5, 0.1, only);
    gpu.linear_forward(from_copy, zeros, eyes, nullptr, M, C, C, only);
    EXPECT_CLOSE(from_copy.host(), gpu_rounded(gpu, y_kept, eyes, M, C), kExact);
    only.poison();
    db_fused.poison();
    gpu.batchnorm_relu_backward(nullptr, dgamma, dbeta, gdy, gz, nullptr, gg, gb, mean, invstd, M, C, only, db_fused);
    EXPECT_CLOSE(db_fused.host(), db_plain.host(), kExact);
    gpu.linear_backward(from_copy, nullptr, nullptr, nullptr, gz, eyes, M, C, C, only);
    EXPECT_CLOSE(from_copy.host(), gpu_rounded(gpu, dz_kept, eyes, M, C), kExact);
    // The concat layer: pointfeat (here y, P = C) from its copy, fp32 zeros beside it.
    {
      const int G = 5, Cout = 16;
      std::vector<float> global(size_t(rows.B) * G), w(size_t(Cout) * (G + C)), bias(Cout);
      for (float& v : global) v = rng.normal();
      for (float& v : w) v = 0.2f * rng.normal();
      for (float& v : bias) v = rng.normal();
      gpu.batchnorm_relu_forward_train(gy, mean, invstd, rm, rv, gz, gg, gb, M, C, 1e-5, 0.1, copy);
      Dev gglobal(gpu, global), gw(gpu, w), gbias(gpu, bias), out_plain(gpu, size_t(M) * Cout),
          out_copy(gpu, size_t(M) * Cout), dglobal(gpu, size_t(rows.B) * G), dpf(gpu, n), dw_a(gpu, w.size()),
          dw_b(gpu, w.size()), dbias(gpu, Cout), gdy_concat(gpu, std::vector<float>(size_t(M) * Cout, 0.5f));
      gpu.concat_linear_forward(out_plain, gglobal, gy, gw, gbias, rows.B, rows.N, G, C, Cout);
      gpu.concat_linear_forward(out_copy, gglobal, zeros, gw, gbias, rows.B, rows.N, G, C, Cout, copy);
      EXPECT_CLOSE(out_copy.host(), out_plain.host(), kExact);
      gpu.concat_linear_backward(dglobal, dpf, dw_a, dbias, gdy_concat, gglobal, gy, gw, rows.B, rows.N, G, C, Cout);
      gpu.concat_linear_backward(dglobal, dpf, dw_b, dbias, gdy_concat, gglobal, zeros, gw, rows.B, rows.N, G, C, Cout,
                                 copy);
      EXPECT_CLOSE(dw_b.host(), dw_a.host(), kExact);
    }
    // Switched off: reported as off, and nothing written where asked.
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "off");
    CudaBackend off(p);
    EXPECT_FALSE(off.narrow_activations());
    Dev oz(off, z), og(off, gamma), ob(off, beta), oy(off, n), om(off, C), os(off, C), orm(off, C), orv(off, C),
        ocopy(off, copy_floats);
    ocopy.poison();
    off.batchnorm_relu_forward_train(oy, om, os, orm, orv, oz, og, ob, M, C, 1e-5, 0.1, ocopy);
    EXPECT_EQ(count_nonfinite(ocopy.host()), copy_floats) << "a copy was written while switched off";
    EXPECT_CLOSE(oy.host(), gy.host(), kExact);
  }
}

// A backend in mode p with z in 2 bytes (POINTNET_NARROW_Z=on, the copies
// on) and the bias added the given way ("epilogue" or "broadcast").
std::unique_ptr<CudaBackend> narrow_z_backend(Precision p, const char* bias_path) {
  testing::ScopedEnv env;  // read when the backend is made
  env.set("POINTNET_NARROW_Z", "on");
  env.set("POINTNET_NARROW_ACTIVATIONS", "on");
  env.set("POINTNET_LINEAR_BIAS", bias_path);
  return std::make_unique<CudaBackend>(p);
}

// Elements of z (2-byte outputs read back as floats) further from the fp32
// outputs than one rounding allows: half an ulp, at most 2^-8 relative in
// bf16 and 2^-11 in fp16, of z and of the bias rounded in the epilogue (per
// channel, or per element where `bias` is z's size); 1.5x that for the fp32
// outputs' own rounding.
size_t further_than_a_rounding(const std::vector<float>& z, const std::vector<float>& fp32,
                               const std::vector<float>& bias, Precision p) {
  const double unit = 1.5 * (p == Precision::BF16 ? 1.0 / 256 : 1.0 / 2048);
  size_t worse = 0;
  for (size_t i = 0; i < z.size(); ++i)
    worse += !(std::fabs(double(z[i]) - fp32[i]) <=
               unit * (std::fabs(fp32[i]) + std::fabs(bias[i % bias.size()]) + 1e-3));
  return worse;
}

// The BatchNorm+ReLU conv layers' z kept in 2 bytes only
// (Backend::narrow_linear_outputs, POINTNET_NARROW_Z=on): linear_forward
// writes z rounded once to the mode's type (through cuBLASLt's epilogue, or
// through fp32 scratch where the bias is broadcast), and the BatchNorm+ReLU
// forward and backward read that copy with the same bits as they read its
// values given in fp32.
TEST(CudaPrecisionModes, NarrowLinearOutputsAreReadAsTheirValues) {
  PN_REQUIRE_CUDA();
  Rng rng(17);
  for (Precision p : {Precision::BF16, Precision::FP16})
  for (const char* bias_path : {"epilogue", "broadcast"})
  for (int M : {301, 256})
  for (int C : {64, 6}) {
    SCOPED_TRACE(std::string(precision_name(p)) + " bias " + bias_path + " M=" + std::to_string(M) +
                 " C=" + std::to_string(C));
    const int K = 16;
    const size_t n = size_t(M) * C;
    std::vector<float> x(size_t(M) * K), w(size_t(C) * K), bias(C), eye(size_t(C) * C, 0.0f), dy(n), gamma(C),
        beta(C);
    for (float& v : x) v = rng.normal();
    for (float& v : w) v = 0.5f * rng.normal();
    for (float& v : bias) v = 0.3f * rng.normal();
    for (int c = 0; c < C; ++c) eye[size_t(c) * C + c] = 1.0f;
    for (float& v : dy) v = rng.normal();
    for (float& v : gamma) v = 1.0f + 0.3f * rng.normal();
    for (float& v : beta) v = 0.3f * rng.normal();
    const std::unique_ptr<CudaBackend> backend = narrow_z_backend(p, bias_path);
    CudaBackend& gpu = *backend;
    ASSERT_TRUE(gpu.narrow_linear_outputs());
    const bool epilogue = std::string(bias_path) == "epilogue";
    const size_t copy_floats = Backend<float>::narrow_count(n);
    Dev gx(gpu, x), gw(gpu, w), gbias(gpu, bias), eyes(gpu, eye), zeros(gpu, std::vector<float>(n, 0.0f)),
        z_copy(gpu, copy_floats), z_wide(gpu, n), z_fp32(gpu, n);
    z_copy.poison();
    const size_t broadcasts = gpu.gemm_counts().bias_broadcasts;
    gpu.linear_forward(nullptr, gx, gw, gbias, M, K, C, nullptr, z_copy);
    // The epilogue where asked (cuBLASLt has 2-byte-output plans at these
    // aligned shapes); the broadcast where asked.
    const size_t broadcast_now = gpu.gemm_counts().bias_broadcasts - broadcasts;
    if (!epilogue) {
      EXPECT_EQ(broadcast_now, 1u);
    } else if (C % 8 == 0) {
      EXPECT_EQ(broadcast_now, 0u) << "cuBLASLt found no plan with a 2-byte output";
    }
    gpu.linear_forward(z_fp32, gx, gw, gbias, M, K, C);
    gpu.linear_forward(z_wide, zeros, eyes, nullptr, M, C, C, z_copy);  // the copy's values, exactly
    // z rounded once (its bias too, in the epilogue).
    const std::vector<float> zw = z_wide.host(), zf = z_fp32.host();
    EXPECT_EQ(further_than_a_rounding(zw, zf, bias, p), 0u) << "elements of z further than an ulp from fp32's";
    EXPECT_GT(rel_error(zw, zf), 0.0) << "z was not rounded at all";

    // Forward from the copy vs from its values in fp32: the same bits.
    Dev gg(gpu, gamma), gb(gpu, beta), y_a(gpu, n), y_b(gpu, n), mean_a(gpu, C), mean_b(gpu, C), is_a(gpu, C),
        is_b(gpu, C), rm_a(gpu, std::vector<float>(C, 0.1f)), rm_b(gpu, std::vector<float>(C, 0.1f)),
        rv_a(gpu, std::vector<float>(C, 0.9f)), rv_b(gpu, std::vector<float>(C, 0.9f)), yc_a(gpu, copy_floats),
        yc_b(gpu, copy_floats);
    gpu.batchnorm_relu_forward_train(y_a, mean_a, is_a, rm_a, rv_a, nullptr, gg, gb, M, C, 1e-5, 0.1, yc_a, z_copy);
    gpu.batchnorm_relu_forward_train(y_b, mean_b, is_b, rm_b, rv_b, z_wide, gg, gb, M, C, 1e-5, 0.1, yc_b);
    EXPECT_CLOSE(y_a.host(), y_b.host(), kExact);
    EXPECT_CLOSE(yc_a.host(), yc_b.host(), kExact);
    EXPECT_CLOSE(mean_a.host(), mean_b.host(), kExact);
    EXPECT_CLOSE(is_a.host(), is_b.host(), kExact);
    EXPECT_CLOSE(rm_a.host(), rm_b.host(), kExact);
    EXPECT_CLOSE(rv_a.host(), rv_b.host(), kExact);

    // Backward, fp32 dx, and the copy of dx with its column sums.
    Dev gdy(gpu, dy), dx_a(gpu, n), dx_b(gpu, n), dg_a(gpu, C), dg_b(gpu, C), db_a(gpu, C), db_b(gpu, C),
        sum_a(gpu, C), sum_b(gpu, C);
    gpu.batchnorm_relu_backward(dx_a, dg_a, db_a, gdy, nullptr, nullptr, gg, gb, mean_a, is_a, M, C, nullptr,
                                nullptr, z_copy);
    gpu.batchnorm_relu_backward(dx_b, dg_b, db_b, gdy, z_wide, y_b, gg, gb, mean_b, is_b, M, C);
    EXPECT_CLOSE(dx_a.host(), dx_b.host(), kExact);
    EXPECT_CLOSE(dg_a.host(), dg_b.host(), kExact);
    EXPECT_CLOSE(db_a.host(), db_b.host(), kExact);
    yc_a.poison();
    yc_b.poison();
    gpu.batchnorm_relu_backward(nullptr, dg_a, db_a, gdy, nullptr, nullptr, gg, gb, mean_a, is_a, M, C, yc_a, sum_a,
                                z_copy);
    gpu.batchnorm_relu_backward(nullptr, dg_b, db_b, gdy, z_wide, nullptr, gg, gb, mean_b, is_b, M, C, yc_b, sum_b);
    EXPECT_CLOSE(yc_a.host(), yc_b.host(), kExact);
    EXPECT_CLOSE(sum_a.host(), sum_b.host(), kExact);
  }
  // On by default in bf16 and fp16 (since session 15)...
  {
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    env.set("POINTNET_NARROW_Z", "");
    EXPECT_TRUE(CudaBackend(Precision::BF16).narrow_linear_outputs());
    EXPECT_TRUE(CudaBackend(Precision::FP16).narrow_linear_outputs());
  }
  // ...but off where asked, without the 2-byte copies, or in fp32: not
  // offered, and refused if asked.
  for (int variant = 0; variant < 3; ++variant) {
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_Z", variant == 0 ? "off" : "on");
    env.set("POINTNET_NARROW_ACTIVATIONS", variant == 1 ? "off" : "on");
    CudaBackend gpu(variant == 2 ? Precision::FP32 : Precision::BF16);
    EXPECT_FALSE(gpu.narrow_linear_outputs()) << "variant " << variant;
    Dev gx(gpu, 8), gw(gpu, 4), out(gpu, 8), stats(gpu, 2), gamma(gpu, 2);
    EXPECT_THROW(gpu.linear_forward(nullptr, gx, gw, nullptr, 4, 2, 2, nullptr, out), Error);
    EXPECT_THROW(gpu.batchnorm_relu_forward_train(out, stats, stats, stats, stats, nullptr, gamma, gamma, 4, 2, 1e-5,
                                                  0.1, nullptr, gx),
                 Error);
    EXPECT_THROW(gpu.batchnorm_relu_backward(out, stats, stats, gx, nullptr, nullptr, gamma, gamma, stats, stats, 4,
                                             2, nullptr, nullptr, gx),
                 Error);
  }
}

// The segmenter's concat layer with z in 2 bytes: written rounded once (the
// global part and bias as a per-cloud bias of the epilogue, or through fp32
// scratch), and its backward from dz's 2-byte copy gives the same bits as
// from those values in fp32, with the bias gradient left alone (the
// BatchNorm's backward takes it where the copy is made).
TEST(CudaPrecisionModes, NarrowConcatOutputsAreReadAsTheirValues) {
  PN_REQUIRE_CUDA();
  Rng rng(19);
  for (Precision p : {Precision::BF16, Precision::FP16})
  for (const char* bias_path : {"epilogue", "broadcast"}) {
    SCOPED_TRACE(std::string(precision_name(p)) + " bias " + bias_path);
    const std::unique_ptr<CudaBackend> backend = narrow_z_backend(p, bias_path);
    CudaBackend& gpu = *backend;
    ASSERT_TRUE(gpu.narrow_linear_outputs());
    const int B = 3, N = 40, G = 32, P = 16, Cout = 64, M = B * N;
    const size_t n = size_t(M) * Cout;
    std::vector<float> global(size_t(B) * G), pointfeat(size_t(M) * P), w(size_t(Cout) * (G + P)), bias(Cout),
        eye(size_t(Cout) * Cout, 0.0f), dy(n);
    for (float& v : global) v = rng.normal();
    for (float& v : pointfeat) v = rng.normal();
    for (float& v : w) v = 0.3f * rng.normal();
    for (float& v : bias) v = 0.3f * rng.normal();
    for (int c = 0; c < Cout; ++c) eye[size_t(c) * Cout + c] = 1.0f;
    for (float& v : dy) v = rng.normal();
    Dev gg(gpu, global), gp(gpu, pointfeat), gw(gpu, w), gbias(gpu, bias), eyes(gpu, eye),
        zeros(gpu, std::vector<float>(n, 0.0f)), z_copy(gpu, Backend<float>::narrow_count(n)), z_wide(gpu, n),
        z_fp32(gpu, n);
    z_copy.poison();
    const size_t broadcasts = gpu.gemm_counts().bias_broadcasts;
    gpu.concat_linear_forward(nullptr, gg, gp, gw, gbias, B, N, G, P, Cout, nullptr, z_copy);
    const size_t broadcast_now = gpu.gemm_counts().bias_broadcasts - broadcasts;
    if (std::string(bias_path) == "epilogue") {
      EXPECT_EQ(broadcast_now, 0u) << "cuBLASLt found no plan for the per-cloud bias with a 2-byte output";
    } else {
      EXPECT_EQ(broadcast_now, 1u);
    }
    gpu.concat_linear_forward(z_fp32, gg, gp, gw, gbias, B, N, G, P, Cout);
    gpu.linear_forward(z_wide, zeros, eyes, nullptr, M, Cout, Cout, z_copy);
    // The epilogue's bias per element: the cloud's global part plus the bias.
    std::vector<float> cloud_bias(n);
    for (int r = 0; r < M; ++r)
      for (int c = 0; c < Cout; ++c) {
        double v = bias[c];
        for (int g = 0; g < G; ++g) v += double(global[size_t(r / N) * G + g]) * w[size_t(c) * (G + P) + g];
        cloud_bias[size_t(r) * Cout + c] = static_cast<float>(v);
      }
    const std::vector<float> zw = z_wide.host(), zf = z_fp32.host();
    EXPECT_EQ(further_than_a_rounding(zw, zf, cloud_bias, p), 0u) << "elements of z further than an ulp from fp32's";
    EXPECT_GT(rel_error(zw, zf), 0.0) << "z was not rounded at all";

    // Backward from a 2-byte dy (dy rounded through the same path) vs from its values.
    Dev gdy(gpu, dy), dy_copy(gpu, Backend<float>::narrow_count(n)), dy_wide(gpu, n);
    gpu.linear_forward(nullptr, gdy, eyes, nullptr, M, Cout, Cout, nullptr, dy_copy);  // dy rounded
    gpu.linear_forward(dy_wide, zeros, eyes, nullptr, M, Cout, Cout, dy_copy);
    Dev dg_a(gpu, size_t(B) * G), dg_b(gpu, size_t(B) * G), dp_a(gpu, size_t(M) * P), dp_b(gpu, size_t(M) * P),
        dw_a(gpu, w.size()), dw_b(gpu, w.size()), db_a(gpu, Cout), db_b(gpu, Cout);
    db_a.poison();
    gpu.concat_linear_backward(dg_a, dp_a, dw_a, db_a, nullptr, gg, gp, gw, B, N, G, P, Cout, nullptr, dy_copy);
    gpu.concat_linear_backward(dg_b, dp_b, dw_b, db_b, dy_wide, gg, gp, gw, B, N, G, P, Cout);
    EXPECT_CLOSE(dg_a.host(), dg_b.host(), kExact);
    EXPECT_CLOSE(dp_a.host(), dp_b.host(), kExact);
    EXPECT_CLOSE(dw_a.host(), dw_b.host(), kExact);
    EXPECT_CLOSE(db_a.host(), db_b.host(), kExact);
    // Without the bias gradient (the model's call: the BatchNorm's backward took it).
    dg_a.poison();
    gpu.concat_linear_backward(dg_a, dp_a, dw_a, nullptr, nullptr, gg, gp, gw, B, N, G, P, Cout, nullptr, dy_copy);
    EXPECT_CLOSE(dg_a.host(), dg_b.host(), kExact);
    EXPECT_CLOSE(dw_a.host(), dw_b.host(), kExact);
  }
}

// The operand conversion, four at a time where aligned, one by one otherwise:
// a GEMM against the identity returns the converted operand itself, which must
// be x rounded to nearest (even) in the format, for every element (counts not a
// multiple of four, and an input one float off 16-byte alignment).
TEST(CudaPrecisionModes, OperandConversionRoundsEveryElement) {
  PN_REQUIRE_CUDA();
  Rng rng(11);
  const int C = 7;
  std::vector<float> eye(size_t(C) * C, 0.0f);
  for (int c = 0; c < C; ++c) eye[size_t(c) * C + c] = 1.0f;
  // fp16 keeps 10 of fp32's 23 fraction bits: the same trick below 65504 and
  // above 2^-14; under that (fp16's subnormals) the grid is 2^-24, rounded to
  // nearest even by nearbyint's default mode.
  auto fp16_round = [&](float v) {
    if (std::fabs(v) < std::ldexp(1.0f, -14)) return std::nearbyint(v * std::ldexp(1.0f, 24)) * std::ldexp(1.0f, -24);
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    bits += 0xfffu + ((bits >> 13) & 1u);
    bits &= ~0x1fffu;
    std::memcpy(&v, &bits, 4);
    return v;
  };
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    for (int M : {1, 13, 4096}) {
      for (int offset : {0, 1}) {
        SCOPED_TRACE(std::string(precision_name(p)) + " M=" + std::to_string(M) + " offset=" + std::to_string(offset));
        std::vector<float> x(size_t(M) * C + offset);
        for (float& v : x) v = rng.normal();
        CudaBackend gpu(p);
        Dev gx(gpu, x), gw(gpu, eye), gy(gpu, size_t(M) * C);
        gpu.linear_forward(gy, gx.get() + offset, gw, nullptr, M, C, C);
        const std::vector<float> y = gy.host();
        size_t wrong = 0, changed = 0;
        for (size_t i = 0; i < y.size(); ++i) {
          const float v = x[i + offset];
          changed += y[i] != v;
          wrong += y[i] != (p == Precision::BF16 ? bf16_value(v) : fp16_round(v));
        }
        EXPECT_GT(changed, 0u) << "no element was rounded: the operand looks fp32";
        EXPECT_EQ(wrong, 0u);
      }
    }
  }
}

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

  for (const char* bias : {"epilogue", "broadcast"})
  for (const ModeCase& mode : {ModeCase{Precision::TF32, kTf32}, ModeCase{Precision::FP16, kHalf},
                               ModeCase{Precision::BF16, kHalf}}) {
    SCOPED_TRACE(std::string(precision_name(mode.precision)) + " bias " + bias);
    testing::ScopedEnv env;  // POINTNET_LINEAR_BIAS: see CudaOps.LinearForward
    env.set("POINTNET_LINEAR_BIAS", bias);
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

// The input transform (K = 3) in fp16 / bf16 by transform.cu's own kernels:
// within the mode's bound of the CPU, the mode in effect (operands rounded),
// and within that bound of cuBLAS's product too (POINTNET_SMALL_TRANSFORMS=gemm).
// Shapes: the model's, a cloud of one point, N off the dt kernel's 512
// threads, and the other widths the kernels take (K = 1, 4).
TEST(CudaPrecisionModes, SmallTransformsWithinDtypeTolerance) {
  PN_REQUIRE_CUDA();
  CpuBackend<float> cpu;
  Rng rng(7);
  for (const Precision p : {Precision::FP16, Precision::BF16})
  for (const CloudShape& s : {CloudShape{4, 2500, 3}, CloudShape{2, 1, 3}, CloudShape{3, 517, 3}, CloudShape{2, 300, 4},
                              CloudShape{2, 300, 1}}) {
    const int B = s.B, N = s.N, K = s.C;
    SCOPED_TRACE(std::string(precision_name(p)) + " B=" + std::to_string(B) + " N=" + std::to_string(N) +
                 " K=" + std::to_string(K));
    const size_t nx = size_t(B) * N * K, nt = size_t(B) * K * K;
    std::vector<float> x(nx), t(nt), dy(nx), y(nx), dx(nx), dt(nt);
    for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
    for (float& v : t) v = 0.5f * rng.normal();
    for (float& v : dy) v = rng.normal();
    cpu.transform_forward(y.data(), x.data(), t.data(), B, N, K);
    cpu.transform_backward(dx.data(), dt.data(), dy.data(), x.data(), t.data(), B, N, K);
    std::vector<std::vector<float>> results[2];  // kernel, gemm: y, dx, dt
    for (int path = 0; path < 2; ++path) {
      testing::ScopedEnv env;
      env.set("POINTNET_SMALL_TRANSFORMS", path == 0 ? "kernel" : "gemm");
      CudaBackend gpu(p);
      Dev gx(gpu, x), gt(gpu, t), gdy(gpu, dy), gy(gpu, nx), gdx(gpu, nx), gdt(gpu, nt);
      for (Dev* d : {&gy, &gdx, &gdt}) d->poison();
      gpu.transform_forward(gy, gx, gt, B, N, K);
      gpu.transform_backward(gdx, gdt, gdy, gx, gt, B, N, K);
      results[path] = {gy.host(), gdx.host(), gdt.host()};
      // dt alone (the input transform's case) gives the same bits.
      gdt.poison();
      gpu.transform_backward(nullptr, gdt, gdy, gx, gt, B, N, K);
      EXPECT_CLOSE(gdt.host(), results[path][2], kExact);
    }
    const std::vector<float>* want[3] = {&y, &dx, &dt};
    for (int i = 0; i < 3; ++i) {
      SCOPED_TRACE(i == 0 ? "y" : i == 1 ? "dx" : "dt");
      EXPECT_CLOSE(results[0][i], *want[i], kHalf);
      // The same rounded operands and exact products: only the sums' order
      // and width (fp32 in cuBLAS, double for dt here) differ.
      EXPECT_CLOSE(results[0][i], results[1][i], 1e-4);
      EXPECT_GT(rel_error(results[0][i], *want[i]), 1e-6) << "operands look unrounded";
    }
  }
}

// ------------------------------------------------------------ fused wide layer
//
// wide_max_* (src/cuda/wide_max.cu) against the CPU reference
// (src/cpu/wide_max.cpp). Shapes: N past one z chunk (8192 rows) and not a
// multiple of it, so clouds straddle chunks and one chunk holds parts of
// several clouds; N below the extremes kernel's 8 point lanes, N = 1 (every
// pick on one row) and N a multiple of its 256-point segments; B*N, K and C off
// every block size there (32-channel tiles, 16-wide tiles, the scatter's 128
// columns per pass, a sort of 4096 picks); C of 1, 5, 17 and 32 (the
// per-thread pick sort within one warp, part of one, and a single key); and
// the model's K = 128, C = 1024 at N = 2500 and 1024.
struct WideShape {
  int B, N, K, C;
};
const WideShape kWideShapes[] = {{3, 9001, 13, 70}, {2, 3, 8, 40},    {5, 300, 64, 257},  {4, 2500, 128, 1024},
                                 {3, 512, 200, 2100}, {40, 1, 8, 33}, {2, 1024, 128, 1024}, {3, 50, 8, 5},
                                 {2, 10, 8, 17},      {2, 5, 8, 32},  {2, 5, 8, 1}};

std::string wide_name(const WideShape& s, bool relu) {
  return "B=" + std::to_string(s.B) + " N=" + std::to_string(s.N) + " K=" + std::to_string(s.K) +
         " C=" + std::to_string(s.C) + (relu ? " relu" : " no relu");
}

// Wide-layer outputs after a z GEMM with reduced-precision operands. z's error
// is ~u ||x o w|| (u: the operand format's unit roundoff; random-sign sum over
// K terms), which for the inputs below (x uniform on [0, 2]: rms(x) / std(x)
// = 2) is ~2u of z's spread; BatchNorm divides by that spread, and y and
// selected are a few spreads in size: ~u relative. Bounds at ~10 u: TF32 and
// fp16 keep 10 mantissa bits (u = 2^-11, 2^-10 if the conversion truncates),
// bf16 7 (u = 2^-8 = 3.9e-3).
constexpr double kWideTf32Fp16 = 1e-2;
constexpr double kWideBf16 = 5e-2;

// Inputs as the model sees them: x non-negative with mean ~1 (post-ReLU), so
// the covariance path sees a non-zero mean; gamma of both signs (every third
// channel negative) and one exactly 0 (picks z's max, as the CPU). With
// `integers`, x holds 0..3 and w multiples of 1/2 in [-1, 1]: every z and
// every partial sum is exact in fp32 whatever the summation order, so the
// extremes tie exactly, many times per cloud; and each cloud's last point is
// planted at x = 4, often the channel's unique extreme, in a later chunk than
// the cloud's first point.
struct WideInputs {
  WideShape s{};
  std::vector<float> x, w, bias, gamma, beta, rm, rv, dy;
};

WideInputs wide_inputs(const WideShape& s, Rng& rng, bool integers = false) {
  WideInputs in;
  in.s = s;
  const size_t M = size_t(s.B) * s.N;
  in.x.resize(M * s.K);
  in.w.resize(size_t(s.C) * s.K);
  const float w_scale = 1.0f / std::sqrt(static_cast<float>(s.K));
  for (float& v : in.x) v = integers ? static_cast<float>(rng.below(4)) : rng.uniform(0.0f, 2.0f);
  for (float& v : in.w) v = integers ? 0.5f * static_cast<float>(rng.below(5)) - 1.0f : w_scale * rng.normal();
  if (integers)
    for (int b = 0; b < s.B; ++b)
      std::fill_n(in.x.begin() + (size_t(b) * s.N + s.N - 1) * s.K, s.K, 4.0f);
  auto normals = [&](size_t n, float scale, float shift) {
    std::vector<float> v(n);
    for (float& e : v) e = shift + scale * rng.normal();
    return v;
  };
  in.bias = normals(s.C, 0.2f, 0.0f);
  in.gamma = normals(s.C, 0.5f, 1.0f);
  for (int c = 0; c < s.C; c += 3) in.gamma[c] = -std::fabs(in.gamma[c]);
  if (s.C > 1) in.gamma[1] = 0.0f;
  in.beta = normals(s.C, 0.3f, 0.0f);
  in.rm = normals(s.C, 0.1f, 0.0f);
  in.rv.resize(s.C);
  for (float& v : in.rv) v = rng.uniform(0.5f, 1.5f);
  in.dy = normals(size_t(s.B) * s.C, 1.0f, 0.0f);
  return in;
}

// What wide_max_forward_train writes (host copies).
struct WideForward {
  std::vector<float> y, input_mean, input_cov, mean, invstd, selected, rm, rv;
  std::vector<int32_t> row;
  explicit WideForward(const WideInputs& in)
      : y(size_t(in.s.B) * in.s.C), input_mean(in.s.K), input_cov(size_t(in.s.K) * in.s.K), mean(in.s.C),
        invstd(in.s.C), selected(y.size()), rm(in.rm), rv(in.rv), row(y.size()) {}
  WideMaxSaved<float> saved() {
    return {input_mean.data(), input_cov.data(), mean.data(), invstd.data(), selected.data(), row.data()};
  }
};

struct WideGrads {
  std::vector<float> dx, dw, dbias, dgamma, dbeta;
};

WideForward cpu_wide_forward(const WideInputs& in, bool relu) {
  CpuBackend<float> cpu;
  const WideShape& s = in.s;
  WideForward f(in);
  cpu.wide_max_forward_train(f.y.data(), f.saved(), f.rm.data(), f.rv.data(), in.x.data(), in.w.data(),
                             in.bias.data(), in.gamma.data(), in.beta.data(), s.B, s.N, s.K, s.C, relu, 1e-5, 0.1);
  return f;
}

// x (M, K)'s copy in the backend's 2-byte type (bf16 with 2-byte linear
// outputs): x times the identity, rounded once as the conversion rounds.
std::unique_ptr<Dev> narrow_copy(CudaBackend& be, const Dev& x, int M, int K) {
  EXPECT_TRUE(be.narrow_linear_outputs());
  std::vector<float> eye(size_t(K) * K, 0.0f);
  for (int k = 0; k < K; ++k) eye[size_t(k) * K + k] = 1.0f;
  Dev w(be, eye);
  auto copy = std::make_unique<Dev>(be, Backend<float>::narrow_count(size_t(M) * K));
  be.linear_forward(nullptr, x, w, nullptr, M, K, K, nullptr, *copy);
  return copy;
}

// The same on the GPU, every output poisoned first. copy_only: x handed over
// only as its 2-byte copy (Backend::wide_max_reads_narrow_input).
WideForward gpu_wide_forward(CudaBackend& be, const WideInputs& in, bool relu, bool copy_only = false) {
  const WideShape& s = in.s;
  const size_t bc = size_t(s.B) * s.C;
  Dev x(be, in.x), w(be, in.w), bias(be, in.bias), gamma(be, in.gamma), beta(be, in.beta), rm(be, in.rm),
      rv(be, in.rv), y(be, bc), input_mean(be, s.K), input_cov(be, size_t(s.K) * s.K), mean(be, s.C),
      invstd(be, s.C), selected(be, bc);
  DevIndex row(be, bc);
  for (Dev* d : {&y, &input_mean, &input_cov, &mean, &invstd, &selected}) d->poison();
  row.poison();
  const std::unique_ptr<Dev> copy = copy_only ? narrow_copy(be, x, s.B * s.N, s.K) : nullptr;
  const WideMaxSaved<float> saved{input_mean, input_cov, mean, invstd, selected, row};
  be.wide_max_forward_train(y, saved, rm, rv, copy ? nullptr : x.get(), w, bias, gamma, beta, s.B, s.N, s.K, s.C,
                            relu, 1e-5, 0.1, copy ? copy->get() : nullptr);
  WideForward f(in);
  f.y = y.host();
  f.input_mean = input_mean.host();
  f.input_cov = input_cov.host();
  f.mean = mean.host();
  f.invstd = invstd.host();
  f.selected = selected.host();
  f.rm = rm.host();
  f.rv = rv.host();
  f.row = row.host();
  return f;
}

WideGrads cpu_wide_backward(const WideInputs& in, WideForward& f, bool relu) {
  CpuBackend<float> cpu;
  const WideShape& s = in.s;
  WideGrads g{std::vector<float>(size_t(s.B) * s.N * s.K), std::vector<float>(in.w.size()),
              std::vector<float>(s.C), std::vector<float>(s.C), std::vector<float>(s.C)};
  cpu.wide_max_backward(g.dx.data(), g.dw.data(), g.dbias.data(), g.dgamma.data(), g.dbeta.data(), in.dy.data(),
                        f.y.data(), f.saved(), in.x.data(), in.w.data(), in.gamma.data(), s.B, s.N, s.K, s.C, relu);
  return g;
}

// (M, K) bf16 values in the first half of `raw`'s bytes (two to a float),
// as floats.
std::vector<float> bf16_elements(const std::vector<float>& raw, size_t count) {
  std::vector<uint16_t> halves(raw.size() * 2);
  std::memcpy(halves.data(), raw.data(), raw.size() * sizeof(float));
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = bfloat16_to_float(halves[i]);
  return out;
}

// The GPU's backward from the given forward's (the CPU's) y and saved tensors,
// so both sides differentiate the same picks. dx is left empty unless wanted.
// narrow_dx: dx written in bf16 (Backend::wide_max_writes_narrow_dx), returned
// as its values.
WideGrads gpu_wide_backward(CudaBackend& be, const WideInputs& in, const WideForward& f, bool relu, bool want_dx,
                            bool copy_only = false, bool narrow_dx = false) {
  const WideShape& s = in.s;
  Dev x(be, in.x), w(be, in.w), gamma(be, in.gamma), dy(be, in.dy), y(be, f.y), input_mean(be, f.input_mean),
      input_cov(be, f.input_cov), mean(be, f.mean), invstd(be, f.invstd), selected(be, f.selected),
      dx(be, want_dx ? in.x.size() : 1), dw(be, in.w.size()), dbias(be, s.C), dgamma(be, s.C), dbeta(be, s.C);
  DevIndex row(be, f.row);
  for (Dev* d : {&dx, &dw, &dbias, &dgamma, &dbeta}) d->poison();
  const WideMaxSaved<float> saved{input_mean, input_cov, mean, invstd, selected, row};
  const std::unique_ptr<Dev> copy = copy_only ? narrow_copy(be, x, s.B * s.N, s.K) : nullptr;
  // Every bf16 element NaN (0x7fc0 in both halves of each float) until written.
  float nan_pair;
  const uint32_t nan_bits = 0x7fc07fc0u;
  std::memcpy(&nan_pair, &nan_bits, sizeof nan_pair);
  const std::unique_ptr<Dev> dx_narrow =
      narrow_dx ? std::make_unique<Dev>(be, std::vector<float>(Backend<float>::narrow_count(in.x.size()), nan_pair))
                : nullptr;
  be.wide_max_backward(want_dx && !narrow_dx ? dx.get() : nullptr, dw, dbias, dgamma, dbeta, dy, y, saved,
                       copy ? nullptr : x.get(), w, gamma, s.B, s.N, s.K, s.C, relu, copy ? copy->get() : nullptr,
                       dx_narrow ? dx_narrow->get() : nullptr);
  std::vector<float> dx_values;
  if (dx_narrow) dx_values = bf16_elements(dx_narrow->host(), in.x.size());
  else if (want_dx) dx_values = dx.host();
  return {dx_values, dw.host(), dbias.host(), dgamma.host(), dbeta.host()};
}

// z = x w^T (no bias) in double: the exact values the picks are judged by.
std::vector<double> exact_z(const WideInputs& in) {
  const WideShape& s = in.s;
  const int M = s.B * s.N;
  CpuBackend<double> cpu;
  const std::vector<double> x(in.x.begin(), in.x.end()), w(in.w.begin(), in.w.end());
  std::vector<double> z(size_t(M) * s.C);
  cpu.linear_forward(z.data(), x.data(), w.data(), nullptr, M, s.K, s.C);
  return z;
}

// Per channel, a worst-case bound on the rounding error of one z element from
// a GEMM whose operands are rounded with unit roundoff u (0 for fp32) and
// summed in fp32 over K terms: (2u + K 2^-24) max|x| sum_k |w_ck|.
std::vector<double> z_slack(const WideInputs& in, double u) {
  const WideShape& s = in.s;
  double max_x = 0.0;
  for (float v : in.x) max_x = std::max(max_x, std::fabs(static_cast<double>(v)));
  std::vector<double> slack(s.C);
  for (int c = 0; c < s.C; ++c) {
    double sum = 0.0;
    for (int k = 0; k < s.K; ++k) sum += std::fabs(static_cast<double>(in.w[size_t(c) * s.K + k]));
    slack[c] = (2.0 * u + s.K * std::ldexp(1.0, -24)) * max_x * sum;
  }
  return slack;
}

// Judges the picks `got` against `ref` (the CPU's) with z in double: where a
// cloud's extreme beats its runner-up by more than twice the slack, no rounding
// can reorder them and both must pick the same point; elsewhere (a near or
// exact tie) got's point must be within twice the slack of the extreme.
// Returns how many picks were separated.
size_t check_picks(const std::vector<int32_t>& got, const std::vector<int32_t>& ref, const std::vector<double>& z,
                   const std::vector<double>& slack, const WideInputs& in) {
  const WideShape& s = in.s;
  size_t separated = 0, bad = 0;
  for (int b = 0; b < s.B; ++b) {
    for (int c = 0; c < s.C; ++c) {
      const double sign = in.gamma[c] >= 0.0f ? 1.0 : -1.0;
      double best = -std::numeric_limits<double>::infinity(), second = best;
      for (int n = 0; n < s.N; ++n) {
        const double v = sign * z[(size_t(b) * s.N + n) * s.C + c];
        if (v > best) {
          second = best;
          best = v;
        } else if (v > second) {
          second = v;
        }
      }
      const size_t i = size_t(b) * s.C + c;
      if (got[i] < 0 || got[i] >= s.N) {
        if (bad++ < 5) ADD_FAILURE() << "pick (" << b << ", " << c << ") = " << got[i] << " is not a point";
        continue;
      }
      if (best - second > 2.0 * slack[c]) {
        ++separated;
        if (got[i] != ref[i] && bad++ < 5)
          ADD_FAILURE() << "pick (" << b << ", " << c << "): " << got[i] << " vs the CPU's " << ref[i]
                        << " with a clear extreme";
      } else {
        const double v = sign * z[(size_t(b) * s.N + got[i]) * s.C + c];
        if (v < best - 2.0 * slack[c] && bad++ < 5)
          ADD_FAILURE() << "pick (" << b << ", " << c << ") = " << got[i] << " is " << best - v
                        << " short of the extreme (slack " << slack[c] << ")";
      }
    }
  }
  EXPECT_EQ(bad, 0u) << "bad picks";
  return separated;
}

class CudaWideMax : public CudaOps {};

TEST_F(CudaWideMax, ForwardTrainMatchesCpu) {
  for (const WideShape& s : kWideShapes) {
    const WideInputs in = wide_inputs(s, rng);
    const std::vector<double> z = exact_z(in);
    for (bool relu : {true, false}) {
      SCOPED_TRACE(wide_name(s, relu));
      const WideForward ref = cpu_wide_forward(in, relu), got = gpu_wide_forward(*gpu, in, relu);
      // x's mean and z's mean: double sums on both sides, then rounded (ulps).
      EXPECT_CLOSE(got.input_mean, ref.input_mean, kElementwise);
      EXPECT_CLOSE(got.mean, ref.mean, kElementwise);
      EXPECT_CLOSE(got.rm, ref.rm, kElementwise);
      // The covariance: fp32 GEMMs over M rows in different orders; invstd and
      // the running variance follow from it.
      EXPECT_CLOSE(got.input_cov, ref.input_cov, kFp32);
      EXPECT_CLOSE(got.invstd, ref.invstd, kFp32);
      EXPECT_CLOSE(got.rv, ref.rv, kFp32);
      // The picks: identical wherever the extreme is clear (nearly all here).
      const size_t separated = check_picks(got.row, ref.row, z, z_slack(in, 0.0), in);
      EXPECT_GE(separated, ref.row.size() * 9 / 10) << "too few clear extremes for the test to mean much";
      // z at the picks: fp32 sums of K terms in different orders.
      EXPECT_CLOSE(got.selected, ref.selected, kFp32);
      EXPECT_CLOSE(got.y, ref.y, kFp32);
    }
  }
}

TEST_F(CudaWideMax, ForwardEvalMatchesCpu) {
  for (const WideShape& s : kWideShapes) {
    const WideInputs in = wide_inputs(s, rng);
    for (bool relu : {true, false}) {
      SCOPED_TRACE(wide_name(s, relu));
      std::vector<float> ref(size_t(s.B) * s.C);
      cpu.wide_max_forward_eval(ref.data(), in.x.data(), in.w.data(), in.bias.data(), in.gamma.data(),
                                in.beta.data(), in.rm.data(), in.rv.data(), s.B, s.N, s.K, s.C, relu, 1e-5);
      Dev x(*gpu, in.x), w(*gpu, in.w), bias(*gpu, in.bias), gamma(*gpu, in.gamma), beta(*gpu, in.beta),
          rm(*gpu, in.rm), rv(*gpu, in.rv), y(*gpu, ref.size());
      y.poison();
      gpu->wide_max_forward_eval(y, x, w, bias, gamma, beta, rm, rv, s.B, s.N, s.K, s.C, relu, 1e-5);
      // z at the picks (fp32 sums of K terms), then one affine map in double.
      EXPECT_CLOSE(y.host(), ref, kFp32);
    }
  }
}

TEST_F(CudaWideMax, BackwardMatchesCpu) {
  // dx = offset - x P: the offset in the matmul's epilogue (default) or
  // broadcast into dx first (POINTNET_LINEAR_BIAS=broadcast).
  for (const char* bias : {"epilogue", "broadcast"})
  for (const WideShape& s : kWideShapes) {
    const WideInputs in = wide_inputs(s, rng);
    testing::ScopedEnv env;
    env.set("POINTNET_LINEAR_BIAS", bias);
    CudaBackend be(Precision::FP32);
    for (bool relu : {true, false}) {
      SCOPED_TRACE(wide_name(s, relu) + " bias " + bias);
      WideForward f = cpu_wide_forward(in, relu);
      const WideGrads ref = cpu_wide_backward(in, f, relu);
      const size_t broadcasts_before = be.gemm_counts().bias_broadcasts;
      const WideGrads got = gpu_wide_backward(be, in, f, relu, true);
      const size_t broadcasts = be.gemm_counts().bias_broadcasts - broadcasts_before;
      if (std::string(bias) == "broadcast") {
        EXPECT_EQ(broadcasts, 1u) << "POINTNET_LINEAR_BIAS=broadcast not honoured";
      } else if (s.K % 4 == 0) {
        EXPECT_EQ(broadcasts, 0u) << "cuBLASLt found no epilogue plan for dx";
      }
      // Per-channel sums and dw in double on both sides, in the same order,
      // rounded once: ulps. dbias is exactly 0.
      EXPECT_CLOSE(got.dbeta, ref.dbeta, kElementwise);
      EXPECT_CLOSE(got.dgamma, ref.dgamma, kElementwise);
      EXPECT_CLOSE(got.dw, ref.dw, kElementwise);
      EXPECT_CLOSE(got.dbias, std::vector<float>(s.C, 0.0f), kExact);
      // dx: fp32 GEMMs (P over C terms, x P over K) in different orders, then
      // the picked points' terms, grouped by segments of picks (wide_picks.cu).
      EXPECT_CLOSE(got.dx, ref.dx, kFp32);
      // Without dx (the layer's input needs no gradient): the rest unchanged.
      const WideGrads no_dx = gpu_wide_backward(be, in, f, relu, false);
      EXPECT_CLOSE(no_dx.dw, got.dw, kExact);
      EXPECT_CLOSE(no_dx.dgamma, got.dgamma, kExact);
      EXPECT_CLOSE(no_dx.dbeta, got.dbeta, kExact);
      EXPECT_CLOSE(no_dx.dbias, got.dbias, kExact);
    }
  }
}

// Max pooling concentrates the picks on a few rows: here one planted point
// per cloud (x = 20 in every input channel) is the extreme of ~45% of the
// channels (those whose weights sum away from 0 on gamma's side),
// so its run of picks spans many of add_picks' segments (K = 200:
// two passes of 128 columns; C = 2100: a last segment of 4 at spans 8 and 16,
// 20 at 32). dx within fp32 of the CPU, and the same bits on a second run.
TEST_F(CudaWideMax, ConcentratedPicksMatchCpu) {
  for (const WideShape& s : {WideShape{3, 300, 128, 1024}, WideShape{2, 50, 200, 2100}}) {
    SCOPED_TRACE(wide_name(s, true));
    WideInputs in = wide_inputs(s, rng);
    for (int b = 0; b < s.B; ++b) std::fill_n(in.x.begin() + (size_t(b) * s.N + 7) * s.K, s.K, 20.0f);
    WideForward f = cpu_wide_forward(in, true);
    size_t planted = 0;
    for (int32_t r : f.row) planted += r == 7;
    EXPECT_GT(planted, f.row.size() / 4) << "the planted point should take many picks";
    const WideGrads ref = cpu_wide_backward(in, f, true);
    CudaBackend be(Precision::FP32);
    for (const char* span : {"8", "16", "32"}) {  // picks per segment (POINTNET_PICK_SPAN)
      SCOPED_TRACE(std::string("span ") + span);
      testing::ScopedEnv env;
      env.set("POINTNET_PICK_SPAN", span);
      const WideGrads got = gpu_wide_backward(be, in, f, true, true);
      EXPECT_CLOSE(got.dx, ref.dx, kFp32);
      EXPECT_CLOSE(gpu_wide_backward(be, in, f, true, true).dx, got.dx, kExact);
    }
  }
}

TEST_F(CudaWideMax, ExactTiesKeepTheFirstPoint) {
  for (const WideShape& s : {WideShape{3, 9001, 13, 70}, WideShape{2, 3, 8, 40}, WideShape{3, 700, 16, 33}}) {
    const WideInputs in = wide_inputs(s, rng, true);
    for (bool relu : {true, false}) {
      SCOPED_TRACE(wide_name(s, relu));
      WideForward ref = cpu_wide_forward(in, relu);
      const WideForward got = gpu_wide_forward(*gpu, in, relu);
      // Exact z on both sides: the same first point of each tie (torch.max),
      // across chunk boundaries too, and the same values there.
      EXPECT_EQ(got.row, ref.row);
      EXPECT_CLOSE(got.selected, ref.selected, kExact);
      // y goes through the covariance, a fp32 GEMM over M rows on the CPU; with
      // these repeated values its rounding errors do not cancel and reach up to
      // ~M 2^-24 relative (1.6e-3 at M = 27003; a host emulation of the CUDA
      // file against the CPU measured 1.6e-4 on the covariance, 4e-5 on y).
      EXPECT_CLOSE(got.y, ref.y, 2e-3);
      const WideGrads gref = cpu_wide_backward(in, ref, relu);
      const WideGrads g = gpu_wide_backward(*gpu, in, ref, relu, true);
      EXPECT_CLOSE(g.dx, gref.dx, kFp32);
      EXPECT_CLOSE(g.dw, gref.dw, kElementwise);
    }
  }
}

// The covariance and dx += -x P outside the fp32 mode: TF32 products (each
// operand rounded to 2^-11 relative, a product within 2^-10), fp32 sums; the
// covariance's norm is that of its diagonal, whose terms are all positive, so
// its error stays within ~2^-10 of it.
constexpr double kWideTf32Products = 1e-3;

TEST_F(CudaWideMax, PrecisionModes) {
  struct Mode {
    Precision precision;
    double roundoff;   // the GEMM operands' unit roundoff (bound)
    double tolerance;  // y and selected
    const char* extremes;  // POINTNET_WIDE_EXTREMES: where fp16/bf16 take z's extremes
  };
  // The model's shape; K off the tensor-core path's 8-column rows (the GEMM
  // path in every mode); K = 64 with C off its 128-channel blocks and a last
  // segment of 44 points; K = 8 (one half-empty k-step) with one point per cloud.
  for (const WideShape& s : {WideShape{4, 2500, 128, 1024}, WideShape{3, 9001, 13, 70}, WideShape{5, 300, 64, 257},
                             WideShape{40, 1, 8, 33}}) {
    const WideInputs in = wide_inputs(s, rng);
    const std::vector<double> z = exact_z(in);
    WideForward ref = cpu_wide_forward(in, true);
    const WideGrads gref = cpu_wide_backward(in, ref, true);
    // The CPU on x rounded to bf16: what bf16's layer reads (reads_operand_only).
    WideInputs in_bf16 = in;
    for (float& v : in_bf16.x) v = bf16_value(v);
    WideForward ref_bf16 = cpu_wide_forward(in_bf16, true);
    const WideGrads gref_bf16 = cpu_wide_backward(in_bf16, ref_bf16, true);
    for (const Mode& mode : {Mode{Precision::TF32, std::ldexp(1.0, -10), kWideTf32Fp16, "gemm"},
                             Mode{Precision::FP16, std::ldexp(1.0, -11), kWideTf32Fp16, "mma"},
                             Mode{Precision::FP16, std::ldexp(1.0, -11), kWideTf32Fp16, "gemm"},
                             Mode{Precision::BF16, std::ldexp(1.0, -8), kWideBf16, "mma"},
                             Mode{Precision::BF16, std::ldexp(1.0, -8), kWideBf16, "gemm"}}) {
      SCOPED_TRACE(std::string(precision_name(mode.precision)) + " " + mode.extremes + " " + wide_name(s, true));
      testing::ScopedEnv extremes;
      extremes.set("POINTNET_WIDE_EXTREMES", mode.extremes);
      CudaBackend be(mode.precision);
      const WideForward got = gpu_wide_forward(be, in, true);
      // x's mean and z's mean stay double sums in every mode: the fp32
      // bounds, against the CPU on x's bf16 values in bf16 (the ones z is
      // computed from and the layer reads there; reads_operand_only).
      // z's variance is that of the z the mode computes (as PyTorch's
      // autocast BatchNorm sees the half conv output): within the mode's bound.
      const bool bf16 = mode.precision == Precision::BF16;
      const WideForward& ref_x = bf16 ? ref_bf16 : ref;
      EXPECT_CLOSE(got.input_mean, ref_x.input_mean, kElementwise);
      EXPECT_CLOSE(got.mean, ref_x.mean, kElementwise);
      EXPECT_CLOSE(got.rm, ref_x.rm, kElementwise);
      // The covariance: TF32 products of centred rows (tf32), or, in fp16 /
      // bf16 (raw_covariance), that of x's 2-byte values around their own
      // mean, which their rounding moves by at most ~2u E[x^2] per term:
      // 2u E[x^2] / var(x) = 8u relative for these inputs (a host emulation:
      // bf16 1e-3 at B N = 10,000, 3e-3 at 40 rows).
      EXPECT_CLOSE(got.input_cov, ref.input_cov,
                   mode.precision == Precision::TF32 ? kWideTf32Products : 8 * mode.roundoff);
      EXPECT_CLOSE(got.invstd, ref.invstd, mode.tolerance);
      EXPECT_CLOSE(got.rv, ref.rv, mode.tolerance);
      // z's GEMM runs in the mode: picks within its rounding, values within the dtype's bound.
      const size_t separated = check_picks(got.row, ref.row, z, z_slack(in, mode.roundoff), in);
      EXPECT_CLOSE(got.selected, ref.selected, mode.tolerance);
      EXPECT_CLOSE(got.y, ref.y, mode.tolerance);
      // The mode is really in effect (at the model's shape, where cuBLAS surely takes tensor cores).
      if (s.K == 128) {
        EXPECT_GT(rel_error(got.selected, ref.selected), 1e-6) << "z's GEMM looks like plain fp32";
      }
      std::cout << "[ info     ] " << precision_name(mode.precision) << " " << mode.extremes << " wide_max "
                << wide_name(s, true) << ": y rel error " << rel_error(got.y, ref.y) << ", invstd "
                << rel_error(got.invstd, ref.invstd) << ", cov " << rel_error(got.input_cov, ref.input_cov) << ", "
                << separated << " of " << ref.row.size() << " picks clear of rounding\n";
      // The eval forward (no squares: the extremes only) in the same mode and path.
      {
        std::vector<float> eval_ref(size_t(s.B) * s.C);
        CpuBackend<float>().wide_max_forward_eval(eval_ref.data(), in.x.data(), in.w.data(), in.bias.data(),
                                                  in.gamma.data(), in.beta.data(), in.rm.data(), in.rv.data(), s.B,
                                                  s.N, s.K, s.C, true, 1e-5);
        Dev x(be, in.x), w(be, in.w), bias(be, in.bias), gamma(be, in.gamma), beta(be, in.beta), rm(be, in.rm),
            rv(be, in.rv), y(be, eval_ref.size());
        y.poison();
        be.wide_max_forward_eval(y, x, w, bias, gamma, beta, rm, rv, s.B, s.N, s.K, s.C, true, 1e-5);
        SCOPED_TRACE("eval forward");
        EXPECT_CLOSE(y.host(), eval_ref, mode.tolerance);
      }
      // The backward from the CPU's saved tensors: dx's dense product in TF32,
      // the rest double sums. In bf16 against the CPU on x's bf16 values:
      // dw's picked rows are those values (double sums: ulps), and dx's
      // dense product takes P rounded to bf16 (2^-9 of a dense part that is
      // a fraction of dx: 2e-3).
      const WideGrads g = gpu_wide_backward(be, in, bf16 ? ref_bf16 : ref, true, true);
      const WideGrads& gref_x = bf16 ? gref_bf16 : gref;
      EXPECT_CLOSE(g.dx, gref_x.dx, bf16 ? 2e-3 : kWideTf32Products);
      EXPECT_CLOSE(g.dw, gref_x.dw, kElementwise);
      if (bf16)
        std::cout << "[ info     ] bf16 wide_max backward " << wide_name(s, true) << ": dx rel error "
                  << rel_error(g.dx, gref_x.dx) << ", dw " << rel_error(g.dw, gref_x.dw) << "\n";
      EXPECT_CLOSE(g.dgamma, gref_x.dgamma, kElementwise);
      EXPECT_CLOSE(g.dbeta, gref_x.dbeta, kElementwise);
    }
  }
}

// In bf16 the layer reads x only as its bf16 values (reads_operand_only), so
// the model's conv2 writes only its copy: given the copy alone (x null), the
// forward and backward give the same bits as given fp32 x (converted inside).
// fp16 keeps reading fp32 x (its dx product stays TF32): there, with the
// centred covariance and with POINTNET_WIDE_INPUT=fp32, x alone is refused
// rather than misread.
TEST_F(CudaWideMax, Bf16ReadsOnlyTheCopy) {
  for (const char* bias : {"epilogue", "broadcast"})  // dx's offset: see BackwardMatchesCpu
  for (const WideShape& s : {WideShape{4, 2500, 128, 1024}, WideShape{5, 300, 64, 257}}) {
    SCOPED_TRACE(wide_name(s, true) + " bias " + bias);
    const WideInputs in = wide_inputs(s, rng);
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    env.set("POINTNET_LINEAR_BIAS", bias);
    CudaBackend be(Precision::BF16);
    ASSERT_TRUE(be.wide_max_reads_narrow_input());
    const WideForward wide = gpu_wide_forward(be, in, true), copy = gpu_wide_forward(be, in, true, true);
    EXPECT_CLOSE(copy.y, wide.y, kExact);
    EXPECT_CLOSE(copy.input_mean, wide.input_mean, kExact);
    EXPECT_CLOSE(copy.input_cov, wide.input_cov, kExact);
    EXPECT_CLOSE(copy.mean, wide.mean, kExact);
    EXPECT_CLOSE(copy.invstd, wide.invstd, kExact);
    EXPECT_CLOSE(copy.rv, wide.rv, kExact);
    EXPECT_CLOSE(copy.rm, wide.rm, kExact);
    EXPECT_CLOSE(copy.selected, wide.selected, kExact);
    EXPECT_EQ(copy.row, wide.row);
    const WideGrads g_wide = gpu_wide_backward(be, in, wide, true, true),
                    g_copy = gpu_wide_backward(be, in, wide, true, true, true);
    EXPECT_CLOSE(g_copy.dx, g_wide.dx, kExact);
    EXPECT_CLOSE(g_copy.dw, g_wide.dw, kExact);
    EXPECT_CLOSE(g_copy.dgamma, g_wide.dgamma, kExact);
    EXPECT_CLOSE(g_copy.dbeta, g_wide.dbeta, kExact);
    EXPECT_EQ(count_nonfinite(g_copy.dx), 0u);
  }
  const WideInputs in = wide_inputs(WideShape{2, 300, 64, 64}, rng);
  for (int variant = 0; variant < 3; ++variant) {
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    env.set("POINTNET_NARROW_Z", "on");
    if (variant == 1) env.set("POINTNET_WIDE_COVARIANCE", "centred");
    if (variant == 2) env.set("POINTNET_WIDE_INPUT", "fp32");
    CudaBackend be(variant == 0 ? Precision::FP16 : Precision::BF16);
    SCOPED_TRACE(variant == 0 ? "fp16" : variant == 1 ? "bf16, centred covariance" : "bf16, POINTNET_WIDE_INPUT=fp32");
    EXPECT_FALSE(be.wide_max_reads_narrow_input());
    EXPECT_THROW(gpu_wide_forward(be, in, true, true), Error);
  }
}

// dx in bf16 for the next layer's BatchNorm (Backend::wide_max_writes_narrow_dx,
// bf16 with 2-byte gradients): the parameter gradients are the fp32 dx run's
// bits; dx holds bf16 values within bf16's rounding of the fp32 dx. With the
// bias broadcast (no epilogue; also the way taken where cuBLASLt has no bf16
// plan) dx is the fp32 dx rounded once, bit for bit. With the epilogue the
// product rounds its output and its bias (the offset) to bf16, and the picks'
// rows are rounded once more: within 2 unit roundoffs (2^-7) overall.
TEST_F(CudaWideMax, Bf16NarrowDxIsTheFp32DxRounded) {
  for (const char* bias : {"epilogue", "broadcast"})
  for (const WideShape& s : {WideShape{4, 2500, 128, 1024}, WideShape{5, 300, 64, 257}}) {
    SCOPED_TRACE(wide_name(s, true) + " bias " + bias);
    const WideInputs in = wide_inputs(s, rng);
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    env.set("POINTNET_NARROW_GRADIENTS", "on");
    env.set("POINTNET_WIDE_NARROW_DX", "on");
    env.set("POINTNET_LINEAR_BIAS", bias);
    CudaBackend be(Precision::BF16);
    ASSERT_TRUE(be.wide_max_writes_narrow_dx());
    const WideForward f = gpu_wide_forward(be, in, true, true);
    const WideGrads wide = gpu_wide_backward(be, in, f, true, true, true),
                    narrow = gpu_wide_backward(be, in, f, true, true, true, true);
    EXPECT_CLOSE(narrow.dw, wide.dw, kExact);
    EXPECT_CLOSE(narrow.dgamma, wide.dgamma, kExact);
    EXPECT_CLOSE(narrow.dbeta, wide.dbeta, kExact);
    ASSERT_EQ(narrow.dx.size(), wide.dx.size());
    EXPECT_EQ(count_nonfinite(narrow.dx), 0u) << "elements not written";
    if (std::string(bias) == "broadcast") {
      size_t differ = 0;
      for (size_t i = 0; i < wide.dx.size(); ++i) differ += narrow.dx[i] != bf16_value(wide.dx[i]);
      EXPECT_EQ(differ, 0u) << "of " << wide.dx.size() << " elements not the fp32 dx rounded";
    } else {
      const double err = rel_error(narrow.dx, wide.dx);
      EXPECT_LE(err, std::ldexp(1.0, -7));
      EXPECT_GT(err, 0.0) << "dx looks unrounded";
      // Element by element: bf16 values, each within two roundings of its
      // own size (2^-7) plus the bias's rounding (a column's constant, half an
      // ulp of the offset, 2^-9 of it; allowed 2^-7 of the column's largest
      // value: the offset, xbar P - u, stays within a few times that here).
      const int K = s.K;
      std::vector<double> column_max(K, 0.0);
      for (size_t i = 0; i < wide.dx.size(); ++i)
        column_max[i % K] = std::max(column_max[i % K], std::fabs(static_cast<double>(wide.dx[i])));
      size_t off_grid = 0, far = 0;
      for (size_t i = 0; i < wide.dx.size(); ++i) {
        off_grid += bf16_value(narrow.dx[i]) != narrow.dx[i];
        const double bound = std::ldexp(std::fabs(static_cast<double>(wide.dx[i])), -7) +
                             std::ldexp(column_max[i % K], -7);
        far += std::fabs(static_cast<double>(narrow.dx[i]) - wide.dx[i]) > bound;
      }
      EXPECT_EQ(off_grid, 0u) << "values bf16 cannot hold";
      EXPECT_EQ(far, 0u) << "of " << wide.dx.size() << " elements beyond bf16's roundings";
      std::cout << "[ info     ] bf16 wide_max backward " << wide_name(s, true) << ": 2-byte dx rel error " << err
                << " vs the fp32 dx\n";
    }
  }
  // Off where asked, in fp16 (x's fp32 operand there), and without 2-byte
  // gradients; refused where off.
  testing::ScopedEnv env;
  env.set("POINTNET_NARROW_ACTIVATIONS", "on");
  env.set("POINTNET_WIDE_NARROW_DX", "off");
  EXPECT_FALSE(CudaBackend(Precision::BF16).wide_max_writes_narrow_dx());
  env.set("POINTNET_WIDE_NARROW_DX", "");
  EXPECT_TRUE(CudaBackend(Precision::BF16).wide_max_writes_narrow_dx());
  EXPECT_FALSE(CudaBackend(Precision::FP16).wide_max_writes_narrow_dx());
  EXPECT_FALSE(CudaBackend(Precision::FP32).wide_max_writes_narrow_dx());
  env.set("POINTNET_NARROW_GRADIENTS", "off");
  CudaBackend off(Precision::BF16);
  EXPECT_FALSE(off.wide_max_writes_narrow_dx());
  const WideInputs in = wide_inputs(WideShape{2, 300, 64, 64}, rng);
  const WideForward f = gpu_wide_forward(off, in, true);
  EXPECT_THROW(gpu_wide_backward(off, in, f, true, true, false, true), Error);
}

// Input channels nearly constant (a BatchNorm+ReLU output with gamma, beta ~
// 1e-2). A covariance centred on fp32 x's mean instead of the 2-byte values'
// own is off by xbar_h^2 - xbar^2 on the diagonal, enough to make w^T S w
// negative and invstd NaN (review, 2026-12-06). Here every input channel is a
// dyadic level (exact in fp16 and bf16) plus noise of 2e-5, far below half an
// ulp, so the 2-byte x is exactly constant: its covariance is exactly 0 (the
// raw sums are exact), w (multiples of 1/64, exact too) makes the tensor
// cores' z constant, and z's variance must come out ~0, as the CPU's (~1e-9,
// next to eps = 1e-5): invstd within 1e-3 of the CPU's, finite. Centred on
// fp32 x's mean (1e-6 off), S's diagonal would be ~-2e-6: invstd off by ~5%.
TEST_F(CudaWideMax, NearConstantInputsKeepTheVariance) {
  const WideShape s{4, 2500, 128, 256};
  WideInputs in = wide_inputs(s, rng);
  const float levels[] = {0.5f, 0.625f, 0.75f, 0.875f, 1.0f, 1.125f, 1.25f};
  for (size_t r = 0; r < size_t(s.B) * s.N; ++r)
    for (int k = 0; k < s.K; ++k) in.x[r * s.K + k] = levels[k % 7] + 2e-5f * rng.normal();
  for (float& v : in.w) v = static_cast<float>(static_cast<int>(rng.below(65)) - 32) / 64.0f;
  const WideForward ref = cpu_wide_forward(in, true);
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    SCOPED_TRACE(precision_name(p));
    testing::ScopedEnv env;
    env.set("POINTNET_WIDE_EXTREMES", "mma");
    CudaBackend be(p);
    const WideForward got = gpu_wide_forward(be, in, true);
    EXPECT_CLOSE(got.invstd, ref.invstd, 1e-3);
    EXPECT_CLOSE(got.rv, ref.rv, 1e-3);
    EXPECT_EQ(count_nonfinite(got.y), 0u);  // its picks differ from the CPU's: z is constant here
  }
}

// A BatchNorm layer's test inputs over (M, C), drawn from rng in this order:
// z around z_centre, dy, gamma near 1, beta near 0.
struct BatchNormInputs {
  std::vector<float> z, dy, gamma, beta;
};
BatchNormInputs batchnorm_inputs(Rng& rng, int M, int C, float z_centre) {
  BatchNormInputs in{std::vector<float>(size_t(M) * C), std::vector<float>(size_t(M) * C), std::vector<float>(C),
                     std::vector<float>(C)};
  for (float& v : in.z) v = z_centre + rng.normal();
  for (float& v : in.dy) v = rng.normal();
  for (float& v : in.gamma) v = 1.0f + 0.3f * rng.normal();
  for (float& v : in.beta) v = 0.3f * rng.normal();
  return in;
}

// Every output of a BatchNorm+ReLU forward and backward over (M, C), as raw
// bits, with `setting` (an environment variable and its value) set, three
// ways: fp32 (float loads, fp32 dx and its sums), bf16 with fp32 z and dy
// (float loads, fp32 dx and its bf16 copy), bf16 with z and dy in 2 bytes
// (only the copy). in_place: y over z and dx over dy (fp32 inputs only).
enum BatchNormVariant { kFp32Throughout, kBf16FloatInputs, kBf16NarrowInputs };
std::vector<std::vector<float>> batchnorm_relu_bits(BatchNormVariant variant, int M, int C, bool in_place,
                                                    const char* name, const char* value) {
  Rng rng(31);
  const Precision p = variant == kFp32Throughout ? Precision::FP32 : Precision::BF16;
  const auto [z, dy, gamma, beta] = batchnorm_inputs(rng, M, C, 3.0f);
  testing::ScopedEnv env;
  env.set(name, value);
  env.set("POINTNET_NARROW_ACTIVATIONS", "on");
  env.set("POINTNET_NARROW_Z", "on");
  env.set("POINTNET_NARROW_GRADIENTS", "on");
  CudaBackend gpu(p);
  const bool two = variant == kBf16NarrowInputs;
  // The running statistics are updated in place: known values first. The
  // copy's padding (M C odd) is never written: poisoned alike in both runs.
  Dev gz(gpu, z), gdy(gpu, dy), gg(gpu, gamma), gb(gpu, beta), mean(gpu, C), invstd(gpu, C),
      rm(gpu, std::vector<float>(C, 0.5f)), rv(gpu, std::vector<float>(C, 2.0f)), y_out(gpu, z.size()),
      dx_out(gpu, z.size()), dg(gpu, C), db(gpu, C), sum(gpu, C), copy(gpu, Backend<float>::narrow_count(z.size()));
  copy.poison();
  float* y = in_place ? gz.get() : y_out.get();
  float* dx = in_place ? gdy.get() : dx_out.get();
  const std::unique_ptr<Dev> z2 = two ? narrow_copy(gpu, gz, M, C) : nullptr;
  const std::unique_ptr<Dev> dy2 = two ? narrow_copy(gpu, gdy, M, C) : nullptr;
  std::vector<std::vector<float>> out;
  const auto bits = [&](const float* p, size_t n) {
    out.emplace_back(n);
    gpu.download(out.back().data(), p, n);
  };
  if (in_place) {
    // The ReLU's mask needs z (x): the in-place forward overwrites it, so the
    // backward gets a saved copy, as the model keeps z where y replaces it.
    EXPECT_EQ(variant, kFp32Throughout);
    gpu.batchnorm_forward_train(y, mean, invstd, rm, rv, gz, gg, gb, M, C, 1e-5, 0.1);
    bits(y, z.size());
    Dev x(gpu, z);
    gpu.batchnorm_backward(dx, dg, db, gdy, x, gg, mean, invstd, M, C);
    bits(dx, z.size());
  } else {
    gpu.batchnorm_relu_forward_train(y, mean, invstd, rm, rv, two ? nullptr : gz.get(), gg, gb, M, C, 1e-5, 0.1,
                                     two ? copy.get() : nullptr, two ? z2->get() : nullptr);
    bits(y, z.size());
    if (two) {
      bits(copy, Backend<float>::narrow_count(z.size()));
      gpu.batchnorm_relu_backward(nullptr, dg, db, nullptr, nullptr, nullptr, gg, gb, mean, invstd, M, C, copy, sum,
                                  z2->get(), dy2->get());
      bits(copy, Backend<float>::narrow_count(z.size()));
      bits(sum, C);
    } else {
      const bool copied = variant == kBf16FloatInputs;
      gpu.batchnorm_relu_backward(dx, dg, db, gdy, gz, nullptr, gg, gb, mean, invstd, M, C,
                                  copied ? copy.get() : nullptr, sum);
      bits(dx, z.size());
      bits(sum, C);
      if (copied) bits(copy, Backend<float>::narrow_count(z.size()));
    }
  }
  for (const Dev* d : {&mean, &invstd, &rm, &rv, &dg, &db}) bits(*d, C);
  return out;
}

void expect_same_bits(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].size(), b[i].size());
    EXPECT_EQ(std::memcmp(a[i].data(), b[i].data(), a[i].size() * sizeof(float)), 0) << "output " << i << " differs";
  }
}

// BatchNorm's dx pass two channels per thread (POINTNET_BATCHNORM_DX_PAIRS,
// on by default where C is even): each channel's values and sums are the same
// operations in the same order, so every output keeps its bits against one
// channel per thread, including the pass that also sums dx
// (batchnorm_dx_sums_kernel). C = 70 leaves a half-filled block, C = 33 is
// odd (one channel per thread either way).
TEST(CudaPrecisionModes, BatchNormDxPairsGiveTheSameBits) {
  PN_REQUIRE_CUDA();
  for (BatchNormVariant variant : {kFp32Throughout, kBf16FloatInputs, kBf16NarrowInputs})
    for (int C : {128, 70, 33}) {
      SCOPED_TRACE(std::to_string(variant) + " C=" + std::to_string(C));
      const int M = 3001;
      expect_same_bits(batchnorm_relu_bits(variant, M, C, false, "POINTNET_BATCHNORM_DX_PAIRS", "on"),
                       batchnorm_relu_bits(variant, M, C, false, "POINTNET_BATCHNORM_DX_PAIRS", "off"));
    }
}

// BatchNorm+ReLU's backward summing an fp32 dx (dx_sum: the preceding linear
// layer's bias gradient under POINTNET_BIAS_SUMS=batchnorm) gives
// linear_backward's db of that same dx bit for bit: one chunk of rows (M <=
// 256, fused or chunked) or several, one or two channels a thread (C = 70,
// POINTNET_BATCHNORM_DX_PAIRS; C = 33 is odd), dx apart from dy or over it.
TEST(CudaPrecisionModes, BatchNormDxSumsAreTheBiasGradient) {
  PN_REQUIRE_CUDA();
  for (int M : {2, 32, 256, 257, 3001})
    for (const char* rows : {"fused", "chunked"})
      for (const char* pairs : {"on", "off"})
        for (int C : {70, 33})
          for (bool in_place : {false, true}) {
            SCOPED_TRACE("M=" + std::to_string(M) + " C=" + std::to_string(C) + " rows " + rows + ", pairs " + pairs +
                         (in_place ? ", in place" : ""));
            Rng rng(M + C);
            const auto [z, dy, gamma, beta] = batchnorm_inputs(rng, M, C, 1.0f);
            testing::ScopedEnv env;
            env.set("POINTNET_BATCHNORM_ROWS", rows);
            env.set("POINTNET_BATCHNORM_DX_PAIRS", pairs);
            CudaBackend gpu(Precision::FP32);
            Dev gz(gpu, z), gdy(gpu, dy), gg(gpu, gamma), gb(gpu, beta), mean(gpu, C), invstd(gpu, C),
                rm(gpu, std::vector<float>(C, 0.0f)), rv(gpu, std::vector<float>(C, 1.0f)), y(gpu, z.size()),
                dx_apart(gpu, z.size()), dg(gpu, C), dbeta(gpu, C), sum(gpu, C), db(gpu, C);
            gpu.batchnorm_relu_forward_train(y, mean, invstd, rm, rv, gz, gg, gb, M, C, 1e-5, 0.1);
            float* dx = in_place ? gdy.get() : dx_apart.get();
            gpu.batchnorm_relu_backward(dx, dg, dbeta, gdy, gz, y, gg, gb, mean, invstd, M, C, nullptr, sum);
            gpu.linear_backward(nullptr, nullptr, db, dx, nullptr, nullptr, M, 1, C);
            const std::vector<float> from_batchnorm = sum.host(), from_linear = db.host();
            EXPECT_EQ(std::memcmp(from_batchnorm.data(), from_linear.data(), C * sizeof(float)), 0);
            EXPECT_GT(rel_error(from_linear, std::vector<float>(C, 0.0f)), 0.0) << "all zero";
          }
}

// BatchNorm over the per-cloud layers' few rows in one launch each way
// (POINTNET_BATCHNORM_ROWS=fused, up to 256 rows; the default): the same
// operations in the same order as the chunked path's three launches, so the
// same bits, in place too. M = 256 is the largest one-chunk batch, 2 the
// smallest training allows, 257 takes the chunked path either way.
TEST(CudaPrecisionModes, BatchNormFewRowsGiveTheSameBits) {
  PN_REQUIRE_CUDA();
  for (BatchNormVariant variant : {kFp32Throughout, kBf16FloatInputs, kBf16NarrowInputs})
    for (int M : {32, 2, 256, 257})
      for (int C : {512, 70, 33})
        for (bool in_place : {false, true}) {
          if (in_place && variant != kFp32Throughout) continue;
          SCOPED_TRACE(std::to_string(variant) + " M=" + std::to_string(M) + " C=" + std::to_string(C) +
                       (in_place ? " in place" : ""));
          expect_same_bits(batchnorm_relu_bits(variant, M, C, in_place, "POINTNET_BATCHNORM_ROWS", "fused"),
                           batchnorm_relu_bits(variant, M, C, in_place, "POINTNET_BATCHNORM_ROWS", "chunked"));
        }
}

// The conv layers' input gradients in 2 bytes (Backend::narrow_gradients,
// POINTNET_NARROW_GRADIENTS=on): linear_backward writes dx rounded once to
// the mode's type (every value one of the type's, within its rounding of the
// fp32 dx), takes dw from x's copy before dx overwrites that copy, and the
// BatchNorm+ReLU backward reads a 2-byte dy as its values given in fp32: the
// same bits, in place too.
TEST(CudaPrecisionModes, NarrowGradientsAreReadAsTheirValues) {
  PN_REQUIRE_CUDA();
  Rng rng(23);
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    SCOPED_TRACE(precision_name(p));
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    env.set("POINTNET_NARROW_Z", "on");  // narrow_copy makes x's copy as a 2-byte linear output
    env.set("POINTNET_NARROW_GRADIENTS", "on");
    CudaBackend gpu(p);
    ASSERT_TRUE(gpu.narrow_gradients());
    const int M = 301, Cin = 64, Cout = 96;
    std::vector<float> x(size_t(M) * Cin), w(size_t(Cout) * Cin), dy(size_t(M) * Cout), z(x.size()), gamma(Cin),
        beta(Cin), eye(size_t(Cin) * Cin, 0.0f);
    for (float& v : x) v = rng.uniform(0.0f, 2.0f);
    for (float& v : w) v = 0.2f * rng.normal();
    for (float& v : dy) v = rng.normal();
    for (float& v : z) v = rng.normal();
    for (float& v : gamma) v = 1.0f + 0.3f * rng.normal();
    for (float& v : beta) v = 0.3f * rng.normal();
    for (int c = 0; c < Cin; ++c) eye[size_t(c) * Cin + c] = 1.0f;
    Dev gx(gpu, x), gw(gpu, w), gdy(gpu, dy), eyes(gpu, eye), dx(gpu, x.size()), dw_a(gpu, w.size()),
        dw_b(gpu, w.size()), values(gpu, x.size());
    const std::unique_ptr<Dev> copy = narrow_copy(gpu, gx, M, Cin);
    // (M, Cin) 2-byte values read back exactly, through the identity.
    const auto read = [&](const Dev& narrow) {
      gpu.linear_forward(values, gx, eyes, nullptr, M, Cin, Cin, narrow.get());
      return values.host();
    };
    gpu.linear_backward(dx, dw_a, nullptr, gdy, nullptr, gw, M, Cin, Cout, nullptr, copy->get());
    gpu.linear_backward(nullptr, dw_b, nullptr, gdy, nullptr, gw, M, Cin, Cout, nullptr, copy->get(), copy->get());
    EXPECT_CLOSE(dw_b.host(), dw_a.host(), kExact);  // x's copy read before dx replaced it
    const std::vector<float> wide = dx.host(), narrow = read(*copy);
    const double u = std::ldexp(1.0, p == Precision::BF16 ? -8 : -11);
    EXPECT_LE(rel_error(narrow, wide), 1.01 * u);
    EXPECT_GT(rel_error(narrow, wide), 0.0) << "dx looks unrounded";
    size_t off_grid = 0;  // values the 2-byte type cannot hold
    for (float v : narrow) off_grid += (p == Precision::BF16 ? bf16_value(v) : half_to_float(float_to_half(v))) != v;
    EXPECT_EQ(off_grid, 0u);
    // BatchNorm+ReLU backward: dy from the 2-byte gradient (in place) or from its values in fp32.
    Dev gz(gpu, z), gg(gpu, gamma), gb(gpu, beta), mean(gpu, Cin), invstd(gpu, Cin), rm(gpu, Cin), rv(gpu, Cin),
        y(gpu, x.size()), dy_values(gpu, narrow), dg_a(gpu, Cin), db_a(gpu, Cin), sum_a(gpu, Cin), dg_b(gpu, Cin),
        db_b(gpu, Cin), sum_b(gpu, Cin), copy_a(gpu, Backend<float>::narrow_count(x.size()));
    gpu.batchnorm_relu_forward_train(y, mean, invstd, rm, rv, gz, gg, gb, M, Cin, 1e-5, 0.1);
    gpu.batchnorm_relu_backward(nullptr, dg_a, db_a, dy_values, gz, nullptr, gg, gb, mean, invstd, M, Cin, copy_a,
                                sum_a);
    gpu.batchnorm_relu_backward(nullptr, dg_b, db_b, nullptr, gz, nullptr, gg, gb, mean, invstd, M, Cin, copy->get(),
                                sum_b, nullptr, copy->get());
    EXPECT_CLOSE(dg_b.host(), dg_a.host(), kExact);
    EXPECT_CLOSE(db_b.host(), db_a.host(), kExact);
    EXPECT_CLOSE(sum_b.host(), sum_a.host(), kExact);
    EXPECT_CLOSE(read(*copy), read(copy_a), kExact);
  }
  // On by default in the 2-byte modes, off where asked, and refused where not
  // offered (off, or fp32).
  {
    testing::ScopedEnv env;
    env.set("POINTNET_NARROW_GRADIENTS", "");
    EXPECT_TRUE(CudaBackend(Precision::BF16).narrow_gradients());
    EXPECT_TRUE(CudaBackend(Precision::FP16).narrow_gradients());
    env.set("POINTNET_NARROW_GRADIENTS", "off");
    CudaBackend bf16(Precision::BF16), fp32(Precision::FP32);
    EXPECT_FALSE(bf16.narrow_gradients());
    for (CudaBackend* gpu : {&bf16, &fp32}) {
      Dev a(*gpu, 16), b(*gpu, 16);
      EXPECT_THROW(gpu->linear_backward(nullptr, nullptr, nullptr, a, a, a, 4, 4, 4, nullptr, nullptr, b), Error);
    }
  }
}

// The wide layer's forward in fp16/bf16 on exact inputs (integers and halves,
// exact in both half types, every z exact in fp32) against the CPU's: the
// same first point of each tie, the same values, and z's variance from x's
// covariance, w^T S w (S's sums exact here), within fp32.
void expect_exact_extremes(Precision p, const WideInputs& in, const WideForward& ref) {
  CudaBackend be(p);
  const WideForward got = gpu_wide_forward(be, in, true);
  EXPECT_EQ(got.row, ref.row);
  EXPECT_CLOSE(got.selected, ref.selected, kExact);
  EXPECT_CLOSE(got.mean, ref.mean, kElementwise);
  EXPECT_CLOSE(got.invstd, ref.invstd, kFp32);
  EXPECT_CLOSE(got.y, ref.y, 2e-3);  // as ExactTiesKeepTheFirstPoint
}

// The tensor-core extremes (fp16/bf16) on exact inputs: integers and halves are
// exact in both half types and every z is exact in fp32, so ties are exact
// and the first point of each must be the CPU's (torch.max), within a segment
// (the 8 threads of a column), across segments (N = 600, 700, 9001) and in a
// partial last m-tile. C = 33, 70, 150: a block's channels past C; K = 24: a
// second k-step half of zeros.
TEST_F(CudaWideMax, TensorCoreExtremesKeepTheFirstPoint) {
  testing::ScopedEnv extremes;
  extremes.set("POINTNET_WIDE_EXTREMES", "mma");
  for (const WideShape& s : {WideShape{3, 9001, 16, 70}, WideShape{2, 3, 8, 40}, WideShape{3, 700, 16, 33},
                             WideShape{2, 600, 24, 150}}) {
    const WideInputs in = wide_inputs(s, rng, true);
    for (const char* tiles : {"2", "4"})
    for (Precision p : {Precision::BF16, Precision::FP16}) {
      extremes.set("POINTNET_WIDE_MMA_TILES", tiles);
      SCOPED_TRACE(std::string(precision_name(p)) + " tiles " + tiles + " " + wide_name(s, true));
      expect_exact_extremes(p, in, cpu_wide_forward(in, true));
    }
  }
}

// The warpgroup (wgmma) extremes, POINTNET_WIDE_EXTREMES=wgmma (K = 128), in
// the wide layer on exact inputs as TensorCoreExtremesKeepTheFirstPoint: the
// first point of each tie within a thread's rows, across warps and tiles; a
// cloud shorter than a tile (N = 3) and a partial last tile (N = 700, 2500:
// the zero-filled rows never count); channels past C in a block (C = 40,
// 300); blocks with two clouds (B = 40, 36 at C = 1024: 33 blocks per channel
// group on an H100; N = 300, five tiles each); both signs of gamma (the min
// through negated weights). Both variants (the weights in shared memory or in
// registers). PicksTheFirstExtremeOfEachCloud shows the kernels themselves ran.
TEST_F(CudaWideMax, WarpgroupExtremesKeepTheFirstPoint) {
  if (!cuda::warpgroup_extremes_available()) GTEST_SKIP() << "wgmma needs compute capability 9.0";
  testing::ScopedEnv extremes;
  for (const WideShape& s : {WideShape{3, 700, 128, 300}, WideShape{2, 3, 128, 40}, WideShape{2, 2500, 128, 1024},
                             WideShape{40, 100, 128, 1024}, WideShape{36, 300, 128, 1024}}) {
    const WideInputs in = wide_inputs(s, rng, true);
    const WideForward ref = cpu_wide_forward(in, true);
    for (const char* path : {"wgmma", "wgmma-ra"})
    for (Precision p : {Precision::BF16, Precision::FP16}) {
      extremes.set("POINTNET_WIDE_EXTREMES", path);
      SCOPED_TRACE(std::string(path) + " " + precision_name(p) + " " + wide_name(s, true));
      expect_exact_extremes(p, in, ref);
    }
  }
}

// cuda::warpgroup_extremes itself (the model's tests above fall back to the
// mma.sync kernel where it declines, so they alone cannot show it ran): it
// takes the work, and every cloud's picked extreme and first point equal a
// brute-force search over exact z (small integers: every product and sum is
// exact in fp32), the other side NaN and -1. Heavy ties (x, w in {0, 1}) and
// spread values; N below, at and past a tile (1, 3, 63, 64, 65, 129, 700);
// C past a block's 256 channels (257, 300, 1100) or below (1, 40); several
// clouds per block (B = 20 at C = 2048: 8 channel groups, 16 blocks each on
// an H100); gamma negative, zero, NaN (min where !(gamma >= 0)).
TEST(CudaWarpgroupExtremes, PicksTheFirstExtremeOfEachCloud) {
  if (!cuda_device_available(nullptr)) GTEST_SKIP() << "no CUDA device";
  if (!cuda::warpgroup_extremes_available()) GTEST_SKIP() << "wgmma needs compute capability 9.0";
  struct Case { int B, N, C; };
  const int K = 128;
  std::mt19937 g(7);
  for (const Case& cs : {Case{1, 1, 1}, Case{2, 3, 40}, Case{3, 63, 257}, Case{2, 64, 256}, Case{2, 65, 300},
                         Case{3, 700, 300}, Case{7, 129, 1100}, Case{20, 300, 2048}})
    for (bool ties : {true, false})
      for (Precision p : {Precision::FP16, Precision::BF16})
      for (bool registers_a : {false, true}) {
        SCOPED_TRACE(std::string(precision_name(p)) + " B " + std::to_string(cs.B) + " N " + std::to_string(cs.N) +
                     " C " + std::to_string(cs.C) + (ties ? " ties" : "") + (registers_a ? " registers A" : ""));
        const size_t M = size_t(cs.B) * cs.N, bc = size_t(cs.B) * cs.C;
        std::vector<float> x(M * K), w(size_t(cs.C) * K), gamma(cs.C);
        for (float& v : x) v = ties ? float(g() % 2) : float(g() % 4);
        for (float& v : w) v = ties ? float(g() % 2) : 0.5f * float(g() % 5) - 1.0f;
        for (float& v : gamma) v = g() % 3 == 0 ? -1.0f : g() % 7 == 0 ? NAN : g() % 5 == 0 ? 0.0f : 1.0f;
        std::vector<uint16_t> xh(x.size()), wh(w.size());
        const auto bits = [&](float f) {
          uint16_t b;
          if (p == Precision::FP16) {
            const __half h = __float2half(f);
            std::memcpy(&b, &h, 2);
          } else {
            const __nv_bfloat16 h = __float2bfloat16(f);
            std::memcpy(&b, &h, 2);
          }
          return b;
        };
        for (size_t i = 0; i < x.size(); ++i) xh[i] = bits(x[i]);
        for (size_t i = 0; i < w.size(); ++i) wh[i] = bits(w[i]);
        void *dx = nullptr, *dw = nullptr;
        float* dgamma = nullptr;
        cuda::Extreme seg;
        ASSERT_EQ(cudaMalloc(&dx, xh.size() * 2), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&dw, wh.size() * 2), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&dgamma, cs.C * sizeof(float)), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&seg.max, bc * 4), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&seg.min, bc * 4), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&seg.argmax, bc * 4), cudaSuccess);
        ASSERT_EQ(cudaMalloc(&seg.argmin, bc * 4), cudaSuccess);
        for (void* out : {static_cast<void*>(seg.max), static_cast<void*>(seg.min), static_cast<void*>(seg.argmax),
                          static_cast<void*>(seg.argmin)})
          EXPECT_EQ(cudaMemset(out, 0x7f, bc * 4), cudaSuccess);  // neither NaN nor -1: every value must be written
        EXPECT_EQ(cudaMemcpy(dx, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(dw, wh.data(), wh.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(dgamma, gamma.data(), cs.C * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
        const bool taken = cuda::warpgroup_extremes(nullptr, p, seg, dx, dw, dgamma, cs.B, cs.N, K, cs.C, registers_a);
        EXPECT_TRUE(taken);
        EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
        std::vector<float> hi(bc), lo(bc);
        std::vector<int32_t> hi_at(bc), lo_at(bc);
        EXPECT_EQ(cudaMemcpy(hi.data(), seg.max, bc * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(lo.data(), seg.min, bc * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(hi_at.data(), seg.argmax, bc * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        EXPECT_EQ(cudaMemcpy(lo_at.data(), seg.argmin, bc * 4, cudaMemcpyDeviceToHost), cudaSuccess);
        for (void* d : {dx, dw, static_cast<void*>(dgamma), static_cast<void*>(seg.max), static_cast<void*>(seg.min),
                        static_cast<void*>(seg.argmax), static_cast<void*>(seg.argmin)})
          cudaFree(d);
        if (!taken) continue;
        int wrong = 0;
        std::vector<float> z(size_t(cs.N) * cs.C);
        for (int b = 0; b < cs.B; ++b) {
          for (int n = 0; n < cs.N; ++n)
            for (int c = 0; c < cs.C; ++c) {
              float t = 0.0f;  // exact: small integers
              for (int k = 0; k < K; ++k) t += x[(size_t(b) * cs.N + n) * K + k] * w[size_t(c) * K + k];
              z[size_t(n) * cs.C + c] = t;
            }
          for (int c = 0; c < cs.C; ++c) {
            const bool up = gamma[c] >= 0.0f;
            int at = 0;
            for (int n = 1; n < cs.N; ++n) {
              const float v = z[size_t(n) * cs.C + c], best = z[size_t(at) * cs.C + c];
              if (up ? v > best : v < best) at = n;
            }
            const size_t i = size_t(b) * cs.C + c;
            const float want = z[size_t(at) * cs.C + c];
            const bool good = up ? hi[i] == want && hi_at[i] == at && std::isnan(lo[i]) && lo_at[i] == -1
                                 : lo[i] == want && lo_at[i] == at && std::isnan(hi[i]) && hi_at[i] == -1;
            if (!good && ++wrong <= 3)
              ADD_FAILURE() << "cloud " << b << " channel " << c << (up ? " max " : " min ") << want << " at " << at
                            << "; got max " << hi[i] << " at " << hi_at[i] << ", min " << lo[i] << " at "
                            << lo_at[i];
          }
        }
        EXPECT_EQ(wrong, 0);
      }
}

// The wide layer's training forward (ReLU) in precision p with its extremes
// taken by `path` (POINTNET_WIDE_EXTREMES).
WideForward wide_forward_by(Precision p, const char* path, const WideInputs& in) {
  testing::ScopedEnv env;
  env.set("POINTNET_WIDE_EXTREMES", path);
  CudaBackend be(p);
  return gpu_wide_forward(be, in, true);
}

// Both warpgroup extremes kernels (shared-memory operands, and the weights in
// registers: the default) on the model's shape with real-valued inputs pick
// the same points as the mma.sync kernel wherever the two z's agree to fp32
// (their products are exact and both accumulate in fp32; only the order of
// the sums inside the tensor cores may differ), and y within fp32 of it.
TEST_F(CudaWideMax, WarpgroupExtremesMatchTheMmaKernel) {
  if (!cuda::warpgroup_extremes_available()) GTEST_SKIP() << "wgmma needs compute capability 9.0";
  const WideShape s{4, 2500, 128, 1024};
  const WideInputs in = wide_inputs(s, rng);
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    const WideForward mma = wide_forward_by(p, "mma", in);
    for (const char* path : {"wgmma", "wgmma-ra"}) {
      SCOPED_TRACE(std::string(precision_name(p)) + " " + path);
      const WideForward wg = wide_forward_by(p, path, in);
      size_t same = 0;
      for (size_t i = 0; i < mma.row.size(); ++i) same += mma.row[i] == wg.row[i];
      EXPECT_GE(same, mma.row.size() * 999 / 1000) << "of " << mma.row.size() << " picks";
      EXPECT_CLOSE(wg.selected, mma.selected, kFp32);
      EXPECT_CLOSE(wg.invstd, mma.invstd, kFp32);
      EXPECT_CLOSE(wg.y, mma.y, kFp32);
    }
  }
}

// POINTNET_WIDE_EXTREMES really switches the path in fp16/bf16: the tensor-core
// path takes z's variance from x's covariance (w^T S w) and the GEMM path
// sums z's centred squares in double, so the variances differ in their last
// bits; were the tensor-core path never taken, they would be identical. S's
// raw sums over the M rows are the tensor cores' fp32 sums, which do not round
// to nearest as a host emulation does (~4e-7 there): measured 2.3e-5 for
// fp16 on an H100 (2026-12-07), amplified by the channels' E[z^2] / var(z)
// (up to ~30 here), so the bound is 1e-4, still 5x below fp16's own rounding
// of each z (2^-11).
TEST_F(CudaWideMax, TensorCorePathIsTaken) {
  const WideShape s{4, 2500, 128, 1024};
  const WideInputs in = wide_inputs(s, rng);
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    SCOPED_TRACE(precision_name(p));
    const WideForward mma = wide_forward_by(p, "mma", in), gemm = wide_forward_by(p, "gemm", in);
    EXPECT_FALSE(mma.invstd == gemm.invstd) << "the two paths gave the same bits: is the tensor-core path taken?";
    EXPECT_CLOSE(mma.invstd, gemm.invstd, 1e-4);
  }
}

// The tensor-core extremes with 16 or 32 channels per warp
// (POINTNET_WIDE_MMA_TILES): every z is the same k-ordered MMA chain and every
// column meets its rows in the same threads, so the same bits, including a
// block's channels past C (257) and a partial last m-tile (N = 300).
TEST_F(CudaWideMax, TensorCoreExtremesSameBitsForEitherWarpShape) {
  for (const WideShape& s : {WideShape{4, 2500, 128, 1024}, WideShape{5, 300, 64, 257}}) {
    const WideInputs in = wide_inputs(s, rng);
    CudaBackend be(Precision::BF16);
    testing::ScopedEnv env;
    env.set("POINTNET_WIDE_EXTREMES", "mma");
    env.set("POINTNET_WIDE_MMA_TILES", "2");
    const WideForward two = gpu_wide_forward(be, in, true);
    env.set("POINTNET_WIDE_MMA_TILES", "4");
    const WideForward four = gpu_wide_forward(be, in, true);
    SCOPED_TRACE(wide_name(s, true));
    EXPECT_EQ(four.row, two.row);
    EXPECT_CLOSE(four.selected, two.selected, kExact);
    EXPECT_CLOSE(four.invstd, two.invstd, kExact);
    EXPECT_CLOSE(four.y, two.y, kExact);
  }
}

// Three forward + backward + eval rounds on one backend: the same bits each
// time and no device allocation after the first. fp32 (the GEMM path) and bf16
// (the tensor-core extremes and the TF32 products).
TEST_F(CudaWideMax, BitwiseReproducibleWithoutAllocations) {
  const WideShape s{4, 2500, 128, 1024};
  const WideInputs in = wide_inputs(s, rng);
  const size_t bc = size_t(s.B) * s.C;
  for (Precision p : {Precision::FP32, Precision::BF16}) {
    SCOPED_TRACE(precision_name(p));
    CudaBackend be(p);
    Dev x(be, in.x), w(be, in.w), bias(be, in.bias), gamma(be, in.gamma), beta(be, in.beta), rm(be, in.rm),
        rv(be, in.rv), dy(be, in.dy), y(be, bc), y_eval(be, bc), input_mean(be, s.K), input_cov(be, size_t(s.K) * s.K),
        mean(be, s.C), invstd(be, s.C), selected(be, bc), dx(be, in.x.size()), dw(be, in.w.size()), dbias(be, s.C),
        dgamma(be, s.C), dbeta(be, s.C);
    DevIndex row(be, bc);
    const WideMaxSaved<float> saved{input_mean, input_cov, mean, invstd, selected, row};
    std::vector<float> first;
    std::vector<int32_t> first_rows;
    size_t allocations = 0;
    for (int run = 0; run < 3; ++run) {
      be.upload(rm, in.rm.data(), s.C);
      be.upload(rv, in.rv.data(), s.C);
      be.wide_max_forward_train(y, saved, rm, rv, x, w, bias, gamma, beta, s.B, s.N, s.K, s.C, true, 1e-5, 0.1);
      be.wide_max_backward(dx, dw, dbias, dgamma, dbeta, dy, y, saved, x, w, gamma, s.B, s.N, s.K, s.C, true);
      be.wide_max_forward_eval(y_eval, x, w, bias, gamma, beta, rm, rv, s.B, s.N, s.K, s.C, true, 1e-5);
      be.synchronize();
      if (run == 0) allocations = be.device_allocations();
      else EXPECT_EQ(be.device_allocations(), allocations) << "run " << run << " allocated device memory";
      std::vector<float> all;
      for (const Dev* d : {&y, &y_eval, &input_mean, &input_cov, &mean, &invstd, &selected, &rm, &rv, &dx, &dw,
                           &dbias, &dgamma, &dbeta}) {
        const std::vector<float> h = d->host();
        all.insert(all.end(), h.begin(), h.end());
      }
      if (run == 0) {
        first = all;
        first_rows = row.host();
      } else {
        EXPECT_TRUE(all == first) << "run " << run << " differs from the first";
        EXPECT_EQ(row.host(), first_rows);
      }
    }
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

// Forwards every op to another backend. Not the fused BatchNorm + ReLU ops:
// their defaults compose the forwarded separate ops, so KinkAligner sees (and
// may edit) y between them; the inner backend's fused backward would read z,
// not the edited y. The fused CUDA paths are checked bit for bit against the
// separate ones in CudaOps.BatchNormRelu*.
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
  void multiply(float* y, const float* x, const float* m, size_t n) override { in_.multiply(y, x, m, n); }
  void linear_forward(float* y, const float* x, const float* w, const float* b, int M, int Ci, int Co,
                      const void* xn = nullptr, void* yn = nullptr) override {
    in_.linear_forward(y, x, w, b, M, Ci, Co, xn, yn);
  }
  void linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, int M,
                       int Ci, int Co, const void* dyn = nullptr, const void* xn = nullptr,
                       void* dxn = nullptr, bool accumulate = false) override {
    in_.linear_backward(dx, dw, db, dy, x, w, M, Ci, Co, dyn, xn, dxn, accumulate);
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
  void transform_forward(float* y, const float* x, const float* t, int B, int N, int K,
                         const void* x_narrow = nullptr, void* y_narrow = nullptr) override {
    in_.transform_forward(y, x, t, B, N, K, x_narrow, y_narrow);
  }
  void transform_backward(float* dx, float* dt, const float* dy, const float* x, const float* t, int B, int N, int K,
                          const void* x_narrow = nullptr) override {
    in_.transform_backward(dx, dt, dy, x, t, B, N, K, x_narrow);
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
  void concat_linear_forward(float* y, const float* g, const float* p, const float* w, const float* b, int B, int N,
                             int G, int P, int Co, const void* pn = nullptr, void* yn = nullptr) override {
    in_.concat_linear_forward(y, g, p, w, b, B, N, G, P, Co, pn, yn);
  }
  void concat_linear_backward(float* dg, float* dp, float* dw, float* db, const float* dy, const float* g,
                              const float* p, const float* w, int B, int N, int G, int P, int Co,
                              const void* pn = nullptr, const void* dyn = nullptr) override {
    in_.concat_linear_backward(dg, dp, dw, db, dy, g, p, w, B, N, G, P, Co, pn, dyn);
  }
  void wide_max_forward_train(float* y, const WideMaxSaved<float>& s, float* rm, float* rv, const float* x,
                              const float* w, const float* b, const float* g, const float* be, int B, int N, int K,
                              int C, bool relu, double eps, double mom, const void* xn = nullptr) override {
    in_.wide_max_forward_train(y, s, rm, rv, x, w, b, g, be, B, N, K, C, relu, eps, mom, xn);
  }
  void wide_max_forward_eval(float* y, const float* x, const float* w, const float* b, const float* g,
                             const float* be, const float* rm, const float* rv, int B, int N, int K, int C, bool relu,
                             double eps) override {
    in_.wide_max_forward_eval(y, x, w, b, g, be, rm, rv, B, N, K, C, relu, eps);
  }
  void wide_max_backward(float* dx, float* dw, float* db, float* dg, float* dbe, const float* dy, const float* y,
                         const WideMaxSaved<float>& s, const float* x, const float* w, const float* g, int B, int N,
                         int K, int C, bool relu, const void* xn = nullptr, void* dxn = nullptr) override {
    in_.wide_max_backward(dx, dw, db, dg, dbe, dy, y, s, x, w, g, B, N, K, C, relu, xn, dxn);
  }
  bool all_finite(const float* x, size_t n) override { return in_.all_finite(x, n); }
  void adam_step(float* p, const float* g, float* m, float* v, size_t n, double lr, double b1, double b2,
                 double eps, int64_t step, double grad_scale, double weight_decay) override {
    in_.adam_step(p, g, m, v, n, lr, b1, b2, eps, step, grad_scale, weight_decay);
  }

 protected:
  Backend<float>& in_;
};

// Records, per call, each ReLU's input signs and outputs, each max-pool's
// argmax, and each fused wide layer's picks and outputs.
class KinkRecorder final : public Forwarding {
 public:
  using Forwarding::Forwarding;
  std::vector<std::vector<uint8_t>> relu_positive;
  std::vector<std::vector<float>> relu_output;
  std::vector<std::vector<int32_t>> argmax;
  std::vector<std::vector<int32_t>> wide_row;
  std::vector<std::vector<float>> wide_y;
  void clear() {
    relu_positive.clear();
    relu_output.clear();
    argmax.clear();
    wide_row.clear();
    wide_y.clear();
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
  void wide_max_forward_train(float* y, const WideMaxSaved<float>& s, float* rm, float* rv, const float* x,
                              const float* w, const float* b, const float* g, const float* be, int B, int N, int K,
                              int C, bool relu, double eps, double mom, const void* xn = nullptr) override {
    in_.wide_max_forward_train(y, s, rm, rv, x, w, b, g, be, B, N, K, C, relu, eps, mom, xn);
    std::vector<int32_t> rows(size_t(B) * C);
    in_.download_index(rows.data(), s.selected_row, rows.size());
    wide_row.push_back(std::move(rows));
    std::vector<float> out(size_t(B) * C);
    in_.download(out.data(), y, out.size());
    wide_y.push_back(std::move(out));
  }
};

// Takes the recorded run's side of every kink crossed differently: a ReLU
// output gets the recorded value (within rounding of 0), a max-pool the
// recorded argmax and this run's own value there (within rounding of its max).
// The fused wide layer has both kinks inside: its pick gets the recorded point
// and, since that layer keeps no z, z there recomputed on the host in double
// from this run's x, w and bias (checked to be an extreme within the GEMMs'
// rounding: a far-off pick is a bug, not a kink), with y recomputed from it
// and this run's saved mean and invstd; then its ReLU, as relu_forward's. The
// wide layer's backward reads only y and the saved tensors, so it follows. (No
// test-only hook in the backend: the alignment stays in this file.)
class KinkAligner final : public Forwarding {
 public:
  KinkAligner(Backend<float>& inner, const KinkRecorder& reference) : Forwarding(inner), ref_(reference) {}
  size_t steered = 0;
  void restart() { relu_call_ = max_call_ = wide_call_ = 0; }
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
  void wide_max_forward_train(float* y, const WideMaxSaved<float>& s, float* rm, float* rv, const float* x,
                              const float* w, const float* b, const float* g, const float* be, int B, int N, int K,
                              int C, bool relu, double eps, double mom, const void* xn = nullptr) override {
    in_.wide_max_forward_train(y, s, rm, rv, x, w, b, g, be, B, N, K, C, relu, eps, mom, xn);
    ASSERT_LT(wide_call_, ref_.wide_row.size()) << "the two models call wide_max_forward_train differently";
    const std::vector<int32_t>& ref_row = ref_.wide_row[wide_call_];
    const std::vector<float>& ref_y = ref_.wide_y[wide_call_];
    ++wide_call_;
    const size_t bc = size_t(B) * C;
    ASSERT_EQ(ref_row.size(), bc);
    std::vector<int32_t> row(bc);
    std::vector<float> hy(bc);
    in_.download_index(row.data(), s.selected_row, bc);
    in_.download(hy.data(), y, bc);
    bool changed = false;
    if (row != ref_row) {
      std::vector<float> hx(size_t(B) * N * K), hw(size_t(C) * K), hb(C), hg(C), hbe(C), hmean(C), hinv(C),
          hsel(bc);
      in_.download(hx.data(), x, hx.size());
      in_.download(hw.data(), w, hw.size());
      in_.download(hb.data(), b, C);
      in_.download(hg.data(), g, C);
      in_.download(hbe.data(), be, C);
      in_.download(hmean.data(), s.mean, C);
      in_.download(hinv.data(), s.invstd, C);
      in_.download(hsel.data(), s.selected, bc);
      for (size_t i = 0; i < bc; ++i) {
        if (row[i] == ref_row[i]) continue;
        const size_t cloud = i / C, c = i % C;
        ASSERT_TRUE(ref_row[i] >= 0 && ref_row[i] < N) << "recorded pick " << ref_row[i];
        ASSERT_TRUE(row[i] >= 0 && row[i] < N) << "this run's pick " << row[i];
        const float* picked = hx.data() + (cloud * N + ref_row[i]) * K;
        const float* own = hx.data() + (cloud * N + row[i]) * K;
        const float* wc = hw.data() + c * K;
        double z = hb[c], magnitude = std::fabs(static_cast<double>(hb[c]));
        for (int k = 0; k < K; ++k) {
          z += static_cast<double>(picked[k]) * wc[k];
          magnitude += std::fabs(static_cast<double>(picked[k]) * wc[k]) + std::fabs(static_cast<double>(own[k]) * wc[k]);
        }
        // Each side's z is within K 2^-24 sum |x w| of exact (fp32 sums of K
        // terms, worst case), so two extremes lie within three such errors.
        EXPECT_LE(std::fabs(z - hsel[i]), 3.0 * K * std::ldexp(1.0, -24) * magnitude)
            << "wide_max pick (" << cloud << ", " << c << "): the recorded point " << ref_row[i]
            << " is not an extreme within rounding here (this run picked " << row[i] << ")";
        row[i] = ref_row[i];
        hsel[i] = static_cast<float>(z);
        const float v = static_cast<float>((static_cast<double>(hsel[i]) - hmean[c]) * hinv[c] * hg[c] + hbe[c]);
        hy[i] = relu && !(v > 0.0f) ? 0.0f : v;
        ++steered;
      }
      in_.upload_index(s.selected_row, row.data(), bc);
      in_.upload(s.selected, hsel.data(), bc);
      changed = true;
    }
    if (relu) {
      for (size_t i = 0; i < bc; ++i) {
        if ((hy[i] > 0.0f) == (ref_y[i] > 0.0f)) continue;
        hy[i] = ref_y[i];
        ++steered;
        changed = true;
      }
    }
    if (changed) in_.upload(y, hy.data(), bc);
  }

 private:
  const KinkRecorder& ref_;
  size_t relu_call_ = 0, max_call_ = 0, wide_call_ = 0;
};

// The wide layer's alignment, on two CPU backends (no GPU needed): exact ties
// are planted at extremes, the recorded picks are moved to the ties' later
// copies (as another backend may break a near-tie), and one recorded output
// is put across the ReLU's kink; the aligned run must take exactly those, with
// the right values, and leave everything else bit for bit.
TEST(KinkAlignerWide, TakesTheRecordedPicksAndReluSides) {
  const int B = 2, N = 50, K = 6, C = 9;
  Rng rng(77);
  std::vector<float> x(size_t(B) * N * K), w(size_t(C) * K), bias(C), gamma(C), beta(C), rm(C, 0.0f), rv(C, 1.0f);
  for (float& v : x) v = rng.uniform(0.0f, 2.0f);
  for (float& v : w) v = rng.normal();
  for (int c = 0; c < C; ++c) {
    bias[c] = 0.1f * rng.normal();
    gamma[c] = (c % 3 == 0 ? -1.0f : 1.0f) * rng.uniform(0.5f, 1.5f);
    beta[c] = 0.5f * rng.normal();
  }
  beta[2] = -10.0f;  // far below gamma xhat: the ReLU cuts channel 2
  // Per cloud, the point holding channel 1's max (gamma > 0) is copied to
  // another point: an exact tie at an extreme, first copy `first`, later `second`.
  CpuBackend<float> host;
  std::vector<float> z(size_t(B) * N * C);
  host.linear_forward(z.data(), x.data(), w.data(), nullptr, B * N, K, C);
  std::vector<int> first(B), second(B);
  for (int b = 0; b < B; ++b) {
    int p = 0;
    for (int n = 1; n < N; ++n)
      if (z[(size_t(b) * N + n) * C + 1] > z[(size_t(b) * N + p) * C + 1]) p = n;
    const int q = p == N - 1 ? 0 : N - 1;
    std::copy_n(x.begin() + (size_t(b) * N + p) * K, K, x.begin() + (size_t(b) * N + q) * K);
    first[b] = std::min(p, q);
    second[b] = std::max(p, q);
  }

  CpuBackend<float> reference_backend, aligned_backend;
  KinkRecorder recorder(reference_backend);
  KinkAligner aligner(aligned_backend, recorder);
  auto run = [&](Backend<float>& be, std::vector<float>& y, std::vector<float>& selected, std::vector<int32_t>& row) {
    std::vector<float> xm(K), xc(size_t(K) * K), mean(C), invstd(C), rm1 = rm, rv1 = rv;
    y.assign(size_t(B) * C, 0.0f);
    selected.assign(y.size(), 0.0f);
    row.assign(y.size(), -1);
    const WideMaxSaved<float> saved{xm.data(), xc.data(), mean.data(), invstd.data(), selected.data(), row.data()};
    be.wide_max_forward_train(y.data(), saved, rm1.data(), rv1.data(), x.data(), w.data(), bias.data(), gamma.data(),
                              beta.data(), B, N, K, C, true, 1e-5, 0.1);
  };
  std::vector<float> y_ref, sel_ref, y, sel;
  std::vector<int32_t> row_ref, row;
  run(recorder, y_ref, sel_ref, row_ref);
  ASSERT_EQ(recorder.wide_row.size(), 1u);
  ASSERT_EQ(recorder.wide_row[0], row_ref);
  std::vector<int32_t>& recorded = recorder.wide_row[0];
  std::vector<uint8_t> moved(recorded.size(), 0);
  size_t moved_count = 0;
  for (int b = 0; b < B; ++b) {
    ASSERT_EQ(recorded[size_t(b) * C + 1], first[b]) << "the planted tie is not channel 1's first max";
    for (int c = 0; c < C; ++c) {
      const size_t i = size_t(b) * C + c;
      if (recorded[i] != first[b]) continue;
      recorded[i] = second[b];
      moved[i] = 1;
      ++moved_count;
    }
  }
  // One recorded output across the ReLU's kink (as a value within rounding of 0 may land).
  std::vector<float>& recorded_y = recorder.wide_y[0];
  size_t flip = 0;
  while (flip < recorded_y.size() && (recorded_y[flip] > 0.0f || moved[flip])) ++flip;
  ASSERT_LT(flip, recorded_y.size()) << "no output cut by the ReLU";
  recorded_y[flip] = 1e-7f;

  aligner.restart();
  run(aligner, y, sel, row);
  EXPECT_EQ(aligner.steered, moved_count + 1);
  EXPECT_EQ(row, recorded);
  for (size_t i = 0; i < y.size(); ++i) {
    if (moved[i]) {
      // z at the copy recomputed in double (one rounding) vs the CPU's float GEMM.
      EXPECT_NEAR(sel[i], sel_ref[i], 1e-5 * (std::fabs(sel_ref[i]) + 1.0)) << i;
      EXPECT_NEAR(y[i], y_ref[i], 1e-5 * (std::fabs(y_ref[i]) + 1.0)) << i;
    } else {
      EXPECT_EQ(sel[i], sel_ref[i]) << i;
      EXPECT_EQ(y[i], i == flip ? 1e-7f : y_ref[i]) << i;
    }
  }
}

struct ModelCase {
  ModelTask task;
  bool feature_transform;
  const char* name;
  int channels = 3;  // 6: xyz + normals
};

void PrintTo(const ModelCase& c, std::ostream* os) { *os << c.name; }

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
  config.input_channels = c.channels;
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
  std::vector<float> points(size_t(B) * N * c.channels);
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
                                           ModelCase{ModelTask::Segmentation, true, "seg_feature_transform"},
                                           ModelCase{ModelTask::Classification, false, "cls_normals", 6}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return info.param.name; });

}  // namespace
}  // namespace pointnet

#endif  // POINTNET_HAS_CUDA
