// SyncBN on the GPU (CudaBackend::set_batchnorm_group), two ranks on one GPU:
// each rank is a thread with its own CudaBackend, and their collectives go
// through the host (StagedRank: wait for the stream, download, sum in the
// thread group, upload), which plays NCCL without a second GPU. As on the CPU
// (test_sync_batchnorm.cpp): two ranks with slices of a batch must give one
// rank's results on the whole batch, row for row, and the parameter gradients
// summed over the ranks must be the whole batch's. fp32 throughout; tolerances
// are fp32 sums in another order (kFp32, as test_cuda_backend.cpp).
//
// Skips cleanly where there is no GPU; compiled out in builds without the CUDA backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "cuda/cuda_backend.h"
#include "../cuda_test_support.h"
#include "dist/communicator.h"
#include "dist/thread_group.h"
#include "model/pointnet.h"

#ifdef POINTNET_HAS_CUDA
namespace pointnet {
namespace {

using Vec = std::vector<float>;

constexpr double kFp32 = 1e-5;

// A rank whose collectives run on the host: the backend's values go down,
// through the thread group, and back up.
class StagedRank final : public Communicator {
 public:
  StagedRank(CudaBackend& be, Communicator& host) : be_(be), host_(host) {}
  int rank() const override { return host_.rank(); }
  int size() const override { return host_.size(); }
  void all_reduce_sum(float* x, size_t count) override {
    Vec h(count);
    be_.download(h.data(), x, count);  // waits for the stream
    host_.all_reduce_sum(h.data(), count);
    be_.upload(x, h.data(), count);
  }
  void all_reduce_sum(double* x, size_t count) override {
    std::vector<double> h(count);
    be_.download(reinterpret_cast<float*>(h.data()), reinterpret_cast<const float*>(x), 2 * count);
    host_.all_reduce_sum(h.data(), count);
    be_.upload(reinterpret_cast<float*>(x), reinterpret_cast<const float*>(h.data()), 2 * count);
  }
  void broadcast(float* x, size_t count, int root) override {
    Vec h(count);
    be_.download(h.data(), x, count);
    host_.broadcast(h.data(), count, root);
    be_.upload(x, h.data(), count);
  }

 private:
  CudaBackend& be_;
  Communicator& host_;
};

Vec random(size_t n, Rng& rng, float lo = -1.0f, float hi = 1.0f) {
  Vec v(n);
  for (float& e : v) e = lo + (hi - lo) * rng.uniform();
  return v;
}

Vec slice(const Vec& v, size_t first, size_t count) {
  return Vec(v.begin() + static_cast<std::ptrdiff_t>(first), v.begin() + static_cast<std::ptrdiff_t>(first + count));
}

Vec concat(const Vec& a, const Vec& b) {
  Vec v(a);
  v.insert(v.end(), b.begin(), b.end());
  return v;
}

Vec add(const Vec& a, const Vec& b) {
  Vec v(a);
  for (size_t i = 0; i < v.size(); ++i) v[i] += b[i];
  return v;
}

// ||a - ref|| / ||ref||; infinity on a size mismatch or a non-finite value.
double rel_error(const Vec& a, const Vec& ref) {
  if (a.size() != ref.size()) return INFINITY;
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(ref[i])) return INFINITY;
    diff += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
    norm += double(ref[i]) * ref[i];
  }
  return norm > 0.0 ? std::sqrt(diff / norm) : std::sqrt(diff);
}

// fn(rank) on one thread per rank, each with its own backend, in the group
// (SyncBN) unless `sync` is false.
void on_ranks(ThreadGroup& group, const std::function<void(int, CudaBackend&)>& fn, bool sync = true) {
  std::vector<std::thread> threads;
  for (int r = 0; r < group.size(); ++r)
    threads.emplace_back([&, r] {
      CudaBackend be(Precision::FP32);
      StagedRank rank(be, group.rank(r));
      if (sync) be.set_batchnorm_group(&rank);
      fn(r, be);
    });
  for (std::thread& t : threads) t.join();
}

