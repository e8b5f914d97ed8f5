// The fused wide layer on the GPU (conv + BatchNorm + optional ReLU + max over
// points; see model/backend.h and the derivation in src/cpu/wide_max.cpp, the
// reference these kernels follow formula for formula). Notation as there: x
// (M, K) the input rows, M = B*N; z = x w^T + bias; xbar, S x's mean and
// biased covariance; a_c = gamma_c invstd_c; g = dy masked by the ReLU.
//
// Forward (train), in stream order:
//   column_sums (batchnorm.cu)  xbar in double, fixed chunks and trees (bf16:
//                               of x's 2-byte operand instead, reads_operand_only).
//   finish_mean_kernel          input_mean = float(xbar).
//   centre_kernel               the centred rows x - input_mean into scratch
//                               (fp32 / tf32; see raw_covariance for the others).
//   gemm_fp32                   input_cov = Xc^T Xc / M: one cuBLAS GEMM on the
//                               fp32 rows, plain fp32 in the fp32 mode and TF32
//                               in the others (tf32_outside_fp32); the backward's
//                               dw is its only reader. fp16 / bf16: X^T X on
//                               x's 2-byte operand, then raw_to_covariance_kernel
//                               (raw_covariance).
//   channel_mean_kernel         one warp per channel: mu = bias + w_c.xbar (double).
//   mma_extremes_kernel         fp16/bf16 modes (wide_extremes_mma.cu): z in
//                               registers, never stored; the same per-segment
//                               extremes as the two kernels below, no squares
//                               (on sm_90a with K = 128: wgmma_extremes_kernel,
//                               sm90a/wide_extremes_wgmma.cu, one segment per
//                               cloud, the picked side only):
//   covariance_squares_kernel   the squares' totals as M w_c^T S w_c instead
//                               (w_c rounded as the operand). Otherwise:
//   gemm (precision mode) +     z = x w^T (no bias) in row chunks of at most
//   segment_extremes_kernel     chunk_rows() (whole segments: kSegment points of
//                               one cloud) into scratch; per chunk one block per
//                               (segment, 32 channels) with kLanes point lanes
//                               finds z's max and min over the segment and their
//                               first occurrence (strict compare per lane walking
//                               points in order, a fixed tree preferring the
//                               smaller index on ties) and sums (z - mu)^2 in
//                               double (fixed tree), into per-segment partials.
//   merge_segments_kernel       one thread per (b, c): the cloud's segments in
//                               ascending order, a later one replacing only a
//                               strictly better value (first occurrence wins),
//                               squares summed in that order: the (B, C) extremes.
//   channel_stats_kernel        one thread per channel: var = sum over clouds of
//                               those squares / M (b ascending, as the CPU),
//                               invstd, running stats as batchnorm_forward_train.
//   select_kernel               one thread per (b, c): z's max (gamma >= 0) or
//                               min, + bias; y = act((sel - mean) * (gamma invstd)
//                               + beta) in the CPU's float operations; saves
//                               selected, row.
// Forward (eval): the extremes, eval_scale_kernel (1/sqrt(running_var + eps)),
//   select_kernel with the running mean.
// Backward:
//   backward_channels_kernel    one thread per channel, b ascending: dbeta = sum g,
//                               dgamma = sum g xhat (double), dbias = 0, a_c.
//   rows_dot_rows_kernel        sw = w S (from the saved covariance), double sums
//                               in ascending order, 16 x 16 shared-memory tiles.
//   dw_kernel                   one thread per (c, k): a_c [sum_b g (x_picked -
//                               xbar) - dgamma invstd (S w_c)_k], b ascending.
//   if dx is wanted:
//   scale_rows_kernel           scaled_w(C, K) = (a invstd dgamma / M)_c w_c.
//   gemm_fp32                   P(K, K) = w^T scaled_w (plain fp32, as the CPU).
//   offset_kernel               one block per column l: xbar P - u, u =
//                               sum_c (a dbeta / M)_c w_c, double, a fixed tree.
//   negate_transpose_kernel +   dx = offset - x P in one cuBLASLt matmul (bf16: x's
//                               operand times P in bf16, reads_operand_only), the
//   LtLinear                    offset its bias epilogue (fp32 operands, TF32
//                               outside the fp32 mode: P's entries carry a 1/M
//                               and would sit near fp16's underflow); where it has
//                               no plan, broadcast_rows + gemm_fp32 (dx += -x P).
//                               With dx_narrow (bf16, wide_max_writes_narrow_dx)
//                               the matmul writes dx in bf16, its bias rounded
//                               to bf16 (no plan for that: the fp32 way into
//                               kLinearOut, rounded once at the end).
//   sort_picks_kernel +         the sparse part. Max pooling concentrates the
//   add_picks (wide_picks.cu)   picks: a few rows of a cloud take hundreds of
//                               channels each, so a kernel walking channels per
//                               row range serialises on them. One block per
//                               cloud sorts its (row, c) picks (bitonic: a
//                               key per thread, warp shuffles for strides
//                               under 32, for C <= 1024; else two keys per
//                               thread in shared memory), writing (row, c, a_c g_bc) in
//                               that order; add_picks then adds the terms to
//                               dx's rows in segments of 8 sorted picks, one
//                               writer per dx element, no atomics, a fixed
//                               order (wide_picks.cu); onto bf16 dx, summed
//                               in fp32 and rounded again.
// Scratch (grow-only, cuda_common.cuh): kWideRows holds the centred rows and
// then z's chunks; kWideTerms the (B, C) extremes, the per-segment partials
// and the per-channel terms,
// carved into aligned arrays; column_sums uses kSums/kPartials and the GEMMs'
// half operands kGemmA/kGemmB as everywhere. No host synchronisation except
// when a scratch slot grows (the first call of a shape).
#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <type_traits>

#include "core/env_choice.h"
#include "cuda/cuda_common.cuh"
#include "cuda/wide_extremes.h"
#include "cuda/wide_picks.h"
#include "dist/communicator.h"

