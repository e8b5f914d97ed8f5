// fp32 layers over a tile of points in shared memory with plain FFMA: the F32
// policy of the engine's tile kernels (same interface as TcMath in
// engine_tile_tc.cuh).
//
// Activation tile: channel-major, tile[c][r] with row length TP + 4 floats, so
// a thread reads its kRows consecutive points of one channel as float4s.
// Weights: the transpose (in, out) in global memory, read as float4 (4 output
// channels) per input. 256 threads = 16 channel groups x 16 row groups, each
// thread a kRows x 4 block of outputs; output channels go 64 at a time.
#pragma once
#include <cfloat>

#include "cuda/engine_kernels.h"
#include "cuda/engine_tile_tc.cuh"  // kThreads, kWarps

namespace pointnet::cuda_engine {

template <int kRowsT>
struct SimtMath {
  static constexpr int kRows = kRowsT;        // points per thread
  static constexpr int kTile = 16 * kRows;    // points per tile (TP)
  static constexpr int kBytes = 4;
  static constexpr int kMinBlocks = 2;
  static constexpr bool kSimt = true;
  static constexpr bool kStoresConv2 = false;

  __host__ __device__ static constexpr int ld() { return kTile + 4; }
  __host__ __device__ static constexpr size_t tile_bytes(int rows, int width) {
    return (void)rows, static_cast<size_t>(width) * ld() * 4;
  }

  __host__ __device__ static constexpr size_t h128_bytes(int rows) { return tile_bytes(rows, 128); }
  __host__ __device__ static constexpr size_t scratch_bytes() { return 0; }

  __device__ static void store1(char* tile, int, int r, int c, float v, float) {
    reinterpret_cast<float*>(tile)[c * ld() + r] = v;
  }
  __device__ static float f32_at(const float* t, int r, int c, int) { return t[c * ld() + r]; }
  // One element of a global activation buffer (conv1's stored output).
  __device__ static void store_elem(char* p, float v, float) { *reinterpret_cast<float*>(p) = v; }

  __device__ static void load_rows(char* tile, const char* src, int valid, int TP) {
    const float* s = reinterpret_cast<const float*>(src);
    float* t = reinterpret_cast<float*>(tile);
    for (int i = threadIdx.x; i < TP * 64; i += kThreads) {
      const int r = i / 64, c = i % 64;
      t[c * ld() + r] = __ldg(&s[static_cast<size_t>(r < valid ? r : valid - 1) * 64 + c]);
    }
  }

  // acc[i][j] = sum_k x[k][r0 + i] w[k][c0 + j] for this thread's block.
  template <int K>
  __device__ static void block(float (&acc)[kRows][4], const float* x, const float* wt, int Nout, int c0) {
    const int cg = threadIdx.x & 15, rg = threadIdx.x >> 4;
#pragma unroll
    for (int i = 0; i < kRows; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] = 0.f;
#pragma unroll 4
    for (int k = 0; k < K; ++k) {
      const float4 w = __ldg(reinterpret_cast<const float4*>(wt + static_cast<size_t>(k) * Nout + c0) + cg);
      float xr[kRows];
      const float* xk = x + k * ld() + rg * kRows;
      if constexpr (kRows % 4 == 0) {
#pragma unroll
        for (int i = 0; i < kRows; i += 4) {
          const float4 v = *reinterpret_cast<const float4*>(xk + i);
          xr[i] = v.x, xr[i + 1] = v.y, xr[i + 2] = v.z, xr[i + 3] = v.w;
        }
      } else {
#pragma unroll
        for (int i = 0; i < kRows; i += 2) {
          const float2 v = *reinterpret_cast<const float2*>(xk + i);
          xr[i] = v.x, xr[i + 1] = v.y;
        }
      }
#pragma unroll
      for (int i = 0; i < kRows; ++i) {
        acc[i][0] = fmaf(xr[i], w.x, acc[i][0]);
        acc[i][1] = fmaf(xr[i], w.y, acc[i][1]);
        acc[i][2] = fmaf(xr[i], w.z, acc[i][2]);
        acc[i][3] = fmaf(xr[i], w.w, acc[i][3]);
      }
    }
  }

  // y[c][r] = act(bias[c] + sum_k x[k][r] w[k][c]).
  template <int K>
  __device__ static void linear(const char* xc, char* yc, int Nout, int, const DevLayer& l, int b, bool relu) {
    const float* x = reinterpret_cast<const float*>(xc);
    float* y = reinterpret_cast<float*>(yc);
    const float* wt = static_cast<const float*>(l.w) + b * (l.w_cloud_bytes / 4);
    const float* bias = l.bias + b * l.bias_cloud_stride;
    const int cg = threadIdx.x & 15, rg = threadIdx.x >> 4;
    for (int c0 = 0; c0 < Nout; c0 += 64) {
      float acc[kRows][4];
      block<K>(acc, x, wt, Nout, c0);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int c = c0 + cg * 4 + j;
        const float bj = bias[c];
        float v[kRows];
#pragma unroll
        for (int i = 0; i < kRows; ++i) v[i] = relu ? fmaxf(acc[i][j] + bj, 0.f) : acc[i][j] + bj;
        float* yc = y + c * ld() + rg * kRows;
#pragma unroll
        for (int i = 0; i < kRows; i += 2) *reinterpret_cast<float2*>(yc + i) = make_float2(v[i], v[i + 1]);
      }
    }
  }

  template <int K>
  __device__ static void linear_f32(const char* x, float* y, int TP, const DevLayer& l, bool relu) {
    linear<K>(x, reinterpret_cast<char*>(y), 128, TP, l, 0, relu);
  }

  template <int K>
  __device__ static void linear_h128(const char* x, char* y, int TP, const DevLayer& l, int b) {
    linear<K>(x, y, 128, TP, l, b, true);
  }
  template <int K>
  __device__ static void conv3_max(const char* x, const DevLayer& l, int ch0, int count, int TP, float* out,
                                   float* red, char*) {
    linear_max<K>(x, l, ch0, count, TP, out, red);
  }

  // out[c] = max over the tile's rows, channels [ch0, ch0 + count), no bias.
  // red: 16 x 64 floats of shared memory.
  template <int K>
  __device__ static void linear_max(const char* xc, const DevLayer& l, int ch0, int count, int, float* out,
                                    float* red) {
    const float* x = reinterpret_cast<const float*>(xc);
    const float* wt = static_cast<const float*>(l.w);
    const int cg = threadIdx.x & 15, rg = threadIdx.x >> 4;
    for (int c0 = ch0; c0 < ch0 + count; c0 += 64) {
      float acc[kRows][4];
      block<K>(acc, x, wt, 1024, c0);
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        float m = acc[0][j];
#pragma unroll
        for (int i = 1; i < kRows; ++i) m = fmaxf(m, acc[i][j]);
        red[rg * 64 + cg * 4 + j] = m;
      }
      __syncthreads();
      if (threadIdx.x < 64) {
        float m = red[threadIdx.x];
        for (int g = 1; g < 16; ++g) m = fmaxf(m, red[g * 64 + threadIdx.x]);
        out[c0 + threadIdx.x] = m;
      }
      __syncthreads();
    }
  }
};

}  // namespace pointnet::cuda_engine
