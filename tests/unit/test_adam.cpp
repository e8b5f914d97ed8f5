// Adam's L2 weight decay (torch.optim.Adam's weight_decay): the step uses the
// gradient g + wd * p. At the first step Adam's update is lr * g' / (|g'| + eps)
// after bias correction, which pins the formula down without PyTorch.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "cpu/cpu_backend.h"
#include "train/adam.h"

namespace pointnet {
namespace {

TEST(AdamWeightDecay, FirstStepUsesTheDecayedGradient) {
  CpuBackend<double> be;
  const std::vector<double> p0 = {1.5, -2.0, 0.25, 0.0}, g = {0.1, 0.3, -0.05, 0.2};
  const double lr = 1e-2, wd = 0.1, eps = 1e-8;
  AdamConfig config;
  config.weight_decay = wd;
  Adam<double> adam(be, p0.size(), config);
  std::vector<double> p = p0;
  adam.step(p.data(), g.data(), lr);
  for (size_t i = 0; i < p.size(); ++i) {
    const double decayed = g[i] + wd * p0[i];
    EXPECT_NEAR(p[i], p0[i] - lr * decayed / (std::fabs(decayed) + eps), 1e-15) << i;
  }
  // Element 0: g = 0.1, wd * p = 0.15: decay flips nothing but moves it by lr
  // either way; element 1: g = 0.3, wd * p = -0.2: still positive. Check that
  // decay changed what it should: without it, element 3 (p = 0) is the same.
  std::vector<double> q = p0;
  Adam<double> plain(be, p0.size());
  plain.step(q.data(), g.data(), lr);
  EXPECT_EQ(q[3], p[3]);
  EXPECT_NE(q[2], p[2]);  // g = -0.05, wd * p = 0.025: half the gradient, the same sign
}

TEST(AdamWeightDecay, EqualsPlainAdamOnTheDecayedGradient) {
  CpuBackend<double> be;
  const size_t n = 257;
  std::vector<double> p(n), g(n);
  for (size_t i = 0; i < n; ++i) {
    p[i] = std::sin(0.37 * i);
    g[i] = 0.01 * std::cos(1.3 * i);
  }
  AdamConfig config;
  config.weight_decay = 1e-4;
  Adam<double> decayed(be, n, config), plain(be, n);
  std::vector<double> a = p, b = p;
  for (int step = 0; step < 3; ++step) {
    decayed.step(a.data(), g.data(), 1e-3);
    std::vector<double> g_plus(n);
    for (size_t i = 0; i < n; ++i) g_plus[i] = g[i] + 1e-4 * b[i];
    plain.step(b.data(), g_plus.data(), 1e-3);
  }
  for (size_t i = 0; i < n; ++i) EXPECT_NEAR(a[i], b[i], 1e-15) << i;
}

}  // namespace
}  // namespace pointnet