namespace pointnet {

namespace {
using cuda::grid_for;
using cuda::kBlock;
using State = CudaBackend::State;
using cuda::Extreme;
using cuda::kSegment;

constexpr int kTile = 32;               // channels per extremes block (one warp wide)
constexpr int kLanes = 8;               // point lanes per extremes block (a power of 2)
constexpr int kSmallTile = 16;          // tile edge of rows_dot_rows_kernel
constexpr int kSortThreads = 512;       // threads of the per-cloud pick sort above 1024 channels
constexpr int kMaxSortedPicks = 4096;   // channels a cloud's sort holds (32 KB of shared memory)
constexpr int kMeanChunkRows = 256;    // rows per partial of the 2-byte operand's column sums
constexpr int kOffsetThreads = 256;     // threads per column of offset_kernel (a power of 2)

// Rows of z per GEMM chunk (at most; chunks end on segment boundaries): 32 MB
// of z at C = 1024. Predicted: 4096 rows (16 MB, left in the H100's 50 MB L2
// for the extremes pass) would be faster; measured 2026-12-06: 2% slower (cls
// bf16 step 3.44 vs 3.36 ms). POINTNET_WIDE_CHUNK_ROWS picks another size.
int chunk_rows() {
  static const int rows = std::stoi(env_choice("POINTNET_WIDE_CHUNK_ROWS", {"8192", "4096", "16384", "2048"}));
  return rows;
}

// Where the fp16/bf16 modes take z's extremes: "wgmma-ra" (default), z in
// registers through Hopper's warpgroup MMA with the weights as its register
// A operand, or "wgmma", both operands in shared memory
// (sm90a/wide_extremes_wgmma.cu),
// and where that does not apply (not sm_90, K != 128) "mma", through mma.sync
// (wide_extremes_mma.cu); or "gemm", the chunked GEMM and extremes pass that
// fp32 and tf32 always take (POINTNET_WIDE_EXTREMES, to compare them; read at
// every call so that tests can switch it). wgmma vs mma: 60 vs 119 us per
// call, cls bf16 step 1.486 vs 1.620 ms (CUPTI / bench, H100, 2026-12-07).
// wgmma-ra vs wgmma: 52.5 vs ~60 us per call; steps cls bf16 1.124 vs 1.136
// ms, seg 2.165 vs 2.183, cls ft 2.087 vs 2.117 (H100, 2026-12-07).
std::string wide_extremes_path() {
  return env_choice("POINTNET_WIDE_EXTREMES", {"wgmma-ra", "wgmma", "mma", "gemm"});
}

// x's covariance in the fp16 / bf16 modes: X^T X over x's 2-byte operand (the
// one z's extremes read: no conversion of its own, half of fp32's bytes),
// then / M - xbar_h xbar_h^T in double, xbar_h those values' own mean ("raw",
// default); or from centred fp32 rows written first ("centred": the fp32 and
// tf32 modes' way, as the CPU). The
// centring pass read and wrote x's M K floats (77 us per classifier step of
// 1.71 ms, two trunks; CUPTI, H100, 2026-12-06) and held them in scratch.
// Its point is cancellation: raw sums carry the mean's square as well. Here
// the products of 2-byte values are exact in fp32, the operands' rounding to
// nearest is unbiased (its effect on a mean of M products shrinks as 1/sqrt(M),
// plus a bias of ~2^-18 relative from the squared errors), and the fp32 sums'
// error is amplified by E[x^2] / var(x), ~1.5-3 for a ReLU layer's outputs
// (far more for a near-constant channel: see covariance_squares).
bool raw_covariance(const State& s) {
  return (s.precision == Precision::FP16 || s.precision == Precision::BF16) &&
         env_choice("POINTNET_WIDE_COVARIANCE", {"raw", "centred"}) == "raw";
}

// Whether the layer reads x only as its 2-byte operand, the values z is
// computed from (Backend::wide_max_reads_narrow_input): x's mean is theirs
// (already summed for the raw covariance), and the backward's dw and dense
// dx = offset - x P read them too, x P as a bf16 product with P rounded to
// bf16. bf16 only: P's entries carry a 1/M, near fp16's underflow, and fp16
// keeps the fp32 x (a TF32 product). Then the fp32 x is never read, and its
// producer need not write it (41 MB per trunk at 32 x 2500 points).
// POINTNET_WIDE_INPUT=fp32 keeps the fp32 x (to compare).
bool reads_operand_only(const State& s) {
  return s.precision == Precision::BF16 && raw_covariance(s) &&
         env_choice("POINTNET_WIDE_INPUT", {"copy", "fp32"}) == "copy";
}

// Carves one scratch block into arrays aligned to 256 bytes: a pass with a null
// base measures, a pass with the block hands out the pointers.
struct Carve {
  char* base = nullptr;
  size_t bytes = 0;
  template <typename U>
  U* take(size_t n) {
    bytes = (bytes + 255) / 256 * 256;
    U* p = base ? reinterpret_cast<U*>(base + bytes) : nullptr;
    bytes += n * sizeof(U);
    return p;
  }
};

// Lays `terms` out in scratch slot kWideTerms: one measuring pass, then the
// pass that hands out the pointers.
template <typename Terms, typename... Sizes>
void carve_terms(State& s, Terms& terms, Sizes... sizes) {
  Carve measure;
  terms.carve(measure, sizes...);
  Carve block{static_cast<char*>(s.scratch(State::kWideTerms, measure.bytes))};
  terms.carve(block, sizes...);
}

struct Extremes {
  float* zmax = nullptr;        // (B, C) z's max per cloud and channel, bias not added
  float* zmin = nullptr;        // (B, C) its min
  int32_t* argmax = nullptr;    // (B, C) first n where the max is
  int32_t* argmin = nullptr;    // (B, C) first n where the min is
  double* scale = nullptr;      // (C) invstd in double (train: batch; eval: running)
  double* xbar = nullptr;       // (K) x's mean in double (train only)
  double* xbar_h = nullptr;     // (K) the mean of x's 2-byte operand (train, raw_covariance)
  double* h_partials = nullptr; // (chunks, K) its per-chunk column sums, then (K) the sums
  double* mu = nullptr;         // (C) z's mean, bias included (train only)
  double* sq = nullptr;         // (B, C) sum over the cloud's points of (z - mu)^2 (train only)
  Extreme seg;                  // (B, S, C) the same per segment of kSegment points
  int S = 0;                    // segments per cloud
  // train: the training forward's terms; two_bytes: with the fp16 / bf16
  // modes' column sums of x's 2-byte operand.
  void carve(Carve& c, int B, int N, int K, int C, bool train, bool two_bytes) {
    const size_t bc = size_t(B) * C;
    S = (N + kSegment - 1) / kSegment;
    const size_t bsc = bc * S;
    scale = c.take<double>(C);
    if (train) {
      xbar = c.take<double>(K);
      if (two_bytes) {
        xbar_h = c.take<double>(K);
        h_partials = c.take<double>((size_t(B) * N + kMeanChunkRows - 1) / kMeanChunkRows * K + K);
      }
      mu = c.take<double>(C);
      sq = c.take<double>(bc);
      seg.sq = c.take<double>(bsc);
    }
    zmax = c.take<float>(bc);
    zmin = c.take<float>(bc);
    argmax = c.take<int32_t>(bc);
    argmin = c.take<int32_t>(bc);
    seg.max = c.take<float>(bsc);
    seg.min = c.take<float>(bsc);
    seg.argmax = c.take<int32_t>(bsc);
    seg.argmin = c.take<int32_t>(bsc);
  }
};

struct BackwardTerms {
  double* a = nullptr;          // (C) gamma invstd
  double* db = nullptr;         // (C) dbeta in double
  double* dg = nullptr;         // (C) dgamma in double
  double* sw = nullptr;         // (C, K) S w_c
  float* scaled_w = nullptr;    // (C, K) (a invstd dgamma / M)_c w_c
  float* P = nullptr;           // (K, K)
  float* neg_P_t = nullptr;     // (K, K) -P^T: x P as the matmul x w^T + bias of a cuBLASLt epilogue
  // -P^T in bf16 (the product on x's bf16 operand), in neg_P_t's room
  __nv_bfloat16* neg_P_t_bf16() const { return reinterpret_cast<__nv_bfloat16*>(neg_P_t); }
  float* offset = nullptr;      // (K) xbar P - u
  __nv_bfloat16* offset_bf16 = nullptr;  // (K) offset rounded: the bias of dx's bf16 product (dx_narrow)
  int32_t* pick_row = nullptr;  // (B, C) each cloud's picks sorted by (row, c); row -1 (skipped) last
  int32_t* pick_channel = nullptr;  // (B, C) their channels
  double* pick_term = nullptr;  // (B, C) their a_c g_bc
  float* pieces = nullptr;      // add_picks' scratch (wide_picks.h)
  void carve(Carve& c, int B, int K, int C) {
    pieces = c.take<float>(cuda::pick_piece_floats(B, K, C));
    pick_row = c.take<int32_t>(size_t(B) * C);
    pick_channel = c.take<int32_t>(size_t(B) * C);
    pick_term = c.take<double>(size_t(B) * C);
    a = c.take<double>(C);
    db = c.take<double>(C);
    dg = c.take<double>(C);
    sw = c.take<double>(size_t(C) * K);
    scaled_w = c.take<float>(size_t(C) * K);
    P = c.take<float>(size_t(K) * K);
    neg_P_t = c.take<float>(size_t(K) * K);
    offset = c.take<float>(K);
    offset_bf16 = c.take<__nv_bfloat16>(K);
  }
};

// Row-major C(M, N) = alpha op(A) op(B) + beta C with fp32 operands and fp32
// accumulation, for the layer's K x K products. `math`: CUBLAS_COMPUTE_32F
// (plain fp32) or, through tf32_outside_fp32(), CUBLAS_COMPUTE_32F_FAST_TF32.
// The operand swap is cuda::gemm's (cuda_backend.cu): the row-major C is the
// column-major C^T = op(B)^T op(A)^T.
void gemm_fp32(State& s, cublasComputeType_t math, bool transpose_a, bool transpose_b, int M, int N, int K,
               float alpha, const float* A, int lda, const float* B, int ldb, float beta, float* C, int ldc) {
  if (M == 0 || N == 0) return;
  PN_CHECK(K > 0);
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  CUBLAS_CHECK(cublasGemmEx(s.blas, op_b, op_a, N, M, K, &alpha, B, CUDA_R_32F, ldb, A, CUDA_R_32F, lda,
                            &beta, C, CUDA_R_32F, ldc, math, CUBLAS_GEMM_DEFAULT));
}

// The two long products (x's covariance over M rows, dx += -x P over M rows,
// 2.6 GFLOP each at the model's shape): plain fp32 in the fp32 mode, TF32
// tensor cores in the tf32, fp16 and bf16 modes (the covariance in fp16 /
// bf16 since session 11: raw_covariance, on the 2-byte operand). TF32 keeps 10 mantissa bits,
// as many as fp16 and more than bf16, so these products are no less precise
// than the modes' own GEMMs; it keeps fp32's exponent range (P carries a 1/M
// that fp16 would push toward underflow) and reads the fp32 tensors as they
// are. On FFMA they took 0.15 ms of a 2.57 ms bf16 classifier step per trunk
// (CUPTI, 2026-12-06: the covariance 60 us, x P 94 us); on TF32 22 and 54 us
// (x P reads and writes dx, 123 MB at the model's shape: near the copy rate).
// BatchNorm's statistics do not go through them: z's mean and variance are
// double sums (channel_mean_kernel, the extremes' squares).
cublasComputeType_t tf32_outside_fp32(const State& s) {
  return s.precision == Precision::FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_TF32;
}

// The gradient reaching a picked point: dy, or 0 where the ReLU cut it (as the CPU).
__device__ __forceinline__ double masked_grad(float dy, float y, bool relu) {
  return relu && !(y > 0.0f) ? 0.0 : static_cast<double>(dy);
}

__global__ void finish_mean_kernel(float* input_mean, double* xbar, const double* sums, int M, int K,
                                   const double* global_rows) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= K) return;
  const double v = sums[k] / cuda::row_count(global_rows, M);
  xbar[k] = v;
  input_mean[k] = static_cast<float>(v);
}

// xc(M, K) = x - input_mean on every row (float, as the CPU).
__global__ void centre_kernel(float* xc, const float* x, const float* input_mean, size_t M, int K) {
  const size_t n = M * K;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    xc[i] = x[i] - input_mean[i % K];
}

