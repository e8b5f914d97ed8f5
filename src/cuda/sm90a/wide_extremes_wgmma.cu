// The fused wide layer's extremes (training, fp16/bf16) through Hopper's
// warpgroup MMA (wgmma, sm_90a), weight-stationary as the engine's wide_max
// (sm90a/wide_max_wgmma.cu): a block keeps 256 channels' weights in shared
// memory and streams its clouds' rows past them in tiles of 64 (cp.async,
// two tiles ahead, in wgmma's core-matrix layout). Each of its two
// warpgroups takes 128 channels as two m64n64 halves; one half's wgmmas run
// while the other half's accumulators are folded into each column's running
// extreme and its first point. A cloud's extremes are merged across the
// threads at its end and written as one segment per cloud (S = 1).
//
// One extreme per channel: the layer picks z's max where gamma >= 0 and its
// min elsewhere (select_kernel), so the block negates the weight rows of the
// channels with !(gamma >= 0) as it loads them (exact: a sign bit) and keeps
// only maxima: the min of z is minus the max of -z, at the same first point.
// Half the fold's instructions and registers of tracking both.
//
// Against the mma.sync kernel (wide_extremes_mma.cu): wgmma reads both
// operands from shared memory asynchronously, so the fold's instructions
// overlap the tensor work instead of taking turns with it, and each x tile
// loaded serves 256 channels instead of 128.
//
// Order and ties as there: a thread sees its rows in increasing n (tiles
// ascending, row g before g + 8), keeps the first strict extreme, and the
// merges prefer the smaller n on equal values. NaN is never an extreme here
// (as in the mma.sync kernel; the GEMM path keeps one met at a lane's first
// point): a cloud whose every z is NaN gets no point (-1), which the backward
// skips.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <mutex>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/engine_tile_wgmma.cuh"
#include "cuda/extremes_device.cuh"
#include "cuda/wide_extremes.h"

