#include "cpu/f32_linear_max.h"

#include <cstdlib>
#include <cstring>

#include "core/errors.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
// GCC 12 warns inside its own intrinsics (_mm512_undefined_ps() is "__Y = __Y").
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#define PN_HAVE_X86 1
#define PN_AVX512 __attribute__((target("avx512f")))
#endif

namespace pointnet::cpu {

namespace {
constexpr int kPanel = 32;  // output channels per panel: 2 zmm
constexpr int kRows = 12;   // rows per register block: 12 x 2 = 24 accumulators, 2 weights, 1 broadcast

#ifdef PN_HAVE_X86
// out[r][c] = sum_k x[r][k] w[k][16 c + lane] over one panel, for MR rows.
// Not inlined into the max (GCC 12 spills the accumulators otherwise; see
// int8_gemm_vnni.cpp). Each row's input comes as an embedded broadcast.
template <int MR>
PN_AVX512 __attribute__((noinline)) void accumulate(__m512 (&out)[MR][2], const float* const (&xr)[MR], const float* w,
                                                    int K) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int k = 0; k < K; ++k, w += kPanel) {
    const __m512 w0 = _mm512_load_ps(w), w1 = _mm512_load_ps(w + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; ++r) {
      const __m512 a = _mm512_set1_ps(xr[r][k]);
      acc[r][0] = _mm512_fmadd_ps(a, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, w1, acc[r][1]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < MR; ++r) {
    out[r][0] = acc[r][0];
    out[r][1] = acc[r][1];
  }
}

PN_AVX512 void panel_max(float* ymax, const float* x, int rows, const float* w, int K, int valid) {
  // _mm512_max_ps(a, b) returns b when either is NaN: (product, best) keeps best.
  __m512 best0 = _mm512_set1_ps(-__builtin_inff()), best1 = best0;
  for (int r0 = 0; r0 < rows; r0 += kRows) {
    // Past the last row, repeat it: a repeated row leaves every max unchanged.
    const float* xr[kRows];
    for (int r = 0; r < kRows; ++r) xr[r] = x + static_cast<size_t>(r0 + r < rows ? r0 + r : rows - 1) * K;
    __m512 acc[kRows][2];
    accumulate<kRows>(acc, xr, w, K);
    for (int r = 0; r < kRows; ++r) {
      best0 = _mm512_max_ps(acc[r][0], best0);
      best1 = _mm512_max_ps(acc[r][1], best1);
    }
  }
  const __mmask16 m0 = valid >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << valid) - 1);
  const __mmask16 m1 = valid >= 32 ? __mmask16(0xFFFF) : valid <= 16 ? __mmask16(0) : __mmask16((1u << (valid - 16)) - 1);
  _mm512_mask_storeu_ps(ymax, m0, _mm512_max_ps(best0, _mm512_maskz_loadu_ps(m0, ymax)));
  _mm512_mask_storeu_ps(ymax + 16, m1, _mm512_max_ps(best1, _mm512_maskz_loadu_ps(m1, ymax + 16)));
}
#endif
}  // namespace

F32PanelWeights pack_f32_panels(const float* w, int out, int in) {
  if (out < 1 || in < 1) fail("pack_f32_panels: a ", out, " x ", in, " layer");
  F32PanelWeights p;
  p.out = out;
  p.in = in;
  p.panels = (out + kPanel - 1) / kPanel;
  const size_t count = static_cast<size_t>(p.panels) * in * kPanel;
  const size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
  p.packed = {static_cast<float*>(std::aligned_alloc(64, bytes)), std::free};
  if (!p.packed) fail("pack_f32_panels: out of memory for ", bytes, " bytes");
  std::memset(p.packed.get(), 0, bytes);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i)
      p.packed[(static_cast<size_t>(o / kPanel) * in + i) * kPanel + o % kPanel] = w[static_cast<size_t>(o) * in + i];
  return p;
}

bool f32_linear_max_available() {
#ifdef PN_HAVE_X86
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
#else
  return false;
#endif
}

void f32_linear_max(float* ymax, const float* x, int rows, const F32PanelWeights& w) {
  if (!f32_linear_max_available()) fail("f32_linear_max: this CPU has no AVX-512F");
  if (rows < 1) fail("f32_linear_max: needs at least one row, got ", rows);
#ifdef PN_HAVE_X86
  for (int p = 0; p < w.panels; ++p)
    panel_max(ymax + p * kPanel, x, rows, w.packed.get() + static_cast<size_t>(p) * w.in * kPanel, w.in,
              w.out - p * kPanel);
#endif
}

}  // namespace pointnet::cpu