// out(rows, cols)[i, j] = sum_l a[i, l] b[j, l] (a (rows, K), b (cols, K), both
// row-major), accumulated in double over l in ascending order. Blocks of
// kSmallTile x kSmallTile threads, one output each; tiles of a and b in shared
// memory (zero-padded at the edges, and the padding is never added), widened
// to double as they are staged: widened at each use (two conversions per
// FMA, which sm_90 runs at 16 a clock per SM) the kernel was conversion-bound,
// ~13 us a call at 1024 x 128 x 128 (CUPTI, session 21). The same values.
__global__ void rows_dot_rows_kernel(double* out, const float* a, const float* b, int rows, int cols, int K) {
  __shared__ double as[kSmallTile][kSmallTile + 1];
  __shared__ double bs[kSmallTile][kSmallTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int i = blockIdx.y * kSmallTile + ty;       // output row; also the row of a this thread stages
  const int j = blockIdx.x * kSmallTile + tx;       // output column
  const int j_stage = blockIdx.x * kSmallTile + ty; // the row of b this thread stages
  double acc = 0.0;
  for (int l0 = 0; l0 < K; l0 += kSmallTile) {
    const int l = l0 + tx;
    as[ty][tx] = (i < rows && l < K) ? static_cast<double>(a[size_t(i) * K + l]) : 0.0;
    bs[ty][tx] = (j_stage < cols && l < K) ? static_cast<double>(b[size_t(j_stage) * K + l]) : 0.0;
    __syncthreads();
    const int n = min(kSmallTile, K - l0);
    for (int t = 0; t < n; ++t) acc += as[ty][t] * bs[tx][t];
    __syncthreads();  // before the next tile overwrites the shared arrays
  }
  if (i < rows && j < cols) out[size_t(i) * cols + j] = acc;
}

void rows_dot_rows(State& s, double* out, const float* a, const float* b, int rows, int cols, int K) {
  const dim3 block(kSmallTile, kSmallTile);
  const dim3 grid((cols + kSmallTile - 1) / kSmallTile, (rows + kSmallTile - 1) / kSmallTile);
  PN_CHECK(grid.y <= 65535);
  rows_dot_rows_kernel<<<grid, block, 0, s.stream>>>(out, a, b, rows, cols, K);
  CUDA_CHECK_LAUNCH();
}

// z's mean per channel, double: z is linear in x, so mu_c = bias_c + w_c .
// xbar exactly. One warp per channel, lane l taking k = l, l + 32, ... in
// order, then a fixed shuffle tree (the same bits every run). A thread per
// channel walking its row alone read w with a stride of K floats across the
// warp: 21 us per call for 128 K of work (CUPTI, 2026-12-06).
__global__ void channel_mean_kernel(double* mu, const double* xbar, const float* w, const float* bias, int K,
                                    int C) {
  const int c = static_cast<int>((blockIdx.x * size_t(blockDim.x) + threadIdx.x) / 32);
  const int lane = static_cast<int>(threadIdx.x % 32);
  if (c >= C) return;  // the whole warp
  const float* wc = w + size_t(c) * K;
  double m = 0.0;
  for (int k = lane; k < K; k += 32) m += static_cast<double>(wc[k]) * xbar[k];
  for (int offset = 16; offset > 0; offset /= 2) m += __shfl_down_sync(0xffffffffu, m, offset);
  if (lane == 0) mu[c] = static_cast<double>(bias[c]) + m;
}

// z's variance from the clouds' centred squares (b ascending, as the CPU), the
// saved mean and invstd, the double scale, the running stats. With SyncBN, or
// from covariance_squares: sq is the totals (B = 1), global_rows their row
// count. (The quadratic form w_c^T S w_c loses relative precision when var is
// small next to |w_c|^2 |S|: only the fp16/bf16 modes, whose z carries a
// relative error of 2^-11 / 2^-8 of that scale anyway, take it.)
__global__ void channel_stats_kernel(float* mean, float* invstd, double* scale, float* running_mean,
                                     float* running_var, const double* mu, const double* sq, int B, int M, int C,
                                     double eps, double momentum, const double* global_rows) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double total = 0.0;
  for (int b = 0; b < B; ++b) total += sq[size_t(b) * C + c];
  const double rows = cuda::row_count(global_rows, M);
  const double quotient = total / rows;
  const double var = quotient < 0.0 ? 0.0 : quotient;  // never below 0 but by rounding; NaN stays NaN
  const double is = 1.0 / sqrt(var + eps);
  scale[c] = is;
  mean[c] = static_cast<float>(mu[c]);
  invstd[c] = static_cast<float>(is);
  const double unbias = rows > 1 ? rows / (rows - 1) : 1.0;
  running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu[c]);
  running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * var * unbias);
}

// SyncBN: this rank's centred squares per channel, clouds in order (b ascending).
__global__ void cloud_totals_kernel(double* totals, const double* sq, int B, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double total = 0.0;
  for (int b = 0; b < B; ++b) total += sq[size_t(b) * C + c];
  totals[c] = total;
}

// Column sums of x's 2-byte operand (M, K) in double, for its own mean (the
// covariance below is that of these values, not of fp32 x). Chunks of
// kMeanChunkRows rows, one block each: thread (tx, ty) takes V adjacent
// columns (one 16-byte load per row where K allows, V = 8) and rows ty,
// ty + blockDim.y, ... in order; a fixed tree over the row lanes gives the
// chunk's partial. Then cuda::add_chunks adds the chunks. Fixed orders: the
// same bits every run. One thread per (chunk of 64 rows, column) read 2
// bytes per row and took 13.4 + 7.1 us per call at the model's shape
// (80,000 x 128); these 16-byte loads 13.8 + ~3.2 (CUPTI, H100,
// 2026-12-07): the partials are no faster, for a reason not yet found.
template <typename Half, int V>
__global__ void narrow_column_partials_kernel(double* partials, const Half* x, int M, int K, int chunks) {
  extern __shared__ double lanes[];  // [V][blockDim.y][blockDim.x]
  const int gx = blockDim.x, ly = blockDim.y, tx = threadIdx.x, ty = threadIdx.y;
  const int col = (blockIdx.x * gx + tx) * V;
  for (int chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    double s[V];
#pragma unroll
    for (int v = 0; v < V; ++v) s[v] = 0.0;
    if (col < K) {
      const int end = min(M, (chunk + 1) * kMeanChunkRows);
#pragma unroll 4
      for (int r = chunk * kMeanChunkRows + ty; r < end; r += ly) {
        const Half* row = x + size_t(r) * K + col;
        if constexpr (V == 8) {
          const uint4 bits = *reinterpret_cast<const uint4*>(row);
          const Half* h = reinterpret_cast<const Half*>(&bits);
#pragma unroll
          for (int v = 0; v < V; ++v) s[v] += static_cast<double>(static_cast<float>(h[v]));
        } else {
          s[0] += static_cast<double>(static_cast<float>(row[0]));
        }
      }
    }
#pragma unroll
    for (int v = 0; v < V; ++v) lanes[(v * ly + ty) * gx + tx] = s[v];
    __syncthreads();
    // Lanes [0, h) absorb lanes [h, 2h) that exist, h halving from the
    // largest power of 2 below ly: any ly, a fixed tree.
    int h = 1;
    while (2 * h < ly) h *= 2;
    for (; h > 0; h /= 2) {
      if (ty < h && ty + h < ly)
#pragma unroll
        for (int v = 0; v < V; ++v) lanes[(v * ly + ty) * gx + tx] += lanes[(v * ly + ty + h) * gx + tx];
      __syncthreads();
    }
    if (ty == 0 && col < K)
#pragma unroll
      for (int v = 0; v < V; ++v) partials[size_t(chunk) * K + col + v] = lanes[v * ly * gx + tx];
    __syncthreads();  // the lanes are rewritten by the next chunk
  }
}
// sums(K) = the column sums of the 2-byte x (M, K) in double, through
// partials (chunks, K) in scratch.
template <typename Half>
void narrow_column_sums(State& s, double* sums, double* partials, const Half* x, int M, int K) {
  const int chunks = (M + kMeanChunkRows - 1) / kMeanChunkRows;
  // 16-byte loads need rows that start on 16 bytes: K a multiple of 8.
  const bool wide = K % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0;
  const int groups = wide ? K / 8 : K;
  const int gx = groups < 32 ? groups : 32, ly = kBlock / gx;
  const dim3 grid(static_cast<unsigned>((groups + gx - 1) / gx), static_cast<unsigned>(chunks < 65535 ? chunks : 65535)),
      block(gx, ly);
  const size_t smem = size_t(wide ? 8 : 1) * gx * ly * sizeof(double);
  if (wide)
    narrow_column_partials_kernel<Half, 8><<<grid, block, smem, s.stream>>>(partials, x, M, K, chunks);
  else
    narrow_column_partials_kernel<Half, 1><<<grid, block, smem, s.stream>>>(partials, x, M, K, chunks);
  CUDA_CHECK_LAUNCH();
  cuda::add_chunks(s.stream, sums, partials, K, 1, 1, chunks);
}

__global__ void divide_sums_kernel(double* mean, const double* sums, int K, int M, const double* global_rows) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < K) mean[k] = sums[k] / cuda::row_count(global_rows, M);
}

