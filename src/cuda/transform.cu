// The T-Net transforms: the per-cloud K x K product (strided-batched GEMM, in
// the backend's precision mode), the "+ identity", and the orthogonality
// regulariser mean_b ||t t^T - I||_F with its gradient, computed in double with
// one block per cloud and a fixed tree (deterministic). transform_regularizer
// waits for the stream (it returns the value to the host).
#include <cmath>
#include <vector>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::grid_for;
using cuda::kBlock;

constexpr int kGramThreads = 256;

__global__ void add_identity_kernel(float* t, int B, int K) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= B * K) return;
  const int b = i / K, d = i % K;
  t[size_t(b) * K * K + size_t(d) * K + d] += 1.0f;
}

// For cloud b = blockIdx.x: a = t t^T - I (stored when `a` is not null) and
// norms[b] = ||a||_F.
__global__ void gram_minus_identity_kernel(double* a, double* norms, const float* t, int K) {
  const int b = blockIdx.x;
  const float* tb = t + size_t(b) * K * K;
  __shared__ double squares[kGramThreads];
  double acc = 0.0;
  for (int e = threadIdx.x; e < K * K; e += kGramThreads) {
    const int i = e / K, j = e % K;
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += static_cast<double>(tb[i * K + k]) * tb[j * K + k];
    const double v = sum - (i == j ? 1.0 : 0.0);
    if (a) a[size_t(b) * K * K + e] = v;
    acc += v * v;
  }
  squares[threadIdx.x] = acc;
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

void CudaBackend::transform_forward(float* y, const float* x, const float* t, int B, int N, int K) {
  if (B <= 0 || N <= 0 || K <= 0) return;
  const long long nk = static_cast<long long>(N) * K, kk = static_cast<long long>(K) * K;
  const void* xo = cuda::gemm_operand(*s_, State::kGemmA, x, size_t(B) * nk);
  const void* to = cuda::gemm_operand(*s_, State::kGemmB, t, size_t(B) * kk);
  // y[b](N, K) = x[b](N, K) t[b](K, K)
  cuda::gemm(*s_, false, false, N, K, K, xo, K, nk, to, K, kk, 0.0f, y, K, nk, B);
}

void CudaBackend::transform_backward(float* dx, float* dt, const float* dy, const float* x,
                                     const float* t, int B, int N, int K) {
  if (B <= 0 || K <= 0 || (!dx && !dt)) return;
  const long long nk = static_cast<long long>(N) * K, kk = static_cast<long long>(K) * K;
  const void* dyo = cuda::gemm_operand(*s_, State::kGemmA, dy, size_t(B) * nk);
  if (dx) {
    // dx[b](N, K) = dy[b](N, K) t[b]^T
    const void* to = cuda::gemm_operand(*s_, State::kGemmB, t, size_t(B) * kk);
    cuda::gemm(*s_, false, true, N, K, K, dyo, K, nk, to, K, kk, 0.0f, dx, K, nk, B);
  }
  if (dt) {
    // dt[b](K, K) = x[b]^T dy[b]; slot B is free again (stream order).
    const void* xo = cuda::gemm_operand(*s_, State::kGemmB, x, size_t(B) * nk);
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
