// Pieces shared by the wgmma kernels of conv3 + max over points
// (wide_max_wgmma.cu: input rows from memory; wide_max_fused_wgmma.cu: conv1
// and conv2 computed in the same block): the m64n128 wgmma, one warpgroup's
// issue of a 64-row tile against 128 channels, the fold of its accumulators
// into running maxima, and the per-cloud reduction of those maxima.
#pragma once
#include <cfloat>
#include <climits>
#include <cstdint>

#include "cuda/engine_mma.cuh"
#include "cuda/engine_tile_wgmma.cuh"

namespace pointnet::cuda_engine {
namespace wide {

constexpr int kColsPerBlock = 512;  // fused kernel's output channels per block: 2 warpgroups x 2 halves x 128
constexpr int kTileRows = 64;       // rows per wgmma tile

#define PN_WG128_D "{" \
  "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define PN_WG128_ACC(c) \
      c(d[0]), c(d[1]), c(d[2]), c(d[3]), c(d[4]), c(d[5]), c(d[6]), c(d[7]), \
      c(d[8]), c(d[9]), c(d[10]), c(d[11]), c(d[12]), c(d[13]), c(d[14]), c(d[15]), \
      c(d[16]), c(d[17]), c(d[18]), c(d[19]), c(d[20]), c(d[21]), c(d[22]), c(d[23]), \
      c(d[24]), c(d[25]), c(d[26]), c(d[27]), c(d[28]), c(d[29]), c(d[30]), c(d[31]), \
      c(d[32]), c(d[33]), c(d[34]), c(d[35]), c(d[36]), c(d[37]), c(d[38]), c(d[39]), \
      c(d[40]), c(d[41]), c(d[42]), c(d[43]), c(d[44]), c(d[45]), c(d[46]), c(d[47]), \
      c(d[48]), c(d[49]), c(d[50]), c(d[51]), c(d[52]), c(d[53]), c(d[54]), c(d[55]), \
      c(d[56]), c(d[57]), c(d[58]), c(d[59]), c(d[60]), c(d[61]), c(d[62]), c(d[63])
#define PN_WG128_SCALE_D "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
#define PN_F(x) "+f"(x)
#define PN_R(x) "+r"(x)

// d(64 x 128) = A(64 rows x 32 bytes of K) B(128 channels x 32 bytes of K)^T
// (+ d if `accumulate`), per element type.
template <class Op>
struct Mma128;
template <>
struct Mma128<F16Op> {
  __device__ static void run(float (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG128_SCALE_D "wgmma.mma_async.sync.aligned.m64n128k16.f32.f16.f16 " PN_WG128_D
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : PN_WG128_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma128<BF16Op> {
  __device__ static void run(float (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG128_SCALE_D "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " PN_WG128_D
                 ", %64, %65, p, 1, 1, 0, 0;\n}\n"
                 : PN_WG128_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma128<TF32Op> {  // K = 8 per instruction: the same 32 bytes of K; no transposes for tf32
  __device__ static void run(float (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG128_SCALE_D "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 " PN_WG128_D
                 ", %64, %65, p, 1, 1;\n}\n"
                 : PN_WG128_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma128<I8Op> {
  __device__ static void run(int (&d)[64], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG128_SCALE_D "wgmma.mma_async.sync.aligned.m64n128k32.s32.u8.s8 " PN_WG128_D
                 ", %64, %65, p;\n}\n"
                 : PN_WG128_ACC(PN_R)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};

#undef PN_WG128_D
#undef PN_WG128_ACC
#undef PN_WG128_SCALE_D
#undef PN_F
#undef PN_R

// d = rows x (K = kRowBytes) against 128 channels at wb, both in core layout;
// the first k-step overwrites d (no zeroing between the pipeline's stages).
template <class Op, int kRowBytes>
__device__ __forceinline__ void issue128(typename Op::Acc (&d)[64], const char* x, const char* wb) {
  constexpr int kSteps = kRowBytes / 32;
  constexpr uint32_t kSbo = kRowBytes * 8;
  wg::fence_acc(d);
  wg::fence();
  if constexpr (kSteps <= 8) {
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
      Mma128<Op>::run(d, wg::desc(x + ks * 256, kSbo), wg::desc(wb + ks * 256, kSbo), ks > 0);
  } else {
    // tf32's 16 k-steps: each step's descriptors are the first's plus 256
    // bytes (16 in the address field), added where used. Hoisted out of the
    // tile loop, the weights' descriptors would hold 64 registers for good
    // and spill (ptxas: 608 bytes; this way 64).
    const uint64_t da = wg::desc(x, kSbo), db = wg::desc(wb, kSbo);
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
      Mma128<Op>::run(d, da + wg::opaque(16 * ks), db + wg::opaque(16 * ks), ks > 0);
  }
  wg::commit();
  wg::fence_acc(d);
}

// Accumulator 4 j + {0, 1}: channels 8 j + 2 (lane % 4) + {0, 1} of one row;
// + {2, 3}: the same channels 8 rows down. best[2 j + x]: channel 8 j + 2
// (lane % 4) + x over the rows seen.
template <class Acc>
__device__ __forceinline__ void fold128(Acc (&best)[32], Acc (&d)[64]) {
  wg::fence_acc(d);
#pragma unroll
  for (int j = 0; j < 16; ++j) {
    best[2 * j] = acc_max(best[2 * j], acc_max(d[4 * j], d[4 * j + 2]));
    best[2 * j + 1] = acc_max(best[2 * j + 1], acc_max(d[4 * j + 1], d[4 * j + 3]));
  }
}

// A cloud's maxima of 128 channels (c0 ..) held by one warpgroup: across the
// 8 row groups of each warp, then its 4 warps through `red` (4 x 128 floats,
// this warpgroup's own); out[c0 + i] = the epilogue of channel c0 + i's max,
// plus bias[c0 + i] and through a ReLU if given (as merge_max_kernel would).
// The running maxima restart. Before `red` is written again (the other half,
// or the next cloud) every thread of the warpgroup must have read it: the
// caller's barrier.
template <class Op>
__device__ __forceinline__ void finish128(typename Op::Acc (&best)[32], float* red, int wgi, int c0, float x_scale,
                                          const float* scale, float* out, const float* bias = nullptr,
                                          bool relu = false) {
  const int t = threadIdx.x & 127, warp = t >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int i = 0; i < 32; ++i) {
#pragma unroll
    for (int s = 4; s < 32; s <<= 1) best[i] = acc_max(best[i], __shfl_xor_sync(0xffffffffu, best[i], s));
  }
  if (lane < 4) {
#pragma unroll
    for (int j = 0; j < 16; ++j)
#pragma unroll
      for (int x = 0; x < 2; ++x) {
        const int local = j * 8 + lane * 2 + x;
        red[warp * 128 + local] = epilogue_value<Op>(best[2 * j + x], 0.f, x_scale, scale ? scale[c0 + local] : 1.f);
      }
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) best[i] = acc_lowest<typename Op::Acc>();
  wg::bar_sync(1 + wgi, 128);
  float v = red[t];
  for (int p = 1; p < 4; ++p) v = fmaxf(v, red[p * 128 + t]);
  if (bias) v += bias[c0 + t];
  out[c0 + t] = relu ? fmaxf(v, 0.f) : v;
}

}  // namespace wide
}  // namespace pointnet::cuda_engine