namespace pointnet::cuda {
namespace {

using cuda_engine::BF16Op;
using cuda_engine::F16Op;
namespace wg = cuda_engine::wg;

constexpr int kThreads = 256;               // two warpgroups
constexpr int kTileRows = 64;               // rows per wgmma tile
constexpr int kK = 128;                     // x's width (the model's conv3 input)
constexpr int kRowBytes = kK * 2;           // a row of 2-byte values
constexpr int kSbo = kRowBytes * 8;         // core layout: the next group of 8 rows
constexpr int kHalf = 64;                   // channels per wgmma (n64)
constexpr int kBlockChannels = 4 * kHalf;   // 2 warpgroups x 2 halves
constexpr int kStages = 4;                  // row tiles in shared memory: computing, finishing, two arriving
constexpr int kTileBytes = kTileRows * kRowBytes;
constexpr int kWeightBytes = kBlockChannels * kRowBytes;
constexpr int kChunks = kRowBytes / 16;     // 16-byte chunks per row
struct Partial {                            // one warp's extreme of one channel
  float best;
  int at;
};
constexpr int kRedBytes = 2 * 2 * 4 * kHalf * static_cast<int>(sizeof(Partial));  // [warpgroup][half][warp][channel]
constexpr size_t kSmem = static_cast<size_t>(kWeightBytes) + kStages * kTileBytes + kRedBytes;

// Byte offset of (row, 16-byte chunk) in the core-matrix layout wg::desc
// reads: 8-row groups kSbo apart, within one the chunks 128 bytes apart.
__device__ __forceinline__ int core_offset(int row, int chunk) {
  return (row >> 3) * kSbo + chunk * 128 + (row & 7) * 16;
}

// Tile q of a block's Q (T per cloud; clouds first, first + stride, ...) into
// stage q % kStages, in core layout; past the end, the last tile again into
// that (free, never read) stage, so that every step's copies and groups are
// the same. Rows past the cloud's end are zeros. One cp.async group.
template <int kBlockThreads, typename Half>
__device__ __forceinline__ void load_tile(char* tiles_s, const Half* x, int q, int Q, int T, int first, int stride,
                                          int N) {
  const int from = min(q, Q - 1);
  const int b = first + (from / T) * stride, r0 = (from % T) * kTileRows;
  const Half* src = x + (static_cast<size_t>(b) * N + r0) * kK;
  char* dst = tiles_s + (q % kStages) * kTileBytes;
  // Lane l takes row (l % 8) of an 8-row group and chunk l / 8 (+ 4 per
  // quarter warp): each warp stores 512 contiguous bytes of the core layout
  // (row-major ids stored 16 lanes 128 bytes apart, 4-way bank conflicts)
  // and reads 64 contiguous bytes of each of its 8 rows.
#pragma unroll
  for (int i = 0; i < kTileRows * kChunks / kBlockThreads; ++i) {
    const int id = i * kBlockThreads + threadIdx.x, r = (id & 7) | ((id >> 7) << 3), c = (id >> 3) & (kChunks - 1);
    const bool real = r0 + r < N;
    cp_async16_or_zero(dst + core_offset(r, c), real ? src + static_cast<size_t>(r) * kK + c * 8 : src, real);
  }
  wg::cp_async_commit();
}

// Column q = 2 j + x of this thread: channel 8 j + 2 (lane % 4) + x of its
// half; the max of its (possibly negated) z over the rows seen, and its first n.
struct Running {
  float best[16];
  int at[16];
  __device__ __forceinline__ void reset() {
#pragma unroll
    for (int q = 0; q < 16; ++q) {
      best[q] = -INFINITY;  // any finite z beats it
      at[q] = -1;
    }
  }
};

// d = a 64-row tile (K = 128) against 64 channels at wb, both in core layout.
template <class Op>
__device__ __forceinline__ void issue64(float (&d)[32], const char* x, const char* wb) {
  wg::fence_acc(d);
  wg::fence();
#pragma unroll
  for (int ks = 0; ks < kRowBytes / 32; ++ks)
    wg::Mma<Op>::run(d, wg::desc(x + ks * 256, kSbo), wg::desc(wb + ks * 256, kSbo), ks > 0);
  wg::commit();
  wg::fence_acc(d);
}

// Accumulator 4 j + 2 h + x: row n0 + 8 h of the tile, column 2 j + x. Rows at
// or past `end` (the cloud's N: zero-filled padding) never count. No
// branches: a wgmma of the other half is in flight (C7514).
__device__ __forceinline__ void fold(Running& run, float (&d)[32], int n0, int end) {
  wg::fence_acc(d);
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int n = n0 + 8 * h;
    const bool real = n < end;
#pragma unroll
    for (int q = 0; q < 16; ++q) {
      const float v = d[4 * (q / 2) + 2 * h + q % 2];
      const bool up = real && v > run.best[q];
      run.best[q] = up ? v : run.best[q];
      run.at[q] = up ? n : run.at[q];
    }
  }
}

// A cloud's extremes of one half's 64 channels (c0 ..): across the 8 row
// groups of each warp, then its warpgroup's 4 warps through `red` (this
// warpgroup's and half's own), into seg's row b (S = 1): z's max where
// gamma >= 0, else its min (minus the max of -z), the other side NaN with no
// point (select_kernel never reads it). The running values restart. `red` is
// next written a cloud later, after a block-wide barrier.
__device__ __forceinline__ void finish(Running& run, Partial* red, int wgi, int c0, int C, const float* gamma, int b,
                                       const Extreme& seg) {
  const int t = threadIdx.x & 127, warp = t >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int q = 0; q < 16; ++q)
#pragma unroll
    for (int offset = 4; offset < 32; offset *= 2) merge_extreme(run.best[q], run.at[q], offset, true);
  if (lane < 4)
#pragma unroll
    for (int q = 0; q < 16; ++q) red[warp * kHalf + 8 * (q / 2) + 2 * lane + q % 2] = Partial{run.best[q], run.at[q]};
  run.reset();
  wg::bar_sync(1 + wgi, 128);
  if (t < kHalf && c0 + t < C) {
    Partial p = red[t];
    for (int w = 1; w < 4; ++w) merge_extreme_with(p.best, p.at, red[w * kHalf + t].best, red[w * kHalf + t].at, true);
    const size_t i = static_cast<size_t>(b) * C + c0 + t;
    const bool up = gamma[c0 + t] >= 0.0f;
    seg.max[i] = up ? p.best : NAN;
    seg.argmax[i] = up ? p.at : -1;
    seg.min[i] = up ? NAN : -p.best;
    seg.argmin[i] = up ? -1 : p.at;
  }
}

