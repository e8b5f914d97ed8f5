// Tensor-core layers over a tile of points in shared memory, for one thread
// block of kThreads: the policy the engine's trunk and segmenter kernels use
// for TF32, F16, BF16 and I8 (engine_tile_simt.cuh is the F32 one).
//
// Activation tile: row-major, one row per point, `width` elements of Op plus
// 16 bytes of padding, so the 8 rows one ldmatrix phase reads fall in
// different banks. Weights: packed fragments in global memory (L2-resident,
// read with __ldg), engine_fragment.h.
#pragma once
#include <cfloat>
#include <climits>

#include "cuda/engine_fragment.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_mma.cuh"

namespace pointnet::cuda_engine {

constexpr int kThreads = 256;  // every engine tile kernel: 8 warps
constexpr int kWarps = kThreads / 32;

template <class OpT, int kMinBlocksT, int kNtT = 4>
struct TcMath {
  using Op = OpT;
  using Acc = typename Op::Acc;
  static constexpr int kBytes = Op::kBytes;
  static constexpr int kMinBlocks = kMinBlocksT;
  static constexpr bool kSimt = false;
  static constexpr bool kStoresConv2 = false;  // WgSplit: conv2's tile to memory, no conv3
  // n8 tiles per warp in the max kernel: kNt * 8 channels' weights in registers.
  static constexpr int kNt = kNtT;

  __host__ __device__ static constexpr int stride(int width) { return width * kBytes + 16; }
  __host__ __device__ static constexpr size_t tile_bytes(int rows, int width) {
    return static_cast<size_t>(rows) * stride(width);
  }
  // conv2's output tile and conv3's extra shared memory (none: it works from registers).
  __host__ __device__ static constexpr size_t h128_bytes(int rows) { return tile_bytes(rows, 128); }
  __host__ __device__ static constexpr size_t scratch_bytes() { return 0; }

  // Element (r, c) of a tile of `width` columns.
  __device__ static void store1(char* tile, int width, int r, int c, float v, float scale) {
    Op::store1(tile + r * stride(width) + c * kBytes, v, scale);
  }
  __device__ static float f32_at(const float* t, int r, int c, int) { return t[r * (128 + 4) + c]; }
  // One element of a global activation buffer (conv1's stored output).
  __device__ static void store_elem(char* p, float v, float scale) { Op::store1(p, v, scale); }

  // Rows [0, TP) of a 64-wide tile from global rows of 64 elements; rows at
  // and past `valid` repeat the last valid one (their results are never used,
  // and a repeated point leaves every max over points unchanged).
  __device__ static void load_rows(char* tile, const char* src, int valid, int TP) {
    constexpr int kChunks = 64 * kBytes / 16;
    for (int i = threadIdx.x; i < TP * kChunks; i += kThreads) {
      const int r = i / kChunks, q = i % kChunks;
      const int from = r < valid ? r : valid - 1;
      const uint4 v = __ldg(reinterpret_cast<const uint4*>(src + static_cast<size_t>(from) * 64 * kBytes) + q);
      *reinterpret_cast<uint4*>(tile + r * stride(64) + q * 16) = v;
    }
  }

  // For each (16-row block, n8 tile) of the TP x Nout output, accumulates over
  // K and hands the fragment to epi(acc, row, col): acc[0], acc[1] are (row,
  // col), (row, col + 1); acc[2], acc[3] the same 8 rows below. Each B
  // fragment a warp loads feeds four 16-row blocks. (Two n8 tiles sharing
  // each A fragment instead, for conv2 in the split trunk's first kernel, was
  // no faster: fp16 777k vs 771k GPU clouds/s, H100, 2026-12-07.)
  template <int K, class Epi>
  __device__ static void gemm(const char* x, const char* w, int Nout, int TP, const Epi& epi) {
    constexpr int kSteps = K * kBytes / 32;
    constexpr int kMt = 4;  // 16-row blocks per pass
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const uint2* wf = reinterpret_cast<const uint2*>(w);
    for (int nt = warp; nt < Nout / 8; nt += kWarps) {
      for (int mt0 = 0; mt0 < TP / 16; mt0 += kMt) {
        Acc acc[kMt][4] = {};
#pragma unroll
        for (int ks = 0; ks < kSteps; ++ks) {
          const uint2 b = __ldg(&wf[(static_cast<size_t>(nt) * kSteps + ks) * 32 + lane]);
#pragma unroll
          for (int i = 0; i < kMt; ++i) {
            uint32_t a[4];
            ldmatrix_x4(a, x + (mt0 + i) * 16 * stride(K) + ks * 32, stride(K));
            Op::mma(acc[i], a, b);
          }
        }
        const int row = (lane >> 2);
#pragma unroll
        for (int i = 0; i < kMt; ++i) epi(acc[i], (mt0 + i) * 16 + row, nt * 8 + (lane & 3) * 2);
      }
    }
  }

