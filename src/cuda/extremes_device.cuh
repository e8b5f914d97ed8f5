// Device helpers shared by the two tensor-core extremes kernels of the fused
// wide layer (wide_extremes_mma.cu, sm90a/wide_extremes_wgmma.cu).
#pragma once
#include <cuda_runtime.h>

namespace pointnet::cuda {

// 16 bytes from global memory into shared memory without a register round
// trip; zeros instead when `real` is false (the source is not read).
__device__ __forceinline__ void cp_async16_or_zero(char* dst, const void* src, bool real) {
  const unsigned d = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(src), "r"(real ? 16 : 0) : "memory");
}

// Two partial extremes of one column: (v, at) becomes the better of itself
// and (ov, oat); on equal values the smaller point n wins, and an empty side
// (at = -1) never does.
__device__ __forceinline__ void merge_extreme_with(float& v, int& at, float ov, int oat, bool want_max) {
  const bool better = want_max ? ov > v : ov < v;
  if (oat >= 0 && (at < 0 || better || (ov == v && oat < at))) {
    v = ov;
    at = oat;
  }
}

// The 8 threads of a column in an MMA accumulator (lanes t, t + 4, ..., t +
// 28) merge, XOR partner by partner (mask_offset 4, 8, 16).
__device__ __forceinline__ void merge_extreme(float& v, int& at, int mask_offset, bool want_max) {
  const float ov = __shfl_xor_sync(0xffffffffu, v, mask_offset);
  const int oat = __shfl_xor_sync(0xffffffffu, at, mask_offset);
  merge_extreme_with(v, at, ov, oat, want_max);
}

}  // namespace pointnet::cuda