// cov(k, l) = x^T x (k, l) / M - xbar_k xbar_l: the raw sums made the
// covariance around the mean (M: the global row count with SyncBN), in double,
// rounded once. xbar: the mean of the values the sums were taken of.
__global__ void raw_to_covariance_kernel(float* cov, const double* xbar, int K, int M, const double* global_rows) {
  const double rows = cuda::row_count(global_rows, M);
  const size_t n = size_t(K) * K;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    cov[i] = static_cast<float>(static_cast<double>(cov[i]) / rows - xbar[i / K] * xbar[i % K]);
}

// SyncBN: the covariance summed over the ranks, divided by the global row count.
__global__ void divide_by_rows_kernel(float* x, size_t n, const double* global_rows) {
  const double rows = *global_rows;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    x[i] = static_cast<float>(x[i] / rows);
}

__global__ void eval_scale_kernel(double* scale, const float* running_var, int C, double eps) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) scale[c] = 1.0 / sqrt(static_cast<double>(running_var[c]) + eps);
}

// Segments g = g_first + blockIdx.y of one chunk of z (the chunk's rows from
// r0 stored from z); segment g is cloud b = g / S, points n in [s kSegment,
// min(N, (s + 1) kSegment)), s = g % S, all in the chunk. Block (kTile,
// kLanes), channel c = blockIdx.x * kTile + tx. Each lane walks its points in
// increasing order keeping the first strict extreme; the lanes merge in a fixed
// tree that prefers, on equal values, the smaller n: the segment's first max
// and min. With `mu` given (training), the lanes also sum (z + bias - mu)^2
// over their points in double and merge in a fixed tree: the same sum every run.
__global__ void segment_extremes_kernel(Extreme seg, const float* z, long long r0, int g_first, int S, int N,
                                        int C, const double* mu, const float* bias) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kTile + tx;
  const int g = g_first + blockIdx.y;
  const long long cloud_row = static_cast<long long>(g / S) * N;  // row of the cloud's point 0
  const int n_begin = (g % S) * kSegment, n_end = min(N, n_begin + kSegment);
  __shared__ float max_value[kLanes][kTile];
  __shared__ int max_index[kLanes][kTile];
  __shared__ float min_value[kLanes][kTile];
  __shared__ int min_index[kLanes][kTile];
  __shared__ double centred_sq[kLanes][kTile];
  float hi = 0.0f, lo = 0.0f;
  int hi_at = -1, lo_at = -1;  // -1: this lane saw no point
  double acc = 0.0;
  if (c < C) {
    const double centre = mu ? mu[c] - static_cast<double>(bias[c]) : 0.0;
    // From the segment's first row (in the chunk: never before z).
    const float* zc = z + static_cast<size_t>(cloud_row + n_begin - r0) * C + c;
#pragma unroll 4
    for (int n = n_begin + ty; n < n_end; n += kLanes) {
      const float v = zc[static_cast<size_t>(n - n_begin) * C];
      const double d = static_cast<double>(v) - centre;
      acc += d * d;
      if (hi_at < 0 || v > hi) {
        hi = v;
        hi_at = n;
      }
      if (lo_at < 0 || v < lo) {
        lo = v;
        lo_at = n;
      }
    }
  }
  max_value[ty][tx] = hi;
  max_index[ty][tx] = hi_at;
  min_value[ty][tx] = lo;
  min_index[ty][tx] = lo_at;
  centred_sq[ty][tx] = acc;
  __syncthreads();
  for (int half = kLanes / 2; half > 0; half /= 2) {
    if (ty < half) {
      centred_sq[ty][tx] += centred_sq[ty + half][tx];
      const int other = max_index[ty + half][tx], mine = max_index[ty][tx];
      const float ov = max_value[ty + half][tx], mv = max_value[ty][tx];
      if (other >= 0 && (mine < 0 || ov > mv || (ov == mv && other < mine))) {
        max_value[ty][tx] = ov;
        max_index[ty][tx] = other;
      }
      const int other_lo = min_index[ty + half][tx], mine_lo = min_index[ty][tx];
      const float olv = min_value[ty + half][tx], mlv = min_value[ty][tx];
      if (other_lo >= 0 && (mine_lo < 0 || olv < mlv || (olv == mlv && other_lo < mine_lo))) {
        min_value[ty][tx] = olv;
        min_index[ty][tx] = other_lo;
      }
    }
    __syncthreads();
  }
  if (ty != 0 || c >= C) return;  // lane 0 saw the segment's first point: every index is set
  const size_t i = static_cast<size_t>(g) * C + c;
  seg.max[i] = max_value[0][tx];
  seg.argmax[i] = max_index[0][tx];
  seg.min[i] = min_value[0][tx];
  seg.argmin[i] = min_index[0][tx];
  if (seg.sq) seg.sq[i] = centred_sq[0][tx];
}

// (b, c)'s extremes over the cloud's S segments, ascending: a later segment
// (larger n) replaces only a strictly better value, so the first occurrence in
// the cloud wins; the squares are summed in the same order.
__global__ void merge_segments_kernel(Extremes e, int B, int C) {
  const size_t total = size_t(B) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t b = i / C, c = i % C;
    size_t j = b * e.S * C + c;
    float hi = e.seg.max[j], lo = e.seg.min[j];
    int hi_at = e.seg.argmax[j], lo_at = e.seg.argmin[j];
    double sq = e.seg.sq ? e.seg.sq[j] : 0.0;
    for (int s = 1; s < e.S; ++s) {
      j += C;
      if (e.seg.max[j] > hi) {
        hi = e.seg.max[j];
        hi_at = e.seg.argmax[j];
      }
      if (e.seg.min[j] < lo) {
        lo = e.seg.min[j];
        lo_at = e.seg.argmin[j];
      }
      if (e.seg.sq) sq += e.seg.sq[j];
    }
    e.zmax[i] = hi;
    e.argmax[i] = hi_at;
    e.zmin[i] = lo;
    e.argmin[i] = lo_at;
    if (e.sq) e.sq[i] = sq;
  }
}

// z = x w^T's per-cloud extremes into e (zmax, zmin, argmax, argmin; with
// "wgmma" only the side select_kernel picks by gamma's sign): on the
// tensor cores with z in registers where tensor_core_extremes takes the shape
// and mode (returns false: no squares), else the chunked GEMM, a chunk being
// a run of whole segments (rows are ordered by cloud, then point) of at most
// chunk_rows() rows, which also sums each cloud's squares into e.sq where
// e.mu is set (returns true). x_narrow: x's 2-byte copy, or null.
bool cloud_extremes(State& s, Extremes e, const float* x, const void* x_narrow, const float* w,
                    const float* bias, const float* gamma, int B, int N, int K, int C) {
  const void* xo = cuda::gemm_operand(s, State::kGemmA, x, size_t(B) * N * K, x_narrow);
  const void* wo = cuda::gemm_operand(s, State::kGemmB, w, size_t(C) * K);
  const std::string path = wide_extremes_path();
  const bool warpgroup = path == "wgmma" || path == "wgmma-ra";
  if (warpgroup &&
      cuda::warpgroup_extremes(s.stream, s.precision, e.seg, xo, wo, gamma, B, N, K, C, path == "wgmma-ra")) {
    e.S = 1;  // one segment per cloud, the picked side only
    e.seg.sq = e.sq = nullptr;
    merge_segments_kernel<<<grid_for(size_t(B) * C), kBlock, 0, s.stream>>>(e, B, C);
    CUDA_CHECK_LAUNCH();
    return false;
  }
  if (path != "gemm" && cuda::tensor_core_extremes(s.stream, s.precision, e.seg, xo, wo, B, N, K, C)) {
    e.seg.sq = e.sq = nullptr;  // none summed
    merge_segments_kernel<<<grid_for(size_t(B) * C), kBlock, 0, s.stream>>>(e, B, C);
    CUDA_CHECK_LAUNCH();
    return false;
  }
  // z's row chunks: slot kWideRows, whose centred rows (training) are no
  // longer needed (stream order); the tensor-core path above needs neither.
  const int M = B * N;
  float* z = static_cast<float*>(s.scratch(State::kWideRows, size_t(std::min(M, chunk_rows())) * C * sizeof(float)));
  // Bytes per operand element (gemm_operand: fp32 as is, or 2-byte halves).
  const size_t element = (s.precision == Precision::FP16 || s.precision == Precision::BF16) ? 2 : sizeof(float);
  const int S = e.S;
  const long long segments = static_cast<long long>(B) * S;
  const auto first_row = [&](long long g) { return (g / S) * N + (g % S) * kSegment; };
  const auto end_row = [&](long long g) { return (g / S) * N + std::min<long long>(N, (g % S + 1) * kSegment); };
  for (long long g0 = 0; g0 < segments;) {
    long long g1 = g0 + 1;  // one segment (<= kSegment rows) always fits
    while (g1 < segments && end_row(g1) - first_row(g0) <= chunk_rows()) ++g1;
    const long long r0 = first_row(g0);
    const int rows = static_cast<int>(end_row(g1 - 1) - r0);
    const void* xr = static_cast<const char*>(xo) + size_t(r0) * K * element;
    // z(rows, C) = x[r0 : r0 + rows] w^T, in the backend's precision mode.
    cuda::gemm(s, false, true, rows, C, K, xr, K, 0, wo, K, 0, 0.0f, z, C, 0);
    const dim3 block(kTile, kLanes), grid((C + kTile - 1) / kTile, static_cast<unsigned>(g1 - g0));
    segment_extremes_kernel<<<grid, block, 0, s.stream>>>(e.seg, z, r0, static_cast<int>(g0), S, N, C, e.mu, bias);
    CUDA_CHECK_LAUNCH();
    g0 = g1;
  }
  merge_segments_kernel<<<grid_for(size_t(B) * C), kBlock, 0, s.stream>>>(e, B, C);
  CUDA_CHECK_LAUNCH();
  return e.mu != nullptr;
}

