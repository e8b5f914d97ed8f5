// The INT8 GEMM (cpu/int8_gemm.h) against plain scalar references, for both
// kernels (the VNNI part is skipped on CPUs without it). Accumulations must be
// exact; the fp32 epilogue may differ from a double reference only by float
// rounding (bound derived below), the u8 output only where that rounding can
// move the value across a rounding boundary.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "cpu/int8_gemm.h"
#include "expect_error.h"

namespace pointnet {
namespace cpu {
// ctest names the parameterised tests by this (else "4-byte object <01-00 00-00>").
void PrintTo(Int8Kernel kernel, std::ostream* os) { *os << (kernel == Int8Kernel::portable ? "portable" : "vnni"); }
}  // namespace cpu

namespace {

using cpu::Int8Kernel;
using cpu::Int8Weights;

constexpr double kU = 1.0 / 16777216.0;  // float's unit roundoff, 2^-24

struct Shape {
  int M, K, N;
};
// M covers every row remainder of the 6-row block, N every panel width
// (1-4 groups of 16) and partial groups, K every remainder mod 4; then the
// model's layers.
const Shape kShapes[] = {{1, 1, 1},     {1, 4, 16},    {2, 3, 5},     {3, 7, 17},    {4, 8, 33},
                         {5, 5, 50},    {6, 12, 64},   {7, 130, 65},  {12, 9, 31},   {13, 64, 128},
                         {31, 256, 128}, {37, 512, 256}, {29, 128, 1024}, {64, 64, 512}, {33, 128, 50},
                         {2, 1024, 3}};

std::vector<uint8_t> random_u8(Rng& rng, size_t n, uint32_t top = 256) {
  std::vector<uint8_t> v(n);
  for (uint8_t& e : v) e = static_cast<uint8_t>(rng.below(top));
  return v;
}

std::vector<float> random_f32(Rng& rng, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (float& e : v) e = rng.uniform(lo, hi);
  return v;
}

// acc[m][o] = sum_k x[m][k] q[o][k] in int64: cannot overflow, so any int32
// overflow or lost term in the kernel shows.
std::vector<int64_t> reference_acc(const std::vector<uint8_t>& x, int M, const Int8Weights& w) {
  std::vector<int64_t> acc(static_cast<size_t>(M) * w.out, 0);
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < w.out; ++o)
      for (int k = 0; k < w.in; ++k)
        acc[static_cast<size_t>(m) * w.out + o] +=
            int64_t{x[static_cast<size_t>(m) * w.in + k]} * w.q[static_cast<size_t>(o) * w.in + k];
  return acc;
}

// v in double from the same integers and the same float scales, and the bound
// on the kernel's float error: s = x_scale * scale (1 rounding), float(acc)
// (1, none below 2^24), the fused multiply-add (1): |v - v_exact| <=
// u (5 |acc s| + 2 |bias|) with room to spare (a separate multiply and add,
// one more rounding, would also pass).
struct Reference {
  std::vector<double> v, err;
};
Reference reference_values(const std::vector<int64_t>& acc, int M, float x_scale, const Int8Weights& w,
                           const float* bias) {
  Reference r{std::vector<double>(acc.size()), std::vector<double>(acc.size())};
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < w.out; ++o) {
      const size_t i = static_cast<size_t>(m) * w.out + o;
      const double prod = static_cast<double>(acc[i]) * x_scale * w.scale[o], b = bias ? bias[o] : 0.0;
      r.v[i] = prod + b;
      r.err[i] = kU * (5 * std::fabs(prod) + 2 * std::fabs(b));
    }
  return r;
}

// Ties to even, after clamping to [0, 255] (the kernels' rule).
double round_u8(double t) { return std::nearbyint(std::min(std::max(t, 0.0), 255.0)); }

struct Case {
  Shape s;
  std::vector<uint8_t> x;
  Int8Weights w;
  std::vector<float> bias;
  float x_scale;
  Case(Shape shape, uint64_t seed) : s(shape) {
    Rng rng(seed);
    x = random_u8(rng, static_cast<size_t>(s.M) * s.K);
    const std::vector<float> wf = random_f32(rng, static_cast<size_t>(s.N) * s.K, -0.5f, 0.5f);
    w = Int8Weights::quantize(wf.data(), s.N, s.K);
    bias = random_f32(rng, s.N, -2.f, 2.f);
    x_scale = rng.uniform(0.5f, 2.f) / 255.f;
  }
};

