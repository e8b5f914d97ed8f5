// Int8Weights: per-output-channel symmetric quantisation of fp32 weights, and
// the packed layout the VNNI kernel reads (rebuilt whenever q is loaded).
#include <algorithm>
#include <limits>
#include <cmath>
#include <cstdlib>
#include <utility>

#include "core/errors.h"
#include "cpu/int8_gemm.h"

namespace pointnet::cpu {
namespace {

// [ceil(out/16)][ceil(in/4)][16][4]: one 64-byte block holds 4 consecutive
// inputs of 16 consecutive output channels, the operand of one vpdpbusd.
std::vector<Int8Block> pack(const std::vector<int8_t>& q, int out, int in) {
  const int groups = (out + 15) / 16, steps = (in + 3) / 4;
  std::vector<Int8Block> packed(static_cast<size_t>(groups) * steps, Int8Block{});
  for (int o = 0; o < out; ++o)
    for (int k = 0; k < in; ++k)
      packed[static_cast<size_t>(o / 16) * steps + k / 4].b[(o % 16) * 4 + k % 4] =
          q[static_cast<size_t>(o) * in + k];
  return packed;
}

}  // namespace

Int8Weights Int8Weights::quantize(const float* w, int out, int in) {
  constexpr float kSmallestRowMax = 127.f * std::numeric_limits<float>::min();
  if (out < 0 || in < 0) fail("Int8Weights::quantize: negative shape (", out, ", ", in, ")");
  std::vector<float> scale(out);
  std::vector<int8_t> q(static_cast<size_t>(out) * in);
  for (int o = 0; o < out; ++o) {
    const float* row = w + static_cast<size_t>(o) * in;
    float amax = 0.f;
    for (int k = 0; k < in; ++k) {
      if (!std::isfinite(row[k])) fail("Int8Weights::quantize: weight (", o, ", ", k, ") is ", row[k]);
      amax = std::max(amax, std::fabs(row[k]));
    }
    // An all-zero row quantises to zeros with any scale; so does a row too small
    // for amax / 127 to be a normal float (it would round to 0 or lose bits):
    // such weights (a channel weight decay has all but zeroed) are below any
    // other term of fp32 sums.
    scale[o] = amax >= kSmallestRowMax ? amax / 127.f : 1.f;
    for (int k = 0; k < in; ++k) {
      // |row[k] / scale| <= 127 up to rounding; the clamp catches the rounding.
      const float t = std::nearbyint(row[k] / scale[o]);
      q[static_cast<size_t>(o) * in + k] = static_cast<int8_t>(std::clamp(t, -127.f, 127.f));
    }
  }
  return from_quantized(std::move(q), std::move(scale), out, in);
}

Int8Weights Int8Weights::from_quantized(std::vector<int8_t> q, std::vector<float> scale, int out, int in) {
  if (out < 0 || in < 0) fail("Int8Weights: negative shape (", out, ", ", in, ")");
  if (q.size() != static_cast<size_t>(out) * in)
    fail("Int8Weights: ", q.size(), " quantised weights, expected ", out, " x ", in);
  if (scale.size() != static_cast<size_t>(out)) fail("Int8Weights: ", scale.size(), " scales, expected ", out);
  for (size_t i = 0; i < q.size(); ++i)
    if (q[i] == -128) fail("Int8Weights: weight (", i / in, ", ", i % in, ") is -128, expected -127..127");
  for (int o = 0; o < out; ++o)
    if (!(std::isfinite(scale[o]) && scale[o] > 0.f))
      fail("Int8Weights: scale ", o, " is ", scale[o], ", expected finite and > 0");
  Int8Weights w;
  w.out = out;
  w.in = in;
  w.packed = pack(q, out, in);
  w.q = std::move(q);
  w.scale = std::move(scale);
  return w;
}

}  // namespace pointnet::cpu