// A host vector in and out of backend memory.
struct Dev {
  CudaBackend& be;
  float* p;
  size_t n;
  Dev(CudaBackend& b, const Vec& host) : be(b), p(b.allocate(host.size())), n(host.size()) {
    b.upload(p, host.data(), n);
  }
  Dev(CudaBackend& b, size_t count) : Dev(b, Vec(count, NAN)) {}
  ~Dev() { be.release(p); }
  Vec host() const {
    Vec h(n);
    be.download(h.data(), p, n);
    return h;
  }
};

struct BatchNormResult {
  Vec y, mean, invstd, rm, rv, dx, dgamma, dbeta;
};

BatchNormResult batchnorm_step(CudaBackend& be, const Vec& x, const Vec& dy, const Vec& gamma, const Vec& beta,
                               const Vec& rm0, const Vec& rv0, int M, int C, bool relu) {
  Dev gx(be, x), gdy(be, dy), gg(be, gamma), gb(be, beta), rm(be, rm0), rv(be, rv0), y(be, x.size()), mean(be, C),
      invstd(be, C), dx(be, x.size()), dgamma(be, C), dbeta(be, C);
  if (relu) {
    be.batchnorm_relu_forward_train(y.p, mean.p, invstd.p, rm.p, rv.p, gx.p, gg.p, gb.p, M, C, 1e-5, 0.1);
    be.batchnorm_relu_backward(dx.p, dgamma.p, dbeta.p, gdy.p, gx.p, y.p, gg.p, gb.p, mean.p, invstd.p, M, C);
  } else {
    be.batchnorm_forward_train(y.p, mean.p, invstd.p, rm.p, rv.p, gx.p, gg.p, gb.p, M, C, 1e-5, 0.1);
    be.batchnorm_backward(dx.p, dgamma.p, dbeta.p, gdy.p, gx.p, gg.p, mean.p, invstd.p, M, C);
  }
  return {y.host(), mean.host(), invstd.host(), rm.host(), rv.host(), dx.host(), dgamma.host(), dbeta.host()};
}

// Rows split unevenly: several 256-row chunks each (C off the tile and the
// four-wide kernels), one chunk each (the per-cloud layers' shortcut, C a
// multiple of 4), and one row on a rank (allowed when the group has more).
struct SplitShape {
  int C, rows[2];
};

TEST(CudaSyncBatchNorm, TwoRanksEqualOneRankWithTheWholeBatch) {
  PN_REQUIRE_CUDA();
  for (const SplitShape& shape : {SplitShape{70, {1000, 1537}}, SplitShape{64, {100, 156}},
                                  SplitShape{512, {1, 1}}, SplitShape{8, {1, 2}}})
  for (bool relu : {false, true}) {
    const int C = shape.C, rows[2] = {shape.rows[0], shape.rows[1]}, M = rows[0] + rows[1];
    SCOPED_TRACE(std::string(relu ? "BatchNorm + ReLU" : "BatchNorm") + " C=" + std::to_string(C) + " rows " +
                 std::to_string(rows[0]) + "+" + std::to_string(rows[1]));
    Rng rng(relu ? 12 + C : 13 + C);
    const Vec x = random(size_t(M) * C, rng, 2.0f, 4.0f), dy = random(size_t(M) * C, rng),
              gamma = random(C, rng, 0.5f, 1.5f), beta = random(C, rng), rm0 = random(C, rng),
              rv0 = random(C, rng, 0.5f, 1.5f);
    CudaBackend one(Precision::FP32);
    const BatchNormResult whole = batchnorm_step(one, x, dy, gamma, beta, rm0, rv0, M, C, relu);
    ThreadGroup group(2);
    BatchNormResult part[2];
    on_ranks(group, [&](int r, CudaBackend& be) {
      const size_t first = r == 0 ? 0 : size_t(rows[0]) * C, count = size_t(rows[r]) * C;
      part[r] = batchnorm_step(be, slice(x, first, count), slice(dy, first, count), gamma, beta, rm0, rv0, rows[r],
                               C, relu);
    });
    EXPECT_LT(rel_error(concat(part[0].y, part[1].y), whole.y), kFp32);
    EXPECT_LT(rel_error(concat(part[0].dx, part[1].dx), whole.dx), kFp32);
    for (int r = 0; r < 2; ++r) {
      EXPECT_LT(rel_error(part[r].mean, whole.mean), kFp32) << "rank " << r;
      EXPECT_LT(rel_error(part[r].invstd, whole.invstd), kFp32) << "rank " << r;
      EXPECT_LT(rel_error(part[r].rm, whole.rm), kFp32) << "rank " << r;
      EXPECT_LT(rel_error(part[r].rv, whole.rv), kFp32) << "rank " << r;
    }
    EXPECT_LT(rel_error(add(part[0].dgamma, part[1].dgamma), whole.dgamma), kFp32);
    EXPECT_LT(rel_error(add(part[0].dbeta, part[1].dbeta), whole.dbeta), kFp32);
  }
}

