// conv3 + max over a cloud's points through Hopper's warpgroup MMA (wgmma,
// sm_90a), weight-stationary: each block keeps 512 output channels' weights
// in shared memory for the whole launch and streams the clouds' 128-wide
// input rows through it in tiles of 64 rows (cp.async, two tiles ahead). Its
// two warpgroups take 256 channels each as two m64n128 halves; one half's
// wgmmas run while the other half's maxima are folded, so the tensor cores
// never wait for the fold. Only the per-cloud maxima are written.
//
// Compared with the fused trunk (engine_tile_wgmma.cuh), which streams
// 64-channel weight slices past a block's few rows, each weight byte loaded
// here serves a whole launch's rows and each wgmma is twice as wide (n128).
// The rows come from memory (written by an earlier kernel), as the
// micro-benchmark bench/wide_max_gpu.cpp measures against cuBLAS.
#include <cfloat>
#include <climits>
#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "cuda/check.h"
#include "cuda/engine_mma.cuh"
#include "cuda/engine_tile_wgmma.cuh"
#include "cuda/engine_wide_max.h"

namespace pointnet::cuda_engine {
namespace {

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

constexpr int kThreadsWm = 256;  // two warpgroups
constexpr int kColsPerBlock = 512;
constexpr int kStages = 4;       // row tiles in shared memory: computing, finishing, two arriving
constexpr int kTileRows = 64;

template <class Op>
struct WideMaxLayout {
  static constexpr int kRowBytes = 128 * Op::kBytes;  // K = 128
  static constexpr int kTileBytes = kTileRows * kRowBytes;
  static constexpr int kWeightBytes = kColsPerBlock * kRowBytes;
  static constexpr int kRedBytes = 2 * 2 * 4 * 128 * 4;  // [warpgroup][half][warp][128 channels]
  static constexpr size_t kSmem = static_cast<size_t>(kWeightBytes) + kStages * kTileBytes + kRedBytes;
};

template <class Op>
__global__ void __launch_bounds__(kThreadsWm, 1) wide_max_kernel(const WideMaxArgs a) {
  using L = WideMaxLayout<Op>;
  using Acc = typename Op::Acc;
  constexpr int kSteps = L::kRowBytes / 32;  // k-steps of 32 bytes
  constexpr uint32_t kSbo = L::kRowBytes * 8;
  extern __shared__ __align__(128) char smem[];
  char* w_s = smem;
  char* tiles_s = smem + L::kWeightBytes;
  float* red = reinterpret_cast<float*>(tiles_s + kStages * L::kTileBytes);

  const int groups = a.C / kColsPerBlock, group = blockIdx.x % groups;
  const int first = blockIdx.x / groups, stride = gridDim.x / groups;
  const int clouds = first < a.B ? (a.B - first + stride - 1) / stride : 0;
  const int T = a.tiles, Q = clouds * T;  // this block's row tiles, cloud after cloud
  const int wgi = threadIdx.x >> 7, t = threadIdx.x & 127, warp = t >> 5, lane = threadIdx.x & 31;

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
  // stage of tile q - 2, whose wgmmas every thread has waited for, is refilled
  // with tile q + 2.
  const auto arrive = [&](int q) {
    wg::cp_async_wait<1>();
    wg::fence_proxy_async();
    __syncthreads();
    load(q + 2);
  };

  // This warpgroup's two halves of 128 channels.
  const char* w_half0 = w_s + static_cast<size_t>(wgi * 256) * L::kRowBytes;
  const char* w_half1 = w_half0 + 128 * L::kRowBytes;
  const auto issue = [&](Acc (&d)[64], int q, const char* wb) {
    const char* x = tiles_s + (q % kStages) * L::kTileBytes;
    wg::fence_acc64(d);
    wg::fence();
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
      Mma128<Op>::run(d, wg::desc(x + ks * 256, kSbo), wg::desc(wb + ks * 256, kSbo), ks > 0);
    wg::commit();
    wg::fence_acc64(d);
  };
  Acc best0[32], best1[32];
  // Accumulator 4 j + {0, 1}: channels 8 j + 2 (lane % 4) + {0, 1} of one
  // row; + {2, 3}: the same channels 8 rows down.
  const auto fold = [&](Acc (&best)[32], Acc (&d)[64]) {
    wg::fence_acc64(d);
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      best[2 * j] = acc_max(best[2 * j], acc_max(d[4 * j], d[4 * j + 2]));
      best[2 * j + 1] = acc_max(best[2 * j + 1], acc_max(d[4 * j + 1], d[4 * j + 3]));
    }
  };
  // U tiles from q0, straight-line: half 1 of tile u and half 0 of tile u + 1
  // run while the other half's maxima are folded; all are waited for at the
  // end (a branch or a loop edge between a wgmma and its wait makes ptxas
  // serialise them, C7514).
  Acc d0[64], d1[64];
  const auto tiles = [&](int q0, auto count) {
    constexpr int U = decltype(count)::value;
    arrive(q0);
    issue(d0, q0, w_half0);
    issue(d1, q0, w_half1);
#pragma unroll
    for (int u = 0; u < U; ++u) {
      wg::wait<1>();
      fold(best0, d0);
      if (u + 1 < U) {
        arrive(q0 + u + 1);
        issue(d0, q0 + u + 1, w_half0);
        wg::wait<1>();
      } else {
        wg::wait<0>();
      }
      fold(best1, d1);
      if (u + 1 < U) issue(d1, q0 + u + 1, w_half1);
    }
  };
  // A cloud's maxima of one half: across the 8 row groups of each warp, then
  // the warpgroup's 4 warps through shared memory; the running maxima restart.
  const auto finish = [&](Acc (&best)[32], int b, int half) {
#pragma unroll
    for (int i = 0; i < 32; ++i) {
#pragma unroll
      for (int s = 4; s < 32; s <<= 1) best[i] = acc_max(best[i], __shfl_xor_sync(0xffffffffu, best[i], s));
    }
    float* r = red + (wgi * 2 + half) * 4 * 128;
    const int c0 = group * kColsPerBlock + wgi * 256 + half * 128;
    if (lane < 4) {
#pragma unroll
      for (int j = 0; j < 16; ++j)
#pragma unroll
        for (int x = 0; x < 2; ++x) {
          const int local = j * 8 + lane * 2 + x;
          r[warp * 128 + local] =
              epilogue_value<Op>(best[2 * j + x], 0.f, a.x_scale, a.scale ? a.scale[c0 + local] : 1.f);
        }
    }
#pragma unroll
    for (int i = 0; i < 32; ++i) best[i] = acc_lowest<Acc>();
    wg::bar_sync(1 + wgi, 128);
    float v = r[t];
    for (int p = 1; p < 4; ++p) v = fmaxf(v, r[p * 128 + t]);
    a.out[static_cast<size_t>(b) * a.C + c0 + t] = v;
  };