template <class Op, typename Half>
__global__ void __launch_bounds__(kThreads, 1)
    wgmma_extremes_kernel(Extreme seg, const Half* __restrict__ x, const Half* __restrict__ w,
                          const float* __restrict__ gamma, int B, int N, int C) {
  extern __shared__ __align__(128) char smem[];
  char* w_s = smem;
  char* tiles_s = smem + kWeightBytes;
  Partial* red = reinterpret_cast<Partial*>(tiles_s + kStages * kTileBytes);

  const int groups = (C + kBlockChannels - 1) / kBlockChannels, group = blockIdx.x % groups;
  const int first = blockIdx.x / groups, stride = gridDim.x / groups;
  const int clouds = first < B ? (B - first + stride - 1) / stride : 0;
  const int T = (N + kTileRows - 1) / kTileRows, Q = clouds * T;  // this block's tiles, cloud after cloud
  const int wgi = threadIdx.x >> 7, warp_in_wg = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;

  // The block's weights in core layout, negated where !(gamma >= 0), channels
  // past C as zeros: plain loads and stores (once per block), made visible to
  // wgmma by the first arrive's proxy fence and barrier.
  const int c_block = group * kBlockChannels;
  for (int i = threadIdx.x; i < kBlockChannels * kChunks; i += kThreads) {
    const int c = i / kChunks, q = i % kChunks;
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (c_block + c < C) {
      v = __ldg(reinterpret_cast<const uint4*>(w + static_cast<size_t>(c_block + c) * kK + q * 8));
      if (!(gamma[c_block + c] >= 0.0f)) {
        constexpr unsigned kSigns = 0x80008000u;  // both 2-byte values' sign bits
        v.x ^= kSigns;
        v.y ^= kSigns;
        v.z ^= kSigns;
        v.w ^= kSigns;
      }
    }
    *reinterpret_cast<uint4*>(w_s + core_offset(c, q)) = v;
  }
  const auto load = [&](int q) { load_tile<kThreads>(tiles_s, x, q, Q, T, first, stride, N); };
  // Tile q has landed (every thread's copies, made visible to wgmma); the
  // stage of tile q - 2, whose wgmmas every thread has waited for, is
  // refilled with tile q + 2.
  const auto arrive = [&](int q) {
    wg::all_but_newest_landed();
    load(q + 2);
  };

  const char* w_half0 = w_s + static_cast<size_t>(wgi * 2 * kHalf) * kRowBytes;
  const char* w_half1 = w_half0 + kHalf * kRowBytes;
  const auto issue = [&](float (&d)[32], int q, auto half) {
    issue64<Op>(d, tiles_s + (q % kStages) * kTileBytes, decltype(half)::value ? w_half1 : w_half0);
  };
  Running run0, run1;
  run0.reset();
  run1.reset();
  const int row_in_tile = warp_in_wg * 16 + (lane >> 2);
  // U tiles of one cloud from q0, its tile t0 (wg::two_halves).
  float d0[32], d1[32];
  const auto tiles = [&](int q0, int t0, auto count) {
    const auto fold_half = [&](float (&d)[32], int u, auto half) {
      fold(decltype(half)::value == 0 ? run0 : run1, d, (t0 + u) * kTileRows + row_in_tile, N);
    };
    wg::two_halves<decltype(count)::value>(q0, d0, d1, arrive, issue, fold_half);
  };

  if (Q == 0) return;
  load(0);
  load(1);
  const int c_wg = c_block + wgi * 2 * kHalf;
  for (int k = 0; k < clouds; ++k) {
    const int q0 = k * T;
    int t = 0;
    for (; t + 4 <= T; t += 4) tiles(q0 + t, t, std::integral_constant<int, 4>());
    for (; t < T; ++t) tiles(q0 + t, t, std::integral_constant<int, 1>());
    const int b = first + k * stride;
    finish(run0, red + (wgi * 2 + 0) * 4 * kHalf, wgi, c_wg, C, gamma, b, seg);
    finish(run1, red + (wgi * 2 + 1) * 4 * kHalf, wgi, c_wg + kHalf, C, gamma, b, seg);
  }
  wg::cp_async_wait<0>();
}