// Runs the test body once per kernel; the VNNI run is skipped without VNNI.
class Int8Gemm : public ::testing::TestWithParam<Int8Kernel> {
 protected:
  void SetUp() override {
    if (GetParam() == Int8Kernel::avx512_vnni && !cpu::int8_vnni_supported())
      GTEST_SKIP() << "this CPU has no AVX512-VNNI";
    cpu::set_int8_kernel_for_testing(GetParam());
  }
  void TearDown() override { cpu::set_int8_kernel_for_testing(Int8Kernel::automatic); }
};

TEST_P(Int8Gemm, KernelNameIsTheForcedOne) {
  EXPECT_STREQ(cpu::int8_kernel_name(), GetParam() == Int8Kernel::portable ? "portable" : "avx512-vnni");
}

// Unit scales and no bias: y is the accumulator itself, exactly (|acc| < 2^24
// by the ranges chosen: 255 * 63 * 1024 < 2^24).
TEST_P(Int8Gemm, AccumulationIsExact) {
  for (const Shape& s : kShapes) {
    Rng rng(1000 + s.M * 7 + s.K * 131 + s.N);
    const std::vector<uint8_t> x = random_u8(rng, static_cast<size_t>(s.M) * s.K);
    std::vector<int8_t> q(static_cast<size_t>(s.N) * s.K);
    for (int8_t& e : q) e = static_cast<int8_t>(static_cast<int>(rng.below(127)) - 63);
    const Int8Weights w = Int8Weights::from_quantized(q, std::vector<float>(s.N, 1.f), s.N, s.K);
    const std::vector<int64_t> acc = reference_acc(x, s.M, w);
    std::vector<float> y(acc.size() + 64, std::numeric_limits<float>::quiet_NaN());  // poison + guard
    cpu::int8_linear_f32(y.data(), x.data(), s.M, 1.f, w, nullptr, false);
    for (size_t i = 0; i < acc.size(); ++i)
      ASSERT_EQ(y[i], static_cast<float>(acc[i])) << s.M << "x" << s.K << "x" << s.N << " at " << i;
    for (size_t i = acc.size(); i < y.size(); ++i) ASSERT_TRUE(std::isnan(y[i])) << "wrote past the end";
  }
}

TEST_P(Int8Gemm, F32MatchesDoubleReference) {
  for (const Shape& s : kShapes) {
    const Case c(s, 7 + s.M * 1000003ull + s.K * 1009 + s.N);
    const Reference ref = reference_values(reference_acc(c.x, s.M, c.w), s.M, c.x_scale, c.w, c.bias.data());
    const size_t n = ref.v.size();
    std::vector<float> y(n + 64, std::numeric_limits<float>::quiet_NaN()), yr(n + 64, -7.f);
    cpu::int8_linear_f32(y.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data(), false);
    cpu::int8_linear_f32(yr.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data(), true);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_LE(std::fabs(y[i] - ref.v[i]), ref.err[i]) << s.M << "x" << s.K << "x" << s.N << " at " << i;
      ASSERT_EQ(yr[i], std::max(y[i], 0.f)) << "relu at " << i;  // same arithmetic, then max
    }
    for (size_t i = n; i < y.size(); ++i) ASSERT_TRUE(std::isnan(y[i]) && yr[i] == -7.f) << "wrote past the end";
  }
}

