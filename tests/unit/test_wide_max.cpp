// The fused wide layer (conv + BatchNorm + ReLU + max over points) against the
// composition of the separate ops it replaces, which are themselves checked
// against finite differences: in double the two must agree to rounding, in
// float to float accuracy. Gamma has both signs so both branches (max and min)
// are exercised, and the input is shifted so the covariance path sees a
// non-zero mean.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "cpu/cpu_backend.h"
#include "gradcheck.h"

namespace pointnet {
namespace {

template <typename T>
struct WideMaxCase {
  int B = 3, N = 9, K = 6, C = 8;
  bool relu = true;
  std::vector<T> x, w, bias, gamma, beta, rm, rv, dy;
  explicit WideMaxCase(uint64_t seed, bool relu_) : relu(relu_) {
    Rng rng(seed);
    auto fill = [&](int n, double lo, double hi) {
      std::vector<T> v(n);
      for (T& e : v) e = static_cast<T>(rng.uniform(static_cast<float>(lo), static_cast<float>(hi)));
      return v;
    };
    x = fill(B * N * K, 0.0, 2.0);  // post-ReLU-like input: non-negative, mean ~1
    w = fill(C * K, -0.5, 0.5);
    bias = fill(C, -0.2, 0.2);
    gamma = fill(C, 0.5, 1.5);
    for (int c = 0; c < C; c += 3) gamma[c] = -gamma[c];  // both branches
    beta = fill(C, -0.3, 0.3);
    rm = fill(C, -0.1, 0.1);
    rv = fill(C, 0.5, 1.5);
    dy = fill(B * C, -1.0, 1.0);
  }
};

struct Grads {
  std::vector<double> y, rm, rv, dx, dw, db, dgamma, dbeta;
};

template <typename T>
std::vector<double> as_double(const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); }

// The separate ops, as the model used them before the fusion.
template <typename T>
Grads composed(const WideMaxCase<T>& p) {
  CpuBackend<T> be;
  const int M = p.B * p.N;
  std::vector<T> z(M * p.C), y(M * p.C), mean(p.C), invstd(p.C), rm = p.rm, rv = p.rv, pooled(p.B * p.C);
  std::vector<int32_t> arg(p.B * p.C);
  be.linear_forward(z.data(), p.x.data(), p.w.data(), p.bias.data(), M, p.K, p.C);
  be.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), z.data(), p.gamma.data(),
                             p.beta.data(), M, p.C, 1e-5, 0.1);
  if (p.relu) be.relu_forward(y.data(), y.data(), y.size());
  be.max_over_points_forward(pooled.data(), arg.data(), y.data(), p.B, p.N, p.C);
  std::vector<T> dpool(M * p.C), dz(M * p.C), dx(M * p.K), dw(p.C * p.K), db(p.C), dg(p.C), dbe(p.C);
  be.max_over_points_backward(dpool.data(), p.dy.data(), arg.data(), p.B, p.N, p.C);
  if (p.relu) be.relu_backward(dpool.data(), dpool.data(), y.data(), dpool.size());
  be.batchnorm_backward(dz.data(), dg.data(), dbe.data(), dpool.data(), z.data(), p.gamma.data(), mean.data(),
                        invstd.data(), M, p.C);
  be.linear_backward(dx.data(), dw.data(), db.data(), dz.data(), p.x.data(), p.w.data(), M, p.K, p.C);
  return {as_double(pooled), as_double(rm), as_double(rv), as_double(dx), as_double(dw), as_double(db),
          as_double(dg), as_double(dbe)};
}

template <typename T>
Grads fused(const WideMaxCase<T>& p) {
  CpuBackend<T> be;
  const int M = p.B * p.N;
  std::vector<T> y(p.B * p.C), xm(p.K), xc(p.K * p.K), mean(p.C), invstd(p.C), sel(p.B * p.C), rm = p.rm, rv = p.rv;
  std::vector<int32_t> row(p.B * p.C);
  WideMaxSaved<T> s{xm.data(), xc.data(), mean.data(), invstd.data(), sel.data(), row.data()};
  be.wide_max_forward_train(y.data(), s, rm.data(), rv.data(), p.x.data(), p.w.data(), p.bias.data(), p.gamma.data(),
                            p.beta.data(), p.B, p.N, p.K, p.C, p.relu, 1e-5, 0.1);
  std::vector<T> dx(M * p.K), dw(p.C * p.K), db(p.C, T(7)), dg(p.C), dbe(p.C);
  be.wide_max_backward(dx.data(), dw.data(), db.data(), dg.data(), dbe.data(), p.dy.data(), y.data(), s, p.x.data(),
                       p.w.data(), p.gamma.data(), p.B, p.N, p.K, p.C, p.relu);
  return {as_double(y), as_double(rm), as_double(rv), as_double(dx), as_double(dw), as_double(db),
          as_double(dg), as_double(dbe)};
}

// Largest |a - b| relative to the larger of |b|'s max and 1e-3 (so near-zero tensors compare absolutely).
double mismatch(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, scale = 1e-3;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return diff / scale;
}