struct WideResult {
  Vec y, input_mean, input_cov, mean, invstd, rm, rv, dx, dw, dgamma, dbeta;
};

WideResult wide_step(CudaBackend& be, const Vec& x, const Vec& dy, const Vec& w, const Vec& bias, const Vec& gamma,
                     const Vec& beta, const Vec& rm0, const Vec& rv0, int B, int N, int K, int C, bool relu) {
  Dev gx(be, x), gdy(be, dy), gw(be, w), gbias(be, bias), gg(be, gamma), gb(be, beta), rm(be, rm0), rv(be, rv0),
      y(be, size_t(B) * C), xm(be, K), xc(be, size_t(K) * K), mean(be, C), invstd(be, C), sel(be, size_t(B) * C),
      dx(be, x.size()), dw(be, w.size()), dbias(be, C), dgamma(be, C), dbeta(be, C);
  int32_t* row = be.allocate_index(size_t(B) * C);
  WideMaxSaved<float> s{xm.p, xc.p, mean.p, invstd.p, sel.p, row};
  be.wide_max_forward_train(y.p, s, rm.p, rv.p, gx.p, gw.p, gbias.p, gg.p, gb.p, B, N, K, C, relu, 1e-5, 0.1);
  be.wide_max_backward(dx.p, dw.p, dbias.p, dgamma.p, dbeta.p, gdy.p, y.p, s, gx.p, gw.p, gg.p, B, N, K, C, relu);
  WideResult out{y.host(),  xm.host(), xc.host(), mean.host(), invstd.host(), rm.host(),
                 rv.host(), dx.host(), dw.host(), dgamma.host(), dbeta.host()};
  be.release_index(row);
  return out;
}

