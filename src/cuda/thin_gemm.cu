// GEMMs with a side of at most 4 in the fp16 / bf16 modes: the layers and
// transforms over the points' 3 coordinates. cuBLAS runs them in kernels for
// unaligned operands (a leading dimension of 3) at 4-12 us a call on an H100
// (CUPTI, 2026-12-07: ~70 us of a 1.24 ms classifier step), though each only
// reads and writes a few MB. These kernels do the same products with the
// GEMMs' arithmetic: the 2-byte operands widened exactly to float and
// accumulated in fp32 (in a fixed order: deterministic).
// The default (POINTNET_THIN_GEMMS=off for cuBLAS's). Session 14's first
// version was correct but slower than cuBLAS (thin_long 29 us, thin_rows 15
// us a call): each thread walked 128 rows, or a row's 64 values, one 2-byte
// load after another. This one keeps 16 bytes per load and many rows in
// flight: H100, session 16, forward 10.0 us, dW 10.6 + 3.3, dx 8.6 (still
// ~2x their memory-speed estimates), the cls bf16 step -21 us against cuBLAS:
//
//   thin_rows_kernel     C(M, N) = A(M, K) op(B)(K, N) [+ bias], K at most
//                        kThinSide (the first conv's forward; dx of a layer
//                        with at most 4 outputs; the 3 x 3 transform's dx): one thread per row and
//                        group of 8 columns, op(B) staged in shared memory as
//                        floats. The output in fp32 or the mode's 2-byte type.
//   thin_columns_kernel  the same with N at most kThinSide (dx of such a
//                        layer): a group of lanes per row, 8 values per lane
//                        and load, then a fixed xor tree over the group.
//   thin_long_kernel     C(M, N) = A(K, M)^T B(K, N) with M <= kThinLongM and
//                        N <= kThinSide (the sums over all rows: dW of the
//                        first conv, the transform's gradient): chunks of
//                        kThinChunkRows rows per block, 8 columns of A per
//                        thread, a fixed tree over the block's rows; then
//   thin_finish_kernel   the chunks added: a warp per element, a fixed tree.
#include <cstdint>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace pointnet {
namespace cuda {
namespace {

constexpr int kThinSide = 4;         // the short side: K or N (the points' 3 coordinates)
constexpr int kThinLongSide = 1024;  // the long side of op(B): N in thin_rows, K in thin_columns (in shared memory)
constexpr int kThinLongM = 256;      // M of thin_long: at most 32 threads of 8 columns per row
constexpr int kThinChunkRows = 256;  // rows summed by one block of thin_long (a constant: the same sums on any GPU)
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

// Eight consecutive 2-byte values as floats, by one 16-byte load (p 16-byte
// aligned), or by eight guarded loads (the j < count first; zeros past them).
template <typename In>
__device__ __forceinline__ void load_eight(const In* p, float* v) {
  struct alignas(16) Eight {
    In h[8];
  };
  const Eight e = *reinterpret_cast<const Eight*>(p);
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = widen(e.h[j]);
}
template <typename In>
__device__ __forceinline__ void load_eight(const In* p, float* v, int count) {
#pragma unroll
  for (int j = 0; j < 8; ++j) v[j] = j < count ? widen(p[j]) : 0.0f;
}

// op(B)'s row k in shared memory, skewed by one row every 8 so that the 8
// lanes reading rows 8l + j (same j) hit different banks.
__device__ __forceinline__ int skewed_row(int k) { return k + k / 8; }

// C(M, N) = A(M, K) op(B)(K, N) with N <= kThinSide (dx of the first conv:
// K its output channels): a group of `lanes` lanes per row of A (a power of
// two up to 32), each taking 8 consecutive values of the row at a time
// (16-byte loads where `vector`: K and lda multiples of 8, A 16-byte
// aligned), then a fixed xor tree over the group. One row per group, no loop:
// every lane reaches the shuffles.
template <typename In, typename Out>
__global__ void thin_columns_kernel(Out* C, int ldc, long long stride_c, const In* A, int lda, long long stride_a,
                                    const In* B, int ldb, long long stride_b, bool transpose_b, bool vector,
                                    int lanes, int M, int N, int K) {
  extern __shared__ float4 b_rows[];  // op(B) row k at skewed_row(k), zeros past N
  const int batch = blockIdx.y;
  const In* Bb = B + batch * stride_b;
  for (int k = threadIdx.x; k < K; k += blockDim.x) {
    float v[kThinSide];
#pragma unroll
    for (int n = 0; n < kThinSide; ++n)
      v[n] = n >= N ? 0.0f : widen(transpose_b ? Bb[size_t(n) * ldb + k] : Bb[size_t(k) * ldb + n]);
    b_rows[skewed_row(k)] = make_float4(v[0], v[1], v[2], v[3]);
  }
  __syncthreads();
  const size_t thread = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
  const size_t m = thread / lanes;
  const int lane = static_cast<int>(thread % lanes);
  float acc[kThinSide] = {};
  if (m < size_t(M)) {
    const In* a_row = A + batch * stride_a + m * lda;
    for (int k0 = lane * 8; k0 < K; k0 += lanes * 8) {
      float a[8];
      if (vector) load_eight(a_row + k0, a);
      else load_eight(a_row + k0, a, K - k0);
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const float4 b = k0 + j < K ? b_rows[skewed_row(k0 + j)] : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        acc[0] = __fmaf_rn(a[j], b.x, acc[0]);
        acc[1] = __fmaf_rn(a[j], b.y, acc[1]);
        acc[2] = __fmaf_rn(a[j], b.z, acc[2]);
        acc[3] = __fmaf_rn(a[j], b.w, acc[3]);
      }
    }
  }
  for (int offset = lanes / 2; offset > 0; offset /= 2)
#pragma unroll
    for (int n = 0; n < kThinSide; ++n) acc[n] = __fadd_rn(acc[n], __shfl_xor_sync(0xffffffffu, acc[n], offset));
  if (m < size_t(M) && lane == 0) {
    Out* c_row = C + batch * stride_c + m * ldc;
#pragma unroll
    for (int n = 0; n < kThinSide; ++n)
      if (n < N) store_out(c_row, n, acc[n]);
  }
}

// Per-chunk partial sums of A(K, M)^T B(K, N) for one batch entry
// (blockIdx.y): partials[(batch * chunks + chunk) * M * N + m * N + n]. The
// block's threads split A's rows 8 columns each (one 16-byte load where
// `vector`), so ceil(M / 8) threads per row and kThinThreads / that rows at a
// time; each thread adds its rows of the chunk in order, then a fixed tree
// over the rows' threads in shared memory.
template <typename In>
__global__ void thin_long_kernel(float* partials, const In* A, int lda, long long stride_a, const In* B, int ldb,
                                 long long stride_b, bool vector, int M, int N, int K, int chunks) {
  constexpr int kSums = 8 * kThinSide + 1;  // a thread's sums, padded: no bank conflicts between threads
  __shared__ float sums[kThinThreads * kSums];
  const int per_row = (M + 7) / 8, rows_at_once = kThinThreads / per_row;
  const int m0 = threadIdx.x % per_row * 8, row_lane = threadIdx.x / per_row;
  const int batch = blockIdx.y, chunk = blockIdx.x;
  const In* Ab = A + batch * stride_a;
  const In* Bb = B + batch * stride_b;
  float acc[8][kThinSide] = {};
  if (row_lane < rows_at_once) {
    const int end = min(K, (chunk + 1) * kThinChunkRows);
#pragma unroll 4
    for (int r = chunk * kThinChunkRows + row_lane; r < end; r += rows_at_once) {
      float a[8], b[kThinSide];
      if (vector) load_eight(Ab + size_t(r) * lda + m0, a);
      else load_eight(Ab + size_t(r) * lda + m0, a, M - m0);
#pragma unroll
      for (int n = 0; n < kThinSide; ++n) b[n] = n < N ? widen(Bb[size_t(r) * ldb + n]) : 0.0f;
#pragma unroll
      for (int j = 0; j < 8; ++j)
#pragma unroll
        for (int n = 0; n < kThinSide; ++n) acc[j][n] = __fmaf_rn(a[j], b[n], acc[j][n]);
    }
  }
  float* mine = sums + threadIdx.x * kSums;
#pragma unroll
  for (int j = 0; j < 8; ++j)
#pragma unroll
    for (int n = 0; n < kThinSide; ++n) mine[j * kThinSide + n] = acc[j][n];
  __syncthreads();
  // A fixed tree over the row lanes (lane + half folds into lane).
  for (int half = 1; half < rows_at_once; half *= 2) {
    if (row_lane < rows_at_once && row_lane % (2 * half) == 0 && row_lane + half < rows_at_once) {
      const float* other = sums + (threadIdx.x + half * per_row) * kSums;
      for (int e = 0; e < 8 * kThinSide; ++e) mine[e] += other[e];
    }
    __syncthreads();
  }
  if (row_lane == 0) {
    float* out = partials + (size_t(batch) * chunks + chunk) * M * N;
    for (int j = 0; j < 8 && m0 + j < M; ++j)
      for (int n = 0; n < N; ++n) out[size_t(m0 + j) * N + n] = mine[j * kThinSide + n];
  }
}

// C(M, N) of each batch entry = the sum of its chunks' partials: one warp per
// element, lane l adding chunks l, l + 32, ... in order, then a fixed xor tree.
__global__ void thin_finish_kernel(float* C, int ldc, long long stride_c, const float* partials, int M, int N,
                                   int chunks, int batch_count) {
  const size_t warp = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  const size_t total = size_t(batch_count) * M * N;
  if (warp >= total) return;  // uniform per warp
  const int batch = static_cast<int>(warp / (size_t(M) * N));
  const int e = static_cast<int>(warp % (size_t(M) * N));
  const float* p = partials + size_t(batch) * chunks * M * N + e;
  float sum = 0.0f;
  for (int k = lane; k < chunks; k += 32) sum = __fadd_rn(sum, p[size_t(k) * M * N]);
  for (int offset = 16; offset > 0; offset /= 2) sum = __fadd_rn(sum, __shfl_xor_sync(0xffffffffu, sum, offset));
  if (lane == 0) C[batch * stride_c + size_t(e / N) * ldc + e % N] = sum;
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool two_byte_operands(const State& s) {
  return s.thin_gemms && (s.precision == Precision::FP16 || s.precision == Precision::BF16);
}

// Calls f with the operands typed as the current precision's 2-byte type
// (with_half_type's dispatch).
template <typename F>
void with_operand_type(const State& s, const void* A, const void* B, F&& f) {
  with_half_type(s.precision, [&](auto* half) {
    using Half = std::remove_pointer_t<decltype(half)>;
    f(static_cast<const Half*>(A), static_cast<const Half*>(B));
  });
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

// The side of at most kThinSide is K (a forward over the coordinates: thin_rows)
// or N (dx of such a layer: thin_columns).
bool rows_shape(bool transpose_a, int N, int K) { return !transpose_a && K <= kThinSide && N <= kThinLongSide; }
bool columns_shape(bool transpose_a, int N, int K) { return !transpose_a && N <= kThinSide && K <= kThinLongSide; }

template <typename In>
void launch_columns(State& s, float* C, int ldc, long long stride_c, const In* A, int lda, long long stride_a,
                    const In* B, int ldb, long long stride_b, bool transpose_b, int M, int N, int K, int batch) {
  const bool vector = K % 8 == 0 && lda % 8 == 0 && stride_a % 8 == 0 && aligned16(A);
  int lanes = 1;  // a power of two covering K in groups of 8, at most a warp
  while (lanes < 32 && lanes * 8 < K) lanes *= 2;
  const size_t blocks = (size_t(M) * lanes + kThinThreads - 1) / kThinThreads;  // one group per row, no loop
  if (blocks > size_t(kMaxGridX)) fail("thin_gemm: ", M, " rows are more than one grid holds");
  const size_t shared = size_t(K + K / 8 + 1) * sizeof(float4);
  thin_columns_kernel<In, float><<<dim3(static_cast<unsigned>(blocks), batch), kThinThreads, shared, s.stream>>>(
      C, ldc, stride_c, A, lda, stride_a, B, ldb, stride_b, transpose_b, vector, lanes, M, N, K);
  CUDA_CHECK_LAUNCH();
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
  if (columns_shape(transpose_a, N, K)) {
    with_operand_type(s, A, B, [&](auto* a, auto* b) {
      launch_columns(s, C, ldc, stride_c, a, lda, stride_a, b, ldb, stride_b, transpose_b, M, N, K, batch);
    });
    ++s.gemm_counts.thin_products;
    return true;
  }
  if (transpose_a && !transpose_b && M <= kThinLongM && N <= kThinSide) {
    const int chunks = (K + kThinChunkRows - 1) / kThinChunkRows;
    if (chunks > kMaxGridX) return false;
    float* partials =
        static_cast<float*>(s.scratch(State::kThinPartials, size_t(batch) * chunks * M * N * sizeof(float)));
    const bool vector = M % 8 == 0 && lda % 8 == 0 && stride_a % 8 == 0 && aligned16(A);
    with_operand_type(s, A, B, [&](auto* a, auto* b) {
      using In = std::remove_cv_t<std::remove_pointer_t<decltype(a)>>;
      thin_long_kernel<In><<<dim3(chunks, batch), kThinThreads, 0, s.stream>>>(partials, a, lda, stride_a, b, ldb,
                                                                               stride_b, vector, M, N, K, chunks);
      CUDA_CHECK_LAUNCH();
    });
    const size_t finish_threads = size_t(batch) * M * N * 32;  // a warp per element, no loop
    if (finish_threads / kBlock >= size_t(kMaxGridX)) fail("thin_gemm: ", M, " x ", N, " sums are too many");
    thin_finish_kernel<<<static_cast<unsigned>((finish_threads + kBlock - 1) / kBlock), kBlock, 0, s.stream>>>(
        C, ldc, stride_c, partials, M, N, chunks, batch);
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
