// The fused wide layer's per-segment extremes with z computed on the tensor
// cores and kept in registers (fp16/bf16 modes). The GEMM + extremes path
// (wide_max.cu) writes z in 32 MB row chunks and reads them back: at the
// model's shape (B N = 80,000 rows, C = 1024) that is 0.48 ms of a 2.57 ms
// classifier step for its two trunks (CUPTI, 2026-12-06). Here each block
// stages one segment of x (kSegment points of one cloud) in shared memory,
// each warp holds the weights of 16 or 32 channels as mma.sync B fragments in
// registers for the whole segment, and the epilogue folds every accumulator
// into the running max and min (first occurrence) of its column. The outputs
// are the GEMM path's extremes: per-segment partials that
// merge_segments_kernel combines. No centred squares: z's variance comes from
// x's covariance instead (w^T S w, wide_max.cu); they took a quarter of the
// fold's instructions, and the kernel is issue-bound.
//
// Order and ties: a thread sees its rows in increasing n (m-tiles ascending,
// row g before g + 8) and keeps the first strict extreme; the 8 threads
// sharing a column merge in a fixed butterfly preferring the smaller n on
// equal values. So the segment's first max and min, as the GEMM path, and the
// same bits every run. NaN is never an extreme here (the GEMM path keeps one
// met at a lane's first point): a non-finite z needs non-finite inputs or
// weights, which make the step's outputs non-finite on either path.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <type_traits>

#include "core/env_choice.h"
#include "cuda/check.h"
#include "cuda/engine_mma.cuh"
#include "cuda/extremes_device.cuh"
#include "cuda/wide_extremes.h"

