// Every layer's backward against finite differences of its forward, in double.
// Central differences with h = 1e-6 are accurate to ~1e-9 relative, so 1e-6 is
// a tight bound that still leaves room for rounding.
#include <gtest/gtest.h>

#include "cpu/cpu_backend.h"
#include "gradcheck.h"

namespace pointnet {
namespace {

using testing::gradient_mismatch;
using testing::numeric_derivative;
using testing::random_vector;
using testing::weighted_sum;

constexpr double kTol = 1e-6;
CpuBackend<double> be;

// Checks d(sum w*f(x))/dx for every element of x.
void check_all(std::vector<double>& x, const std::vector<double>& analytic,
               const std::function<double()>& scalar, const char* what) {
  ASSERT_EQ(x.size(), analytic.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double n = numeric_derivative(x, i, scalar);
    ASSERT_LT(gradient_mismatch(analytic[i], n), kTol) << what << " element " << i << ": analytic "
                                                       << analytic[i] << " numeric " << n;
  }
}

TEST(OpsGradcheck, Linear) {
  Rng rng(1);
  const int M = 7, Cin = 5, Cout = 4;
  auto x = random_vector(M * Cin, rng), w = random_vector(Cout * Cin, rng), b = random_vector(Cout, rng);
  auto wy = random_vector(M * Cout, rng);
  std::vector<double> y(M * Cout), dx(M * Cin), dw(Cout * Cin), db(Cout);
  auto f = [&] { be.linear_forward(y.data(), x.data(), w.data(), b.data(), M, Cin, Cout); return weighted_sum(y, wy); };
  be.linear_backward(dx.data(), dw.data(), db.data(), wy.data(), x.data(), w.data(), M, Cin, Cout);
  check_all(x, dx, f, "dx");
  check_all(w, dw, f, "dw");
  check_all(b, db, f, "db");
}

TEST(OpsGradcheck, BatchNormTraining) {
  Rng rng(2);
  const int M = 9, C = 3;
  auto x = random_vector(M * C, rng), gamma = random_vector(C, rng), beta = random_vector(C, rng);
  auto wy = random_vector(M * C, rng);
  std::vector<double> y(M * C), mean(C), invstd(C), rm(C, 0.0), rv(C, 1.0), dx(M * C), dg(C), dbeta(C);
  auto f = [&] {
    be.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(), gamma.data(),
                               beta.data(), M, C, 1e-5, 0.1);
    return weighted_sum(y, wy);
  };
  f();
  be.batchnorm_backward(dx.data(), dg.data(), dbeta.data(), wy.data(), x.data(), gamma.data(), mean.data(),
                        invstd.data(), M, C);
  check_all(x, dx, f, "dx");
  check_all(gamma, dg, f, "dgamma");
  check_all(beta, dbeta, f, "dbeta");
}

TEST(OpsGradcheck, BatchNormBackwardInPlace) {
  // The model runs the backward with dx aliasing dy; results must not change.
  Rng rng(3);
  const int M = 6, C = 4;
  auto x = random_vector(M * C, rng), gamma = random_vector(C, rng), beta = random_vector(C, rng);
  auto dy = random_vector(M * C, rng);
  std::vector<double> y(M * C), mean(C), invstd(C), rm(C), rv(C), dx(M * C), dg(C), db(C);
  be.batchnorm_forward_train(y.data(), mean.data(), invstd.data(), rm.data(), rv.data(), x.data(), gamma.data(),
                             beta.data(), M, C, 1e-5, 0.1);
  be.batchnorm_backward(dx.data(), dg.data(), db.data(), dy.data(), x.data(), gamma.data(), mean.data(),
                        invstd.data(), M, C);
  be.batchnorm_backward(dy.data(), dg.data(), db.data(), dy.data(), x.data(), gamma.data(), mean.data(),
                        invstd.data(), M, C);
  for (int i = 0; i < M * C; ++i) EXPECT_DOUBLE_EQ(dx[i], dy[i]);
}

TEST(OpsGradcheck, Relu) {
  Rng rng(4);
  const size_t n = 40;
  auto x = random_vector(n, rng), wy = random_vector(n, rng);
  for (double& v : x) if (std::fabs(v) < 1e-3) v = 0.5;  // stay away from the kink
  std::vector<double> y(n), dx(n);
  auto f = [&] { be.relu_forward(y.data(), x.data(), n); return weighted_sum(y, wy); };
  f();
  be.relu_backward(dx.data(), wy.data(), y.data(), n);
  check_all(x, dx, f, "dx");
}

TEST(OpsGradcheck, MaxOverPoints) {
  Rng rng(5);
  const int B = 2, N = 6, C = 3;
  auto x = random_vector(B * N * C, rng), wy = random_vector(B * C, rng);
  std::vector<double> y(B * C), dx(B * N * C);
  std::vector<int32_t> arg(B * C);
  auto f = [&] { be.max_over_points_forward(y.data(), arg.data(), x.data(), B, N, C); return weighted_sum(y, wy); };
  f();
  be.max_over_points_backward(dx.data(), wy.data(), arg.data(), B, N, C);
  check_all(x, dx, f, "dx");
}

TEST(OpsGradcheck, Transform) {
  Rng rng(6);
  const int B = 2, N = 5, K = 3;
  auto x = random_vector(B * N * K, rng), t = random_vector(B * K * K, rng), wy = random_vector(B * N * K, rng);
  std::vector<double> y(B * N * K), dx(B * N * K), dt(B * K * K);
  auto f = [&] { be.transform_forward(y.data(), x.data(), t.data(), B, N, K); return weighted_sum(y, wy); };
  be.transform_backward(dx.data(), dt.data(), wy.data(), x.data(), t.data(), B, N, K);
  check_all(x, dx, f, "dx");
  check_all(t, dt, f, "dt");
}

TEST(OpsGradcheck, ConcatGlobal) {
  Rng rng(7);
  const int B = 2, N = 4, G = 3, P = 2;
  auto g = random_vector(B * G, rng), p = random_vector(B * N * P, rng), wy = random_vector(B * N * (G + P), rng);
  std::vector<double> y(B * N * (G + P)), dg(B * G), dp(B * N * P);
  auto f = [&] { be.concat_global_forward(y.data(), g.data(), p.data(), B, N, G, P); return weighted_sum(y, wy); };
  be.concat_global_backward(dg.data(), dp.data(), wy.data(), B, N, G, P);
  check_all(g, dg, f, "dglobal");
  check_all(p, dp, f, "dpointfeat");
}

TEST(OpsGradcheck, LogSoftmaxNll) {
  Rng rng(8);
  const int M = 5, K = 4;
  auto x = random_vector(M * K, rng);
  std::vector<int32_t> target = {0, 3, 1, 1, 2};
  std::vector<double> logp(M * K), dx(M * K);
  auto f = [&] {
    be.log_softmax_forward(logp.data(), x.data(), M, K);
    return be.nll_loss(nullptr, logp.data(), target.data(), M, K);
  };
  f();
  be.log_softmax_nll_backward(dx.data(), logp.data(), target.data(), M, K, 1.0 / M);
  check_all(x, dx, f, "dx");
}

TEST(OpsGradcheck, TransformRegularizer) {
  Rng rng(9);
  const int B = 3, K = 4;
  auto t = random_vector(B * K * K, rng, 0.5);
  std::vector<double> dt(B * K * K, 0.0);
  auto f = [&] { return 0.25 * be.transform_regularizer(t.data(), B, K); };
  be.transform_regularizer_backward_accumulate(dt.data(), t.data(), B, K, 0.25);
  check_all(t, dt, f, "dt");
}

TEST(OpsGradcheck, RegularizerIsZeroForOrthogonalTransforms) {
  // A rotation is orthogonal: t t^T = I exactly (up to rounding).
  const double c = std::cos(0.3), s = std::sin(0.3);
  std::vector<double> t = {c, -s, 0, s, c, 0, 0, 0, 1};
  EXPECT_NEAR(be.transform_regularizer(t.data(), 1, 3), 0.0, 1e-12);
  std::vector<double> two_i = {2, 0, 0, 0, 2, 0, 0, 0, 2};  // t t^T - I = 3 I: norm 3 sqrt(3)
  EXPECT_NEAR(be.transform_regularizer(two_i.data(), 1, 3), 3 * std::sqrt(3.0), 1e-12);
}

}  // namespace
}  // namespace pointnet

namespace pointnet {
namespace {

// The BLAS path of the linear layer against plain loops, in float. K = 1088 is
// the segmenter's widest layer: rounding grows like sqrt(K) * 6e-8, so 1e-5.
TEST(OpsReference, LinearBlasMatchesLoops) {
  Rng rng(12);
  const int M = 37, Cin = 1088, Cout = 19;
  std::vector<float> x(M * Cin), w(Cout * Cin), b(Cout), y(M * Cout, NAN), ref(M * Cout, NAN);
  for (float& v : x) v = rng.normal();
  for (float& v : w) v = rng.normal();
  for (float& v : b) v = rng.normal();
  cpu::linear_forward(y.data(), x.data(), w.data(), b.data(), M, Cin, Cout);
  cpu::linear_forward_reference(ref.data(), x.data(), w.data(), b.data(), M, Cin, Cout);
  double num = 0, den = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    ASSERT_FALSE(std::isnan(y[i])) << "element " << i << " not written";
    num += (y[i] - ref[i]) * (y[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  EXPECT_LT(std::sqrt(num / den), 1e-5);
}

}  // namespace
}  // namespace pointnet