template <typename T>
void expect_equal(uint64_t seed, bool relu, double tol) {
  WideMaxCase<T> p(seed, relu);
  const Grads ref = composed(p), got = fused(p);
  EXPECT_LT(mismatch(got.y, ref.y), tol) << "y";
  EXPECT_LT(mismatch(got.rm, ref.rm), tol) << "running_mean";
  EXPECT_LT(mismatch(got.rv, ref.rv), tol) << "running_var";
  EXPECT_LT(mismatch(got.dx, ref.dx), tol) << "dx";
  EXPECT_LT(mismatch(got.dw, ref.dw), tol) << "dw";
  EXPECT_LT(mismatch(got.dgamma, ref.dgamma), tol) << "dgamma";
  EXPECT_LT(mismatch(got.dbeta, ref.dbeta), tol) << "dbeta";
  // BatchNorm makes the loss independent of the conv bias: the composition's
  // bias gradient is rounding noise, the fused one exactly zero.
  for (double v : got.db) EXPECT_EQ(v, 0.0);
  for (double v : ref.db) EXPECT_LT(std::fabs(v), 100 * tol);
}

TEST(WideMax, EqualsComposedOpsInDouble) {
  for (uint64_t seed : {1, 2, 3}) {
    expect_equal<double>(seed, true, 1e-10);
    expect_equal<double>(seed, false, 1e-10);
  }
}

TEST(WideMax, EqualsComposedOpsInFloat) {
  for (uint64_t seed : {4, 5}) {
    expect_equal<float>(seed, true, 2e-5);
    expect_equal<float>(seed, false, 2e-5);
  }
}

// PointNet's real widths (K = 128 post-ReLU inputs, C = 1024) in float.
TEST(WideMax, RealWidthsInFloat) {
  WideMaxCase<float> p(9, false);
  p.B = 4; p.N = 100; p.K = 128; p.C = 1024;
  Rng rng(10);
  auto fill = [&](std::vector<float>& v, size_t n, float lo, float hi) {
    v.resize(n);
    for (float& e : v) e = rng.uniform(lo, hi);
  };
  fill(p.x, static_cast<size_t>(p.B) * p.N * p.K, -1.f, 2.f);
  for (float& v : p.x) v = std::max(v, 0.f);
  fill(p.w, static_cast<size_t>(p.C) * p.K, -0.09f, 0.09f);
  fill(p.bias, p.C, -0.1f, 0.1f);
  fill(p.gamma, p.C, 0.9f, 1.1f);
  fill(p.beta, p.C, -0.1f, 0.1f);
  fill(p.rm, p.C, 0.f, 0.f);
  fill(p.rv, p.C, 1.f, 1.f);
  fill(p.dy, static_cast<size_t>(p.B) * p.C, -1.f, 1.f);
  for (bool relu : {false, true}) {
    p.relu = relu;
    const Grads ref = composed(p), got = fused(p);
    EXPECT_LT(mismatch(got.y, ref.y), 2e-6);
    EXPECT_LT(mismatch(got.rv, ref.rv), 2e-6);
    EXPECT_LT(mismatch(got.dx, ref.dx), 2e-6);
    EXPECT_LT(mismatch(got.dw, ref.dw), 2e-6);
    EXPECT_LT(mismatch(got.dgamma, ref.dgamma), 2e-6);
    EXPECT_LT(mismatch(got.dbeta, ref.dbeta), 2e-6);
  }
}

TEST(WideMax, EvalUsesRunningStatistics) {
  for (bool relu : {true, false}) {
    WideMaxCase<double> p(6, relu);
    CpuBackend<double> be;
    const int M = p.B * p.N;
    std::vector<double> z(M * p.C), y(M * p.C), ref(p.B * p.C), got(p.B * p.C);
    std::vector<int32_t> arg(p.B * p.C);
    be.linear_forward(z.data(), p.x.data(), p.w.data(), p.bias.data(), M, p.K, p.C);
    be.batchnorm_forward_eval(y.data(), z.data(), p.gamma.data(), p.beta.data(), p.rm.data(), p.rv.data(), M, p.C, 1e-5);
    if (relu) be.relu_forward(y.data(), y.data(), y.size());
    be.max_over_points_forward(ref.data(), arg.data(), y.data(), p.B, p.N, p.C);
    be.wide_max_forward_eval(got.data(), p.x.data(), p.w.data(), p.bias.data(), p.gamma.data(), p.beta.data(),
                             p.rm.data(), p.rv.data(), p.B, p.N, p.K, p.C, relu, 1e-5);
    EXPECT_LT(mismatch(got, ref), 1e-12);
  }
}

// More points than one tile (256 rows) and a cloud whose extreme sits in the last tile.
TEST(WideMax, ManyPointsSpanTiles) {
  WideMaxCase<double> p(7, true);
  p.N = 600;
  Rng rng(8);
  p.x.resize(static_cast<size_t>(p.B) * p.N * p.K);
  for (double& v : p.x) v = rng.uniform(0.0f, 2.0f);
  for (int k = 0; k < p.K; ++k) p.x[(static_cast<size_t>(p.N) - 1) * p.K + k] = 5.0;  // cloud 0, last point
  const Grads ref = composed(p), got = fused(p);
  EXPECT_LT(mismatch(got.y, ref.y), 1e-10);
  EXPECT_LT(mismatch(got.dx, ref.dx), 1e-10);
  EXPECT_LT(mismatch(got.dw, ref.dw), 1e-10);
}

}  // namespace
}  // namespace pointnet
