// The trunk's launchers (engine_kernels.h): the mma.sync and FFMA
// instantiations of engine_trunk.cuh, and the choice of variant.
//
// POINTNET_ENGINE_TRUNK picks the tensor-core variant (to compare on a GPU):
//   (unset)  split where it applies (below), mma.sync elsewhere.
//   mma      mma.sync, 32 channels' weights per warp, two blocks per SM for
//            F16/BF16/I8 (<= 128 registers); TF32 one block.
//   alt      mma.sync, 64 channels per warp, one block (TF32: 16, two).
//   wgmma    conv3 through wgmma (sm_90a only: compute capability 9.0), the
//            weight slices double-buffered in shared memory.
//   wgmma1   the same, single-buffered, two blocks per SM.
//   split    F16/BF16/I8/TF32 on sm_90a, batches of kSplitMinClouds and more:
//            conv1 and conv2 store conv2's output (from the points: the
//            streamed first kernel, sm90a/engine_first_layers.cu), then
//            conv3 + max runs as the weight-stationary wgmma kernel
//            (engine_wide_max.h).
//   fused-wide  split, but the trunks that start from the points without a
//            64 -> 64 layer run whole in one wgmma kernel (conv1 and conv2
//            made inside wide_max's blocks; engine_wide_max.h); F16/BF16/I8
//            only (TF32 stays split). Opt-in.
// wgmma falls back to the default on other GPUs, and for fp32 (FFMA or 3xTF32).
#include <cstdlib>
#include <string>

#include "core/env_choice.h"
#include "cuda/engine_trunk.cuh"
#include "cuda/engine_wide_max.h"
#include "cuda/engine_tile_simt.cuh"

