// The trunk's conv3 + max through Hopper's warpgroup MMA (wgmma, sm_90a):
// the tile policy WgMath, used by sm90a/engine_trunk_wgmma.cu only. Same
// interface as TcMath (engine_tile_tc.cuh), whose mma.sync layers it reuses
// for everything before conv3.
//
// conv2 writes its output tile in wgmma's core-matrix layout
// (engine_fragment.h, core_byte); conv3's weights are stored in the same
// layout, so a slice of 64 output channels is one contiguous block that
// cp.async copies into shared memory. Each of the block's two warpgroups
// takes every other slice: per 64-row tile of points, K / 32 bytes of
// wgmma.m64n64 (A and B from shared memory through descriptors, fp32 or s32
// accumulators in registers), then the running max over the tile's rows;
// then the warpgroup's four warps merge their maxima through shared memory.
#pragma once
#include <cstdint>
#include <type_traits>

#include "cuda/engine_fragment.h"
#include "cuda/engine_tile_tc.cuh"

namespace pointnet::cuda_engine {

namespace wg {

// A descriptor of a K-major operand without swizzling: start address, LBO =
// 128 bytes (the next 16-byte chunk of K), SBO = the next group of 8 rows.
__device__ __forceinline__ uint64_t desc(const void* smem, uint32_t sbo) {
  const uint32_t a = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  return static_cast<uint64_t>((a & 0x3ffff) >> 4) | (static_cast<uint64_t>(128 >> 4) << 16) |
         (static_cast<uint64_t>(sbo >> 4) << 32);
}

// v, which the compiler cannot see through: a sum with it is made where it is
// used, never hoisted and kept in a register.
__device__ __forceinline__ uint64_t opaque(uint64_t v) {
  asm volatile("" : "+l"(v));
  return v;
}
__device__ __forceinline__ void fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Shared memory written by ordinary stores (or cp.async), read next by wgmma.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

__device__ __forceinline__ void cp_async16(void* dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(static_cast<uint32_t>(__cvta_generic_to_shared(dst))),
               "l"(src)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
// Every cp.async group but the kNewest newest has landed, each thread's
// copies made visible to the whole block's wgmmas (a pipeline kNewest + 1
// groups deep: the oldest group just waited for is the tile about to be
// computed; kNewest = 0: every group).
template <int kNewest = 1>
__device__ __forceinline__ void all_but_newest_landed() {
  cp_async_wait<kNewest>();
  fence_proxy_async();
  __syncthreads();
}
// The weight-stationary kernels' pipeline over U row tiles from q0, each
// tile against two halves of a warpgroup's channels, straight-line: half 1 of
// tile u and half 0 of tile u + 1 run while the other half is folded; all are
// waited for at the end (a branch or a loop edge between a wgmma and its wait
// makes ptxas serialise them, C7514). arrive(q): tile q has landed;
// issue(d, q, half) and fold(d, u, half), half a std::integral_constant.
template <int U, class Acc, class Arrive, class Issue, class Fold>
__device__ __forceinline__ void two_halves(int q0, Acc& d0, Acc& d1, const Arrive& arrive, const Issue& issue,
                                           const Fold& fold) {
  using Half0 = std::integral_constant<int, 0>;
  using Half1 = std::integral_constant<int, 1>;
  arrive(q0);
  issue(d0, q0, Half0());
  issue(d1, q0, Half1());
#pragma unroll
  for (int u = 0; u < U; ++u) {
    wait<1>();
    fold(d0, u, Half0());
    if (u + 1 < U) {
      arrive(q0 + u + 1);
      issue(d0, q0 + u + 1, Half0());
      wait<1>();
    } else {
      wait<0>();
    }
    fold(d1, u, Half1());
    if (u + 1 < U) issue(d1, q0 + u + 1, Half1());
  }
}
// A barrier over `threads` threads (a warpgroup) with its own id (0 is __syncthreads').
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// Keeps the compiler from reading accumulators before wgmma.wait_group.
template <int N>
__device__ __forceinline__ void fence_acc(float (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(d[i])::"memory");
}
template <int N>
__device__ __forceinline__ void fence_acc(int (&d)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+r"(d[i])::"memory");
}

#define PN_WG_D "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
                "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define PN_WG_ACC(c)                                                                                      \
  c(d[0]), c(d[1]), c(d[2]), c(d[3]), c(d[4]), c(d[5]), c(d[6]), c(d[7]), c(d[8]), c(d[9]), c(d[10]),     \
      c(d[11]), c(d[12]), c(d[13]), c(d[14]), c(d[15]), c(d[16]), c(d[17]), c(d[18]), c(d[19]), c(d[20]), \
      c(d[21]), c(d[22]), c(d[23]), c(d[24]), c(d[25]), c(d[26]), c(d[27]), c(d[28]), c(d[29]), c(d[30]), c(d[31])
// Sets predicate p from operand %34 (the `accumulate` flag): wgmma's scale-d.
#define PN_WG_SCALE_D "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
#define PN_F(x) "+f"(x)
#define PN_R(x) "+r"(x)

// d(64 x 64) = A(64 x 32 bytes of K) B(64 channels x 32 bytes of K)^T (+ d if
// `accumulate`: wgmma's scale-d), per element type.
template <class Op>
struct Mma;
template <>
struct Mma<F16Op> {
  __device__ static void run(float (&d)[32], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG_SCALE_D "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " PN_WG_D ", %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : PN_WG_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma<BF16Op> {
  __device__ static void run(float (&d)[32], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG_SCALE_D "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " PN_WG_D ", %32, %33, p, 1, 1, 0, 0;\n}\n"
                 : PN_WG_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma<TF32Op> {
  __device__ static void run(float (&d)[32], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG_SCALE_D "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 " PN_WG_D ", %32, %33, p, 1, 1;\n}\n"
                 : PN_WG_ACC(PN_F)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};
template <>
struct Mma<I8Op> {
  __device__ static void run(int (&d)[32], uint64_t a, uint64_t b, bool accumulate) {
    asm volatile(PN_WG_SCALE_D "wgmma.mma_async.sync.aligned.m64n64k32.s32.u8.s8 " PN_WG_D ", %32, %33, p;\n}\n"
                 : PN_WG_ACC(PN_R)
                 : "l"(a), "l"(b), "r"(static_cast<int>(accumulate)));
  }
};

#undef PN_WG_D
#undef PN_WG_SCALE_D
#undef PN_WG_ACC
#undef PN_F
#undef PN_R

}  // namespace wg

// kBufsT: weight slices per warpgroup in shared memory (2: the next one is
// copied while this one is used).
template <class OpT, int kMinBlocksT, int kBufsT>
struct WgMath : TcMath<OpT, kMinBlocksT, 4> {
  using Base = TcMath<OpT, kMinBlocksT, 4>;
  using Op = OpT;
  using Acc = typename Op::Acc;
  static constexpr int kBytes = Op::kBytes;
  static constexpr int kNs = 64;                       // output channels per wgmma
  static constexpr int kRowBytes = 128 * kBytes;       // a row of conv3's input (K = 128)
  static constexpr int kSliceBytes = kNs * kRowBytes;  // one slice of conv3's weights
  static constexpr int kBufs = kBufsT;
  static constexpr size_t kRedBytes = 2 * 4 * kNs * 4;  // per warpgroup: 4 warps x kNs maxima

  __host__ __device__ static constexpr size_t h128_bytes(int rows) { return static_cast<size_t>(rows) * kRowBytes; }
  __host__ __device__ static constexpr size_t scratch_bytes() {
    return static_cast<size_t>(2) * kBufs * kSliceBytes + kRedBytes;
  }

  template <int K>
  __device__ static void linear_h128(const char* x, char* y, int TP, const DevLayer& l, int b) {
    Base::template linear<K, true>(x, y, 128, TP, l, b, true);
    wg::fence_proxy_async();  // read next by wgmma (after the caller's __syncthreads)
  }

  template <int K>
  __device__ static void conv3_max(const char* h, const DevLayer& l, int ch0, int count, int TP, float* out, float*,
                                   char* scratch) {
    static_assert(K * kBytes == kRowBytes, "conv3 reads 128 inputs");
    constexpr int kSteps = kRowBytes / 32;
    constexpr uint32_t kSbo = kRowBytes * 8;
    const int group = threadIdx.x >> 7, t = threadIdx.x & 127, warp = t >> 5, lane = threadIdx.x & 31;
    const int slices = count / kNs, mtiles = TP / 64;
    char* bufs = scratch + group * kBufs * kSliceBytes;
    float* red = reinterpret_cast<float*>(scratch + 2 * kBufs * kSliceBytes) + group * 4 * kNs;
    const char* w = static_cast<const char*>(l.w_core);
    const auto load = [&](int slice, int buf) {
      const char* src = w + static_cast<size_t>(ch0 + slice * kNs) * kRowBytes;
      char* dst = bufs + buf * kSliceBytes;
      for (int i = t; i < kSliceBytes / 16; i += 128) wg::cp_async16(dst + i * 16, src + i * 16);
      wg::cp_async_commit();
    };
    // 64-row tile mt against the slice in bb, into d.
    // (The first k-step overwrites d: no zeroing, which would be a non-wgmma
    // write to the accumulators between the pipeline's stages.)
    const auto issue = [&](Acc (&d)[32], int mt, const char* bb) {
      wg::fence_acc(d);
      wg::fence();
#pragma unroll
      for (int ks = 0; ks < kSteps; ++ks)
        wg::Mma<Op>::run(d, wg::desc(h + mt * 64 * kRowBytes + ks * 256, kSbo), wg::desc(bb + ks * 256, kSbo),
                         ks > 0);
      wg::commit();
      wg::fence_acc(d);
    };
    Acc best[8][2];
    // Accumulator j * 4 + {0, 1}: columns 8 j + 2 (lane % 4) + {0, 1} of one
    // row; + {2, 3}: the same columns 8 rows down.
    const auto fold = [&](Acc (&d)[32]) {
      wg::fence_acc(d);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        best[j][0] = acc_max(best[j][0], acc_max(d[4 * j], d[4 * j + 2]));
        best[j][1] = acc_max(best[j][1], acc_max(d[4 * j + 1], d[4 * j + 3]));
      }
    };
    if (kBufs == 2 && group < slices) load(group, 0);
    int it = 0;
    for (int slice = group; slice < slices; slice += 2, ++it) {
      const int buf = kBufs == 2 ? (it & 1) : 0;
      if constexpr (kBufs == 2) {
        if (slice + 2 < slices) {
          load(slice + 2, buf ^ 1);
          wg::cp_async_wait<1>();
        } else {
          wg::cp_async_wait<0>();
        }
      } else {
        load(slice, 0);
        wg::cp_async_wait<0>();
      }
      wg::fence_proxy_async();
      wg::bar_sync(1 + group, 128);
      const char* bb = bufs + buf * kSliceBytes;
#pragma unroll
      for (int j = 0; j < 8; ++j) best[j][0] = best[j][1] = acc_lowest<Acc>();
      // Two accumulator sets: tile mt + 1's wgmmas run while tile mt's
      // maxima are taken (wait_group 1 leaves only the newest group in
      // flight), so the tensor cores do not drain at every tile. mtiles is
      // TP / 64 with TP in {64, 128, 256}: 1, 2 or 4, each straight-line
      // code: a branch or register renaming between a group's issue and its
      // wait makes ptxas serialise wgmma (C7514, C7518).
      Acc d0[32], d1[32];
      const auto tiles = [&](auto count) {
        constexpr int T = decltype(count)::value;
        issue(d0, 0, bb);
#pragma unroll
        for (int mt = 0; mt < T; mt += 2) {
          if constexpr (T == 1) {
            wg::wait<0>();
            fold(d0);
          } else {
            issue(d1, mt + 1, bb);
            wg::wait<1>();
            fold(d0);
            if (mt + 2 < T) {
              issue(d0, mt + 2, bb);
              wg::wait<1>();
            } else {
              wg::wait<0>();
            }
            fold(d1);
          }
        }
      };
      if (mtiles == 4) tiles(std::integral_constant<int, 4>());
      else if (mtiles == 2) tiles(std::integral_constant<int, 2>());
      else tiles(std::integral_constant<int, 1>());
      // Across the 8 row groups of each warp, then the warpgroup's 4 warps.
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int x = 0; x < 2; ++x)
#pragma unroll
          for (int s = 4; s < 32; s <<= 1) best[j][x] = acc_max(best[j][x], __shfl_xor_sync(0xffffffffu, best[j][x], s));
      if (lane < 4) {
#pragma unroll
        for (int j = 0; j < 8; ++j)
#pragma unroll
          for (int x = 0; x < 2; ++x) {
            const int local = j * 8 + lane * 2 + x, c = ch0 + slice * kNs + local;
            red[warp * kNs + local] = epilogue_value<Op>(best[j][x], 0.f, l.x_scale, l.scale ? l.scale[c] : 1.f);
          }
      }
      wg::bar_sync(1 + group, 128);
      if (t < kNs) {
        float v = red[t];
        for (int p = 1; p < 4; ++p) v = fmaxf(v, red[p * kNs + t]);
        out[ch0 + slice * kNs + t] = v;
      }
    }
  }

};

// The split trunk's policy: WgMath's layers up to conv2, whose tile (already
// in core layout) goes to memory for the wide_max kernel; no conv3 here, so
// no weight slices in shared memory and kMinBlocksT blocks per SM.
template <class OpT, int kMinBlocksT = 2>
struct WgSplit : WgMath<OpT, kMinBlocksT, 1> {
  static constexpr bool kStoresConv2 = true;
};

}  // namespace pointnet::cuda_engine
