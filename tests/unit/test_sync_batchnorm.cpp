// SyncBN on the CPU (Backend::set_batchnorm_group): ranks as threads, each
// with its slice of a batch, must compute what one rank computes on the whole
// batch. Outputs, statistics, running statistics and dx match row for row; the
// parameter gradients summed over the ranks (what the gradient all-reduce
// does) match the whole batch's. In double, so a mistake in which sums are
// global and which are local shows as an error of 1e-3, not as noise.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/rng.h"
#include "cpu/cpu_backend.h"
#include "dist/thread_group.h"
#include "model/pointnet.h"

namespace pointnet {
namespace {

using Vec = std::vector<double>;

Vec random(size_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  Vec v(n);
  for (double& e : v) e = lo + (hi - lo) * rng.uniform();
  return v;
}

Vec slice(const Vec& v, size_t first, size_t count) {
  return Vec(v.begin() + static_cast<std::ptrdiff_t>(first), v.begin() + static_cast<std::ptrdiff_t>(first + count));
}

// fn(rank) on one thread per rank.
void on_ranks(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(fn, r);
  for (std::thread& t : threads) t.join();
}

void expect_near_all(const Vec& got, const Vec& want, double tolerance, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::abs(got[i] - want[i]) / (1.0 + std::abs(want[i]));
    if (e > worst) worst = e, at = i;
  }
  EXPECT_LE(worst, tolerance) << what << ": worst at " << at << ": " << got[at] << " vs " << want[at];
}

Vec add(const Vec& a, const Vec& b) {
  Vec s(a);
  for (size_t i = 0; i < s.size(); ++i) s[i] += b[i];
  return s;
}

// Plain BatchNorm over rows split unevenly (4 + 6 of 10): the row count is
// summed over the ranks too.
TEST(SyncBatchNorm, TwoRanksEqualOneRankWithTheWholeBatch) {
  const int C = 5, rows[2] = {4, 6}, M = rows[0] + rows[1];
  Rng rng(3);
  const Vec x = random(size_t(M) * C, rng, 1.0, 3.0), dy = random(size_t(M) * C, rng), gamma = random(C, rng, 0.5, 1.5),
            beta = random(C, rng), rm0 = random(C, rng), rv0 = random(C, rng, 0.5, 1.5);

  CpuBackend<double> one;
  Vec y(x.size()), mean(C), invstd(C), rm(rm0), rv(rv0), dx(x.size()), dgamma(C), dbeta(C);
  one.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(), gamma.data(),
                              beta.data(), M, C, 1e-5, 0.1);
  one.batchnorm_backward(dx.data(), dgamma.data(), dbeta.data(), dy.data(), x.data(), gamma.data(), mean.data(),
                         invstd.data(), M, C);

  ThreadGroup group(2);
  struct Rank {
    Vec y, mean, invstd, rm, rv, dx, dgamma, dbeta;
  } ranks[2];
  on_ranks(2, [&](int r) {
    const size_t first = r == 0 ? 0 : size_t(rows[0]) * C, count = size_t(rows[r]) * C;
    const Vec xr = slice(x, first, count), dyr = slice(dy, first, count);
    Rank& k = ranks[r];
    k.y.resize(count), k.mean.resize(C), k.invstd.resize(C), k.rm = rm0, k.rv = rv0, k.dx.resize(count),
        k.dgamma.resize(C), k.dbeta.resize(C);
    CpuBackend<double> be;
    be.set_batchnorm_group(&group.rank(r));
    be.batchnorm_forward_train(k.y.data(), k.mean.data(), k.invstd.data(), k.rm.data(), k.rv.data(), xr.data(),
                               gamma.data(), beta.data(), rows[r], C, 1e-5, 0.1);
    be.batchnorm_backward(k.dx.data(), k.dgamma.data(), k.dbeta.data(), dyr.data(), xr.data(), gamma.data(),
                          k.mean.data(), k.invstd.data(), rows[r], C);
  });
  const double tol = 1e-12;
  Vec y_both(ranks[0].y), dx_both(ranks[0].dx);
  y_both.insert(y_both.end(), ranks[1].y.begin(), ranks[1].y.end());
  dx_both.insert(dx_both.end(), ranks[1].dx.begin(), ranks[1].dx.end());
  expect_near_all(y_both, y, tol, "y");
  expect_near_all(dx_both, dx, tol, "dx");
  for (int r = 0; r < 2; ++r) {
    expect_near_all(ranks[r].mean, mean, tol, "mean");
    expect_near_all(ranks[r].invstd, invstd, tol, "invstd");
    expect_near_all(ranks[r].rm, rm, tol, "running mean");
    expect_near_all(ranks[r].rv, rv, tol, "running var (unbiased over the global batch)");
  }
  expect_near_all(add(ranks[0].dgamma, ranks[1].dgamma), dgamma, tol, "dgamma, summed over ranks");
  expect_near_all(add(ranks[0].dbeta, ranks[1].dbeta), dbeta, tol, "dbeta, summed over ranks");
}

