// The T-Net transforms: the per-cloud K x K product (strided-batched GEMM, in
// the backend's precision mode), the "+ identity", and the orthogonality
// regulariser mean_b ||t t^T - I||_F with its gradient, computed in double with
// one block per cloud and a fixed tree (deterministic). transform_regularizer
// waits for the stream (it returns the value to the host).
//
// The input transform (K = 3) in fp16 / bf16 by its own kernels: cuBLAS takes
// such products with unaligned-operand kernels, y = x t at 9 us and dt = x^T
// dy (a 3 x 3 sum over each cloud's points) at 37 us per call (CUPTI, H100,
// 2026-12-07), plus a conversion pass per operand. Here the operands are
// rounded to the mode's type as read (the values cuBLAS would multiply), the
// products are exact in fp32, and sums run in a fixed order: y's K terms in
// fp32 (k ascending), dt's in double (a thread's rows in order, then a fixed
// tree). POINTNET_SMALL_TRANSFORMS=gemm keeps cuBLAS's (to compare).
#include <cmath>
#include <string>
#include <type_traits>
#include <vector>

#include "core/env_choice.h"
#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::grid_for;
using cuda::kBlock;

constexpr int kGramThreads = 256;
constexpr int kSmallK = 4;          // the widest transform taken by the kernels below
constexpr int kDtThreads = 512;     // threads per cloud summing dt

bool small_transform(const CudaBackend::State& s, int K) {
  return K <= kSmallK && (s.precision == Precision::FP16 || s.precision == Precision::BF16) &&
         env_choice("POINTNET_SMALL_TRANSFORMS", {"kernel", "gemm"}) == "kernel";
}

template <typename Half>
__device__ __forceinline__ float rounded(float v) {
  return cuda::widen(cuda::to_narrow<Half>(v));
}

// y[b, n, :] = x[b, n, :] op(t[b]) for K <= kSmallK, op(t) = t or t^T: one
// thread per row.
template <typename Half>
__global__ void small_transform_rows_kernel(float* y, const float* x, const float* t, int B, int N, int K,
                                            bool transpose) {
  const size_t rows = size_t(B) * N;
  for (size_t r = blockIdx.x * size_t(blockDim.x) + threadIdx.x; r < rows; r += size_t(gridDim.x) * blockDim.x) {
    const float* tb = t + (r / N) * K * K;
    float xr[kSmallK];
#pragma unroll
    for (int k = 0; k < kSmallK; ++k) xr[k] = k < K ? rounded<Half>(x[r * K + k]) : 0.0f;
    for (int j = 0; j < K; ++j) {
      float acc = 0.0f;
#pragma unroll
      for (int k = 0; k < kSmallK; ++k)
        if (k < K) acc = __fmaf_rn(xr[k], rounded<Half>(transpose ? tb[j * K + k] : tb[k * K + j]), acc);
      y[r * K + j] = acc;
    }
  }
}

// dt[b](K, K) = x[b]^T dy[b] for K <= kSmallK: one block per cloud; thread i
// sums rows i, i + kDtThreads, ... in double, then a fixed tree (warp
// shuffles, then the warps' partials in order).
template <typename Half>
__global__ void small_transform_dt_kernel(float* dt, const float* x, const float* dy, int N, int K) {
  constexpr int kE = kSmallK * kSmallK;
  const int b = blockIdx.x;
  const float* xb = x + size_t(b) * N * K;
  const float* gb = dy + size_t(b) * N * K;
  double acc[kE];
#pragma unroll
  for (int e = 0; e < kE; ++e) acc[e] = 0.0;
  for (int n = threadIdx.x; n < N; n += kDtThreads) {
    float xv[kSmallK], gv[kSmallK];
#pragma unroll
    for (int k = 0; k < kSmallK; ++k) {
      xv[k] = k < K ? rounded<Half>(xb[size_t(n) * K + k]) : 0.0f;
      gv[k] = k < K ? rounded<Half>(gb[size_t(n) * K + k]) : 0.0f;
    }
#pragma unroll
    for (int i = 0; i < kSmallK; ++i)
#pragma unroll
      for (int j = 0; j < kSmallK; ++j) acc[i * kSmallK + j] += static_cast<double>(xv[i] * gv[j]);  // exact
  }
  __shared__ double warp_sums[kDtThreads / 32][kE];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int e = 0; e < kE; ++e) {
    double v = acc[e];
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_sums[warp][e] = v;
  }
  __syncthreads();
  if (threadIdx.x < K * K) {
    const int i = threadIdx.x / K, j = threadIdx.x % K;
    double total = 0.0;
    for (int w = 0; w < kDtThreads / 32; ++w) total += warp_sums[w][i * kSmallK + j];
    dt[size_t(b) * K * K + threadIdx.x] = static_cast<float>(total);
  }
}

__global__ void add_identity_kernel(float* t, int B, int K) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * K) return;
  const int b = i / K, d = i % K;
  t[size_t(b) * K * K + size_t(d) * K + d] += 1.0f;
}

