// The AVX512-VNNI INT8 kernel. Each function carries its own target attribute
// (the file is compiled with the project's flags), so the binary still runs
// on CPUs without VNNI; int8_gemm.cpp calls in only when the CPU has it.
//
// Register block: 6 rows x 4 zmm (64 output channels) = 24 int32 accumulators,
// 4 weight vectors, 1 broadcast of 4 activation bytes: 29 of 32 zmm. Per 4
// inputs: 4 weight loads + 6 broadcasts feed 24 vpdpbusd. Loop order: a
// panel of 64 output channels (in * 64 bytes of weights, L1 / L2 resident)
// outside, the rows inside. Tails: rows by a smaller block (template), K by a
// zero-extending masked load of the last 1-3 inputs (the packed weights are
// zero beyond K), N by masked loads and stores.
// The epilogue reproduces int8_gemm_portable.cpp's arithmetic operation for
// operation, so the two kernels agree bit for bit.
#include "cpu/int8_kernels.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12 warns inside its own intrinsics (_mm512_undefined_ps() is "__Y = __Y").
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <climits>
#include <cstring>

#define PN_VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define PN_VNNI_INLINE PN_VNNI inline __attribute__((always_inline))

namespace pointnet::cpu::int8_detail {
namespace {

constexpr int kRows = 6;
constexpr int kGroups = 4;  // zmm of 16 output channels per panel

PN_VNNI_INLINE __m512i broadcast4(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

struct Panel {
  const int8_t* w;      // the panel's first group
  size_t group_stride;  // bytes between groups: in4 * 16
  int K;                // = in, also the row stride of x
  int o0;               // first output channel
  __mmask16 mask[kGroups];  // valid output channels of each group
};

// out[r][c] = sum_k x[r][k] * w[o0 + 16 c + lane][k]. The last 1-3 inputs
// (K % 4) come first, through a zero-extending masked load; the sums live in
// a local array stored to `out` at the end, and the function is not inlined
// into the epilogue. Otherwise GCC 12 spills and copies accumulators on every
// step of the hot loop (measured: ~200 instead of ~400 GOP/s): with the tail
// after the loop, with `out` updated in the loop, or with the epilogue's
// registers in the same function.
template <int MR, int NR>
PN_VNNI __attribute__((noinline)) void accumulate(__m512i (&out)[MR][NR], const uint8_t* x, const Panel& p) {
  const int steps = p.K / 4, tail = p.K % 4;
  const __mmask16 tail_mask = static_cast<__mmask16>((1u << tail) - 1);
  const int8_t* w_tail = p.w + static_cast<size_t>(steps) * 64;
  __m512i acc[MR][NR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const uint8_t* row_tail = x + static_cast<size_t>(r) * p.K + 4 * steps;
    const __m512i a = _mm512_broadcastd_epi32(_mm_maskz_loadu_epi8(tail_mask, row_tail));
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c)
      acc[r][c] = tail ? _mm512_dpbusd_epi32(_mm512_setzero_si512(), a, _mm512_load_si512(w_tail + c * p.group_stride))
                       : _mm512_setzero_si512();
  }
  const int8_t* w = p.w;
  for (int t = 0; t < steps; ++t, w += 64) {
    __m512i b[NR];
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) b[c] = _mm512_load_si512(w + c * p.group_stride);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      const __m512i a = broadcast4(x + static_cast<size_t>(r) * p.K + 4 * t);
#pragma GCC unroll 4
      for (int c = 0; c < NR; ++c) acc[r][c] = _mm512_dpbusd_epi32(acc[r][c], a, b[c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) out[r][c] = acc[r][c];
}

// fma(float(acc), s, bias), as value() in the portable kernel.
PN_VNNI_INLINE __m512 value(__m512i acc, __m512 s, __m512 bias) {
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc), s, bias);
}

// Per group: s = x_scale * scale[o] and the bias (zero where masked or absent).
template <int NR>
PN_VNNI_INLINE void scale_bias(__m512 (&s)[NR], __m512 (&b)[NR], const Weights& w, const Output& out,
                               const Panel& p) {
  const __m512 xs = _mm512_set1_ps(out.x_scale);
#pragma GCC unroll 4
  for (int c = 0; c < NR; ++c) {
    const int o = p.o0 + 16 * c;
    s[c] = _mm512_mul_ps(xs, _mm512_maskz_loadu_ps(p.mask[c], w.scale + o));
    b[c] = out.bias ? _mm512_maskz_loadu_ps(p.mask[c], out.bias + o) : _mm512_setzero_ps();
  }
}

// Rows [m0, m0 + MR) of y = v (f32) or requantised v (u8).
template <Output::Kind KIND, int MR, int NR>
PN_VNNI_INLINE void store_rows(const __m512i (&acc)[MR][NR], int m0, const Weights& w, const Output& out,
                               const Panel& p) {
  __m512 s[NR], b[NR];
  scale_bias(s, b, w, out, p);
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.f), inv = _mm512_set1_ps(out.inv_y_scale);
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const size_t row = static_cast<size_t>(m0 + r) * w.out + p.o0;
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) {
      __m512 v = value(acc[r][c], s[c], b[c]);
      if (out.relu) v = _mm512_max_ps(v, zero);
      if (KIND == Output::f32) {
        _mm512_mask_storeu_ps(static_cast<float*>(out.y) + row + 16 * c, p.mask[c], v);
      } else {
        // max/min return the second operand for NaN: NaN -> 0 as in the portable to_u8.
        const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, inv), zero), top);
        const __m128i q = _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t));  // round to nearest even
        _mm_mask_storeu_epi8(static_cast<uint8_t*>(out.y) + row + 16 * c, p.mask[c], q);
      }
    }
  }
}