// y is the rounding of v' / y_scale; v' is known to within ref.err and the
// reciprocal multiply adds 2 roundings, so y must lie between the roundings of
// the two ends of that interval (equal ends almost everywhere).
TEST_P(Int8Gemm, U8MatchesDoubleReference) {
  for (const Shape& s : kShapes) {
    for (bool relu : {false, true}) {
      const Case c(s, 11 + s.M * 1000003ull + s.K * 1009 + s.N);
      const Reference ref = reference_values(reference_acc(c.x, s.M, c.w), s.M,
                                             c.x_scale, c.w, c.bias.data());
      const float y_scale = 0.01f;  // 255 steps cover v in [0, 2.55]: both clamps are hit
      const size_t n = ref.v.size();
      std::vector<uint8_t> y(n + 64, 0xCD);
      cpu::int8_linear_u8(y.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data(), relu, y_scale);
      int low = 0, high = 0;
      for (size_t i = 0; i < n; ++i) {
        double lo = ref.v[i] - ref.err[i], hi = ref.v[i] + ref.err[i];
        if (relu) lo = std::max(lo, 0.0), hi = std::max(hi, 0.0);
        const double t_lo = lo / y_scale, t_hi = hi / y_scale;
        const double r_lo = round_u8(t_lo - 3 * kU * std::fabs(t_lo)), r_hi = round_u8(t_hi + 3 * kU * std::fabs(t_hi));
        ASSERT_GE(y[i], r_lo) << s.M << "x" << s.K << "x" << s.N << " at " << i << " v=" << ref.v[i];
        ASSERT_LE(y[i], r_hi) << s.M << "x" << s.K << "x" << s.N << " at " << i << " v=" << ref.v[i];
        low += y[i] == 0;
        high += y[i] == 255;
      }
      if (n >= 1000) {
        EXPECT_GT(low, 0) << "the clamp at 0 was not exercised";
        EXPECT_GT(high, 0) << "the clamp at 255 was not exercised";
      }
      for (size_t i = n; i < y.size(); ++i) ASSERT_EQ(y[i], 0xCD) << "wrote past the end";
    }
  }
}

// The running max equals the max over rows of the f32 output bit for bit,
// never lowers what ymax holds, and two tiles accumulate as one call.
TEST_P(Int8Gemm, MaxEqualsMaxOfF32AndAccumulatesAcrossTiles) {
  for (const Shape& s : kShapes) {
    const Case c(s, 13 + s.M * 1000003ull + s.K * 1009 + s.N);
    std::vector<float> y(static_cast<size_t>(s.M) * s.N);
    cpu::int8_linear_f32(y.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data(), false);
    std::vector<float> expect(s.N, -std::numeric_limits<float>::infinity());
    for (int m = 0; m < s.M; ++m)
      for (int o = 0; o < s.N; ++o) expect[o] = std::max(expect[o], y[static_cast<size_t>(m) * s.N + o]);

    std::vector<float> ymax(s.N + 16, -std::numeric_limits<float>::infinity());
    ymax[s.N] = 42.f;  // guard
    cpu::int8_linear_max(ymax.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data());
    for (int o = 0; o < s.N; ++o) ASSERT_EQ(ymax[o], expect[o]) << s.M << "x" << s.K << "x" << s.N << " at " << o;
    ASSERT_EQ(ymax[s.N], 42.f) << "wrote past the end";

    const int first = s.M / 2;  // may be 0: an empty tile leaves ymax alone
    std::vector<float> split(s.N, -std::numeric_limits<float>::infinity());
    cpu::int8_linear_max(split.data(), c.x.data(), first, c.x_scale, c.w, c.bias.data());
    cpu::int8_linear_max(split.data(), c.x.data() + static_cast<size_t>(first) * s.K, s.M - first, c.x_scale,
                         c.w, c.bias.data());
    for (int o = 0; o < s.N; ++o) ASSERT_EQ(split[o], expect[o]) << "two tiles, at " << o;

    std::vector<float> high(s.N, 1e30f);  // a larger running max stays
    cpu::int8_linear_max(high.data(), c.x.data(), s.M, c.x_scale, c.w, c.bias.data());
    for (int o = 0; o < s.N; ++o) ASSERT_EQ(high[o], 1e30f);
  }
}

// Every value negative (negative weights, negative bias): the max is the
// least negative, not 0 and not the starting -inf.
TEST_P(Int8Gemm, MaxOfNegativeValues) {
  const int M = 19, K = 20, N = 37;
  Rng rng(5);
  const std::vector<uint8_t> x = random_u8(rng, static_cast<size_t>(M) * K);
  const std::vector<float> wf = random_f32(rng, static_cast<size_t>(N) * K, -1.f, -0.01f);
  const Int8Weights w = Int8Weights::quantize(wf.data(), N, K);
  const std::vector<float> bias = random_f32(rng, N, -3.f, -1.f);
  const Reference ref = reference_values(reference_acc(x, M, w), M, 0.01f, w, bias.data());
  std::vector<float> ymax(N, -std::numeric_limits<float>::infinity());
  cpu::int8_linear_max(ymax.data(), x.data(), M, 0.01f, w, bias.data());
  for (int o = 0; o < N; ++o) {
    double best = -1e300, err = 0;
    for (int m = 0; m < M; ++m)
      if (ref.v[m * N + o] > best) best = ref.v[m * N + o], err = ref.err[m * N + o];
    ASSERT_LT(best, 0.0);
    EXPECT_NEAR(ymax[o], best, err) << o;
  }
}

