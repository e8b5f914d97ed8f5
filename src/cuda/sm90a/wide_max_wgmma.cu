// conv3 + max over a cloud's points through Hopper's warpgroup MMA (wgmma,
// sm_90a), weight-stationary: each block keeps 512 output channels' weights
// (fp16/bf16/int8; tf32: 256, as its 4-byte weights take the same 128 KiB)
// in shared memory for the whole launch and streams the clouds' 128-wide
// input rows through it in tiles of 64 rows (cp.async, two tiles ahead; tf32
// one, as its 32 KiB tiles leave room for three stages only). Each warpgroup
// takes 256 channels as two m64n128 halves; one half's wgmmas run while the
// other half's maxima are folded, so the tensor cores never wait for the
// fold. Only the per-cloud maxima are written.
//
// Compared with the fused trunk (engine_tile_wgmma.cuh), which streams
// 64-channel weight slices past a block's few rows, each weight byte loaded
// here serves a whole launch's rows and each wgmma is twice as wide (n128).
// The rows come from memory (written by an earlier kernel), as the
// micro-benchmark bench/wide_max_gpu.cpp measures against cuBLAS.
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/engine_wide_max.h"
#include "cuda/sm90a/wide_max_common.cuh"

namespace pointnet::cuda_engine {
namespace {

using wide::kTileRows;

template <class Op>
struct WideMaxLayout {
  // 2-byte and 1-byte types: two warpgroups, 512 channels; tf32: one, 256.
  static constexpr int kWarpgroups = Op::kBytes == 4 ? 1 : 2;
  static constexpr int kThreads = 128 * kWarpgroups;
  static constexpr int kCols = 256 * kWarpgroups;  // output channels per block
  // Row tiles in shared memory: one computing, one finishing, the rest (kAhead) arriving.
  static constexpr int kStages = kWarpgroups == 2 ? 4 : 3;
  static constexpr int kAhead = kStages - 2;
  static constexpr int kRowBytes = 128 * Op::kBytes;  // K = 128
  static constexpr int kTileBytes = kTileRows * kRowBytes;
  static constexpr int kWeightBytes = kCols * kRowBytes;
  static constexpr int kRedBytes = kWarpgroups * 4 * 128 * 4;  // [warpgroup][warp][128 channels], one half at a time
  static constexpr size_t kSmem = static_cast<size_t>(kWeightBytes) + kStages * kTileBytes + kRedBytes;
  static_assert(kSmem <= 227 * 1024, "one block per SM: 227 KiB of shared memory");
  // issue128 adds up to 15 x 256 bytes to a descriptor's 14-bit address field
  // (16-byte units): no carry out of it for any address in the block.
  static_assert(kSmem + 1024 + 15 * 256 <= (1 << 18), "descriptor address field");
};

template <class Op>
__global__ void __launch_bounds__(WideMaxLayout<Op>::kThreads, 1) wide_max_kernel(const WideMaxArgs a) {
  using L = WideMaxLayout<Op>;
  using Acc = typename Op::Acc;
  constexpr int kThreadsWm = L::kThreads, kStages = L::kStages;
  extern __shared__ __align__(128) char smem[];
  char* w_s = smem;
  char* tiles_s = smem + L::kWeightBytes;
  float* red = reinterpret_cast<float*>(tiles_s + kStages * L::kTileBytes);

  const int groups = a.C / L::kCols, group = blockIdx.x % groups;
  const int first = blockIdx.x / groups, stride = gridDim.x / groups;
  const int clouds = first < a.B ? (a.B - first + stride - 1) / stride : 0;
  const int T = a.tiles, Q = clouds * T;  // this block's row tiles, cloud after cloud
  const int wgi = threadIdx.x >> 7;

  // The block's weights (committed with the first tile's group).
  const char* w_src = static_cast<const char*>(a.w) + static_cast<size_t>(group) * L::kWeightBytes;
  for (int i = threadIdx.x; i < L::kWeightBytes / 16; i += kThreadsWm) wg::cp_async16(w_s + i * 16, w_src + i * 16);
  // Tile q into stage q % kStages; past the end, the last tile's bytes into
  // that (free, never read) stage, so that each thread's copies and groups are
  // the same at every step and the code between a wgmma and its wait has no
  // branch.
  const auto load = [&](int q) {
    const int from = min(q, Q - 1);
    const int b = first + (from / T) * stride;
    const char* src = static_cast<const char*>(a.x) + (static_cast<size_t>(b) * T + from % T) * L::kTileBytes;
    char* dst = tiles_s + (q % kStages) * L::kTileBytes;
#pragma unroll
    for (int i = 0; i < L::kTileBytes / 16 / kThreadsWm; ++i) {
      const int at = (i * kThreadsWm + threadIdx.x) * 16;
      wg::cp_async16(dst + at, src + at);
    }
    wg::cp_async_commit();
  };
  // Tile q has landed (every thread's copies, made visible to wgmma); the
  // stage of tile q - 2, whose wgmmas every thread has waited for, is
  // refilled with tile q + kAhead (q + 2 of four stages, q + 1 of three).
  const auto arrive = [&](int q) {
    wg::all_but_newest_landed<L::kAhead - 1>();  // tiles q + 1 .. q + kAhead - 1 may still be arriving
    load(q + L::kAhead);
  };

  // This warpgroup's two halves of 128 channels.
  const char* w_half0 = w_s + static_cast<size_t>(wgi * 256) * L::kRowBytes;
  const char* w_half1 = w_half0 + 128 * L::kRowBytes;
  const auto issue = [&](Acc (&d)[64], int q, auto half) {
    const char* w_half = decltype(half)::value ? w_half1 : w_half0;
    wide::issue128<Op, L::kRowBytes>(d, tiles_s + (q % kStages) * L::kTileBytes, w_half);
  };
  Acc best0[32], best1[32];
  const auto fold = [&](Acc (&d)[64], int, auto half) {
    if constexpr (decltype(half)::value == 0) wide::fold128(best0, d);
    else wide::fold128(best1, d);
  };
  // U tiles from q0 (wg::two_halves).
  Acc d0[64], d1[64];
  const auto tiles = [&](int q0, auto count) {
    wg::two_halves<decltype(count)::value>(q0, d0, d1, arrive, issue, fold);
  };
  // A cloud's maxima of one half, into out's row b.
  const auto finish = [&](Acc (&best)[32], int b, int half) {
    wide::finish128<Op>(best, red + wgi * 4 * 128, wgi, group * L::kCols + wgi * 256 + half * 128, a.x_scale,
                        a.scale, a.out + static_cast<size_t>(b) * a.C, a.bias, a.relu);
  };

  if (Q == 0) {
    wg::cp_async_commit();  // the weights' copies
    wg::cp_async_wait<0>();
    return;
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) best0[i] = best1[i] = acc_lowest<Acc>();
  for (int q = 0; q < L::kAhead; ++q) load(q);
  for (int c = 0; c < clouds; ++c) {
    const int q0 = c * T;
    int u = 0;
    for (; u + 4 <= T; u += 4) tiles(q0 + u, std::integral_constant<int, 4>());
    for (; u < T; ++u) tiles(q0 + u, std::integral_constant<int, 1>());
    // The halves share the warpgroup's reduction memory: half 1 writes it
    // once every thread has read half 0's. It is next written a cloud
    // later, after arrive's __syncthreads: no barrier needed after that.
    finish(best0, first + c * stride, 0);
    wg::bar_sync(1 + wgi, 128);
    finish(best1, first + c * stride, 1);
  }
  wg::cp_async_wait<0>();
}

template <class Op>
void raise_limit() {
  CUDA_CHECK(cudaFuncSetAttribute(wide_max_kernel<Op>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     static_cast<int>(WideMaxLayout<Op>::kSmem)));
}

template <class Op>
void launch(const WideMaxArgs& a, int grid, cudaStream_t stream) {
  wide_max_kernel<Op><<<grid, WideMaxLayout<Op>::kThreads, WideMaxLayout<Op>::kSmem, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

size_t wide_max_smem_bytes(Math math) {
  switch (math) {
    case Math::F16: return WideMaxLayout<F16Op>::kSmem;
    case Math::BF16: return WideMaxLayout<BF16Op>::kSmem;
    case Math::I8: return WideMaxLayout<I8Op>::kSmem;
    case Math::TF32: return WideMaxLayout<TF32Op>::kSmem;
    default: break;
  }
  fail("wide_max: no wgmma kernel for this precision");
}

int wide_max_columns(Math math) {
  return math == Math::TF32 ? WideMaxLayout<TF32Op>::kCols : WideMaxLayout<F16Op>::kCols;
}

int wide_max_grid(Math math, int B, int C, int sms) {
  const int groups = C / wide_max_columns(math);
  const int per_group = std::max(1, std::min(B, sms / groups));
  return per_group * groups;
}

void prepare_wide_max_kernels() {
  raise_limit<F16Op>();
  raise_limit<BF16Op>();
  raise_limit<I8Op>();
  raise_limit<TF32Op>();
}

void launch_wide_max(const WideMaxArgs& a, int grid, cudaStream_t stream) {
  const int cols = wide_max_columns(a.math);
  PN_CHECK(a.C > 0 && a.C % cols == 0 && a.tiles > 0 && grid % (a.C / cols) == 0);
  switch (a.math) {
    case Math::F16: return launch<F16Op>(a, grid, stream);
    case Math::BF16: return launch<BF16Op>(a, grid, stream);
    case Math::I8: return launch<I8Op>(a, grid, stream);
    case Math::TF32: return launch<TF32Op>(a, grid, stream);
    default: break;
  }
  fail("wide_max: no wgmma kernel for this precision");
}

}  // namespace pointnet::cuda_engine