// One row per rank is fine when the group has two (a per-cloud layer at one
// cloud per rank); two ranks of one row each still normalise.
TEST(SyncBatchNorm, OneRowPerRankIsEnoughWhenTheGroupHasTwo) {
  ThreadGroup group(2);
  Vec y[2] = {Vec(1), Vec(1)};
  on_ranks(2, [&](int r) {
    CpuBackend<double> be;
    be.set_batchnorm_group(&group.rank(r));
    Vec x = {r == 0 ? 1.0 : 3.0}, g = {1.0}, b = {0.0}, mean(1), invstd(1), rm(1), rv(1, 1.0);
    be.batchnorm_forward_train(y[r].data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(), g.data(),
                               b.data(), 1, 1, 0.0, 0.1);
  });
  EXPECT_NEAR(y[0][0], -1.0, 1e-12);
  EXPECT_NEAR(y[1][0], 1.0, 1e-12);
}

// The fused wide layer (conv + BatchNorm + ReLU + max over points), clouds
// split 1 + 2 of 3; gamma of both signs (max and min branches).
TEST(SyncBatchNorm, WideLayerOverTwoRanksEqualsOneRank) {
  const int B = 3, N = 9, K = 6, C = 8, clouds[2] = {1, 2};
  for (bool relu : {true, false}) {
    SCOPED_TRACE(relu ? "relu" : "no relu");
    Rng rng(relu ? 5 : 6);
    const Vec x = random(size_t(B) * N * K, rng, 0.0, 2.0), w = random(size_t(C) * K, rng, -0.5, 0.5),
              bias = random(C, rng, -0.2, 0.2), beta = random(C, rng, -0.3, 0.3), rm0 = random(C, rng),
              rv0 = random(C, rng, 0.5, 1.5), dy = random(size_t(B) * C, rng);
    Vec gamma = random(C, rng, 0.5, 1.5);
    for (int c = 0; c < C; c += 3) gamma[c] = -gamma[c];

    struct Result {
      Vec y, xm, xc, mean, invstd, sel, rm, rv, dx, dw, db, dg, dbe;
      std::vector<int32_t> row;
    };
    auto run = [&](CpuBackend<double>& be, int first_cloud, int count) {
      Result k;
      const int M = count * N;
      const Vec xr = slice(x, size_t(first_cloud) * N * K, size_t(M) * K);
      const Vec dyr = slice(dy, size_t(first_cloud) * C, size_t(count) * C);
      k.y.resize(size_t(count) * C), k.xm.resize(K), k.xc.resize(size_t(K) * K), k.mean.resize(C),
          k.invstd.resize(C), k.sel.resize(size_t(count) * C), k.row.resize(size_t(count) * C), k.rm = rm0, k.rv = rv0;
      WideMaxSaved<double> s{k.xm.data(), k.xc.data(), k.mean.data(), k.invstd.data(), k.sel.data(), k.row.data()};
      be.wide_max_forward_train(k.y.data(), s, k.rm.data(), k.rv.data(), xr.data(), w.data(), bias.data(),
                                gamma.data(), beta.data(), count, N, K, C, relu, 1e-5, 0.1);
      k.dx.resize(size_t(M) * K), k.dw.resize(size_t(C) * K), k.db.assign(C, 7.0), k.dg.resize(C), k.dbe.resize(C);
      be.wide_max_backward(k.dx.data(), k.dw.data(), k.db.data(), k.dg.data(), k.dbe.data(), dyr.data(), k.y.data(),
                           s, xr.data(), w.data(), gamma.data(), count, N, K, C, relu);
      return k;
    };
    CpuBackend<double> one;
    const Result whole = run(one, 0, B);
    ThreadGroup group(2);
    Result part[2];
    on_ranks(2, [&](int r) {
      CpuBackend<double> be;
      be.set_batchnorm_group(&group.rank(r));
      part[r] = run(be, r == 0 ? 0 : clouds[0], clouds[r]);
    });
    const double tol = 1e-12;
    Vec y(part[0].y), dx(part[0].dx);
    y.insert(y.end(), part[1].y.begin(), part[1].y.end());
    dx.insert(dx.end(), part[1].dx.begin(), part[1].dx.end());
    expect_near_all(y, whole.y, tol, "y");
    expect_near_all(dx, whole.dx, tol, "dx");
    for (int r = 0; r < 2; ++r) {
      expect_near_all(part[r].xm, whole.xm, tol, "input mean");
      expect_near_all(part[r].xc, whole.xc, tol, "input covariance");
      expect_near_all(part[r].mean, whole.mean, tol, "mean");
      expect_near_all(part[r].invstd, whole.invstd, tol, "invstd");
      expect_near_all(part[r].rm, whole.rm, tol, "running mean");
      expect_near_all(part[r].rv, whole.rv, tol, "running var");
      expect_near_all(part[r].db, Vec(C, 0.0), 0.0, "dbias");
    }
    expect_near_all(add(part[0].dw, part[1].dw), whole.dw, tol, "dw, summed over ranks");
    expect_near_all(add(part[0].dg, part[1].dg), whole.dg, tol, "dgamma, summed over ranks");
    expect_near_all(add(part[0].dbe, part[1].dbe), whole.dbe, tol, "dbeta, summed over ranks");
  }
}