// x = 255 and w = +-127 over K = 1024: |acc| = 255 * 127 * 1024 = 33,162,240
// fits int32 with room (2^31 / 33e6 = 64) and is exactly a float (32385 * 2^10).
TEST_P(Int8Gemm, SaturatedInputsAccumulateExactly) {
  const int M = 7, K = 1024, N = 19;
  const std::vector<uint8_t> x(static_cast<size_t>(M) * K, 255);
  std::vector<int8_t> q(static_cast<size_t>(N) * K);
  for (int o = 0; o < N; ++o)
    for (int k = 0; k < K; ++k)  // all -127, all +127, alternating (sum 0)
      q[static_cast<size_t>(o) * K + k] = (o % 3 == 0) ? -127 : (o % 3 == 1) ? 127 : (k % 2 ? 127 : -127);
  const Int8Weights w = Int8Weights::from_quantized(q, std::vector<float>(N, 1.f), N, K);
  std::vector<float> y(static_cast<size_t>(M) * N);
  cpu::int8_linear_f32(y.data(), x.data(), M, 1.f, w, nullptr, false);
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < N; ++o)
      ASSERT_EQ(y[m * N + o], o % 3 == 0 ? -33162240.f : o % 3 == 1 ? 33162240.f : 0.f) << m << "," << o;
  std::vector<float> ymax(N, -std::numeric_limits<float>::infinity());
  cpu::int8_linear_max(ymax.data(), x.data(), M, 1.f, w, nullptr);
  EXPECT_EQ(ymax[0], -33162240.f);
  EXPECT_EQ(ymax[1], 33162240.f);
}

// Requantisation clamps at 0 and 255 and rounds ties to even: with unit scales
// v = acc + 0.5 exactly, so acc = 2 gives 2 (2.5), acc = 3 gives 4 (3.5).
TEST_P(Int8Gemm, RequantiseClampsAndRoundsHalfToEven) {
  const int K = 1, N = 3;
  const Int8Weights w = Int8Weights::from_quantized({1, -1, 127}, {1.f, 1.f, 1.f}, N, K);
  const std::vector<uint8_t> x = {0, 1, 2, 3, 4, 255};
  const int M = static_cast<int>(x.size());
  const float bias[N] = {0.5f, 0.5f, 0.5f};
  std::vector<uint8_t> y(M * N, 0xCD);
  cpu::int8_linear_u8(y.data(), x.data(), M, 1.f, w, bias, false, 1.f);
  const uint8_t expect[6][3] = {{0, 0, 0},     // 0.5 -> 0; 0.5 -> 0; 0.5 -> 0
                                {2, 0, 128},   // 1.5 -> 2; -0.5 -> 0 (clamped); 127.5 -> 128
                                {2, 0, 254},   // 2.5 -> 2; 254.5 -> 254
                                {4, 0, 255},   // 3.5 -> 4; 381.5 -> 255 (clamped)
                                {4, 0, 255},   // 4.5 -> 4
                                {255, 0, 255}};  // 255.5 -> 255
  for (int m = 0; m < M; ++m)
    for (int o = 0; o < N; ++o) EXPECT_EQ(y[m * N + o], expect[m][o]) << "x=" << int(x[m]) << " o=" << o;
}

// quantize_u8: ties to even, clamps, NaN -> 0, any count (the vector tail).
TEST_P(Int8Gemm, QuantizeU8) {
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> x = {-1.f, 0.f, 0.25f, 0.75f, 1.25f, 3.f, 127.25f, 127.5f, 200.f, inf, -inf,
                                std::numeric_limits<float>::quiet_NaN(), -0.f, 0.2499f, 1e30f};
  const std::vector<uint8_t> expect = {0, 0, 0, 2, 2, 6, 254, 255, 255, 255, 0, 0, 0, 0, 255};
  std::vector<uint8_t> q(x.size() + 8, 0xCD);
  cpu::quantize_u8(q.data(), x.data(), x.size(), 0.5f);  // x / 0.5 exact: ties are real ties
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(q[i], expect[i]) << "x=" << x[i];
  for (size_t i = x.size(); i < q.size(); ++i) EXPECT_EQ(q[i], 0xCD) << "wrote past the end";

  Rng rng(3);
  for (size_t count : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{1000}}) {
    const std::vector<float> v = random_f32(rng, count, -1.f, 6.f);
    const float scale = 6.f / 255.f;
    std::vector<uint8_t> out(count + 1, 0xCD);
    cpu::quantize_u8(out.data(), v.data(), count, scale);
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(out[i], round_u8(v[i] / scale)) << count << " at " << i;
    ASSERT_EQ(out[count], 0xCD);
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, Int8Gemm, ::testing::Values(Int8Kernel::portable, Int8Kernel::avx512_vnni),
                         [](const ::testing::TestParamInfo<Int8Kernel>& info) {
                           return info.param == Int8Kernel::portable ? "portable" : "vnni";
                         });