// The fused wide layer, clouds split 1 + 2 of 3, gamma of both signs. In
// fp32, and in bf16, where the group's sums carry the 2-byte operand's column
// sums and X^T X too and z's variance comes from that covariance (the
// tensor-core extremes): there the ranks' fp32 sums of bf16/TF32 products
// are added in other orders than one rank's, so 1e-3; a rank using its own
// statistics instead of the group's is off by far more.
TEST(CudaSyncBatchNorm, WideLayerOverTwoRanksEqualsOneRank) {
  PN_REQUIRE_CUDA();
  const int B = 3, N = 700, K = 64, C = 257, clouds[2] = {1, 2};
  for (Precision precision : {Precision::FP32, Precision::BF16})
  for (bool relu : {true, false}) {
    SCOPED_TRACE(std::string(precision_name(precision)) + (relu ? " relu" : " no relu"));
    const double tolerance = precision == Precision::FP32 ? kFp32 : 1e-3;
    Rng rng(relu ? 15 : 16);
    const Vec x = random(size_t(B) * N * K, rng, 0.0f, 2.0f), w = random(size_t(C) * K, rng, -0.3f, 0.3f),
              bias = random(C, rng, -0.2f, 0.2f), beta = random(C, rng, -0.3f, 0.3f), rm0 = random(C, rng),
              rv0 = random(C, rng, 0.5f, 1.5f), dy = random(size_t(B) * C, rng);
    Vec gamma = random(C, rng, 0.5f, 1.5f);
    for (int c = 0; c < C; c += 3) gamma[c] = -gamma[c];
    CudaBackend one(precision);
    const WideResult whole = wide_step(one, x, dy, w, bias, gamma, beta, rm0, rv0, B, N, K, C, relu);
    ThreadGroup group(2);
    WideResult part[2];
    on_ranks(group, [&](int r, CudaBackend& be) {
      be.set_precision(precision);
      const int first = r == 0 ? 0 : clouds[0];
      part[r] = wide_step(be, slice(x, size_t(first) * N * K, size_t(clouds[r]) * N * K),
                          slice(dy, size_t(first) * C, size_t(clouds[r]) * C), w, bias, gamma, beta, rm0, rv0,
                          clouds[r], N, K, C, relu);
    });
    EXPECT_LT(rel_error(concat(part[0].y, part[1].y), whole.y), tolerance);
    EXPECT_LT(rel_error(concat(part[0].dx, part[1].dx), whole.dx), tolerance);
    for (int r = 0; r < 2; ++r) {
      SCOPED_TRACE("rank " + std::to_string(r));
      EXPECT_LT(rel_error(part[r].input_mean, whole.input_mean), tolerance);
      EXPECT_LT(rel_error(part[r].input_cov, whole.input_cov), tolerance);
      EXPECT_LT(rel_error(part[r].mean, whole.mean), tolerance);
      EXPECT_LT(rel_error(part[r].invstd, whole.invstd), tolerance);
      EXPECT_LT(rel_error(part[r].rm, whole.rm), tolerance);
      EXPECT_LT(rel_error(part[r].rv, whole.rv), tolerance);
    }
    EXPECT_LT(rel_error(add(part[0].dw, part[1].dw), whole.dw), tolerance);
    EXPECT_LT(rel_error(add(part[0].dgamma, part[1].dgamma), whole.dgamma), tolerance);
    EXPECT_LT(rel_error(add(part[0].dbeta, part[1].dbeta), whole.dbeta), tolerance);
  }
}