namespace pointnet::cuda {

namespace {
using cuda_engine::BF16Op;
using cuda_engine::F16Op;
using cuda_engine::ldmatrix_x4;

// A block takes 128 channels of one segment. Its warps split the channels:
// kTiles n-tiles of 8 per warp, so 8 warps of 16 channels (kTiles = 2) or 4
// warps of 32 (kTiles = 4: each A fragment read from shared memory feeds
// twice the MMAs, for twice the registers).
constexpr int kBlockChannels = 128;
constexpr int kMaxSteps = 8;                              // k-steps of 16: K <= 128
template <int kTiles>
constexpr int warps_of() { return kBlockChannels / (8 * kTiles); }

// Bytes per staged row: K rounded up to 16 halves, plus 16 bytes, so the 8
// rows of an ldmatrix phase start in 8 different 16-byte bank groups (the row
// stride is an odd multiple of 16 bytes).
__host__ __device__ constexpr int row_stride(int k_steps) { return k_steps * 32 + 16; }

template <int kColumns>
struct Running {
  float hi[kColumns], lo[kColumns];
  int hi_at[kColumns], lo_at[kColumns];
};

// Grid (ceil(C / 128), B S): block (x, g) takes channels [128 x, 128 x + 128)
// of segment g. Warp w owns channels 8 kTiles w .. 8 kTiles (w + 1) - 1 of the
// block's, for every row of the segment.
// kSteps: K's k-steps of 16 when known at compile time (8: the model's K =
// 128), 0 when read from K. A runtime count put a branch after every k-step
// (PTX, 2026-12-06), so ptxas could not issue the next step's ldmatrix before
// the last one's MMAs.
template <class Op, typename Half, int kTiles, int kSteps>
__global__ void __launch_bounds__(warps_of<kTiles>() * 32)
    mma_extremes_kernel(Extreme seg, const Half* __restrict__ x, const Half* __restrict__ w, int S, int N, int K,
                        int C) {
  extern __shared__ __align__(16) char tile[];
  const int k_steps = kSteps > 0 ? kSteps : (K + 15) / 16;
  const int stride = row_stride(k_steps);
  const int g = blockIdx.y;
  const int n_begin = (g % S) * kSegment;
  const int rows = min(N, n_begin + kSegment) - n_begin;
  const int m_tiles = (rows + 15) / 16;
  const Half* xs = x + (static_cast<size_t>(g / S) * N + n_begin) * K;

  // Stage the segment's rows, 16 bytes per cp.async, all in flight at once
  // (plain loads each waited for their store: 16 round trips to L2 per thread,
  // and the kernel ran at a third of its shared-memory bound, CUPTI
  // 2026-12-06). k past K and the rows up to the last m-tile's end are
  // zero-filled (source size 0): padding the epilogue never counts. Computing
  // the first rows while the rest arrived (four cp.async groups) measured no
  // faster (H100, 2026-12-07).
  const int chunks_per_row = k_steps * 2;  // 16-byte chunks of a staged row
  const int row_chunks = K / 8;            // of them, the ones x has
  for (int i = threadIdx.x; i < m_tiles * 16 * chunks_per_row; i += blockDim.x) {
    const int r = i / chunks_per_row, q = i % chunks_per_row;
    const bool real = r < rows && q < row_chunks;
    const Half* src = real ? xs + static_cast<size_t>(r) * K + q * 8 : xs;
    cp_async16_or_zero(tile + r * stride + q * 16, src, real);
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");

  // This warp's weights as B fragments: register (ks, j) holds w[c][k], w[c][k + 1]
  // and w[c][k + 8], w[c][k + 9] for c = c0 + 8 j + lane / 4, k = 16 ks + 2 (lane % 4).
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int group = lane >> 2, quad = lane & 3;
  constexpr int kColumns = 2 * kTiles;  // columns per thread: kTiles n-tiles x 2
  const int c0 = blockIdx.x * kBlockChannels + warp * 8 * kTiles;
  uint2 b[kMaxSteps][kTiles];
#pragma unroll
  for (int ks = 0; ks < kMaxSteps; ++ks)
#pragma unroll
    for (int j = 0; j < kTiles; ++j) {
      const int c = c0 + 8 * j + group, k = 16 * ks + 2 * quad;
      const uint32_t* wc = reinterpret_cast<const uint32_t*>(w + static_cast<size_t>(c) * K);
      b[ks][j].x = (ks < k_steps && c < C && k < K) ? __ldg(wc + k / 2) : 0u;
      b[ks][j].y = (ks < k_steps && c < C && k + 8 < K) ? __ldg(wc + k / 2 + 4) : 0u;
    }

  // Column q of this thread: channel c0 + 8 (q / 2) + 2 quad + q % 2.
  Running<kColumns> run;
#pragma unroll
  for (int q = 0; q < kColumns; ++q) {
    // Any finite z beats these, so the first row needs no test of its own.
    run.hi[q] = -INFINITY;
    run.lo[q] = INFINITY;
    run.hi_at[q] = run.lo_at[q] = -1;
  }
  __syncthreads();

  // Folds one m-tile's accumulators, acc[j][h * 2 + e] (row 16 mt + group +
  // 8 h, column q = 2 j + e), into the running extremes: per z element a
  // compare and two selects per extreme, nothing else (Nsight Compute,
  // 2026-12-06: the first
  // version issued ~30 instructions per element, tests for an empty lane
  // included, and was issue-bound at 145 us per call). kCheck: the m-tile
  // may pass the segment's last row (only the last one can).
  const auto fold = [&](const float (&acc)[kTiles][4], int mt, auto check) {
    constexpr bool kCheck = decltype(check)::value;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int r = mt * 16 + group + 8 * h;
      if (kCheck && r >= rows) continue;
      const int n = n_begin + r;
#pragma unroll
      for (int q = 0; q < kColumns; ++q) {
        const float v = acc[q / 2][h * 2 + q % 2];
        const bool up = v > run.hi[q], down = v < run.lo[q];
        run.hi[q] = up ? v : run.hi[q];
        run.hi_at[q] = up ? n : run.hi_at[q];
        run.lo[q] = down ? v : run.lo[q];
        run.lo_at[q] = down ? n : run.lo_at[q];
      }
    }
  };
  const int full_tiles = rows / 16;

  for (int mt = 0; mt < m_tiles; ++mt) {
    float acc[kTiles][4] = {};
#pragma unroll
    for (int ks = 0; ks < (kSteps > 0 ? kSteps : kMaxSteps); ++ks) {
      if (kSteps == 0 && ks >= k_steps) break;
      uint32_t a[4];
      ldmatrix_x4(a, tile + mt * 16 * stride + ks * 32, stride);
#pragma unroll
      for (int j = 0; j < kTiles; ++j) Op::mma(acc[j], a, b[ks][j]);
    }
    if (mt < full_tiles) fold(acc, mt, std::false_type());
    else fold(acc, mt, std::true_type());
  }

  // Merge the 8 threads of each column (lane bits 2-4), then lanes 0-3 write.
#pragma unroll
  for (int q = 0; q < kColumns; ++q) {
#pragma unroll
    for (int offset = 4; offset < 32; offset *= 2) {
      merge_extreme(run.hi[q], run.hi_at[q], offset, true);
      merge_extreme(run.lo[q], run.lo_at[q], offset, false);
    }
    const int c = c0 + 8 * (q / 2) + 2 * quad + q % 2;
    if (group != 0 || c >= C) continue;
    const size_t i = static_cast<size_t>(g) * C + c;
    seg.max[i] = run.hi[q];
    seg.argmax[i] = run.hi_at[q];
    seg.min[i] = run.lo[q];
    seg.argmin[i] = run.lo_at[q];
  }
}

template <class Op, typename Half, int kTiles, int kSteps>
void launch(cudaStream_t stream, const Extreme& seg, const void* x, const void* w, int B, int N, int K, int C) {
  const int S = (N + kSegment - 1) / kSegment;
  const size_t shared = static_cast<size_t>(kSegment) * row_stride((K + 15) / 16);
  const auto kernel = mma_extremes_kernel<Op, Half, kTiles, kSteps>;
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared)));
  // All of the unified L1/shared block as shared memory: three blocks of 68 KiB
  // per SM need 204 KiB of it (the kernel reads global memory once per block).
  CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout,
                                  cudaSharedmemCarveoutMaxShared));
  const dim3 grid((C + kBlockChannels - 1) / kBlockChannels, static_cast<unsigned>(B) * S);
  kernel<<<grid, warps_of<kTiles>() * 32, shared, stream>>>(seg, static_cast<const Half*>(x),
                                                            static_cast<const Half*>(w), S, N, K, C);
  CUDA_CHECK_LAUNCH();
}