// The whole model: two ranks with two clouds each and SyncBN give the loss
// gradient of one rank with all four clouds (the mean of the ranks'
// gradients, as the data-parallel step takes it); without SyncBN they do not
// (each rank's BatchNorm sees only its clouds), which shows the test can fail.
struct ModelCase {
  ModelTask task;
  bool feature_transform;
  const char* name;
};

class SyncBatchNormModel : public ::testing::TestWithParam<ModelCase> {};

TEST_P(SyncBatchNormModel, TwoRanksGiveTheWholeBatchGradient) {
  const ModelCase c = GetParam();
  ModelConfig config;
  config.task = c.task;
  config.num_classes = 4;
  config.feature_transform = c.feature_transform;
  const int B = 4, N = 16, half = B / 2;
  Rng data_rng(21);
  const Vec points = random(size_t(B) * N * 3, data_rng);
  const int rows_per_cloud = c.task == ModelTask::Classification ? 1 : N;
  std::vector<int32_t> targets(size_t(B) * rows_per_cloud);
  for (int32_t& t : targets) t = static_cast<int32_t>(data_rng.below(config.num_classes));

  // Gradients of the mean loss over `count` clouds from `first`.
  auto gradients = [&](CpuBackend<double>& be, int first, int count) {
    PointNet<double> model(config, be);
    Rng init(7);
    model.initialize(init);
    model.set_dropout_probability(0.0);
    const Vec p = slice(points, size_t(first) * N * 3, size_t(count) * N * 3);
    const std::vector<int32_t> t(targets.begin() + first * rows_per_cloud,
                                 targets.begin() + (first + count) * rows_per_cloud);
    model.forward(p.data(), count, N, true);
    model.backward(t.data());
    const ParamStore<double>& store = model.params();
    return Vec(store.grads(), store.grads() + store.trainable_count());
  };
  CpuBackend<double> one;
  const Vec whole = gradients(one, 0, B);
  for (bool sync : {true, false}) {
    ThreadGroup group(2);
    Vec part[2];
    on_ranks(2, [&](int r) {
      CpuBackend<double> be;
      if (sync) be.set_batchnorm_group(&group.rank(r));
      part[r] = gradients(be, r * half, half);
    });
    Vec mean = add(part[0], part[1]);
    for (double& g : mean) g /= 2;
    double worst = 0.0, scale = 0.0;
    for (size_t i = 0; i < whole.size(); ++i) {
      worst = std::max(worst, std::abs(mean[i] - whole[i]));
      scale = std::max(scale, std::abs(whole[i]));
    }
    if (sync) EXPECT_LE(worst, 1e-10 * scale) << "SyncBN: the ranks' mean gradient is not the whole batch's";
    else EXPECT_GT(worst, 1e-4 * scale) << "without SyncBN the ranks should differ from the whole batch";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, SyncBatchNormModel,
                         ::testing::Values(ModelCase{ModelTask::Classification, true, "cls_feature_transform"},
                                           ModelCase{ModelTask::Segmentation, false, "seg"}),
                         [](const ::testing::TestParamInfo<ModelCase>& info) { return std::string(info.param.name); });

// A backend without SyncBN refuses the group instead of training each rank on
// its own statistics.
class NoSyncBackend : public CpuBackend<float> {
 public:
  const char* name() const override { return "test"; }
  void set_batchnorm_group(Communicator* group) override { Backend<float>::set_batchnorm_group(group); }
};

TEST(SyncBatchNorm, ABackendWithoutItRefusesClearly) {
  ThreadGroup group(1);
  NoSyncBackend be;
  try {
    be.set_batchnorm_group(&group.rank(0));
    FAIL() << "accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not supported on the test backend"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(be.set_batchnorm_group(nullptr));
}

}  // namespace
}  // namespace pointnet