// For cloud b = blockIdx.x: a = t t^T - I (stored when `a` is not null) and
// norms[b] = ||a||_F. The block walks a in 64 x 64 output tiles; each thread
// keeps a 4 x 4 block of sums in registers, and t's rows come through shared
// memory 32 columns at a time (double, rows padded to 33 so that the 16
// column threads of a warp read distinct banks). Every product sums its K
// terms k ascending, as the CPU does; only the squares' order differs. The
// one-thread-per-element loop this replaces read t from global memory with a
// K stride and took 143 us per call for 32 clouds of K = 64 (H100, CUPTI,
// 2026-12-08), twice per feature-transform training step.
__global__ void __launch_bounds__(kGramThreads) gram_minus_identity_kernel(double* a, double* norms,
                                                                           const float* t, int K) {
  constexpr int kTile = 64, kChunk = 32, kPer = 4, kSide = kTile / kPer;  // 16 x 16 threads
  static_assert(kSide * kSide == kGramThreads, "one thread per 4 x 4 block of a tile");
  const int b = blockIdx.x;
  const float* tb = t + size_t(b) * K * K;
  __shared__ double rows_i[kTile][kChunk + 1], rows_j[kTile][kChunk + 1];
  __shared__ double squares[kGramThreads];
  const int ty = threadIdx.x / kSide, tx = threadIdx.x % kSide;
  double acc_squares = 0.0;
  for (int i0 = 0; i0 < K; i0 += kTile) {
    for (int j0 = 0; j0 < K; j0 += kTile) {
      double sums[kPer][kPer] = {};
      for (int k0 = 0; k0 < K; k0 += kChunk) {
        for (int e = threadIdx.x; e < kTile * kChunk; e += kGramThreads) {
          const int r = e / kChunk, c = e % kChunk, k = k0 + c;
          rows_i[r][c] = (i0 + r < K && k < K) ? static_cast<double>(tb[size_t(i0 + r) * K + k]) : 0.0;
          rows_j[r][c] = (j0 + r < K && k < K) ? static_cast<double>(tb[size_t(j0 + r) * K + k]) : 0.0;
        }
        __syncthreads();
        const int chunk = min(kChunk, K - k0);
        for (int c = 0; c < chunk; ++c) {
          double vi[kPer], vj[kPer];
#pragma unroll
          for (int p = 0; p < kPer; ++p) {
            vi[p] = rows_i[ty + kSide * p][c];
            vj[p] = rows_j[tx + kSide * p][c];
          }
#pragma unroll
          for (int p = 0; p < kPer; ++p)
#pragma unroll
            for (int q = 0; q < kPer; ++q) sums[p][q] = fma(vi[p], vj[q], sums[p][q]);
        }
        __syncthreads();
      }
#pragma unroll
      for (int p = 0; p < kPer; ++p) {
#pragma unroll
        for (int q = 0; q < kPer; ++q) {
          const int i = i0 + ty + kSide * p, j = j0 + tx + kSide * q;
          if (i >= K || j >= K) continue;
          const double v = sums[p][q] - (i == j ? 1.0 : 0.0);
          if (a) a[size_t(b) * K * K + size_t(i) * K + j] = v;
          acc_squares += v * v;
        }
      }
    }
  }
  squares[threadIdx.x] = acc_squares;
  __syncthreads();
  for (int half = kGramThreads / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) squares[threadIdx.x] += squares[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) norms[b] = sqrt(squares[0]);
}

// dt[b] += weight * 2 / (||a_b|| B) * a_b t_b   (d||A||_F/dt = 2 A t / ||A||_F, A symmetric)
__global__ void regularizer_backward_kernel(float* dt, const double* a, const double* norms,
                                            const float* t, int B, int K, float weight) {
  const size_t total = size_t(B) * K * K;
  for (size_t idx = blockIdx.x * size_t(blockDim.x) + threadIdx.x; idx < total; idx += size_t(gridDim.x) * blockDim.x) {
    const int b = static_cast<int>(idx / (size_t(K) * K));
    const int e = static_cast<int>(idx % (size_t(K) * K));
    const int i = e / K, j = e % K;
    const double norm = norms[b];
    if (norm == 0.0) continue;  // the minimum: torch's subgradient there is 0 too
    const double k = static_cast<double>(weight) * 2.0 / (norm * B);
    const double* ab = a + size_t(b) * K * K;
    const float* tb = t + size_t(b) * K * K;
    double sum = 0.0;
    for (int m = 0; m < K; ++m) sum += ab[size_t(i) * K + m] * tb[size_t(m) * K + j];
    dt[idx] += static_cast<float>(k * sum);
  }
}
}  // namespace