// z's centred squares from x's covariance, where the extremes kernel summed
// none. z = x_h w_h^T (the 2-byte operands; bias not added) has the mean
// m_c = w_h,c . xbar_h and the variance w_h,c^T S w_h,c over the rows, S the
// covariance of x_h around xbar_h (raw_covariance). Its squares around the
// mean the CPU and the GEMM path use, mu_c - bias_c (from fp32 x and w), are
// then totals[c] = rows (w_h,c^T S w_h,c + (m_c - (mu_c - bias_c))^2): both
// terms non-negative, the same sum up to S's fp32 sums (z's products are
// exact; its fp32 accumulation differs by ~2^-24). S's raw sums cancel for an
// input channel whose mean is large next to its spread (E[x^2] / var(x) of
// 1e8 for a near-constant one: S off by ~1e-6 E[x^2] there), which moves
// only an output channel whose variance is itself that small, below eps =
// 1e-5 and below the mode's own rounding of z. In the centred mode S is fp32
// x's (TF32, centred rows): an approximation within the mode's rounding. One
// block per kQuadChannels channels, whose rounded weights it holds in shared
// memory, so that each of S's values is read once per block (one block per
// channel read S 1024 times from L2: 17 us per call at K = 128, C = 1024;
// 8 channels per block, one load in flight per thread: 19-25 us; CUPTI,
// H100, 2026-12-07; this version, 4 channels and 16 loads in flight, not
// yet timed). Thread l: u_l = sum_k w_k S(k, l) and w_l xbar_l
// in double, k ascending; then fixed trees over l.
constexpr int kQuadThreads = 128;  // >= K on the tensor-core path (K <= 128)
constexpr int kQuadChannels = 4;
template <typename Half>
__global__ void covariance_squares_kernel(double* totals, const float* w, const float* cov, const double* xbar_h,
                                          const double* mu, const float* bias, int K, int M, int C,
                                          const double* global_rows) {
  __shared__ double quad[kQuadChannels][kQuadThreads], lin[kQuadChannels][kQuadThreads];
  // The 2-byte weights, exact in double: widened once here, not at each of
  // their K uses (conversions run at 16 a clock per SM: 14 us a call when
  // kept in float, CUPTI, session 21).
  __shared__ double wh[kQuadChannels][kQuadThreads];
  const int c0 = blockIdx.x * kQuadChannels, l = threadIdx.x;
#pragma unroll
  for (int j = 0; j < kQuadChannels; ++j)
    wh[j][l] = c0 + j < C && l < K ? static_cast<double>(cuda::to_narrow<Half>(w[size_t(c0 + j) * K + l])) : 0.0;
  __syncthreads();
  double u[kQuadChannels];
#pragma unroll
  for (int j = 0; j < kQuadChannels; ++j) u[j] = 0.0;
  // S's column l, 16 rows at a time in flight (one load per step left the
  // 128 blocks latency-bound: 25 us per call; H100, 2026-12-07).
  if (l < K)
    for (int k0 = 0; k0 < K; k0 += 16) {
      float column[16];
#pragma unroll
      for (int i = 0; i < 16; ++i) column[i] = k0 + i < K ? cov[size_t(k0 + i) * K + l] : 0.0f;
#pragma unroll
      for (int i = 0; i < 16; ++i)
        if (k0 + i < K) {
          const double s = column[i];  // widened once for its kQuadChannels uses
#pragma unroll
          for (int j = 0; j < kQuadChannels; ++j) u[j] += wh[j][k0 + i] * s;
        }
    }
  const double x_l = l < K ? xbar_h[l] : 0.0;
#pragma unroll
  for (int j = 0; j < kQuadChannels; ++j) {
    quad[j][l] = u[j] * wh[j][l];
    lin[j][l] = wh[j][l] * x_l;
  }
  __syncthreads();
  for (int half = kQuadThreads / 2; half > 0; half /= 2) {
    if (l < half)
#pragma unroll
      for (int j = 0; j < kQuadChannels; ++j) {
        quad[j][l] += quad[j][l + half];
        lin[j][l] += lin[j][l + half];
      }
    __syncthreads();
  }
  if (l < kQuadChannels && c0 + l < C) {
    const int c = c0 + l;
    const double offset = lin[l][0] - (mu[c] - static_cast<double>(bias[c]));
    const double q = quad[l][0] < 0.0 ? 0.0 : quad[l][0];  // never below 0 but by rounding; NaN stays NaN
    totals[c] = (q + offset * offset) * cuda::row_count(global_rows, M);
  }
}

void covariance_squares(State& s, double* totals, const float* w, const float* cov, const double* xbar_h,
                        const double* mu, const float* bias, int K, int M, int C, const double* global_rows) {
  PN_CHECK(K <= kQuadThreads);
  const unsigned blocks = static_cast<unsigned>((C + kQuadChannels - 1) / kQuadChannels);
  if (s.precision == Precision::FP16)
    covariance_squares_kernel<__half><<<blocks, kQuadThreads, 0, s.stream>>>(totals, w, cov, xbar_h, mu, bias, K,
                                                                              M, C, global_rows);
  else
    covariance_squares_kernel<__nv_bfloat16><<<blocks, kQuadThreads, 0, s.stream>>>(totals, w, cov, xbar_h, mu,
                                                                                     bias, K, M, C, global_rows);
  CUDA_CHECK_LAUNCH();
}

// y(b, c) = act(gamma (picked - center) scale + beta), picking z's max where
// gamma >= 0 and its min elsewhere; the bias is added to the extreme in float,
// then the CPU's float operations.
__global__ void select_kernel(float* y, float* selected, int32_t* selected_row, const float* zmax,
                              const int32_t* argmax, const float* zmin, const int32_t* argmin, const float* bias,
                              const float* center, const double* scale, const float* gamma, const float* beta,
                              int B, int C, bool relu) {
  const size_t total = size_t(B) * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % C);
    const bool up = gamma[c] >= 0.0f;
    const float z = (up ? zmax[i] : zmin[i]) + bias[c];
    if (selected) selected[i] = z;
    if (selected_row) selected_row[i] = up ? argmax[i] : argmin[i];
    // The CPU's float operations, unfused (batchnorm_forward_*): centre, one scale, shift.
    const float v = __fadd_rn(__fmul_rn(__fsub_rn(z, center[c]), static_cast<float>(gamma[c] * scale[c])), beta[c]);
    y[i] = relu && !(v > 0.0f) ? 0.0f : v;
  }
}

// Clouds whose loads a thread issues before it adds their terms (in b
// order): the kernels below walked b one load (or two dependent ones) at a
// time, latency-bound at ~1,000 to 130,000 threads (backward_channels 9.7 us,
// dw 16.6 us a call, CUPTI, session 21). The same adds in the same order.
constexpr int kCloudsAhead = 8;
constexpr int kChannelThreads = 32;  // backward_channels_kernel's block

// Per channel (one thread, b ascending, double): dbeta, dgamma, dbias = 0, and
// the terms the other kernels need.
__global__ void backward_channels_kernel(float* dgamma, float* dbeta, float* dbias, double* a, double* db,
                                         double* dg, const float* dy, const float* y, const float* gamma,
                                         const float* mean, const float* invstd, const float* selected, int B,
                                         int C, bool relu) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  double sum = 0.0, sum_xhat = 0.0;
  for (int b0 = 0; b0 < B; b0 += kCloudsAhead) {
    float dyv[kCloudsAhead], yv[kCloudsAhead], sel[kCloudsAhead];
#pragma unroll
    for (int u = 0; u < kCloudsAhead; ++u) {
      const bool here = b0 + u < B;
      const size_t i = size_t(b0 + u) * C + c;
      dyv[u] = here ? dy[i] : 0.0f;
      yv[u] = here && relu ? y[i] : 0.0f;  // read by masked_grad only with the ReLU
      sel[u] = here ? selected[i] : 0.0f;
    }
#pragma unroll
    for (int u = 0; u < kCloudsAhead; ++u) {
      if (b0 + u >= B) break;
      const double g = masked_grad(dyv[u], yv[u], relu);
      sum += g;
      sum_xhat += g * (static_cast<double>(sel[u]) - mean[c]) * invstd[c];
    }
  }
  db[c] = sum;
  dg[c] = sum_xhat;
  a[c] = static_cast<double>(gamma[c]) * invstd[c];
  if (dbeta) dbeta[c] = static_cast<float>(sum);
  if (dgamma) dgamma[c] = static_cast<float>(sum_xhat);
  if (dbias) dbias[c] = 0.0f;
}

