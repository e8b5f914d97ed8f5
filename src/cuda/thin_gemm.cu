// GEMMs with a side of at most 4 in the fp16 / bf16 modes: the layers and
// transforms over the points' 3 coordinates. cuBLAS runs them in kernels for
// unaligned operands (a leading dimension of 3) at 8-37 us a call on an H100
// (CUPTI, 2026-12-07: ~110 us of a 1.42 ms classifier step), though each only
// reads and writes a few MB. These kernels do the same products, meant to run
// at memory speed (not yet: below), with the GEMMs' arithmetic: the 2-byte
// operands widened exactly to float and accumulated in fp32 (in a fixed
// order: deterministic).
// Opt-in (POINTNET_THIN_GEMMS=on): measured on an H100 (session 14) they are
// correct but slower than cuBLAS's: thin_long 29 us a call (dW 8 us in
// cuBLAS), thin_rows 15 us. Both are latency-bound: each thread walks 128
// rows (thin_long) or 64 columns (thin_rows' dx) with one 2-byte load after
// another, far too few bytes in flight. Next (bench/TRAINING_NOTES.md,
// session 14): 16-byte loads of 8 channels per thread, rows unrolled, and a
// warp per row for thin_rows when K is the long side.
//
//   thin_rows_kernel   C(M, N) = A(M, K) op(B)(K, N) [+ bias], K or N
//                      at most kThinSide: one thread per row and group of 8
//                      columns, op(B) staged in shared memory as floats. The
//                      output in fp32 or in the mode's 2-byte type.
//   thin_long_kernel   C(M, N) = A(K, M)^T B(K, N) with M <= kThinLongM and
//                      N <= kThinSide (the sums over all rows: dW of the first
//                      conv, the transform's gradient): chunks of
//                      kThinChunkRows rows per block, lanes of rows within the
//                      block, a fixed tree over the lanes; then
//   thin_finish_kernel the chunks added in order.
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace pointnet {
namespace cuda {
namespace {

constexpr int kThinSide = 4;         // the short side: K or N (the points' 3 coordinates)
constexpr int kThinLongSide = 1024;  // the other of K, N in thin_rows (op(B) in shared memory)
constexpr int kThinLongM = 256;      // M of thin_long: one thread per output row per lane
constexpr int kThinChunkRows = 512;  // rows summed by one block of thin_long
constexpr int kThinGroup = 8;        // columns per thread in thin_rows
constexpr int kThinThreads = 256;
constexpr int kMaxGridX = 2147483647, kMaxGridY = 65535;  // CUDA's grid limits (batch entries on y)

__device__ __forceinline__ void store_out(float* c, size_t i, float v) { c[i] = v; }
template <typename Half>
__device__ __forceinline__ void store_out(Half* c, size_t i, float v) { store_narrow(c, i, v); }

// A group of kThinGroup values to 16-byte aligned memory: two float4 stores,
// or one 16-byte store of eight 2-byte values.
__device__ __forceinline__ void store_group(float* c, const float* v) {
  reinterpret_cast<float4*>(c)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(c)[1] = make_float4(v[4], v[5], v[6], v[7]);
}
template <typename Half>
__device__ __forceinline__ void store_group(Half* c, const float* v) {
  struct alignas(16) Eight {
    Half h[kThinGroup];
  } e;
#pragma unroll
  for (int j = 0; j < kThinGroup; ++j) e.h[j] = to_narrow<Half>(v[j]);
  *reinterpret_cast<Eight*>(c) = e;
}

// One thread per (row m, group of kThinGroup columns) of one batch entry
// (blockIdx.y); C is overwritten.
// whole_groups: N and ldc multiples of kThinGroup and C 16-byte aligned, so
// each thread stores its group with vector stores.
template <typename In, typename Out>
__global__ void thin_rows_kernel(Out* C, int ldc, long long stride_c, const In* A, int lda, long long stride_a,
                                 const In* B, int ldb, long long stride_b, bool transpose_b, const float* bias,
                                 bool whole_groups, int M, int N, int K) {
  extern __shared__ float b_tile[];  // op(B) as (K, N) floats
  const int batch = blockIdx.y;
  const In* Bb = B + batch * stride_b;
  for (int e = threadIdx.x; e < K * N; e += blockDim.x) {
    const int k = e / N, n = e % N;
    b_tile[e] = widen(transpose_b ? Bb[size_t(n) * ldb + k] : Bb[size_t(k) * ldb + n]);
  }
  __syncthreads();
  const int groups = (N + kThinGroup - 1) / kThinGroup;
  const size_t total = size_t(M) * groups;
  const In* Ab = A + batch * stride_a;
  Out* Cb = C + batch * stride_c;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t m = i / groups;
    const int n0 = static_cast<int>(i % groups) * kThinGroup;
    const int width = min(kThinGroup, N - n0);
    float acc[kThinGroup] = {};
    const In* a_row = Ab + m * lda;
    for (int k = 0; k < K; ++k) {
      const float a = widen(a_row[k]);
      const float* b_row = b_tile + k * N + n0;
#pragma unroll
      for (int j = 0; j < kThinGroup; ++j)
        if (j < width) acc[j] = __fmaf_rn(a, b_row[j], acc[j]);
    }
#pragma unroll
    for (int j = 0; j < kThinGroup; ++j)
      if (bias && j < width) acc[j] = __fadd_rn(acc[j], bias[n0 + j]);
    if (whole_groups) {
      store_group(Cb + m * ldc + n0, acc);
    } else {
      for (int j = 0; j < width; ++j) store_out(Cb, m * ldc + n0 + j, acc[j]);
    }
  }
}

// Per-chunk partial sums of A(K, M)^T B(K, N) for one batch entry
// (blockIdx.y): partials[(batch * chunks + chunk) * M * N + m * N + n].
template <typename In>
__global__ void thin_long_kernel(float* partials, const In* A, int lda, long long stride_a, const In* B, int ldb,
                                 long long stride_b, int M, int N, int K, int chunks) {
  __shared__ float lane_sums[kThinThreads * kThinSide];
  const int lanes = kThinThreads / M;
  const int m = threadIdx.x % M, lane = threadIdx.x / M;
  const int batch = blockIdx.y, chunk = blockIdx.x;
  const In* Ab = A + batch * stride_a;
  const In* Bb = B + batch * stride_b;
  float acc[kThinSide] = {};
  if (lane < lanes) {
    const int end = min(K, (chunk + 1) * kThinChunkRows);
    for (int r = chunk * kThinChunkRows + lane; r < end; r += lanes) {
      const float a = widen(Ab[size_t(r) * lda + m]);
      const In* b_row = Bb + size_t(r) * ldb;
#pragma unroll
      for (int n = 0; n < kThinSide; ++n)
        if (n < N) acc[n] = __fmaf_rn(a, widen(b_row[n]), acc[n]);
    }
  }
#pragma unroll
  for (int n = 0; n < kThinSide; ++n) lane_sums[threadIdx.x * kThinSide + n] = acc[n];
  __syncthreads();
  // A fixed tree over the lanes (lane + half folds into lane).
  for (int half = 1; half < lanes; half *= 2) {
    if (lane < lanes && lane % (2 * half) == 0 && lane + half < lanes) {
      const int other = (lane + half) * M + m;
#pragma unroll
      for (int n = 0; n < kThinSide; ++n)
        lane_sums[threadIdx.x * kThinSide + n] += lane_sums[other * kThinSide + n];
    }
    __syncthreads();
  }
  if (lane == 0) {
    float* out = partials + (size_t(batch) * chunks + chunk) * M * N + size_t(m) * N;
    for (int n = 0; n < N; ++n) out[n] = lane_sums[threadIdx.x * kThinSide + n];
  }
}

// C(M, N) of each batch entry = the sum of its chunks' partials in chunk order.
__global__ void thin_finish_kernel(float* C, int ldc, long long stride_c, const float* partials, int M, int N,
                                   int chunks, int batch_count) {
  const size_t total = size_t(batch_count) * M * N;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int batch = static_cast<int>(i / (size_t(M) * N));
    const int e = static_cast<int>(i % (size_t(M) * N));
    const float* p = partials + size_t(batch) * chunks * M * N + e;
    float sum = 0.0f;
    for (int k = 0; k < chunks; ++k) sum = __fadd_rn(sum, p[size_t(k) * M * N]);
    float* c = C + batch * stride_c + size_t(e / N) * ldc + e % N;
    *c = sum;
  }
}

bool two_byte_operands(const State& s) {
  return s.thin_gemms && (s.precision == Precision::FP16 || s.precision == Precision::BF16);
}

// Calls f with the operands typed as the current precision's 2-byte type.
template <typename F>
void with_operand_type(const State& s, const void* A, const void* B, F&& f) {
  if (s.precision == Precision::FP16) f(static_cast<const __half*>(A), static_cast<const __half*>(B));
  else f(static_cast<const __nv_bfloat16*>(A), static_cast<const __nv_bfloat16*>(B));
}

template <typename In, typename Out>
void launch_rows(State& s, Out* C, int ldc, long long stride_c, const In* A, int lda, long long stride_a,
                 const In* B, int ldb, long long stride_b, bool transpose_b, const float* bias, int M, int N,
                 int K, int batch) {
  const size_t threads = size_t(M) * ((N + kThinGroup - 1) / kThinGroup);
  const dim3 grid(grid_for(threads, kThinThreads), batch);
  const bool whole_groups = N % kThinGroup == 0 && ldc % kThinGroup == 0 && stride_c % kThinGroup == 0 &&
                            reinterpret_cast<uintptr_t>(C) % 16 == 0;
  thin_rows_kernel<In, Out><<<grid, kThinThreads, size_t(K) * N * sizeof(float), s.stream>>>(
      C, ldc, stride_c, A, lda, stride_a, B, ldb, stride_b, transpose_b, bias, whole_groups, M, N, K);
  CUDA_CHECK_LAUNCH();
}

bool rows_shape(bool transpose_a, int N, int K) {
  return !transpose_a && ((K <= kThinSide && N <= kThinLongSide) || (N <= kThinSide && K <= kThinLongSide));
}
}  // namespace