void CudaBackend::transform_forward(float* y, const float* x, const float* t, int B, int N, int K,
                                    const void* x_narrow, void* y_narrow) {
  if (B <= 0 || N <= 0 || K <= 0) return;
  PN_CHECK(y && x && t);
  PN_CHECK(!y_narrow || narrow_activations());  // backend.h's contract: a copy asked for is written
  if (small_transform(*s_, K)) {
    cuda::with_half_type(s_->precision, [&](auto* half) {
      using Half = std::remove_pointer_t<decltype(half)>;
      small_transform_rows_kernel<Half><<<grid_for(size_t(B) * N), kBlock, 0, s_->stream>>>(y, x, t, B, N, K, false);
    });
    CUDA_CHECK_LAUNCH();
  } else {
    const long long nk = static_cast<long long>(N) * K, kk = static_cast<long long>(K) * K;
    const void* xo = cuda::gemm_operand(*s_, State::kGemmA, x, size_t(B) * nk, x_narrow);
    const void* to = cuda::gemm_operand(*s_, State::kGemmB, t, size_t(B) * kk);
    // y[b](N, K) = x[b](N, K) t[b](K, K)
    cuda::gemm(*s_, false, false, N, K, K, xo, K, nk, to, K, kk, 0.0f, y, K, nk, B);
  }
  // y's copy: one conversion here instead of one per GEMM that reads y (the
  // next layer's forward and its weight gradient; the segmenter's head.0's
  // two), the same conversion so the same values; counted as theirs would be.
  if (y_narrow) cuda::convert_counted(*s_, y_narrow, y, size_t(B) * N * K);
}

void CudaBackend::transform_backward(float* dx, float* dt, const float* dy, const float* x,
                                     const float* t, int B, int N, int K, const void* x_narrow) {
  if (B <= 0 || K <= 0 || (!dx && !dt)) return;
  PN_CHECK((dy || N == 0) && (!dx || t) && (!dt || x || N == 0));
  if (small_transform(*s_, K)) {
    cuda::with_half_type(s_->precision, [&](auto* half) {
      using Half = std::remove_pointer_t<decltype(half)>;
      if (dx && N > 0)  // dx[b] = dy[b] t[b]^T
        small_transform_rows_kernel<Half><<<grid_for(size_t(B) * N), kBlock, 0, s_->stream>>>(dx, dy, t, B, N, K,
                                                                                               true);
      if (dt) small_transform_dt_kernel<Half><<<B, kDtThreads, 0, s_->stream>>>(dt, x, dy, N, K);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  const long long nk = static_cast<long long>(N) * K, kk = static_cast<long long>(K) * K;
  const void* dyo = cuda::gemm_operand(*s_, State::kGemmA, dy, size_t(B) * nk);
  if (dx) {
    // dx[b](N, K) = dy[b](N, K) t[b]^T
    const void* to = cuda::gemm_operand(*s_, State::kGemmB, t, size_t(B) * kk);
    cuda::gemm(*s_, false, true, N, K, K, dyo, K, nk, to, K, kk, 0.0f, dx, K, nk, B);
  }
  if (dt) {
    // dt[b](K, K) = x[b]^T dy[b]; slot B is free again (stream order).
    const void* xo = cuda::gemm_operand(*s_, State::kGemmB, x, size_t(B) * nk, x_narrow);
    cuda::gemm(*s_, true, false, K, K, N, xo, K, nk, dyo, K, nk, 0.0f, dt, K, kk, B);
  }
}

void CudaBackend::add_identity(float* t, int B, int K) {
  const int n = B * K;
  if (n <= 0) return;
  add_identity_kernel<<<(n + kBlock - 1) / kBlock, kBlock, 0, s_->stream>>>(t, B, K);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::queue_transform_regularizer(const float* t, int B, int K) {
  PN_CHECK(B >= 1 && K >= 1);
  auto* norms = static_cast<double*>(s_->scratch(State::kSmall, size_t(B) * sizeof(double)));
  char* host = s_->host_results_for(State::kHostNorms + size_t(B) * sizeof(double));
  gram_minus_identity_kernel<<<B, kGramThreads, 0, s_->stream>>>(nullptr, norms, t, K);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(host + State::kHostNorms, norms, size_t(B) * sizeof(double), cudaMemcpyDeviceToHost,
                             s_->stream));
  s_->queued_clouds = B;
}

double CudaBackend::transform_regularizer_result() {
  CUDA_CHECK(cudaStreamSynchronize(s_->stream));
  const double* norms = reinterpret_cast<const double*>(s_->host_results + State::kHostNorms);
  double total = 0.0;
  for (int b = 0; b < s_->queued_clouds; ++b) total += norms[b];  // in order, as the CPU
  return total / s_->queued_clouds;
}

double CudaBackend::transform_regularizer(const float* t, int B, int K) {
  queue_transform_regularizer(t, B, K);
  return transform_regularizer_result();
}

void CudaBackend::transform_regularizer_backward_accumulate(float* dt, const float* t, int B, int K,
                                                            float weight) {
  if (B <= 0 || K <= 0) return;
  // One scratch block: norms (B) then a (B, K, K), both double.
  auto* norms = static_cast<double*>(
      s_->scratch(State::kPartials, (size_t(B) + size_t(B) * K * K) * sizeof(double)));
  double* a = norms + B;
  gram_minus_identity_kernel<<<B, kGramThreads, 0, s_->stream>>>(a, norms, t, K);
  CUDA_CHECK_LAUNCH();
  const size_t total = size_t(B) * K * K;
  regularizer_backward_kernel<<<grid_for(total), kBlock, 0, s_->stream>>>(dt, a, norms, t, B, K, weight);
  CUDA_CHECK_LAUNCH();
}

}  // namespace pointnet