  if (Q == 0) {
    wg::cp_async_commit();  // the weights' copies
    wg::cp_async_wait<0>();
    return;
  }
#pragma unroll
  for (int i = 0; i < 32; ++i) best0[i] = best1[i] = acc_lowest<Acc>();
  load(0);
  load(1);
  for (int c = 0; c < clouds; ++c) {
    const int q0 = c * T;
    int u = 0;
    for (; u + 4 <= T; u += 4) tiles(q0 + u, std::integral_constant<int, 4>());
    for (; u < T; ++u) tiles(q0 + u, std::integral_constant<int, 1>());
    // The reduction's shared memory is next written a cloud later, after
    // arrive's __syncthreads: no barrier needed after reading it.
    finish(best0, first + c * stride, 0);
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
  wide_max_kernel<Op><<<grid, kThreadsWm, WideMaxLayout<Op>::kSmem, stream>>>(a);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

size_t wide_max_smem_bytes(Math math) {
  switch (math) {
    case Math::F16: return WideMaxLayout<F16Op>::kSmem;
    case Math::BF16: return WideMaxLayout<BF16Op>::kSmem;
    case Math::I8: return WideMaxLayout<I8Op>::kSmem;
    default: break;
  }
  fail("wide_max: no wgmma kernel for this precision");
}

int wide_max_grid(int B, int C, int sms) {
  const int groups = C / kColsPerBlock;
  const int per_group = std::max(1, std::min(B, sms / groups));
  return per_group * groups;
}

void prepare_wide_max_kernels() {
  raise_limit<F16Op>();
  raise_limit<BF16Op>();
  raise_limit<I8Op>();
}

void launch_wide_max(const WideMaxArgs& a, int grid, cudaStream_t stream) {
  PN_CHECK(a.C > 0 && a.C % kColsPerBlock == 0 && a.tiles > 0 && grid % (a.C / kColsPerBlock) == 0);
  switch (a.math) {
    case Math::F16: return launch<F16Op>(a, grid, stream);
    case Math::BF16: return launch<BF16Op>(a, grid, stream);
    case Math::I8: return launch<I8Op>(a, grid, stream);
    default: break;
  }
  fail("wide_max: no wgmma kernel for this precision");
}

}  // namespace pointnet::cuda_engine
