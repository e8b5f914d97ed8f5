// The fused per-point trunk kernel (engine_kernels.h, TrunkArgs), written
// once over a tile policy M (TcMath, SimtMath, WgMath) and instantiated by
// engine_trunk.cu (mma.sync and FFMA policies) and sm90a/engine_trunk_wgmma.cu
// (wgmma, compiled for sm_90a only). One thread block per (cloud, tile of
// points, channel group) runs conv1 -> [64 -> 64] -> conv2 -> conv3 + max over
// the tile in shared memory and registers, and writes only the tile's maxima.
#pragma once
#include <algorithm>

#include "cuda/check.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_tile_tc.cuh"

namespace pointnet::cuda_engine {
namespace trunk_detail {

struct TrunkLayout {
  size_t pts = 0, x64 = 0, y64 = 0, h128 = 0, scratch = 0, total = 0;
};

__host__ __device__ inline size_t align16(size_t n) { return (n + 15) / 16 * 16; }

// Dynamic shared memory: [points (fp32)] [x64] [y64 if pre] [h128 and the
// policy's conv3 scratch, unless conv1 only].
template <class M>
__host__ __device__ TrunkLayout trunk_layout(int TP, int C, bool from_points, bool has_pre, bool conv1_only) {
  TrunkLayout L;
  size_t at = 0;
  L.pts = at;
  if (from_points) at += align16(static_cast<size_t>(TP) * C * 4);
  L.x64 = at;
  at += M::tile_bytes(TP, 64);
  L.y64 = at;
  if (has_pre) at += M::tile_bytes(TP, 64);
  L.h128 = at;
  if (!conv1_only) at += M::h128_bytes(TP);
  L.scratch = at;
  if (!conv1_only && !M::kStoresConv2) at += M::scratch_bytes();
  L.total = at;
  return L;
}

// conv1 over the tile's points into x64 (and h1_out): fp32 FFMA, with the
// cloud's 3x3 transform folded into the weights first, each K = 3 group of
// inputs (xyz, then normals) as engine_cpu::fold_transform. Plain loads: the
// points may be in mapped pinned host memory (tiny batches).
template <class M>
__device__ void conv1_tile(const TrunkArgs& a, int b, int row0, int valid, int TP, float* pts, char* x64) {
  __shared__ float w1[64 * 6];
  const int C = a.C;
  for (int i = threadIdx.x; i < 64 * C; i += kThreads) {
    w1[i] = a.transform3 ? folded_conv1_weight(a.conv1_w, a.transform3 + b * 9, i / C, i % C, C) : a.conv1_w[i];
  }
  const float* src = a.points + (static_cast<size_t>(b) * a.N + row0) * C;
  for (int i = threadIdx.x; i < TP * C; i += kThreads) {
    const int r = i / C;
    pts[i] = src[(r < valid ? r : valid - 1) * C + i % C];
  }
  __syncthreads();
  char* h1 = a.h1_out ? static_cast<char*>(a.h1_out) + (static_cast<size_t>(b) * a.N + row0) * 64 * M::kBytes : nullptr;
  for (int i = threadIdx.x; i < TP * 64; i += kThreads) {
    const int r = i / 64, o = i % 64;
    float v = a.conv1_b[o];
    for (int c = 0; c < C; ++c) v = fmaf(pts[r * C + c], w1[o * C + c], v);
    v = v > 0.f ? v : 0.f;
    M::store1(x64, 64, r, o, v, a.h1_scale);
    if (h1 && r < valid) M::store_elem(h1 + static_cast<size_t>(r * 64 + o) * M::kBytes, v, a.h1_scale);
  }
}

template <class M>
__global__ void __launch_bounds__(kThreads, M::kMinBlocks) trunk_kernel(const TrunkArgs a, const TrunkShape s) {
  extern __shared__ __align__(128) char smem[];
  const int per_cloud = s.tiles * s.groups;
  const int b = blockIdx.x / per_cloud, tile = blockIdx.x % per_cloud / s.groups, group = blockIdx.x % s.groups;
  const int TP = s.tile_points, row0 = tile * TP, valid = min(TP, a.N - row0);
  const bool conv1_only = a.conv2.w == nullptr;
  const TrunkLayout L = trunk_layout<M>(TP, a.C, a.points != nullptr, a.pre.w != nullptr, conv1_only);
  char* x64 = smem + L.x64;
  if (a.points)
    conv1_tile<M>(a, b, row0, valid, TP, reinterpret_cast<float*>(smem + L.pts), x64);
  else
    M::load_rows(x64, static_cast<const char*>(a.h1_in) + (static_cast<size_t>(b) * a.N + row0) * 64 * M::kBytes,
                 valid, TP);
  __syncthreads();
  if (conv1_only) return;
  const char* in = x64;
  if (a.pre.w) {
    M::template linear<64>(x64, smem + L.y64, 64, TP, a.pre, b, true);
    __syncthreads();
    in = smem + L.y64;
  }
  M::template linear_h128<64>(in, smem + L.h128, TP, a.conv2, b);
  __syncthreads();
  if constexpr (M::kStoresConv2) {
    // The tile in core layout is TP contiguous rows: copied as it is.
    const uint4* from = reinterpret_cast<const uint4*>(smem + L.h128);
    uint4* to = reinterpret_cast<uint4*>(static_cast<char*>(a.h2_out) +
                                         (static_cast<size_t>(b) * a.h2_rows + row0) * M::h128_bytes(1));
    for (int i = threadIdx.x; i < static_cast<int>(M::h128_bytes(TP) / 16); i += kThreads) to[i] = from[i];
    return;
  }
  // x64 is dead now: it holds the max's cross-warp scratch.
  const int count = 1024 / s.groups;
  M::template conv3_max<128>(smem + L.h128, a.conv3, group * count, count, TP,
                             a.partial + (static_cast<size_t>(b) * s.tiles + tile) * 1024,
                             reinterpret_cast<float*>(x64), smem + L.scratch);
}

struct DeviceLimits {
  int smem_per_sm = 0, smem_per_block = 0, major = 0, minor = 0;
};

inline const DeviceLimits& limits() {
  static const DeviceLimits l = [] {
    DeviceLimits d;
    int device = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.smem_per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.smem_per_block, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, device));
    CUDA_CHECK(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, device));
    return d;
  }();
  return l;
}