// Running int32 max over rows, per channel of the panel.
template <int MR, int NR>
PN_VNNI_INLINE void max_rows(__m512i (&best)[NR], const __m512i (&acc)[MR][NR]) {
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int c = 0; c < NR; ++c) best[c] = _mm512_max_epi32(best[c], acc[r][c]);
}

// The kind is a template parameter so the max's running registers exist only
// where needed.
template <Output::Kind KIND, int MR, int NR>
PN_VNNI_INLINE void block(__m512i (&best)[NR], const uint8_t* x, int m0, const Weights& w, const Output& out,
                          const Panel& p) {
  __m512i acc[MR][NR];
  accumulate<MR, NR>(acc, x + static_cast<size_t>(m0) * p.K, p);
  if (KIND == Output::max)
    max_rows<MR, NR>(best, acc);
  else
    store_rows<KIND, MR, NR>(acc, m0, w, out, p);
}

template <Output::Kind KIND, int NR>
PN_VNNI void panel(const uint8_t* x, int M, const Weights& w, const Output& out, const Panel& p) {
  __m512i best[NR];
  for (int c = 0; c < NR; ++c) best[c] = _mm512_set1_epi32(INT_MIN);  // unused unless KIND is max
  int m = 0;
  for (; m + kRows <= M; m += kRows) block<KIND, kRows, NR>(best, x, m, w, out, p);
  switch (M - m) {
    case 5: block<KIND, 5, NR>(best, x, m, w, out, p); break;
    case 4: block<KIND, 4, NR>(best, x, m, w, out, p); break;
    case 3: block<KIND, 3, NR>(best, x, m, w, out, p); break;
    case 2: block<KIND, 2, NR>(best, x, m, w, out, p); break;
    case 1: block<KIND, 1, NR>(best, x, m, w, out, p); break;
    default: break;
  }
  if (KIND != Output::max) return;
  // The largest accumulator gives the largest v: one epilogue per channel.
  __m512 s[NR], b[NR];
  scale_bias(s, b, w, out, p);
  float* ymax = static_cast<float*>(out.y) + p.o0;
  for (int c = 0; c < NR; ++c) {
    const __m512 old = _mm512_maskz_loadu_ps(p.mask[c], ymax + 16 * c);
    const __m512 v = value(best[c], s[c], b[c]);
    // _mm512_max_ps returns its second operand when either is NaN: a NaN ymax stays, as in the portable kernel.
    _mm512_mask_storeu_ps(ymax + 16 * c, p.mask[c], _mm512_max_ps(v, old));
  }
}

PN_VNNI_INLINE __m512 quantize16(__m512 x, __m512 x_scale) {
  const __m512 t = _mm512_div_ps(x, x_scale);
  return _mm512_min_ps(_mm512_max_ps(t, _mm512_setzero_ps()), _mm512_set1_ps(255.f));
}

template <Output::Kind KIND>
PN_VNNI void linear(const uint8_t* x, int M, const Weights& w, const Output& out) {
  Panel p;
  p.group_stride = static_cast<size_t>(w.in4) * 16;
  p.K = w.in;
  for (int g = 0; g < w.groups; g += kGroups) {
    p.w = w.packed + g * p.group_stride;
    p.o0 = g * 16;
    for (int c = 0; c < kGroups; ++c) {
      const int valid = w.out - p.o0 - 16 * c;
      p.mask[c] = valid >= 16 ? __mmask16(0xFFFF) : valid <= 0 ? __mmask16(0) : __mmask16((1u << valid) - 1);
    }
    switch (w.groups - g) {
      case 1: panel<KIND, 1>(x, M, w, out, p); break;
      case 2: panel<KIND, 2>(x, M, w, out, p); break;
      case 3: panel<KIND, 3>(x, M, w, out, p); break;
      default: panel<KIND, 4>(x, M, w, out, p); break;
    }
  }
}

}  // namespace

PN_VNNI void linear_vnni(const uint8_t* x, int M, const Weights& w, const Output& out) {
  switch (out.kind) {
    case Output::f32: linear<Output::f32>(x, M, w, out); break;
    case Output::u8: linear<Output::u8>(x, M, w, out); break;
    case Output::max: linear<Output::max>(x, M, w, out); break;
  }
}

PN_VNNI void quantize_u8_vnni(uint8_t* q, const float* x, size_t count, float x_scale) {
  const __m512 xs = _mm512_set1_ps(x_scale);
  size_t i = 0;
  for (; i + 16 <= count; i += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i),
                     _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(quantize16(_mm512_loadu_ps(x + i), xs))));
  if (i < count) {
    const __mmask16 m = static_cast<__mmask16>((1u << (count - i)) - 1);
    const __m512 t = quantize16(_mm512_maskz_loadu_ps(m, x + i), xs);
    _mm_mask_storeu_epi8(q + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(t)));
  }
}

}  // namespace pointnet::cpu::int8_detail

#else  // not x86-64: int8_vnni_supported() is false, so these are never called.

#include <cstdlib>

namespace pointnet::cpu::int8_detail {
void linear_vnni(const uint8_t*, int, const Weights&, const Output&) { std::abort(); }
void quantize_u8_vnni(uint8_t*, const float*, size_t, float) { std::abort(); }
}  // namespace pointnet::cpu::int8_detail

#endif
