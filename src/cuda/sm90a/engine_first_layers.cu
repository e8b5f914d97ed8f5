// The split trunk's first kernel, streamed (the default;
// POINTNET_ENGINE_SPLIT_FIRST=tiles takes the tile kernel, to compare):
// conv1 (fp32 FFMA, the cloud's 3x3 transform folded in) and conv2 (64 -> 128,
// ReLU, mma.sync) from the points straight to a.h2_out in wgmma's core-matrix
// layout, for the wide_max kernel. The tile kernel (WgSplit) stages both
// layers' outputs in shared memory between block barriers and copies the tile
// out at the end; this one keeps everything in registers: each warp computes
// conv1's values exactly where mma.sync's A fragments want them (rows g and
// g + 8 of its 16 points, the bytes 4t.. of each 16-byte half of a k-step),
// and stores conv2's accumulators directly: an n8 tile's rows g of a group of
// eight points are one 128-byte core matrix (fp16 / bf16; tf32: two), so each
// store instruction writes whole lines. Block barriers: one, after the folded
// conv1 weights and conv2's bias are in shared memory.
//
// The same operations in the same order as the tile kernel (conv1's sums, the
// rounding to the element type, the k-steps of each mma chain, the epilogue):
// the same bits (CudaRunnerEntries.StreamedFirstKernelGivesTheSameBits).
// Used where the trunk starts from the points without a 64 -> 64 layer or a
// stored conv1 output (the classifier without the feature transform), with 3
// or 6 input channels.
#include "core/env_choice.h"
#include "cuda/check.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_fragment.h"
#include "cuda/engine_mma.cuh"
#include "cuda/engine_tile_tc.cuh"

namespace pointnet::cuda_engine {
namespace {

constexpr int kConv2Out = 128;
constexpr int kNTiles = kConv2Out / 8;
constexpr int kGroup = 4;  // n8 tiles whose accumulators are live at once

// conv1's output channel o for the point p (kC coordinates): as conv1_tile.
template <int kC>
__device__ __forceinline__ float conv1_value(const float (&p)[kC], const float* w1, const float* b1, int o) {
  float v = b1[o];
#pragma unroll
  for (int c = 0; c < kC; ++c) v = fmaf(p[c], w1[o * kC + c], v);
  return v > 0.f ? v : 0.f;
}

template <class Op, int kC>
__global__ void __launch_bounds__(kThreads, 3) first_layers_kernel(const TrunkArgs a, const TrunkShape s) {
  constexpr int kBytes = Op::kBytes;
  constexpr int kSteps = 64 * kBytes / 32;  // conv2's k-steps of 32 bytes
  constexpr int kPerWord = 4 / kBytes;      // elements per A register
  constexpr int kRowBytes = kConv2Out * kBytes;
  using Acc = typename Op::Acc;
  __shared__ float w1[64 * kC], b1[64], bias2[kConv2Out], scale2[kConv2Out];
  const int b = blockIdx.x / s.tiles, tile = blockIdx.x % s.tiles, TP = s.tile_points;
  const DevLayer& l = a.conv2;
  for (int i = threadIdx.x; i < 64 * kC; i += kThreads)
    w1[i] = a.transform3 ? folded_conv1_weight(a.conv1_w, a.transform3 + b * 9, i / kC, i % kC, kC) : a.conv1_w[i];
  for (int i = threadIdx.x; i < 64; i += kThreads) b1[i] = a.conv1_b[i];
  for (int i = threadIdx.x; i < kConv2Out; i += kThreads) {
    bias2[i] = l.bias[b * l.bias_cloud_stride + i];
    scale2[i] = l.scale ? l.scale[b * l.scale_cloud_stride + i] : 1.f;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t = lane & 3;
  const uint2* wf = reinterpret_cast<const uint2*>(static_cast<const char*>(l.w) + b * l.w_cloud_bytes);
  char* out = static_cast<char*>(a.h2_out) + static_cast<size_t>(b) * a.h2_rows * kRowBytes;
  // Plain loads: the points may be in mapped pinned host memory (as conv1_tile).
  const float* cloud = a.points + static_cast<size_t>(b) * a.N * kC;
  for (int m0 = tile * TP + warp * 16; m0 < (tile + 1) * TP; m0 += kWarps * 16) {
    // Rows past the cloud's end repeat its last point (as the tile kernel's).
    float p[2][kC];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = min(m0 + g + 8 * h, a.N - 1);
#pragma unroll
      for (int c = 0; c < kC; ++c) p[h][c] = cloud[static_cast<size_t>(r) * kC + c];
    }
    // A register j of k-step ks: conv1's channels at its word (a_fragment_word;
    // its row is g, or g + 8 for odd j).
    uint32_t af[kSteps][4];
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int o0 = (ks * 32 + a_fragment_word(lane, j).byte) / kBytes;
        float v[kPerWord];
#pragma unroll
        for (int e = 0; e < kPerWord; ++e) v[e] = conv1_value<kC>(p[j & 1], w1, b1, o0 + e);
        af[ks][j] = Op::word(v, a.h1_scale);
      }
    // Not unrolled: every group's B fragments loaded up front spilled (~900 bytes).
#pragma unroll 1
    for (int nt0 = 0; nt0 < kNTiles; nt0 += kGroup) {
      Acc acc[kGroup][4] = {};
#pragma unroll
      for (int ks = 0; ks < kSteps; ++ks)
#pragma unroll
        for (int j = 0; j < kGroup; ++j)
          Op::mma(acc[j], af[ks], __ldg(&wf[(static_cast<size_t>(nt0 + j) * kSteps + ks) * 32 + lane]));
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        const int col = (nt0 + j) * 8 + 2 * t;
        float v[4];
        fragment_epilogue<Op, true>(acc[j], col, bias2, scale2, l.x_scale, true, v);  // conv2: 64 terms
        Op::store2(out + core_byte(m0 + g, col * kBytes, kRowBytes), v[0], v[1], l.inv_y_scale);
        Op::store2(out + core_byte(m0 + g + 8, col * kBytes, kRowBytes), v[2], v[3], l.inv_y_scale);
      }
    }
  }
}