// dw(c, k) = a_c [sum_b g_bc (x[b, row_bc, k] - xbar_k) - dgamma_c invstd_c (S w_c)_k],
// b ascending in double. A row outside [0, N) (a broken contract) is skipped
// rather than read out of bounds.
template <typename X>  // x's type: float, or its 2-byte operand (reads_operand_only)
__global__ void dw_kernel(float* dw, const X* x, const float* input_mean, const double* sw, const float* dy,
                          const float* y, const int32_t* selected_row, const double* a, const double* dg,
                          const float* invstd, int B, int N, int K, int C, bool relu) {
  const size_t total = size_t(C) * K;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i / K), k = static_cast<int>(i % K);
    const double mean_k = input_mean[k];
    double picked = 0.0;
    for (int b0 = 0; b0 < B; b0 += kCloudsAhead) {
      int row[kCloudsAhead];
      float dyv[kCloudsAhead], yv[kCloudsAhead], xv[kCloudsAhead];
#pragma unroll
      for (int u = 0; u < kCloudsAhead; ++u) {
        const bool here = b0 + u < B;
        const size_t bc = size_t(b0 + u) * C + c;
        row[u] = here ? selected_row[bc] : -1;
        dyv[u] = here ? dy[bc] : 0.0f;
        yv[u] = here && relu ? y[bc] : 0.0f;
      }
#pragma unroll
      for (int u = 0; u < kCloudsAhead; ++u)
        xv[u] = row[u] >= 0 && row[u] < N ? cuda::widen(x[(size_t(b0 + u) * N + row[u]) * K + k]) : 0.0f;
#pragma unroll
      for (int u = 0; u < kCloudsAhead; ++u)
        if (row[u] >= 0 && row[u] < N)
          picked += masked_grad(dyv[u], yv[u], relu) * (static_cast<double>(xv[u]) - mean_k);
    }
    dw[i] = static_cast<float>(a[c] * (picked - dg[c] * invstd[c] * sw[i]));
  }
}

// scaled_w(c, k) = (a_c invstd_c dgamma_c / M) w(c, k), rounded to float (as the CPU).
__global__ void scale_rows_kernel(float* scaled_w, const float* w, const double* a, const double* dg,
                                  const float* invstd, int M, int K, int C, const double* global_rows) {
  const size_t total = size_t(C) * K;
  const double rows = cuda::row_count(global_rows, M);
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i / K);
    const double d = a[c] * invstd[c] * dg[c] / rows;
    scaled_w[i] = static_cast<float>(d * w[i]);
  }
}

// neg_P_t(l, k) = -P(k, l): exact, so the matmul's products are x P's, negated.
// p = its values rounded to bf16 (nearest even), kept in float.
__global__ void round_to_bf16_kernel(float* p, size_t n) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x)
    p[i] = __bfloat162float(__float2bfloat16_rn(p[i]));
}
template <typename Out>  // float, or __nv_bfloat16 (rounded to nearest even)
__global__ void negate_transpose_kernel(Out* neg_P_t, const float* P, int K) {
  const size_t total = size_t(K) * K;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t l = i / K, k = i % K;
    if constexpr (std::is_same_v<Out, float>) neg_P_t[i] = -P[k * K + l];
    else cuda::store_narrow(neg_P_t, i, -P[k * K + l]);
  }
}

// offset(l) = sum_k xbar_k P(k, l) - u_l with u = sum_c (a_c dbeta_c / M) w_c:
// one block per column l, each thread a strided share of the c and k terms in
// double, then a fixed tree (the same bits every run).
__global__ void offset_kernel(float* offset, const float* w, const float* P, const float* input_mean,
                              const double* a, const double* db, int M, int K, int C, const double* global_rows) {
  __shared__ double part[kOffsetThreads];
  const int l = blockIdx.x, t = threadIdx.x;
  const double rows = cuda::row_count(global_rows, M);
  double v = 0.0;
  for (int c = t; c < C; c += kOffsetThreads) v -= a[c] * db[c] / rows * w[size_t(c) * K + l];
  for (int k = t; k < K; k += kOffsetThreads) v += static_cast<double>(input_mean[k]) * P[size_t(k) * K + l];
  part[t] = v;
  __syncthreads();
  for (int half = kOffsetThreads / 2; half > 0; half /= 2) {
    if (t < half) part[t] += part[t + half];
    __syncthreads();
  }
  if (t == 0) offset[l] = static_cast<float>(part[0]);
}

// Cloud b = blockIdx.x: its picks (b, c) sorted by (row, c), ascending, as
// (pick_row, pick_channel, pick_term = a_c g_bc); picks the CPU skips (a zero
// term) and rows outside [0, N) (a broken contract) sort last with row -1.
// Keys are unique (c differs), so the order is the same every run. P: C
// rounded up to a power of 2 (the bitonic network's size).
constexpr unsigned long long kSkipped = ~0ull;  // a skipped pick's key, and the padding's

// Cloud b's pick of channel i as its sort key, (row << 32) | i, or kSkipped.
__device__ __forceinline__ unsigned long long pick_key(int b, int i, const double* a, const float* dy, const float* y,
                                                       const int32_t* selected_row, int N, int C, bool relu) {
  if (i >= C) return kSkipped;
  const size_t bc = size_t(b) * C + i;
  const int row = selected_row[bc];
  if (row >= 0 && row < N && a[i] * masked_grad(dy[bc], y[bc], relu) != 0.0)
    return (static_cast<unsigned long long>(row) << 32) | static_cast<unsigned>(i);
  return kSkipped;
}

// Cloud b's sorted pick i (key) into the outputs.
__device__ __forceinline__ void store_pick(int32_t* pick_row, int32_t* pick_channel, double* pick_term, int b, int i,
                                           unsigned long long key, const double* a, const float* dy, const float* y,
                                           int C, bool relu) {
  const size_t out = size_t(b) * C + i;
  const int c = static_cast<int>(key & 0xffffffffu);
  pick_row[out] = key == kSkipped ? -1 : static_cast<int>(key >> 32);
  pick_channel[out] = key == kSkipped ? 0 : c;
  pick_term[out] = key == kSkipped ? 0.0 : a[c] * masked_grad(dy[size_t(b) * C + c], y[size_t(b) * C + c], relu);
}

// The same sort with one key per thread (P <= kSortByThreadKeys threads): the
// network's stages of stride < 32 by warp shuffles, with no barrier, the
// others through shared memory. The same network on unique keys: the same
// order as sort_picks_kernel, whose 55 barrier-separated passes of two keys a
// thread took 14.2 us a call at C = 1024 (CUPTI, cls bf16, session 21).
constexpr int kSortByThreadKeys = 1024;
__global__ void __launch_bounds__(kSortByThreadKeys)
    sort_picks_by_thread_kernel(int32_t* pick_row, int32_t* pick_channel, double* pick_term, const double* a,
                                const float* dy, const float* y, const int32_t* selected_row, int N, int C, int P,
                                bool relu) {
  extern __shared__ unsigned long long keys[];  // the stages of stride >= 32
  const int b = blockIdx.x, i = threadIdx.x;
  const unsigned lanes = P >= 32 ? 0xffffffffu : (1u << P) - 1u;  // P threads in all
  unsigned long long key = pick_key(b, i, a, dy, y, selected_row, N, C, relu);
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      unsigned long long other;
      if (stride >= 32) {
        keys[i] = key;
        __syncthreads();
        other = keys[i ^ stride];
        __syncthreads();  // before the next stage overwrites keys
      } else {
        other = __shfl_xor_sync(lanes, key, stride);
      }
      // The pair's lower index keeps the smaller key in an ascending run
      // ((i & size) == 0) and the larger in a descending one.
      const bool lower = (i & stride) == 0, ascending = (i & size) == 0;
      const bool keep_smaller = lower == ascending;
      key = (key < other) == keep_smaller ? key : other;
    }
  }
  if (i < C) store_pick(pick_row, pick_channel, pick_term, b, i, key, a, dy, y, C, relu);
}

__global__ void sort_picks_kernel(int32_t* pick_row, int32_t* pick_channel, double* pick_term, const double* a,
                                  const float* dy, const float* y, const int32_t* selected_row, int N, int C,
                                  int P, bool relu) {
  extern __shared__ unsigned long long keys[];  // (row << 32) | c
  const int b = blockIdx.x;
  for (int i = threadIdx.x; i < P; i += blockDim.x) keys[i] = pick_key(b, i, a, dy, y, selected_row, N, C, relu);
  __syncthreads();
  for (int size = 2; size <= P; size <<= 1) {
    for (int stride = size >> 1; stride > 0; stride >>= 1) {
      for (int i = threadIdx.x; i < P; i += blockDim.x) {
        const int j = i ^ stride;
        if (j <= i) continue;
        const unsigned long long lo = keys[i], hi = keys[j];
        if ((lo > hi) == ((i & size) == 0)) {
          keys[i] = hi;
          keys[j] = lo;
        }
      }
      __syncthreads();
    }
  }
  for (int i = threadIdx.x; i < C; i += blockDim.x)
    store_pick(pick_row, pick_channel, pick_term, b, i, keys[i], a, dy, y, C, relu);
}

unsigned blocks_for(int n) { return static_cast<unsigned>((n + kBlock - 1) / kBlock); }

void check_shape(int B, int N, int K, int C) {
  PN_CHECK(B >= 1 && N >= 1 && K >= 1 && C >= 1);
  PN_CHECK(static_cast<long long>(B) * N <= INT_MAX);
}

