// The trunk with conv3 through wgmma (engine_tile_wgmma.cuh): compiled for
// sm_90a alone (CMakeLists.txt), so it runs on compute capability 9.0 only;
// engine_trunk.cu calls it there when POINTNET_ENGINE_TRUNK asks for it.
#include <cstdlib>
#include <string>

#include "core/env_choice.h"
#include "cuda/engine_tile_wgmma.cuh"
#include "cuda/engine_trunk.cuh"

namespace pointnet::cuda_engine {
namespace {

using namespace trunk_detail;

// Double-buffered weight slices (one block per SM, except int8's smaller tiles).
using F16 = WgMath<F16Op, 1, 2>;
using BF16 = WgMath<BF16Op, 1, 2>;
using TF32 = WgMath<TF32Op, 1, 2>;
using I8 = WgMath<I8Op, 2, 2>;
// Single-buffered, two blocks per SM (TF32: one).
using F16s = WgMath<F16Op, 2, 1>;
using BF16s = WgMath<BF16Op, 2, 1>;
using TF32s = WgMath<TF32Op, 1, 1>;
using I8s = WgMath<I8Op, 2, 1>;

template <class A, class B>
bool fits_either(bool single, int TP, int C, bool from_points, bool has_pre, bool conv1_only) {
  return single ? fits<B>(TP, C, from_points, has_pre, conv1_only) : fits<A>(TP, C, from_points, has_pre, conv1_only);
}

}  // namespace

TrunkShape trunk_shape_wgmma(bool single, Math math, bool from_points, bool has_pre, bool conv1_only, int B, int N,
                             int C, int sms) {
  const auto fit = [&](int TP) {
    switch (math) {
      case Math::F16: return fits_either<F16, F16s>(single, TP, C, from_points, has_pre, conv1_only);
      case Math::BF16: return fits_either<BF16, BF16s>(single, TP, C, from_points, has_pre, conv1_only);
      case Math::TF32: return fits_either<TF32, TF32s>(single, TP, C, from_points, has_pre, conv1_only);
      case Math::I8: return fits_either<I8, I8s>(single, TP, C, from_points, has_pre, conv1_only);
      case Math::F32: case Math::F32X3: break;
    }
    return false;
  };
  return choose_shape(256, fit, conv1_only, B, N, sms);
}

void launch_trunk_wgmma(bool single, const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  // conv3_max runs 1, 2 or 4 tiles of 64 rows straight-line (engine_tile_wgmma.cuh).
  PN_CHECK(s.tile_points == 64 || s.tile_points == 128 || s.tile_points == 256);
  switch (a.math) {
    case Math::F16: return single ? launch<F16s>(a, s, stream) : launch<F16>(a, s, stream);
    case Math::BF16: return single ? launch<BF16s>(a, s, stream) : launch<BF16>(a, s, stream);
    case Math::TF32: return single ? launch<TF32s>(a, s, stream) : launch<TF32>(a, s, stream);
    case Math::I8: return single ? launch<I8s>(a, s, stream) : launch<I8>(a, s, stream);
    case Math::F32: case Math::F32X3: break;
  }
  fail("launch_trunk_wgmma: fp32 has no wgmma trunk");
}

namespace {
// fp16: tiles of up to 128 points, four blocks per SM; bf16: 128, three
// blocks; int8: up to 256, two blocks per SM. The first kernel is
// latency-bound (Nsight Compute: 2 blocks per SM by shared memory, issue
// slots 46% busy); more warps helped fp16 and bf16 by 6% with three blocks
// and cost int8 4% (H100, 2026-12-06, session 9 call 4); four blocks (64
// registers, no spills) another 4.5-5.6% of fp16's GPU throughput at B =
// 1024 (726k / 734k -> 767k / 767k, H100, 2026-12-07; bf16 not yet timed
// there). POINTNET_ENGINE_SPLIT_TILE=128 (three blocks), 128x4 or 256 picks
// one for every precision. tf32 (4-byte tiles: 96 KiB at 128 points):
// two blocks per SM, tiles of 128. The streamed first kernel (the default
// where it applies: sm90a/engine_first_layers.cu) takes the tile of points
// chosen here, whatever its own occupancy.
using F16Split = WgSplit<F16Op>;
using BF16Split = WgSplit<BF16Op>;
using I8Split = WgSplit<I8Op>;
using F16Split3 = WgSplit<F16Op, 3>;
using BF16Split3 = WgSplit<BF16Op, 3>;
using I8Split3 = WgSplit<I8Op, 3>;
using F16Split4 = WgSplit<F16Op, 4>;
using BF16Split4 = WgSplit<BF16Op, 4>;
using I8Split4 = WgSplit<I8Op, 4>;
using TF32Split = WgSplit<TF32Op>;
using TF32Split3 = WgSplit<TF32Op, 3>;
using TF32Split4 = WgSplit<TF32Op, 4>;

// Blocks per SM of the split trunk's first kernel: 2 (tiles of up to 256
// points), 3 or 4 (up to 128).
int split_blocks(Math math) {
  static const std::string choice =
      env_choice("POINTNET_ENGINE_SPLIT_TILE", {"auto", "128", "64x3", "128x4", "64x4", "256"});
  // The choice is blocks per SM; the tile is then the largest that fits that
  // many: 128 points in 2-byte and 1-byte types, 64 in tf32 (4-byte tiles),
  // so for tf32 "128" is "64x3" and "128x4" is "64x4" (and for the others
  // the reverse).
  if (choice == "128" || choice == "64x3") return 3;
  if (choice == "128x4" || choice == "64x4") return 4;
  if (choice == "256") return 2;
  if (math == Math::TF32) return 2;
  return math == Math::I8 ? 2 : math == Math::F16 ? 4 : 3;
}

template <class Split2, class Split3, class Split4>
bool split_fits(int blocks, int TP, int C, bool from_points, bool has_pre) {
  return blocks == 2   ? fits<Split2>(TP, C, from_points, has_pre, false)
         : blocks == 3 ? fits<Split3>(TP, C, from_points, has_pre, false)
                       : fits<Split4>(TP, C, from_points, has_pre, false);
}

template <class Split2, class Split3, class Split4>
void split_launch(int blocks, const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  if (blocks == 2) launch<Split2>(a, s, stream);
  else if (blocks == 3) launch<Split3>(a, s, stream);
  else launch<Split4>(a, s, stream);
}

}  // namespace

TrunkShape trunk_shape_split(Math math, bool from_points, bool has_pre, int B, int N, int C) {
  // Tiles as large as fit (and N needs): the grid is many clouds deep
  // wherever this is used.
  const int blocks = split_blocks(math);
  const auto fit = [&](int TP) {
    switch (math) {
      case Math::F16: return split_fits<F16Split, F16Split3, F16Split4>(blocks, TP, C, from_points, has_pre);
      case Math::BF16: return split_fits<BF16Split, BF16Split3, BF16Split4>(blocks, TP, C, from_points, has_pre);
      case Math::I8: return split_fits<I8Split, I8Split3, I8Split4>(blocks, TP, C, from_points, has_pre);
      case Math::TF32: return split_fits<TF32Split, TF32Split3, TF32Split4>(blocks, TP, C, from_points, has_pre);
      default: break;
    }
    return false;
  };
  const int largest = N <= 64 ? 64 : N <= 128 || blocks > 2 ? 128 : 256;
  TrunkShape s = choose_shape(largest, fit, true, B, N, 0);
  s.groups = 1;
  return s;
}

void launch_trunk_split(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  PN_CHECK(a.h2_out != nullptr && a.h2_rows == s.tiles * s.tile_points && s.groups == 1);
  if (first_layers_stream(a)) return launch_first_layers(a, s, stream);
  const int blocks = split_blocks(a.math);
  switch (a.math) {
    case Math::F16: return split_launch<F16Split, F16Split3, F16Split4>(blocks, a, s, stream);
    case Math::BF16: return split_launch<BF16Split, BF16Split3, BF16Split4>(blocks, a, s, stream);
    case Math::I8: return split_launch<I8Split, I8Split3, I8Split4>(blocks, a, s, stream);
    case Math::TF32: return split_launch<TF32Split, TF32Split3, TF32Split4>(blocks, a, s, stream);
    default: break;
  }
  fail("launch_trunk_split: no split trunk for this precision");
}

void prepare_trunk_wgmma_kernels() {
  raise_smem_limit<F16Split>();
  raise_smem_limit<BF16Split>();
  raise_smem_limit<I8Split>();
  raise_smem_limit<F16Split3>();
  raise_smem_limit<BF16Split3>();
  raise_smem_limit<I8Split3>();
  raise_smem_limit<F16Split4>();
  raise_smem_limit<BF16Split4>();
  raise_smem_limit<I8Split4>();
  raise_smem_limit<TF32Split>();
  raise_smem_limit<TF32Split3>();
  raise_smem_limit<TF32Split4>();
  raise_smem_limit<F16>();
  raise_smem_limit<BF16>();
  raise_smem_limit<TF32>();
  raise_smem_limit<I8>();
  raise_smem_limit<F16s>();
  raise_smem_limit<BF16s>();
  raise_smem_limit<TF32s>();
  raise_smem_limit<I8s>();
}

}  // namespace pointnet::cuda_engine