// The whole classifier with the feature transform, at raw initialisation: the
// ranks' mean gradient is the whole batch's (the per-cloud layers' BatchNorm
// sees two clouds per rank and four in the group). The bound comes from the
// same call's noise floor: the same four clouds given twice each (B = 8) have
// the same statistics, picks and mean-loss gradient in exact arithmetic, so
// what separates that gradient from B = 4's is fp32 rounding in other GEMM
// shapes (cuBLAS picks kernels by row count), amplified by the raw-init
// T-Nets across ReLU kinks and max-pick near-ties. SyncBN must add no more
// than a few times that (a first version with a fixed 1e-4 bound measured
// 1.0% here). Without SyncBN the ranks must be far off (the test can fail).
//
// The noise floor is the larger of two controls: B = 4 against its clouds
// given twice (B = 8), and at the ranks' own shape the first two clouds alone
// (B = 2, 600 rows per GEMM) against them given twice. On the H100
// (2026-12-06, session 7) the first measured 1.2e-3 and the second 3.5e-2,
// SyncBN 1.0e-2, no SyncBN 2.5e3. Both controls are rounding only (the same
// statistics in exact arithmetic); at two clouds rounding is amplified more,
// where the per-cloud layers' BatchNorm normalises over two rows and at max
// picks within rounding of a tie. Which of those dominates is not measured.
// (Session 6 had only the first control and took SyncBN's 1.0e-2 for a
// possible bug.) The tight checks are the op-level
// tests above (1e-5) and the CPU model test in double (1e-10); this one
// checks that the model's every SyncBN path is wired, within the rounding a
// 600-row batch carries anyway.
TEST(CudaSyncBatchNorm, ModelGradientOverTwoRanksIsTheWholeBatchs) {
  PN_REQUIRE_CUDA();
  ModelConfig config;
  config.num_classes = 5;
  config.feature_transform = true;
  const int B = 4, N = 300, half = B / 2;
  Rng data(31);
  const Vec points = random(size_t(B) * N * 3, data);
  std::vector<int32_t> targets(B);
  for (int32_t& t : targets) t = static_cast<int32_t>(data.below(config.num_classes));
  Vec twice_points, logits_whole, logits_part[2], logits_twice;
  std::vector<int32_t> twice_targets;
  for (int b = 0; b < B; ++b)
    for (int copy = 0; copy < 2; ++copy) {
      const Vec cloud = slice(points, size_t(b) * N * 3, size_t(N) * 3);
      twice_points.insert(twice_points.end(), cloud.begin(), cloud.end());
      twice_targets.push_back(targets[b]);
    }
  // The gradient of the mean loss over clouds [first, first + count) of (p, t).
  auto gradients = [&](CudaBackend& be, const Vec& p_host, const std::vector<int32_t>& t_host, int first,
                       int count, Vec* logits) {
    PointNet<float> model(config, be);
    Rng init(3);
    model.initialize(init);
    model.set_dropout_probability(0.0);
    Dev p(be, slice(p_host, size_t(first) * N * 3, size_t(count) * N * 3));
    int32_t* t = be.allocate_index(count);
    be.upload_index(t, t_host.data() + first, count);
    model.forward(p.p, count, N, true);
    logits->resize(size_t(count) * config.num_classes);
    be.download(logits->data(), model.log_probs(), logits->size());
    model.backward(t);
    const ParamStore<float>& store = model.params();
    Vec g(store.trainable_count());
    be.download(g.data(), store.grads(), g.size());
    be.release_index(t);
    return g;
  };
  CudaBackend one(Precision::FP32);
  const Vec whole = gradients(one, points, targets, 0, B, &logits_whole);
  const Vec twice = gradients(one, twice_points, twice_targets, 0, 2 * B, &logits_twice);
  // At the ranks' shape: clouds 0 and 1 alone (B = 2), and the same two given
  // twice (B = 4: the same statistics, picks and mean-loss gradient exactly).
  Vec pair_twice_points;
  std::vector<int32_t> pair_twice_targets;
  for (int copy = 0; copy < 2; ++copy) {
    const Vec pair = slice(points, 0, size_t(half) * N * 3);
    pair_twice_points.insert(pair_twice_points.end(), pair.begin(), pair.end());
    pair_twice_targets.insert(pair_twice_targets.end(), targets.begin(), targets.begin() + half);
  }
  Vec logits_pair, logits_pair_twice;
  const Vec pair = gradients(one, points, targets, 0, half, &logits_pair);
  const Vec pair_twice = gradients(one, pair_twice_points, pair_twice_targets, 0, 2 * half, &logits_pair_twice);
  const double noise = std::max(rel_error(twice, whole), rel_error(pair_twice, pair));
  std::printf("[ info     ] noise floor: B = 4 vs its clouds twice %.3g, B = 2 vs its clouds twice %.3g\n",
              rel_error(twice, whole), rel_error(pair_twice, pair));
  auto ranks_mean = [&](bool sync) {
    ThreadGroup group(2);
    Vec part[2];
    on_ranks(
        group, [&](int r, CudaBackend& be) { part[r] = gradients(be, points, targets, r * half, half, &logits_part[r]); },
        sync);
    Vec mean = add(part[0], part[1]);
    for (float& g : mean) g /= 2;
    return mean;
  };
  const double error = rel_error(ranks_mean(true), whole);
  const Vec synced_logits = concat(logits_part[0], logits_part[1]);
  const double unsynced = rel_error(ranks_mean(false), whole);
  std::printf("[ info     ] gradient vs the whole batch: SyncBN %.3g, the same clouds twice %.3g, no SyncBN %.3g\n",
              error, noise, unsynced);
  const double bound = std::max(1e-4, 4 * noise);
  EXPECT_LT(error, bound) << "SyncBN's gradient is further from the whole batch's than rounding explains";
  EXPECT_GT(unsynced, 10 * bound) << "without SyncBN the ranks should be far from the whole batch";
  EXPECT_LT(rel_error(synced_logits, logits_whole), 1e-4) << "the forward differs";
}

}  // namespace
}  // namespace pointnet
#endif  // POINTNET_HAS_CUDA