// The backward's per-cloud sort of the picks holds at most kMaxSortedPicks
// channels; checked at the training forward, before anything is queued.
void check_trainable(int C) {
  if (C > kMaxSortedPicks)
    fail("the fused wide layer trains on the GPU with at most ", kMaxSortedPicks, " output channels, got ", C);
}

// The dense part of dx, (xbar P - u) - x P: P(K, K), the offset xbar P - u
// and -P^T (in bf16 where the product reads x's bf16 operand) into t. With
// SyncBN, P and u take the global batch's sums (dw is linear in this rank's:
// the gradient all-reduce completes it).
void dense_dx_terms(State& s, BackwardTerms& t, const float* w, const WideMaxSaved<float>& saved, int M, int K,
                    int C, bool operand_only) {
  const double *db = t.db, *dg = t.dg, *global_rows = nullptr;
  if (cuda::synchronised(s)) {
    const double* global = cuda::group_sums(s, State::kGroupSums, {{t.db, C}, {t.dg, C}}, M);
    db = global;
    dg = global + C;
    global_rows = global + 2 * C;
  }
  scale_rows_kernel<<<grid_for(size_t(C) * K), kBlock, 0, s.stream>>>(t.scaled_w, w, t.a, dg, saved.invstd, M,
                                                                      K, C, global_rows);
  CUDA_CHECK_LAUNCH();
  // P = w^T scaled_w (plain fp32 in every mode: C terms, small next to x P's M rows)
  gemm_fp32(s, CUBLAS_COMPUTE_32F, true, false, K, K, C, 1.0f, w, K, t.scaled_w, K, 0.0f, t.P, K);
  // With x's bf16 operand, P rounded to bf16 before the offset too: the
  // offset's xbar P then cancels the product's x P with the same P (with the
  // fp32 P every row of dx carried the same rounding, ~1% of the dense part's
  // column sums; a host emulation, review of session 15).
  if (operand_only) {
    round_to_bf16_kernel<<<grid_for(size_t(K) * K), kBlock, 0, s.stream>>>(t.P, size_t(K) * K);
    CUDA_CHECK_LAUNCH();
  }
  offset_kernel<<<K, kOffsetThreads, 0, s.stream>>>(t.offset, w, t.P, saved.input_mean, t.a, db, M, K, C,
                                                    global_rows);
  CUDA_CHECK_LAUNCH();
  // With x's bf16 operand: -P^T rounded to bf16, in neg_P_t's room.
  if (operand_only) {
    negate_transpose_kernel<<<grid_for(size_t(K) * K), kBlock, 0, s.stream>>>(t.neg_P_t_bf16(), t.P, K);
    CUDA_CHECK_LAUNCH();
  }
}

// dx(M, K) = offset - x P in fp32. The offset as the matmul's bias (cuBLASLt
// epilogue): dx is written once and never read (the broadcast wrote it and
// the GEMM's beta = 1 read it back: 82 of x P's 123 MB at the model's shape).
// POINTNET_LINEAR_BIAS=broadcast (or no cuBLASLt plan): the old way. With x's
// bf16 operand: a bf16 product with fp32 sums and output.
void dense_dx_product(State& s, BackwardTerms& t, float* dx, const float* x, const __nv_bfloat16* x_operand, int M,
                      int K) {
  bool written = false;
  if (s.bias_epilogue) {
    if (x_operand) {
      written = s.lt->try_run(x_operand, M, K, t.neg_P_t_bf16(), t.offset, K, false, dx, s.stream,
                              {CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_32F});
    } else {
      negate_transpose_kernel<<<grid_for(size_t(K) * K), kBlock, 0, s.stream>>>(t.neg_P_t, t.P, K);
      CUDA_CHECK_LAUNCH();
      written = s.lt->try_run(x, M, K, t.neg_P_t, t.offset, K, false, dx, s.stream,
                              {CUDA_R_32F, tf32_outside_fp32(s), CUDA_R_32F});
    }
  }
  if (written) return;
  cuda::broadcast_rows(s, dx, t.offset, size_t(M), K);
  ++s.gemm_counts.bias_broadcasts;
  if (x_operand)  // dx += x (-P^T)^T, in the mode (bf16 operands)
    cuda::gemm(s, false, true, M, K, K, x_operand, K, 0, t.neg_P_t_bf16(), K, 0, 1.0f, dx, K, 0);
  else
    gemm_fp32(s, tf32_outside_fp32(s), false, false, M, K, K, -1.0f, x, K, t.P, K, 1.0f, dx, K);  // dx += -x P
}

// dx_narrow(M, K) = offset - x P in bf16, read so by the next layer's
// BatchNorm backward: the product's output in bf16, its bias too (cuBLASLt's
// epilogue takes the bias in the output's type). 20 of the fp32 output's 41
// MB at the model's shape, and the next layer's two passes over dy read half
// the bytes. False, with nothing queued, where cuBLASLt has no plan for it.
bool narrow_dense_dx_product(State& s, BackwardTerms& t, void* dx_narrow, const __nv_bfloat16* x_operand, int M,
                             int K) {
  if (!s.bias_epilogue) return false;
  cuda::convert(s.stream, t.offset_bf16, t.offset, size_t(K));
  return s.lt->try_run_batched(x_operand, 1, M, K, t.neg_P_t_bf16(), t.offset_bf16, K, false, dx_narrow, s.stream,
                               {CUDA_R_16BF, CUBLAS_COMPUTE_32F, CUDA_R_16BF});
}
}  // namespace

bool CudaBackend::wide_max_reads_narrow_input() const {
  return narrow_activations() && s_->mode_precision == Precision::BF16 && reads_operand_only(*s_);
}

// bf16 only: dx's product runs on x's bf16 operand there (reads_operand_only).
bool CudaBackend::wide_max_writes_narrow_dx() const {
  return narrow_gradients() && s_->wide_narrow_dx && s_->mode_precision == Precision::BF16 &&
         reads_operand_only(*s_);
}