constexpr size_t kStaticSmem = 64 * 6 * 4;  // conv1_tile's weights
constexpr size_t kReservedSmem = 1024;      // per block, by the hardware

template <class M>
size_t smem_of(int TP, const TrunkArgs& a) {
  return trunk_layout<M>(TP, a.C, a.points != nullptr, a.pre.w != nullptr, a.conv2.w == nullptr).total;
}

// Does a tile of TP points leave room for M's intended blocks per SM?
template <class M>
bool fits(int TP, int C, bool from_points, bool has_pre, bool conv1_only) {
  const size_t smem = trunk_layout<M>(TP, C, from_points, has_pre, conv1_only).total + kStaticSmem;
  return smem <= static_cast<size_t>(limits().smem_per_block) &&
         (smem + kReservedSmem) * M::kMinBlocks <= static_cast<size_t>(limits().smem_per_sm);
}

// The largest tile (from `largest` down to 64) that fits, then smaller tiles
// and channel groups until the grid covers every SM twice (one cloud at B = 1
// still spreads over the whole GPU). fit(TP) says whether TP fits.
template <class Fit>
TrunkShape choose_shape(int largest, const Fit& fit, bool conv1_only, int B, int N, int sms) {
  TrunkShape s;
  s.tile_points = largest;
  while (s.tile_points > 64 && !fit(s.tile_points)) s.tile_points /= 2;
  const long long target = 2LL * sms;
  const auto tiles = [&] { return (N + s.tile_points - 1) / s.tile_points; };
  while (s.tile_points > 64 && static_cast<long long>(B) * tiles() < target) s.tile_points /= 2;
  s.tiles = tiles();
  if (!conv1_only)
    while (s.groups < 8 && static_cast<long long>(B) * s.tiles * s.groups < target) s.groups *= 2;
  return s;
}

template <class M>
void launch(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  const size_t smem = smem_of<M>(s.tile_points, a);
  const unsigned blocks = static_cast<unsigned>(static_cast<size_t>(a.B) * s.tiles * s.groups);
  trunk_kernel<M><<<blocks, kThreads, smem, stream>>>(a, s);
  CUDA_CHECK_LAUNCH();
}

template <class M>
void raise_smem_limit() {
  CUDA_CHECK(cudaFuncSetAttribute(trunk_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                  limits().smem_per_block - static_cast<int>(kStaticSmem)));
}

}  // namespace trunk_detail
}  // namespace pointnet::cuda_engine