bool thin_gemm(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A, int lda,
               long long stride_a, const void* B, int ldb, long long stride_b, float beta, float* C, int ldc,
               long long stride_c, int batch) {
  // beta = 1 (accumulating onto C) is left to cuBLAS: no caller of a thin shape uses it.
  if (!two_byte_operands(s) || beta != 0.0f || M <= 0 || N <= 0 || K <= 0 || batch <= 0 ||
      batch > kMaxGridY)
    return false;
  if (rows_shape(transpose_a, N, K)) {
    with_operand_type(s, A, B, [&](auto* a, auto* b) {
      launch_rows(s, C, ldc, stride_c, a, lda, stride_a, b, ldb, stride_b, transpose_b, nullptr, M, N, K, batch);
    });
    ++s.gemm_counts.thin_products;
    return true;
  }
  if (transpose_a && !transpose_b && M <= kThinLongM && N <= kThinSide) {
    const int chunks = (K + kThinChunkRows - 1) / kThinChunkRows;
    if (chunks > kMaxGridX) return false;
    float* partials =
        static_cast<float*>(s.scratch(State::kThinPartials, size_t(batch) * chunks * M * N * sizeof(float)));
    with_operand_type(s, A, B, [&](auto* a, auto* b) {
      using In = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
      thin_long_kernel<In><<<dim3(chunks, batch), kThinThreads, 0, s.stream>>>(partials, a, lda, stride_a, b, ldb,
                                                                               stride_b, M, N, K, chunks);
      CUDA_CHECK_LAUNCH();
    });
    const size_t outputs = size_t(batch) * M * N;
    thin_finish_kernel<<<grid_for(outputs), kBlock, 0, s.stream>>>(C, ldc, stride_c, partials, M, N, chunks, batch);
    CUDA_CHECK_LAUNCH();
    ++s.gemm_counts.thin_products;
    return true;
  }
  return false;
}

bool thin_linear(State& s, const void* x, const void* w, const float* bias, int M, int Cin, int Cout, float* y,
                 void* y_narrow) {
  if (!two_byte_operands(s) || M <= 0 || Cin <= 0 || Cin > kThinSide || Cout <= 0 || Cout > kThinLongSide)
    return false;
  with_operand_type(s, x, w, [&](auto* a, auto* b) {
    using In = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
    if (y_narrow) {
      launch_rows(s, static_cast<In*>(y_narrow), Cout, 0, a, Cin, 0, b, Cin, 0, true, bias, M, Cout, Cin, 1);
    } else {
      launch_rows(s, y, Cout, 0, a, Cin, 0, b, Cin, 0, true, bias, M, Cout, Cin, 1);
    }
  });
  ++s.gemm_counts.thin_products;
  return true;
}

}  // namespace cuda
}  // namespace pointnet
