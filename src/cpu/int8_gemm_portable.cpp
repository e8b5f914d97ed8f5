// The portable INT8 kernel: plain C++ over the (out, in) row-major weights,
// exact int32 dot products the compiler vectorises. The ground truth the VNNI
// kernel must match bit for bit, and the fallback on CPUs without VNNI.
#include <cmath>

#include "cpu/int8_kernels.h"

namespace pointnet::cpu::int8_detail {
namespace {

int32_t dot(const uint8_t* x, const int8_t* w, int K) {
  int32_t sum = 0;
  for (int k = 0; k < K; ++k) sum += static_cast<int32_t>(x[k]) * static_cast<int32_t>(w[k]);
  return sum;
}

// The epilogue's arithmetic, one fused multiply-add as the VNNI kernel's
// vfmadd: explicit, so no compiler flag (contraction, -mfma or not) changes
// the result and the two kernels agree bit for bit.
float value(int32_t acc, float s, float bias) { return std::fma(static_cast<float>(acc), s, bias); }

// Clamp first (NaN -> 0) so the conversion never sees a value out of range.
uint8_t to_u8(float t) {
  t = t > 0.f ? t : 0.f;
  t = t < 255.f ? t : 255.f;
  return static_cast<uint8_t>(std::nearbyint(t));
}

}  // namespace

void linear_portable(const uint8_t* x, int M, const Weights& w, const Output& out) {
  const int K = w.in, N = w.out;
  if (out.kind == Output::max) {
    // Max over the int32 accumulators, then one epilogue (v is increasing in acc).
    float* ymax = static_cast<float*>(out.y);
    for (int o = 0; o < N; ++o) {
      const int8_t* wq = w.q + static_cast<size_t>(o) * K;
      int32_t best = dot(x, wq, K);
      for (int m = 1; m < M; ++m) {
        const int32_t acc = dot(x + static_cast<size_t>(m) * K, wq, K);
        best = acc > best ? acc : best;
      }
      const float v = value(best, out.x_scale * w.scale[o], out.bias ? out.bias[o] : 0.f);
      if (v > ymax[o]) ymax[o] = v;
    }
    return;
  }
  for (int m = 0; m < M; ++m) {
    const uint8_t* xm = x + static_cast<size_t>(m) * K;
    for (int o = 0; o < N; ++o) {
      float v = value(dot(xm, w.q + static_cast<size_t>(o) * K, K), out.x_scale * w.scale[o],
                      out.bias ? out.bias[o] : 0.f);
      if (out.relu) v = v > 0.f ? v : 0.f;
      const size_t at = static_cast<size_t>(m) * N + o;
      if (out.kind == Output::f32)
        static_cast<float*>(out.y)[at] = v;
      else
        static_cast<uint8_t*>(out.y)[at] = to_u8(v * out.inv_y_scale);
    }
  }
}

void quantize_u8_portable(uint8_t* q, const float* x, size_t count, float x_scale) {
  for (size_t i = 0; i < count; ++i) q[i] = to_u8(x[i] / x_scale);
}

}  // namespace pointnet::cpu::int8_detail