// POINTNET_WIDE_MMA_TILES: n-tiles of 8 channels per warp, "2" or "4" (to
// compare on a GPU; read at every call).
template <class Op, typename Half>
void launch_tiles(cudaStream_t stream, const Extreme& seg, const void* x, const void* w, int B, int N, int K,
                  int C) {
  const bool four = env_choice("POINTNET_WIDE_MMA_TILES", {"2", "4"}) == "4";
  if (K == 16 * kMaxSteps) {
    if (four) launch<Op, Half, 4, kMaxSteps>(stream, seg, x, w, B, N, K, C);
    else launch<Op, Half, 2, kMaxSteps>(stream, seg, x, w, B, N, K, C);
  } else {
    if (four) launch<Op, Half, 4, 0>(stream, seg, x, w, B, N, K, C);
    else launch<Op, Half, 2, 0>(stream, seg, x, w, B, N, K, C);
  }
}
}  // namespace

bool tensor_core_extremes(cudaStream_t stream, Precision precision, const Extreme& seg, const void* x,
                          const void* w, int B, int N, int K, int C) {
  // 16-byte rows for the staging loads; 8 k-steps of B fragments in registers.
  if (K % 8 != 0 || K > 16 * kMaxSteps) return false;
  const int S = (N + kSegment - 1) / kSegment;
  if (static_cast<long long>(B) * S > 65535) return false;  // the grid's y
  if (precision == Precision::BF16)
    launch_tiles<BF16Op, __nv_bfloat16>(stream, seg, x, w, B, N, K, C);
  else if (precision == Precision::FP16)
    launch_tiles<F16Op, __half>(stream, seg, x, w, B, N, K, C);
  else
    return false;
  return true;
}

#ifdef POINTNET_NO_SM90A
bool warpgroup_extremes(cudaStream_t, Precision, const Extreme&, const void*, const void*, const float*, int, int, int,
                        int, bool) {
  return false;
}
bool warpgroup_extremes_available() { return false; }
#endif

}  // namespace pointnet::cuda
