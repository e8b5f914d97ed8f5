// The fp32 building blocks of CpuRunner: a per-point layer on a tile of rows
// (OpenBLAS, single-threaded inside the runner's OpenMP loop), its max over
// rows, per-cloud layers over all clouds at once, and the per-cloud transform
// folded into a layer's weights.
#pragma once
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "engine/folded_model.h"

namespace pointnet::engine_cpu {

// Rows per work item. A 128 x 1024 fp32 block (512 KiB) stays in a core's L2
// between the GEMM that writes it and the max that reads it.
constexpr int kTile = 128;

// y(M, out) = x(M, in) W^T + bias, optional ReLU; single-threaded (we are
// inside an OpenMP region: OpenBLAS's OpenMP build then runs on one thread).
inline void dense(float* y, const float* x, int M, const FoldedLinear& l, const float* bias, bool relu) {
  if (l.in <= 8) {  // conv1 over xyz (+ normals): too thin for a GEMM
    for (int m = 0; m < M; ++m) {
      float* yr = y + static_cast<size_t>(m) * l.out;
      const float* xr = x + static_cast<size_t>(m) * l.in;
      for (int o = 0; o < l.out; ++o) {
        float s = bias[o];
        for (int i = 0; i < l.in; ++i) s += xr[i] * l.weight[static_cast<size_t>(o) * l.in + i];
        yr[o] = relu ? std::max(s, 0.0f) : s;
      }
    }
    return;
  }
  for (int m = 0; m < M; ++m) std::memcpy(y + static_cast<size_t>(m) * l.out, bias, sizeof(float) * l.out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 1.0f,
              y, l.out);
  if (relu)
    for (size_t i = 0, n = static_cast<size_t>(M) * l.out; i < n; ++i) y[i] = std::max(y[i], 0.0f);
}

// ymax(out) = max over the M rows of x W^T (no bias: it commutes with the
// max and is added once per cloud). scratch: M * out floats. A NaN never
// replaces a number, as in the fused kernel (cpu/f32_linear_max.h).
inline void dense_max(float* ymax, const float* x, int M, const FoldedLinear& l, float* scratch) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 0.0f,
              scratch, l.out);
  std::fill(ymax, ymax + l.out, -INFINITY);
  for (int m = 0; m < M; ++m) {
    const float* r = scratch + static_cast<size_t>(m) * l.out;
    for (int o = 0; o < l.out; ++o) ymax[o] = std::max(ymax[o], r[o]);
  }
}

// Rows of a per-cloud layer, all clouds at once (multi-threaded OpenBLAS).
inline void dense_rows(float* y, const float* x, int rows, const FoldedLinear& l, bool relu) {
  for (int m = 0; m < rows; ++m) std::memcpy(y + static_cast<size_t>(m) * l.out, l.bias.data(), sizeof(float) * l.out);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, l.out, l.in, 1.0f, x, l.in, l.weight.data(), l.in, 1.0f,
              y, l.out);
  if (relu)
    for (size_t i = 0, n = static_cast<size_t>(rows) * l.out; i < n; ++i) y[i] = std::max(y[i], 0.0f);
}

inline void log_softmax_rows(float* x, int M, int K) {
  for (int m = 0; m < M; ++m) {
    float* r = x + static_cast<size_t>(m) * K;
    const float top = *std::max_element(r, r + K);
    float sum = 0.0f;
    for (int k = 0; k < K; ++k) sum += std::exp(r[k] - top);
    const float lse = top + std::log(sum);
    for (int k = 0; k < K; ++k) r[k] -= lse;
  }
}

// The per-cloud transform t (K, K) applied before a layer, folded into its
// weights: (x t) W^T = x (W t^T)^T, so W'[o][i] = sum_j W[o][j] t[i][j], for
// each K-wide group of the layer's inputs (xyz, then normals).
inline void fold_transform(FoldedLinear& dst, const FoldedLinear& src, const float* t, int K) {
  dst.in = src.in;
  dst.out = src.out;
  dst.weight.resize(src.weight.size());
  dst.bias = src.bias;
  for (int o = 0; o < src.out; ++o)
    for (int g = 0; g < src.in; g += K)
      for (int i = 0; i < K; ++i) {
        float s = 0.0f;
        for (int j = 0; j < K; ++j) s += src.weight[static_cast<size_t>(o) * src.in + g + j] * t[static_cast<size_t>(i) * K + j];
        dst.weight[static_cast<size_t>(o) * src.in + g + i] = s;
      }
}

inline FoldedLinear columns(const FoldedLinear& l, int first, int count) {
  FoldedLinear c;
  c.in = count;
  c.out = l.out;
  c.bias = l.bias;
  c.weight.resize(static_cast<size_t>(count) * l.out);
  for (int o = 0; o < l.out; ++o)
    std::copy_n(&l.weight[static_cast<size_t>(o) * l.in + first], count, &c.weight[static_cast<size_t>(o) * count]);
  return c;
}

inline int tiles_of(int N) { return (N + kTile - 1) / kTile; }

}  // namespace pointnet::engine_cpu