// ---------------------------------------------------------------------------
// The register-A variant (POINTNET_WIDE_EXTREMES=wgmma-ra, the default: 52.5
// us a call, racecheck clean; H100, 2026-12-07). The weights are wgmma's A operand, held in registers (channels as M),
// and the x tile is B (points as N) from shared memory: the tensor cores read
// half the shared-memory bytes of the variant above (which, with both
// operands there at m64n64, sits at shared memory's bandwidth), and a
// thread's accumulators hold 2 channels x 16 points, so its running state is
// 4 registers and a cloud's merge 2 shuffles. Four warpgroups of 64 channels
// (256 per block, 16 warps per SM instead of 8), each double-buffering its
// accumulators across tiles: tile u + 1's wgmmas run while tile u is folded.

constexpr int kThreadsRa = 512;  // four warpgroups
constexpr size_t kSmemRa = static_cast<size_t>(kStages) * kTileBytes;

// d(64 channels x 64 points) = A(64 x 16 K, registers: mma.sync's m16n8k16 A
// fragment per warp) B(64 points x 32 bytes of K, shared memory, K-major).
template <class Op>
struct MmaRa;
#define PN_RA_D "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
                "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define PN_RA_ACC                                                                                          \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),          \
      "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
      "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]),            \
      "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]),            \
      "+f"(d[30]), "+f"(d[31])
// Operands %32-%35: A's registers; %36: B's descriptor; %37: accumulate
// (scale-d). Then imm-scale-a, imm-scale-b, imm-trans-b (K-major B: 0).
#define PN_RA_TAIL ", {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
// MmaRa<Op> for the 2-byte type `type` ("f16", "bf16") in the instruction.
#define PN_RA_MMA(Op, type)                                                                              \
  template <>                                                                                            \
  struct MmaRa<Op> {                                                                                     \
    __device__ static void run(float (&d)[32], const uint32_t (&a)[4], uint64_t b, bool accumulate) {    \
      asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                          \
                   "wgmma.mma_async.sync.aligned.m64n64k16.f32." type "." type " " PN_RA_D PN_RA_TAIL    \
                   : PN_RA_ACC                                                                           \
                   : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(static_cast<int>(accumulate))); \
    }                                                                                                    \
  };
PN_RA_MMA(F16Op, "f16")
PN_RA_MMA(BF16Op, "bf16")
#undef PN_RA_MMA
#undef PN_RA_D
#undef PN_RA_ACC
#undef PN_RA_TAIL

// d = this warpgroup's 64 channels (A, registers) against a 64-point tile.
template <class Op>
__device__ __forceinline__ void issue_ra(float (&d)[32], const uint32_t (&a)[kRowBytes / 32][4], const char* x) {
  wg::fence_acc(d);
  wg::fence();
#pragma unroll
  for (int ks = 0; ks < kRowBytes / 32; ++ks) MmaRa<Op>::run(d, a[ks], wg::desc(x + ks * 256, kSbo), ks > 0);
  wg::commit();
  wg::fence_acc(d);
}

// Accumulator 4 j + 2 h + x: channel h (row g + 8 h of the warp's 16), point
// 8 j + 2 (lane % 4) + x of the tile, n = n0 + 8 j + x. Points ascending per
// channel; rows at or past `end` never count. No branches (C7514).
__device__ __forceinline__ void fold_ra(float (&best)[2], int (&at)[2], float (&d)[32], int n0, int end) {
  wg::fence_acc(d);
#pragma unroll
  for (int h = 0; h < 2; ++h)
#pragma unroll
    for (int j = 0; j < 8; ++j)
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int n = n0 + 8 * j + x;
        const float v = d[4 * j + 2 * h + x];
        const bool up = n < end && v > best[h];
        best[h] = up ? v : best[h];
        at[h] = up ? n : at[h];
      }
}