namespace pointnet::cuda_engine {
namespace {

using namespace trunk_detail;

using F16 = TcMath<F16Op, 2, 4>;
using BF16 = TcMath<BF16Op, 2, 4>;
using TF32 = TcMath<TF32Op, 1, 4>;
using I8 = TcMath<I8Op, 2, 4>;
using F16Alt = TcMath<F16Op, 1, 8>;
using BF16Alt = TcMath<BF16Op, 1, 8>;
using TF32Alt = TcMath<TF32Op, 2, 2>;
using I8Alt = TcMath<I8Op, 1, 8>;
using F32X3 = TcMath<F32x3Op, 1, 4>;
using F32X3Alt = TcMath<F32x3Op, 2, 2>;
using F32Wide = SimtMath<8>;    // 128 points per tile
using F32Narrow = SimtMath<4>;  // 64 points per tile

enum class Variant { Default, Alt, Wgmma, Wgmma1, Split, FusedWide };

Variant variant() {
  static const Variant v = [] {
    // "mma" (mma.sync, fused) is also what the others fall back to off sm_90a.
    const std::string s =
        env_choice("POINTNET_ENGINE_TRUNK", {"split", "mma", "alt", "wgmma", "wgmma1", "fused-wide"});
    if (s == "alt") return Variant::Alt;
#ifdef POINTNET_NO_SM90A
    const bool hopper = false;  // built without the sm_90a kernels (CUDA < 12)
#else
    const bool hopper = limits().major == 9 && limits().minor == 0;  // the sm_90a image runs there only
#endif
    if (s == "wgmma" && hopper) return Variant::Wgmma;
    if (s == "wgmma1" && hopper) return Variant::Wgmma1;
    if (s == "split" && hopper) return Variant::Split;
    if (s == "fused-wide" && hopper) return Variant::FusedWide;
    return Variant::Default;
  }();
  return v;
}

template <class A, class B>
bool fits_either(bool alt, int TP, int C, bool from_points, bool has_pre, bool conv1_only) {
  return alt ? fits<A>(TP, C, from_points, has_pre, conv1_only) : fits<B>(TP, C, from_points, has_pre, conv1_only);
}

}  // namespace

TrunkShape trunk_shape(Math math, bool from_points, bool has_pre, bool conv1_only, int B, int N, int C, int sms) {
  const Variant v = variant();
  if (math != Math::F32 && math != Math::F32X3 && (v == Variant::Wgmma || v == Variant::Wgmma1))
    return trunk_shape_wgmma(v == Variant::Wgmma1, math, from_points, has_pre, conv1_only, B, N, C, sms);
  const bool a = v == Variant::Alt;
  const auto fit = [&](int TP) {
    switch (math) {
      case Math::F16: return fits_either<F16Alt, F16>(a, TP, C, from_points, has_pre, conv1_only);
      case Math::BF16: return fits_either<BF16Alt, BF16>(a, TP, C, from_points, has_pre, conv1_only);
      case Math::TF32: return fits_either<TF32Alt, TF32>(a, TP, C, from_points, has_pre, conv1_only);
      case Math::I8: return fits_either<I8Alt, I8>(a, TP, C, from_points, has_pre, conv1_only);
      case Math::F32X3: return fits_either<F32X3Alt, F32X3>(a, TP, C, from_points, has_pre, conv1_only);
      case Math::F32: return TP == 128 ? fits<F32Wide>(TP, C, from_points, has_pre, conv1_only)
                                       : fits<F32Narrow>(TP, C, from_points, has_pre, conv1_only);
    }
    return false;
  };
  return choose_shape(math == Math::F32 ? 128 : 256, fit, conv1_only, B, N, sms);
}

void launch_trunk(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream) {
  const Variant v = variant();
  if (a.math != Math::F32 && a.math != Math::F32X3 && (v == Variant::Wgmma || v == Variant::Wgmma1))
    return launch_trunk_wgmma(v == Variant::Wgmma1, a, s, stream);
  const bool x = v == Variant::Alt;
  switch (a.math) {
    case Math::F16: return x ? launch<F16Alt>(a, s, stream) : launch<F16>(a, s, stream);
    case Math::BF16: return x ? launch<BF16Alt>(a, s, stream) : launch<BF16>(a, s, stream);
    case Math::TF32: return x ? launch<TF32Alt>(a, s, stream) : launch<TF32>(a, s, stream);
    case Math::I8: return x ? launch<I8Alt>(a, s, stream) : launch<I8>(a, s, stream);
    case Math::F32X3: return x ? launch<F32X3Alt>(a, s, stream) : launch<F32X3>(a, s, stream);
    case Math::F32: return s.tile_points == 128 ? launch<F32Wide>(a, s, stream) : launch<F32Narrow>(a, s, stream);
  }
}

const char* trunk_variant_name() {
  switch (variant()) {
    case Variant::Alt: return "mma.sync-alt";
    case Variant::Wgmma: return "wgmma";
    case Variant::Wgmma1: return "wgmma1";
    case Variant::Split: return "split";
    case Variant::FusedWide: return "fused-wide";
    default: return "mma.sync";
  }
}

void prepare_trunk_kernels() {
  raise_smem_limit<F16>();
  raise_smem_limit<BF16>();
  raise_smem_limit<TF32>();
  raise_smem_limit<I8>();
  raise_smem_limit<F16Alt>();
  raise_smem_limit<BF16Alt>();
  raise_smem_limit<TF32Alt>();
  raise_smem_limit<I8Alt>();
  raise_smem_limit<F32X3>();
  raise_smem_limit<F32X3Alt>();
  raise_smem_limit<F32Wide>();
  raise_smem_limit<F32Narrow>();
  const Variant v = variant();
  if (v == Variant::Wgmma || v == Variant::Wgmma1 || v == Variant::Split || v == Variant::FusedWide)
    prepare_trunk_wgmma_kernels();
  if (v == Variant::Split || v == Variant::FusedWide) prepare_wide_max_kernels();
  if (v == Variant::FusedWide) prepare_wide_max_fused_kernels();
}

bool trunk_is_split(Math math, int B) {
  return (variant() == Variant::Split || variant() == Variant::FusedWide) && B >= kSplitMinClouds &&
         (math == Math::F16 || math == Math::BF16 || math == Math::I8 || math == Math::TF32);
}

bool trunk_fuses_wide(const TrunkArgs& a) {
  // The kernel reads conv2's weights, bias and scales once for all clouds.
  const bool shared_conv2 = a.conv2.w_core && a.conv2.w_cloud_bytes == 0 && a.conv2.bias_cloud_stride == 0 &&
                            a.conv2.scale_cloud_stride == 0;
  return trunk_fuses_wide_at_all(a.math) && trunk_is_split(a.math, a.B) && a.points && !a.h1_in && !a.pre.w &&
         shared_conv2 && a.conv3.w_core && (a.C == 3 || a.C == 6);
}

bool trunk_fuses_wide_at_all(Math math) { return variant() == Variant::FusedWide && math != Math::TF32; }

#ifdef POINTNET_NO_SM90A
TrunkShape trunk_shape_wgmma(bool, Math, bool, bool, bool, int, int, int, int) {
  fail("this build has no sm_90a (wgmma) kernels");
}
void launch_trunk_wgmma(bool, const TrunkArgs&, const TrunkShape&, cudaStream_t) {
  fail("this build has no sm_90a (wgmma) kernels");
}
void prepare_trunk_wgmma_kernels() {}
TrunkShape trunk_shape_split(Math, bool, bool, int, int, int) { fail("this build has no sm_90a (wgmma) kernels"); }
void launch_trunk_split(const TrunkArgs&, const TrunkShape&, cudaStream_t) {
  fail("this build has no sm_90a (wgmma) kernels");
}
bool first_layers_streamed(Math) { return false; }
bool first_layers_stream(const TrunkArgs&) { return false; }
void launch_first_layers(const TrunkArgs&, const TrunkShape&, cudaStream_t) {
  fail("this build has no sm_90a (wgmma) kernels");
}
size_t wide_max_smem_bytes(Math) { fail("this build has no sm_90a (wgmma) kernels"); }
int wide_max_columns(Math) { fail("this build has no sm_90a (wgmma) kernels"); }
int wide_max_grid(Math, int, int, int) { fail("this build has no sm_90a (wgmma) kernels"); }
void prepare_wide_max_kernels() {}
void launch_wide_max(const WideMaxArgs&, int, cudaStream_t) { fail("this build has no sm_90a (wgmma) kernels"); }
void prepare_wide_max_fused_kernels() {}
void launch_wide_max_fused(const TrunkArgs&, float*, int, cudaStream_t) {
  fail("this build has no sm_90a (wgmma) kernels");
}
#endif

}  // namespace pointnet::cuda_engine
