// The fused fp32 GEMM + max kernel (cpu/f32_linear_max.h) against a plain
// double-precision loop, over shapes that hit every tail: rows not a multiple
// of the 12-row block (the block repeats the last row), outputs not a
// multiple of the 32-channel panel (masked stores), thin inputs. The bound is
// the standard one for a K-term fp32 dot product, per channel:
// |got - exact| <= gamma_K * max over rows of sum_k |x_k w_k|, gamma_K =
// K u / (1 - K u), u = 2^-24 (and the max of perturbed values moves by at
// most the largest perturbation). Skips on CPUs without AVX-512F.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/rng.h"
#include "cpu/f32_linear_max.h"

namespace pointnet {
namespace {

struct Shape {
  int rows, in, out;
};

void check(const Shape& s, bool preset) {
  SCOPED_TRACE(testing::Message() << s.rows << " rows, " << s.in << " -> " << s.out << (preset ? ", preset ymax" : ""));
  Rng rng(static_cast<uint64_t>(s.rows * 7919 + s.in * 31 + s.out));
  std::vector<float> x(static_cast<size_t>(s.rows) * s.in), w(static_cast<size_t>(s.out) * s.in);
  for (float& v : x) v = rng.uniform(-1.0f, 1.0f);
  for (float& v : w) v = rng.uniform(-0.2f, 0.2f);
  const cpu::F32PanelWeights panels = cpu::pack_f32_panels(w.data(), s.out, s.in);
  // One sentinel past the end: the padded channels of the last panel must not be stored.
  std::vector<float> ymax(static_cast<size_t>(s.out) + 1, -std::numeric_limits<float>::infinity());
  ymax[s.out] = 12345.0f;
  std::vector<float> old(s.out, -std::numeric_limits<float>::infinity());
  if (preset)
    for (int o = 0; o < s.out; ++o) ymax[o] = old[o] = rng.uniform(-0.5f, 0.5f);
  cpu::f32_linear_max(ymax.data(), x.data(), s.rows, panels);

  const double u = std::ldexp(1.0, -24), gamma = s.in * u / (1 - s.in * u);
  for (int o = 0; o < s.out; ++o) {
    double exact = old[o], bound = 0.0;
    for (int r = 0; r < s.rows; ++r) {
      double dot = 0.0, mag = 0.0;
      for (int k = 0; k < s.in; ++k) {
        const double p = static_cast<double>(x[static_cast<size_t>(r) * s.in + k]) * w[static_cast<size_t>(o) * s.in + k];
        dot += p;
        mag += std::fabs(p);
      }
      exact = std::max(exact, dot);
      bound = std::max(bound, gamma * mag);
    }
    ASSERT_TRUE(std::isfinite(ymax[o])) << "channel " << o;
    ASSERT_LE(std::fabs(ymax[o] - exact), bound) << "channel " << o << ": " << ymax[o] << " vs " << exact;
  }
  EXPECT_EQ(ymax[s.out], 12345.0f) << "a padded channel was stored";
}

TEST(F32LinearMax, MatchesDoubleLoopOnEveryTail) {
  if (!cpu::f32_linear_max_available()) GTEST_SKIP() << "this CPU has no AVX-512F";
  for (const Shape& s : {Shape{1, 128, 1024}, Shape{12, 128, 1024}, Shape{13, 128, 1024}, Shape{128, 128, 1024},
                         Shape{130, 64, 40}, Shape{7, 3, 17}, Shape{25, 128, 33}, Shape{11, 1, 64}, Shape{24, 65, 32}})
    for (bool preset : {false, true}) check(s, preset);
}

// A NaN product never replaces a number (as std::max(ymax, v)): a row of NaN
// leaves the other rows' max; a tile of nothing but NaN leaves ymax as it was.
TEST(F32LinearMax, NanRowsNeverWin) {
  if (!cpu::f32_linear_max_available()) GTEST_SKIP() << "this CPU has no AVX-512F";
  const int in = 4, out = 20, rows = 14;
  std::vector<float> w(out * in, 0.5f), x(rows * in, 1.0f);
  for (int k = 0; k < in; ++k) x[3 * in + k] = std::numeric_limits<float>::quiet_NaN();  // row 3
  for (int k = 0; k < in; ++k) x[5 * in + k] = 2.0f;                                      // row 5: the max, 4
  const cpu::F32PanelWeights p = cpu::pack_f32_panels(w.data(), out, in);
  std::vector<float> ymax(out, -std::numeric_limits<float>::infinity());
  cpu::f32_linear_max(ymax.data(), x.data(), rows, p);
  for (int o = 0; o < out; ++o) EXPECT_EQ(ymax[o], 4.0f) << o;
  std::vector<float> all_nan(in, std::numeric_limits<float>::quiet_NaN()), kept(out, -7.0f);
  cpu::f32_linear_max(kept.data(), all_nan.data(), 1, p);
  for (int o = 0; o < out; ++o) EXPECT_EQ(kept[o], -7.0f) << o;
}

TEST(F32LinearMax, PackingPutsEachWeightInItsPanel) {
  const int out = 40, in = 3;
  std::vector<float> w(out * in);
  for (int i = 0; i < out * in; ++i) w[i] = static_cast<float>(i + 1);
  const cpu::F32PanelWeights p = cpu::pack_f32_panels(w.data(), out, in);
  ASSERT_EQ(p.panels, 2);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i)
      EXPECT_EQ(p.packed[(static_cast<size_t>(o / 32) * in + i) * 32 + o % 32], w[static_cast<size_t>(o) * in + i]);
  for (int o = out; o < 64; ++o)
    for (int i = 0; i < in; ++i) EXPECT_EQ(p.packed[(static_cast<size_t>(1) * in + i) * 32 + o % 32], 0.0f);
}

}  // namespace
}  // namespace pointnet