template <class Op>
void launch_for(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  const unsigned blocks = static_cast<unsigned>(static_cast<size_t>(a.B) * s.tiles);
  if (a.C == 3) first_layers_kernel<Op, 3><<<blocks, kThreads, 0, stream>>>(a, s);
  else first_layers_kernel<Op, 6><<<blocks, kThreads, 0, stream>>>(a, s);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

// Read at each call (graph captures only), so a test can compare both in one
// process. Streamed vs tiles, B = 1024 end to end (GPU) clouds/s: fp16 877k
// (989k) vs 722k (771k), tf32 505k (538k) vs 391k (400k), int8 885k (954k)
// vs 718k (766k), bf16 908k (1.015M) vs 702k (737k) (H100, 2026-12-07).
bool first_layers_streamed(Math math) {
  const bool on = env_choice("POINTNET_ENGINE_SPLIT_FIRST", {"stream", "tiles"}) == "stream";
  return on && (math == Math::F16 || math == Math::BF16 || math == Math::TF32 || math == Math::I8);
}

bool first_layers_stream(const TrunkArgs& a) {
  return first_layers_streamed(a.math) && a.points && !a.h1_out && !a.pre.w && a.conv2.w &&
         (a.C == 3 || a.C == 6);
}

void launch_first_layers(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  PN_CHECK(first_layers_stream(a) && s.tile_points % 16 == 0 && a.h2_rows == s.tiles * s.tile_points);
  switch (a.math) {
    case Math::F16: return launch_for<F16Op>(a, s, stream);
    case Math::BF16: return launch_for<BF16Op>(a, s, stream);
    case Math::TF32: return launch_for<TF32Op>(a, s, stream);
    case Math::I8: return launch_for<I8Op>(a, s, stream);
    default: break;
  }
  fail("launch_first_layers: no streamed first kernel for this precision");
}

}  // namespace pointnet::cuda_engine