template <class Op, typename Half>
__global__ void __launch_bounds__(kThreadsRa, 1)
    wgmma_ra_extremes_kernel(Extreme seg, const Half* __restrict__ x, const Half* __restrict__ w,
                             const float* __restrict__ gamma, int B, int N, int C) {
  extern __shared__ __align__(128) char tiles_s[];
  const int groups = (C + kBlockChannels - 1) / kBlockChannels, group = blockIdx.x % groups;
  const int first = blockIdx.x / groups, stride = gridDim.x / groups;
  const int clouds = first < B ? (B - first + stride - 1) / stride : 0;
  const int T = (N + kTileRows - 1) / kTileRows, Q = clouds * T;
  const int wgi = threadIdx.x >> 7, warp_in_wg = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  const int g = lane >> 2, quad = lane & 3;

  // This thread's A fragments: channels c[0] = 16 warp + g and c[1] = c[0] + 8
  // of its warpgroup's 64; register (ks, r) holds K values 16 ks + 2 quad
  // (+ 8 for r >= 2), +1, of channel c[r % 2]; negated where !(gamma >= 0),
  // zeros past C.
  const int c0 = group * kBlockChannels + wgi * kHalf + warp_in_wg * 16 + g;
  uint32_t a[kRowBytes / 32][4];
#pragma unroll
  for (int r = 0; r < 4; ++r) {
    const int c = c0 + 8 * (r % 2);
    const bool real = c < C;
    const uint32_t sign = real && !(gamma[c] >= 0.0f) ? 0x80008000u : 0u;
    const uint32_t* row = reinterpret_cast<const uint32_t*>(w + static_cast<size_t>(real ? c : 0) * kK);
#pragma unroll
    for (int ks = 0; ks < kRowBytes / 32; ++ks)
      a[ks][r] = real ? __ldg(row + (16 * ks + 2 * quad + 8 * (r / 2)) / 2) ^ sign : 0u;
  }

  const auto load = [&](int q) { load_tile<kThreadsRa>(tiles_s, x, q, Q, T, first, stride, N); };
  const auto arrive = [&](int q) {
    wg::all_but_newest_landed();
    load(q + 2);
  };
  const auto issue = [&](float (&d)[32], int q) { issue_ra<Op>(d, a, tiles_s + (q % kStages) * kTileBytes); };
  float best[2] = {-INFINITY, -INFINITY};
  int at[2] = {-1, -1};
  const auto fold = [&](float (&d)[32], int t) { fold_ra(best, at, d, t * kTileRows + 2 * quad, N); };
  // Four tiles of one cloud from q0 (its tile t0), straight-line, the
  // accumulators alternating: tile u + 1's wgmmas run while tile u is folded;
  // all waited for at the end (C7514).
  float d0[32], d1[32];
  const auto four_tiles = [&](int q0, int t0) {
    arrive(q0);
    issue(d0, q0);
    arrive(q0 + 1);
    issue(d1, q0 + 1);
    wg::wait<1>();
    fold(d0, t0);
    arrive(q0 + 2);
    issue(d0, q0 + 2);
    wg::wait<1>();
    fold(d1, t0 + 1);
    arrive(q0 + 3);
    issue(d1, q0 + 3);
    wg::wait<1>();
    fold(d0, t0 + 2);
    wg::wait<0>();
    fold(d1, t0 + 3);
  };
  const auto one_tile = [&](int q0, int t0) {
    arrive(q0);
    issue(d0, q0);
    wg::wait<0>();
    fold(d0, t0);
  };

  if (Q == 0) return;
  load(0);
  load(1);
  for (int k = 0; k < clouds; ++k) {
    const int q0 = k * T;
    int t = 0;
    for (; t + 4 <= T; t += 4) four_tiles(q0 + t, t);
    for (; t < T; ++t) one_tile(q0 + t, t);
    // The 4 threads of a channel (lanes 4 g .. 4 g + 3) merge; lane 4 g writes.
    const int b = first + k * stride;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      merge_extreme(best[h], at[h], 1, true);
      merge_extreme(best[h], at[h], 2, true);
      const int c = c0 + 8 * h;
      if (quad == 0 && c < C) {
        const size_t i = static_cast<size_t>(b) * C + c;
        const bool up = gamma[c] >= 0.0f;
        seg.max[i] = up ? best[h] : NAN;
        seg.argmax[i] = up ? at[h] : -1;
        seg.min[i] = up ? NAN : -best[h];
        seg.argmin[i] = up ? -1 : at[h];
      }
      best[h] = -INFINITY;
      at[h] = -1;
    }
  }
  wg::cp_async_wait<0>();
}