  // y(TP, Nout) = act(x(TP, K) w^T + bias) as Op elements (I8: requantised),
  // in the padded row-major tile, or with kCore in wgmma's core-matrix layout.
  template <int K, bool kCore = false>
  __device__ static void linear(const char* x, char* y, int Nout, int TP, const DevLayer& l, int b, bool relu) {
    const char* w = static_cast<const char*>(l.w) + b * l.w_cloud_bytes;
    const float* bias = l.bias + b * l.bias_cloud_stride;
    const float* ws = l.scale ? l.scale + b * l.scale_cloud_stride : nullptr;
    const int ys = stride(Nout);
    gemm<K>(x, w, Nout, TP, [&](const Acc (&acc)[4], int row, int col) {
      float v[4];
      fragment_epilogue<Op>(acc, col, bias, ws, l.x_scale, relu, v);
      char* at0 = kCore ? y + core_byte(row, col * kBytes, Nout * kBytes) : y + row * ys + col * kBytes;
      char* at8 = kCore ? y + core_byte(row + 8, col * kBytes, Nout * kBytes) : y + (row + 8) * ys + col * kBytes;
      Op::store2(at0, v[0], v[1], l.inv_y_scale);
      Op::store2(at8, v[2], v[3], l.inv_y_scale);
    });
  }

  // The same with fp32 output (TP rows of 128 + 4 floats): head.2 before the logits.
  template <int K>
  __device__ static void linear_f32(const char* x, float* y, int TP, const DevLayer& l, bool relu) {
    gemm<K>(x, static_cast<const char*>(l.w), 128, TP, [&](const Acc (&acc)[4], int row, int col) {
      float v[4];
      fragment_epilogue<Op>(acc, col, l.bias, l.scale, l.x_scale, relu, v);
      *reinterpret_cast<float2*>(y + row * 132 + col) = make_float2(v[0], v[1]);
      *reinterpret_cast<float2*>(y + (row + 8) * 132 + col) = make_float2(v[2], v[3]);
    });
  }

  // The trunk's conv2 (ReLU) into its h128 tile, and conv3's max over it.
  template <int K>
  __device__ static void linear_h128(const char* x, char* y, int TP, const DevLayer& l, int b) {
    linear<K>(x, y, 128, TP, l, b, true);
  }
  template <int K>
  __device__ static void conv3_max(const char* x, const DevLayer& l, int ch0, int count, int TP, float* out,
                                   float* red, char*) {
    linear_max<K>(x, l, ch0, count, TP, out, red);
  }

  // out[c] = max over the TP rows of (x w^T)[., c] for channels c in [ch0, ch0 +
  // count), without bias; I8: dequantised from the largest accumulator (v is
  // increasing in it), as cpu::int8_linear_max. Each warp keeps one slice of
  // 32 channels' weights in registers (kNt n8 tiles x all k-steps) and runs
  // down the rows with a running max; when the slices are fewer than the
  // warps, the rows are split and the parts merged through `red` (shared,
  // kWarps x kNt * 8 floats).
  template <int K>
  __device__ static void linear_max(const char* x, const DevLayer& l, int ch0, int count, int TP, float* out,
                                    float* red) {
    constexpr int kSteps = K * kBytes / 32;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int slices = count / (kNt * 8);
    const int parts = slices >= kWarps ? 1 : kWarps / slices;
    const int mtiles = TP / 16;
    const uint2* wf = reinterpret_cast<const uint2*>(l.w);
    for (int item = warp; item < slices * parts; item += kWarps) {
      const int slice = item / parts, part = item % parts;
      const int nt0 = (ch0 + slice * kNt * 8) / 8;
      uint2 breg[kSteps][kNt];
#pragma unroll
      for (int ks = 0; ks < kSteps; ++ks)
#pragma unroll
        for (int j = 0; j < kNt; ++j) breg[ks][j] = __ldg(&wf[(static_cast<size_t>(nt0 + j) * kSteps + ks) * 32 + lane]);
      Acc best[kNt][2];
#pragma unroll
      for (int j = 0; j < kNt; ++j) best[j][0] = best[j][1] = acc_lowest<Acc>();
      const int m_end = (part + 1) * mtiles / parts;
      for (int mt = part * mtiles / parts; mt < m_end; ++mt) {
        Acc acc[kNt][4] = {};
#pragma unroll
        for (int ks = 0; ks < kSteps; ++ks) {
          uint32_t a[4];
          ldmatrix_x4(a, x + mt * 16 * stride(K) + ks * 32, stride(K));
#pragma unroll
          for (int j = 0; j < kNt; ++j) Op::mma(acc[j], a, breg[ks][j]);
        }
#pragma unroll
        for (int j = 0; j < kNt; ++j) {
          best[j][0] = acc_max(best[j][0], acc_max(acc[j][0], acc[j][2]));
          best[j][1] = acc_max(best[j][1], acc_max(acc[j][1], acc[j][3]));
        }
      }
      // Across the 8 row groups (lanes with equal lane % 4).
#pragma unroll
      for (int j = 0; j < kNt; ++j)
#pragma unroll
        for (int h = 0; h < 2; ++h)
#pragma unroll
          for (int s = 4; s < 32; s <<= 1) best[j][h] = acc_max(best[j][h], __shfl_xor_sync(0xffffffffu, best[j][h], s));
      if (lane < 4) {
#pragma unroll
        for (int j = 0; j < kNt; ++j)
#pragma unroll
          for (int h = 0; h < 2; ++h) {
            const int local = slice * kNt * 8 + j * 8 + lane * 2 + h, c = ch0 + local;
            const float v = epilogue_value<Op>(best[j][h], 0.f, l.x_scale, l.scale ? l.scale[c] : 1.f);
            if (parts == 1) out[c] = v;
            else red[part * count + local] = v;
          }
      }
    }
    if (parts > 1) {
      __syncthreads();
      for (int local = threadIdx.x; local < count; local += kThreads) {
        float v = red[local];
        for (int p = 1; p < parts; ++p) v = fmaxf(v, red[p * count + local]);
        out[ch0 + local] = v;
      }
    }
  }

};

}  // namespace pointnet::cuda_engine