// The VNNI kernel repeats the portable epilogue operation for operation: the
// two agree bit for bit on every output.
TEST(Int8GemmKernels, VnniAgreesWithPortableBitForBit) {
  if (!cpu::int8_vnni_supported()) GTEST_SKIP() << "this CPU has no AVX512-VNNI";
  struct Outputs {
    std::vector<float> f32, max;
    std::vector<uint8_t> u8;
  };
  auto run = [](const Case& c, Int8Kernel kernel) {
    cpu::set_int8_kernel_for_testing(kernel);
    Outputs o{std::vector<float>(static_cast<size_t>(c.s.M) * c.s.N), std::vector<float>(c.s.N, -1.f),
              std::vector<uint8_t>(static_cast<size_t>(c.s.M) * c.s.N)};
    cpu::int8_linear_f32(o.f32.data(), c.x.data(), c.s.M, c.x_scale, c.w, c.bias.data(), true);
    cpu::int8_linear_max(o.max.data(), c.x.data(), c.s.M, c.x_scale, c.w, c.bias.data());
    cpu::int8_linear_u8(o.u8.data(), c.x.data(), c.s.M, c.x_scale, c.w, c.bias.data(), false, 0.013f);
    cpu::set_int8_kernel_for_testing(Int8Kernel::automatic);
    return o;
  };
  for (const Shape& s : kShapes) {
    const Case c(s, 17 + s.M * 1000003ull + s.K * 1009 + s.N);
    const Outputs p = run(c, Int8Kernel::portable), v = run(c, Int8Kernel::avx512_vnni);
    const std::string shape = std::to_string(s.M) + "x" + std::to_string(s.K) + "x" + std::to_string(s.N);
    ASSERT_EQ(0, std::memcmp(p.f32.data(), v.f32.data(), p.f32.size() * sizeof(float))) << shape;
    ASSERT_EQ(0, std::memcmp(p.max.data(), v.max.data(), p.max.size() * sizeof(float))) << shape;
    ASSERT_EQ(p.u8, v.u8) << shape;
  }
}

TEST(Int8GemmKernels, AutomaticPicksVnniWhereSupported) {
  cpu::set_int8_kernel_for_testing(Int8Kernel::automatic);
  EXPECT_STREQ(cpu::int8_kernel_name(), cpu::int8_vnni_supported() ? "avx512-vnni" : "portable");
}

TEST(Int8Weights, QuantizeKnownRows) {
  const float w[3][4] = {{0.5f, -1.27f, 0.f, 1.f},   // max |w| 1.27: scale 0.01
                         {0.f, 0.f, 0.f, 0.f},       // all zero: scale 1, q 0
                         {-2.f, 0.5f, 2.f, -0.01f}};  // scale 2/127: 31.75 -> 32, -0.635 -> -1
  const Int8Weights q = Int8Weights::quantize(&w[0][0], 3, 4);
  EXPECT_EQ(q.scale[0], 1.27f / 127.f);
  EXPECT_EQ(q.scale[1], 1.f);
  EXPECT_EQ(q.scale[2], 2.f / 127.f);
  EXPECT_EQ(q.q, (std::vector<int8_t>{50, -127, 0, 100, 0, 0, 0, 0, -127, 32, 127, -1}));
  EXPECT_EQ(q.out, 3);
  EXPECT_EQ(q.in, 4);
}