struct Device {
  int major = 0, minor = 0, sms = 0;
};
// The current device's facts, asked once per device (every forward calls).
Device device_facts() {
  constexpr int kDevices = 64;
  static Device known[kDevices];
  static std::once_flag asked[kDevices];
  int id = 0;
  CUDA_CHECK(cudaGetDevice(&id));
  PN_CHECK(id >= 0 && id < kDevices);
  std::call_once(asked[id], [id] {
    Device& d = known[id];
    CUDA_CHECK(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, id));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, id));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.sms, cudaDevAttrMultiProcessorCount, id));
    // The kernels have an sm_90a image only: elsewhere any call on them fails
    // ("invalid device function"), so they are left alone there.
    if (d.major != 9 || d.minor != 0) return;
    CUDA_CHECK(cudaFuncSetAttribute(wgmma_extremes_kernel<F16Op, __half>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(kSmem)));
    CUDA_CHECK(cudaFuncSetAttribute(wgmma_extremes_kernel<BF16Op, __nv_bfloat16>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmem)));
    CUDA_CHECK(cudaFuncSetAttribute(wgmma_ra_extremes_kernel<F16Op, __half>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemRa)));
    CUDA_CHECK(cudaFuncSetAttribute(wgmma_ra_extremes_kernel<BF16Op, __nv_bfloat16>,
                                    cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(kSmemRa)));
  });
  return known[id];
}

// Shared memory limits raised by device_facts.
template <class Op, typename Half>
void launch(cudaStream_t stream, bool registers_a, const Extreme& seg, const void* x, const void* w,
            const float* gamma, int B, int N, int C, int sms) {
  const int groups = (C + kBlockChannels - 1) / kBlockChannels;
  const int grid = groups * std::max(1, std::min(B, sms / groups));
  const Half* xh = static_cast<const Half*>(x);
  const Half* wh = static_cast<const Half*>(w);
  if (registers_a)
    wgmma_ra_extremes_kernel<Op, Half><<<grid, kThreadsRa, kSmemRa, stream>>>(seg, xh, wh, gamma, B, N, C);
  else
    wgmma_extremes_kernel<Op, Half><<<grid, kThreads, kSmem, stream>>>(seg, xh, wh, gamma, B, N, C);
  CUDA_CHECK_LAUNCH();
}

}  // namespace

bool warpgroup_extremes_available() {
  const Device d = device_facts();
  return d.major == 9 && d.minor == 0;  // the sm_90a image runs there only
}

bool warpgroup_extremes(cudaStream_t stream, Precision precision, const Extreme& seg, const void* x, const void* w,
                        const float* gamma, int B, int N, int K, int C, bool registers_a) {
  if (K != kK || B <= 0 || N <= 0 || C <= 0) return false;
  if (precision != Precision::FP16 && precision != Precision::BF16) return false;
  if (reinterpret_cast<uintptr_t>(x) % 16 != 0 || reinterpret_cast<uintptr_t>(w) % 16 != 0) return false;
  const Device d = device_facts();
  if (d.major != 9 || d.minor != 0) return false;
  if (precision == Precision::BF16)
    launch<BF16Op, __nv_bfloat16>(stream, registers_a, seg, x, w, gamma, B, N, C, d.sms);
  else
    launch<F16Op, __half>(stream, registers_a, seg, x, w, gamma, B, N, C, d.sms);
  return true;
}

}  // namespace pointnet::cuda
