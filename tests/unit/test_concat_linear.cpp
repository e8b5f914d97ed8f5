// The segmenter's first head layer without the concat (concat_linear_*)
// against concat_global_* + linear_* (themselves gradient-checked): equal to
// rounding in double, to float accuracy in float.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/cpu_backend.h"
#include "gradcheck.h"

namespace pointnet {
namespace {

struct Outputs {
  std::vector<double> y, dglobal, dpointfeat, dw, db;
};

template <typename T>
Outputs run(bool fused, int B, int N, int G, int P, int C, uint64_t seed) {
  Rng rng(seed);
  auto fill = [&](size_t n) {
    std::vector<T> v(n);
    for (T& e : v) e = static_cast<T>(rng.uniform(-1.0f, 1.0f));
    return v;
  };
  const int M = B * N;
  const auto global = fill(static_cast<size_t>(B) * G), pointfeat = fill(static_cast<size_t>(M) * P);
  const auto w = fill(static_cast<size_t>(C) * (G + P)), bias = fill(C), dy = fill(static_cast<size_t>(M) * C);
  CpuBackend<T> be;
  std::vector<T> y(static_cast<size_t>(M) * C), dg(static_cast<size_t>(B) * G), dp(static_cast<size_t>(M) * P),
      dw(w.size()), db(C);
  if (fused) {
    be.concat_linear_forward(y.data(), global.data(), pointfeat.data(), w.data(), bias.data(), B, N, G, P, C);
    be.concat_linear_backward(dg.data(), dp.data(), dw.data(), db.data(), dy.data(), global.data(), pointfeat.data(),
                              w.data(), B, N, G, P, C);
  } else {
    std::vector<T> concat(static_cast<size_t>(M) * (G + P)), dconcat(concat.size());
    be.concat_global_forward(concat.data(), global.data(), pointfeat.data(), B, N, G, P);
    be.linear_forward(y.data(), concat.data(), w.data(), bias.data(), M, G + P, C);
    be.linear_backward(dconcat.data(), dw.data(), db.data(), dy.data(), concat.data(), w.data(), M, G + P, C);
    be.concat_global_backward(dg.data(), dp.data(), dconcat.data(), B, N, G, P);
  }
  auto d = [](const std::vector<T>& v) { return std::vector<double>(v.begin(), v.end()); };
  return {d(y), d(dg), d(dp), d(dw), d(db)};
}

double relative(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

template <typename T>
void expect_same(int B, int N, int G, int P, int C, double tol) {
  const Outputs ref = run<T>(false, B, N, G, P, C, 3), got = run<T>(true, B, N, G, P, C, 3);
  EXPECT_LT(relative(got.y, ref.y), tol) << "y";
  EXPECT_LT(relative(got.dglobal, ref.dglobal), tol) << "dglobal";
  EXPECT_LT(relative(got.dpointfeat, ref.dpointfeat), tol) << "dpointfeat";
  EXPECT_LT(relative(got.dw, ref.dw), tol) << "dw";
  EXPECT_LT(relative(got.db, ref.db), tol) << "dbias";
}

TEST(ConcatLinear, EqualsConcatThenLinearInDouble) {
  expect_same<double>(3, 7, 10, 4, 6, 1e-13);
  expect_same<double>(1, 1, 5, 3, 2, 1e-13);
}

TEST(ConcatLinear, EqualsConcatThenLinearInFloatAtPointNetWidths) {
  expect_same<float>(4, 300, 1024, 64, 512, 1e-6);
}

}  // namespace
}  // namespace pointnet