void CudaBackend::wide_max_forward_train(float* y, const WideMaxSaved<float>& saved, float* running_mean,
                                         float* running_var, const float* x, const float* w, const float* bias,
                                         const float* gamma, const float* beta, int B, int N, int K, int C,
                                         bool relu, double eps, double momentum, const void* x_narrow) {
  check_shape(B, N, K, C);
  check_trainable(C);
  PN_CHECK(saved.input_mean && saved.input_cov && saved.mean && saved.invstd && saved.selected &&
           saved.selected_row);
  State& s = *s_;
  const int M = B * N;
  const bool two_bytes = s.precision == Precision::FP16 || s.precision == Precision::BF16;
  Extremes e;
  carve_terms(s, e, B, N, K, C, true, two_bytes);

  // x's mean and covariance. With SyncBN (group): x's sums, the covariance
  // around the global mean and z's centred squares are summed over the ranks.
  const bool group = cuda::synchronised(s);
  // x's mean: of the fp32 x, or of its 2-byte operand's values (h_sums below).
  const bool operand_only = reads_operand_only(s);
  PN_CHECK(x || (x_narrow && operand_only));  // only the copy: where the layer reads nothing else
  const double* sums =
      operand_only ? nullptr : cuda::column_sums(s, cuda::ReduceTerm::kSum, x, nullptr, nullptr, nullptr, M, K);
  // The 2-byte operand of x (its copy, or converted once here), for the raw
  // covariance and z's extremes alike, and its own column sums: the raw
  // covariance is that of these values, so it is centred on their mean.
  const bool raw = raw_covariance(s);
  const void* x_operand = two_bytes ? cuda::gemm_operand(s, State::kGemmA, x, size_t(M) * K, x_narrow) : x_narrow;
  const double* h_sums = nullptr;
  if (two_bytes) {
    const int chunks = (M + kMeanChunkRows - 1) / kMeanChunkRows;
    double* out = e.h_partials + size_t(chunks) * K;
    if (s.precision == Precision::FP16)
      narrow_column_sums(s, out, e.h_partials, static_cast<const __half*>(x_operand), M, K);
    else
      narrow_column_sums(s, out, e.h_partials, static_cast<const __nv_bfloat16*>(x_operand), M, K);
    h_sums = out;
    if (operand_only) sums = h_sums;
  }
  if (group) {
    const bool both = two_bytes && !operand_only;
    const double* global = both ? cuda::group_sums(s, State::kGroupSums, {{sums, K}, {h_sums, K}}, M)
                                : cuda::group_sums(s, State::kGroupSums, {{sums, K}}, M);
    sums = global;
    if (two_bytes) h_sums = both ? global + K : global;
  }
  const double* global_rows = group ? sums + (two_bytes && !operand_only ? 2 * K : K) : nullptr;
  finish_mean_kernel<<<blocks_for(K), kBlock, 0, s.stream>>>(saved.input_mean, e.xbar, sums, M, K, global_rows);
  CUDA_CHECK_LAUNCH();
  // The 2-byte values' mean: z's mean on the tensor cores (covariance_squares'
  // offset term), and the raw covariance's centre.
  const double* xbar_h = e.xbar;
  if (two_bytes) {
    divide_sums_kernel<<<blocks_for(K), kBlock, 0, s.stream>>>(e.xbar_h, h_sums, K, M, global_rows);
    CUDA_CHECK_LAUNCH();
    xbar_h = e.xbar_h;
  }
  if (raw) {
    // input_cov = X^T X (fp32 sums; with SyncBN summed over the ranks), then
    // / M - xbar_h xbar_h^T.
    cuda::gemm(s, true, false, K, K, M, x_operand, K, 0, x_operand, K, 0, 0.0f, saved.input_cov, K, 0);
    if (group) s.batchnorm_group->all_reduce_sum(saved.input_cov, size_t(K) * K);
    raw_to_covariance_kernel<<<grid_for(size_t(K) * K), kBlock, 0, s.stream>>>(saved.input_cov, xbar_h, K, M,
                                                                                global_rows);
    CUDA_CHECK_LAUNCH();
  } else {
    // The centred rows first, z's chunks later (stream order): one slot for both.
    float* rows = static_cast<float*>(s.scratch(State::kWideRows, size_t(M) * K * sizeof(float)));
    centre_kernel<<<grid_for(size_t(M) * K), kBlock, 0, s.stream>>>(rows, x, saved.input_mean, M, K);
    CUDA_CHECK_LAUNCH();
    // Alone: divided by M inside the GEMM; with SyncBN: summed over the ranks,
    // then divided by the global row count.
    const float cov_scale = group ? 1.0f : static_cast<float>(1.0 / M);
    gemm_fp32(s, tf32_outside_fp32(s), true, false, K, K, M, cov_scale, rows, K, rows, K, 0.0f, saved.input_cov,
              K);
    if (group) {
      s.batchnorm_group->all_reduce_sum(saved.input_cov, size_t(K) * K);
      divide_by_rows_kernel<<<grid_for(size_t(K) * K), kBlock, 0, s.stream>>>(saved.input_cov, size_t(K) * K,
                                                                              global_rows);
      CUDA_CHECK_LAUNCH();
    }
  }

  // z's mean, then each cloud's extremes of z and centred squares (one pass
  // over z's chunks), then the variance and the pick and normalisation.
  channel_mean_kernel<<<static_cast<unsigned>((size_t(C) * 32 + kBlock - 1) / kBlock), kBlock, 0, s.stream>>>(
      e.mu, e.xbar, w, bias, K, C);
  CUDA_CHECK_LAUNCH();
  if (!cloud_extremes(s, e, x, x_operand, w, bias, gamma, B, N, K, C)) {
    // The tensor-core path: the squares from x's covariance (already the
    // group's with SyncBN), as one row of totals.
    covariance_squares(s, e.sq, w, saved.input_cov, xbar_h, e.mu, bias, K, M, C, global_rows);
    channel_stats_kernel<<<blocks_for(C), kBlock, 0, s.stream>>>(saved.mean, saved.invstd, e.scale, running_mean,
                                                                  running_var, e.mu, e.sq, 1, M, C, eps, momentum,
                                                                  global_rows);
  } else if (!group) {
    channel_stats_kernel<<<blocks_for(C), kBlock, 0, s.stream>>>(saved.mean, saved.invstd, e.scale, running_mean,
                                                                  running_var, e.mu, e.sq, B, M, C, eps, momentum,
                                                                  nullptr);
  } else {
    // This rank's totals (in e.scale until channel_stats writes it), then the group's.
    cloud_totals_kernel<<<blocks_for(C), kBlock, 0, s.stream>>>(e.scale, e.sq, B, C);
    CUDA_CHECK_LAUNCH();
    const double* totals = cuda::group_sums(s, State::kGroupSums2, {{e.scale, C}}, M);
    channel_stats_kernel<<<blocks_for(C), kBlock, 0, s.stream>>>(saved.mean, saved.invstd, e.scale, running_mean,
                                                                  running_var, e.mu, totals, 1, M, C, eps, momentum,
                                                                  totals + C);
  }
  CUDA_CHECK_LAUNCH();
  select_kernel<<<grid_for(size_t(B) * C), kBlock, 0, s.stream>>>(y, saved.selected, saved.selected_row, e.zmax,
                                                                  e.argmax, e.zmin, e.argmin, bias, saved.mean,
                                                                  e.scale, gamma, beta, B, C, relu);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::wide_max_forward_eval(float* y, const float* x, const float* w, const float* bias,
                                        const float* gamma, const float* beta, const float* running_mean,
                                        const float* running_var, int B, int N, int K, int C, bool relu,
                                        double eps) {
  check_shape(B, N, K, C);
  State& s = *s_;
  Extremes e;
  carve_terms(s, e, B, N, K, C, false, false);
  eval_scale_kernel<<<blocks_for(C), kBlock, 0, s.stream>>>(e.scale, running_var, C, eps);
  CUDA_CHECK_LAUNCH();
  cloud_extremes(s, e, x, nullptr, w, bias, gamma, B, N, K, C);
  select_kernel<<<grid_for(size_t(B) * C), kBlock, 0, s.stream>>>(y, nullptr, nullptr, e.zmax, e.argmax, e.zmin,
                                                                  e.argmin, bias, running_mean, e.scale, gamma,
                                                                  beta, B, C, relu);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::wide_max_backward(float* dx, float* dw, float* dbias, float* dgamma, float* dbeta,
                                    const float* dy, const float* y, const WideMaxSaved<float>& saved,
                                    const float* x, const float* w, const float* gamma, int B, int N, int K, int C,
                                    bool relu, const void* x_narrow, void* dx_narrow) {
  check_shape(B, N, K, C);
  check_trainable(C);
  PN_CHECK(!dx_narrow || (wide_max_writes_narrow_dx() && !dx));  // backend.h's contract
  if (dx_narrow && x_narrow) {  // the product reads x's copy while writing dx's: apart
    const auto* a = static_cast<const char*>(dx_narrow);
    const auto* b = static_cast<const char*>(x_narrow);
    const size_t bytes = size_t(B) * N * K * 2;
    PN_CHECK(a + bytes <= b || b + bytes <= a);
  }
  PN_CHECK(saved.input_mean && saved.input_cov && saved.mean && saved.invstd && saved.selected &&
           saved.selected_row);
  State& s = *s_;
  const int M = B * N;
  BackwardTerms t;
  carve_terms(s, t, B, K, C);

  // Small blocks: a channel a thread, spread over more SMs (C = 1024 took 4 of
  // 132 in blocks of kBlock).
  backward_channels_kernel<<<(C + kChannelThreads - 1) / kChannelThreads, kChannelThreads, 0, s.stream>>>(
      dgamma, dbeta, dbias, t.a, t.db, t.dg, dy, y, gamma, saved.mean, saved.invstd, saved.selected, B, C, relu);
  CUDA_CHECK_LAUNCH();
  // x's 2-byte operand (its copy, or converted once here) where the forward
  // read only that; it stays in place through dx's product below.
  const bool operand_only = reads_operand_only(s);
  PN_CHECK(x || (x_narrow && operand_only));
  const auto* x_operand =
      operand_only ? static_cast<const __nv_bfloat16*>(cuda::gemm_operand(s, State::kGemmA, x, size_t(M) * K, x_narrow))
                   : nullptr;
  if (dw) {
    rows_dot_rows(s, t.sw, w, saved.input_cov, C, K, K);
    cuda::with_input_type(s, x, x_operand, [&](const auto* xs) {
      dw_kernel<<<grid_for(size_t(C) * K), kBlock, 0, s.stream>>>(dw, xs, saved.input_mean, t.sw, dy, y,
                                                                  saved.selected_row, t.a, t.dg, saved.invstd, B, N,
                                                                  K, C, relu);
    });
    CUDA_CHECK_LAUNCH();
  }
  if (!dx && !dx_narrow) return;
  dense_dx_terms(s, t, w, saved, M, K, C, operand_only);
  // The sparse part's picks, sorted per cloud (add_picks adds them below).
  int P = 1;
  while (P < C) P *= 2;
  if (P <= kSortByThreadKeys)
    sort_picks_by_thread_kernel<<<B, P, size_t(P) * sizeof(unsigned long long), s.stream>>>(
        t.pick_row, t.pick_channel, t.pick_term, t.a, dy, y, saved.selected_row, N, C, P, relu);
  else
    sort_picks_kernel<<<B, kSortThreads, size_t(P) * sizeof(unsigned long long), s.stream>>>(
        t.pick_row, t.pick_channel, t.pick_term, t.a, dy, y, saved.selected_row, N, C, P, relu);
  CUDA_CHECK_LAUNCH();
  if (dx_narrow) {
    // bf16 (the picks' rows summed in fp32 and rounded again), or, with no
    // plan for that, the fp32 way into scratch and rounded once at the end.
    PN_CHECK(operand_only);
    if (narrow_dense_dx_product(s, t, dx_narrow, x_operand, M, K)) {
      cuda::add_picks(s.stream, static_cast<__nv_bfloat16*>(dx_narrow), t.pieces, w, t.pick_row, t.pick_channel,
                      t.pick_term, B, N, K, C);
      return;
    }
    dx = static_cast<float*>(s.scratch(State::kLinearOut, size_t(M) * K * sizeof(float)));
  }
  dense_dx_product(s, t, dx, x, x_operand, M, K);
  // The sparse part: the picked points.
  cuda::add_picks(s.stream, dx, t.pieces, w, t.pick_row, t.pick_channel, t.pick_term, B, N, K, C);
  if (dx_narrow) cuda::convert(s.stream, static_cast<__nv_bfloat16*>(dx_narrow), dx, size_t(M) * K);
}

}  // namespace pointnet