// A channel that weight decay has all but zeroed (seen in a real ModelNet40
// checkpoint after BatchNorm folding): max |w| / 127 is not a normal float,
// 0 for the subnormal row here. It quantises to zeros with scale 1, as a row
// of zeros, instead of a scale of 0 that the engine then refuses.
TEST(Int8Weights, QuantizeRowsTooSmallForAScaleAsZeros) {
  const float tiny = std::numeric_limits<float>::denorm_min() * 4;  // 5.6e-45
  const float small = 100.f * std::numeric_limits<float>::min();    // just under 127 x FLT_MIN
  const float least = 127.f * std::numeric_limits<float>::min();    // the smallest row max with a scale
  const float w[3][2] = {{tiny, -tiny}, {small, 0.f}, {least, -least / 2}};
  const Int8Weights q = Int8Weights::quantize(&w[0][0], 3, 2);
  EXPECT_EQ(q.scale[0], 1.f);
  EXPECT_EQ(q.scale[1], 1.f);
  EXPECT_EQ(q.scale[2], least / 127.f);
  EXPECT_EQ(q.q, (std::vector<int8_t>{0, 0, 0, 0, 127, -64}));
}

// Round to nearest: every weight within half a step of its quantised value.
TEST(Int8Weights, QuantizeErrorIsAtMostHalfAStep) {
  Rng rng(9);
  const int out = 40, in = 70;
  const std::vector<float> w = random_f32(rng, static_cast<size_t>(out) * in, -3.f, 3.f);
  const Int8Weights q = Int8Weights::quantize(w.data(), out, in);
  for (int o = 0; o < out; ++o)
    for (int k = 0; k < in; ++k) {
      const size_t i = static_cast<size_t>(o) * in + k;
      EXPECT_LE(std::fabs(w[i] - q.scale[o] * q.q[i]), q.scale[o] * (0.5 + 1e-5)) << o << "," << k;
    }
}

// The stored form rebuilds the same kernel layout.
TEST(Int8Weights, FromQuantizedRoundTrips) {
  Rng rng(10);
  const std::vector<float> wf = random_f32(rng, 21 * 13, -1.f, 1.f);
  const Int8Weights a = Int8Weights::quantize(wf.data(), 21, 13);
  const Int8Weights b = Int8Weights::from_quantized(a.q, a.scale, 21, 13);
  ASSERT_EQ(a.packed.size(), b.packed.size());
  ASSERT_EQ(0, std::memcmp(a.packed.data(), b.packed.data(), a.packed.size() * sizeof(cpu::Int8Block)));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(b.packed.data()) % 64, 0u);
}

TEST(Int8Weights, FromQuantizedRefusesBadInput) {
  using pointnet::testing::expect_error_containing;
  expect_error_containing([] { Int8Weights::from_quantized({1, 2, 3}, {1.f}, 1, 4); },
                          {"3 quantised weights, expected 1 x 4"});
  expect_error_containing([] { Int8Weights::from_quantized({1, 2}, {1.f}, 2, 1); }, {"1 scales, expected 2"});
  expect_error_containing([] { Int8Weights::from_quantized({1, -128}, {1.f}, 1, 2); }, {"(0, 1) is -128"});
  expect_error_containing([] { Int8Weights::from_quantized({1}, {0.f}, 1, 1); }, {"scale 0 is 0"});
  expect_error_containing([] { Int8Weights::from_quantized({1}, {std::nanf("")}, 1, 1); }, {"scale 0 is nan"});
  const float bad[2] = {1.f, std::numeric_limits<float>::infinity()};
  expect_error_containing([&] { Int8Weights::quantize(bad, 1, 2); }, {"weight (0, 1) is inf"});
}

TEST(Int8GemmChecks, RefusesBadScales) {
  using pointnet::testing::expect_error_containing;
  const Int8Weights w = Int8Weights::from_quantized({1}, {1.f}, 1, 1);
  uint8_t x = 1, y = 0;
  float f = 0;
  expect_error_containing([&] { cpu::int8_linear_f32(&f, &x, 1, 0.f, w, nullptr, false); }, {"x_scale is 0"});
  expect_error_containing([&] { cpu::int8_linear_u8(&y, &x, 1, 1.f, w, nullptr, false, -1.f); }, {"y_scale is -1"});
  expect_error_containing([&] { cpu::quantize_u8(&y, &f, 1, std::nanf("")); }, {"x_scale is nan"});
  Int8Weights hand;  // filled by hand, never packed
  hand.out = hand.in = 1;
  hand.q = {1};
  hand.scale = {1.f};
  expect_error_containing([&] { cpu::int8_linear_f32(&f, &x, 1, 1.f, hand, nullptr, false); }, {"not packed"});
}

}  // namespace
}  // namespace pointnet
