// log-softmax, negative log-likelihood (with the accuracy count), their joint
// gradient, and the argmax of each row. Row sums are in double with fixed
// warp/block trees (deterministic). nll_loss waits for the stream: it returns
// the loss to the host (queue_nll_loss does not; nll_loss_result waits).
#include <cmath>
#include <cstring>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::grid_for;
using cuda::kBlock;

constexpr int kWarp = 32;
constexpr int kLossThreads = 512;
constexpr int kLossRowsPerBlock = 2048;  // rows per block of the loss sum (a constant: the same sums on any GPU)

// One warp per row: max, sum of exp in double, then y = x - log-sum-exp.
__global__ void log_softmax_kernel(float* y, const float* x, int M, int K) {
  const int row = (blockIdx.x * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (row >= M) return;  // uniform per warp
  const float* xr = x + size_t(row) * K;
  float top = -INFINITY;
  for (int k = lane; k < K; k += kWarp) top = fmaxf(top, xr[k]);
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, offset));
  double sum = 0.0;
  for (int k = lane; k < K; k += kWarp) sum += exp(static_cast<double>(xr[k]) - top);
  for (int offset = kWarp / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
  const double log_sum = static_cast<double>(top) + log(sum);
  float* yr = y + size_t(row) * K;
  for (int k = lane; k < K; k += kWarp) yr[k] = static_cast<float>(xr[k] - log_sum);
}

struct NllResult {
  double sum;        // sum over rows of -logp[target]
  long long hits;    // rows whose argmax is the target
  long long invalid; // rows whose target is outside [0, K)
};

__device__ int row_argmax(const float* row, int K) {
  int best = 0;
  for (int k = 1; k < K; ++k)
    if (row[k] > row[best]) best = k;  // strict: the first maximum
  return best;
}

// The block's per-thread results summed in a fixed tree (the same bits every
// run); every thread gets the total.
__device__ NllResult block_total(const NllResult& mine) {
  __shared__ double sums[kLossThreads];
  __shared__ long long hits[kLossThreads];
  __shared__ long long invalid[kLossThreads];
  const int tid = threadIdx.x;
  sums[tid] = mine.sum;
  hits[tid] = mine.hits;
  invalid[tid] = mine.invalid;
  __syncthreads();
  for (int half = kLossThreads / 2; half > 0; half /= 2) {
    if (tid < half) {
      sums[tid] += sums[tid + half];
      hits[tid] += hits[tid + half];
      invalid[tid] += invalid[tid + half];
    }
    __syncthreads();
  }
  const NllResult total{sums[0], hits[0], invalid[0]};
  __syncthreads();  // every thread has read the total before the arrays could be reused
  return total;
}

// Block i takes rows [i kLossRowsPerBlock, (i + 1) kLossRowsPerBlock): each
// thread rows tid, tid + 512, ... of them, then a fixed tree into partials[i].
// (One block over all rows took 1.4 ms for the segmenter's 80,000 rows.)
__global__ void nll_partials_kernel(NllResult* partials, const float* logp, const int32_t* target, int M, int K) {
  const long long begin = static_cast<long long>(blockIdx.x) * kLossRowsPerBlock;
  const long long end = min(static_cast<long long>(M), begin + kLossRowsPerBlock);  // (no int overflow near INT_MAX)
  NllResult mine{0.0, 0, 0};
  for (long long r = begin + threadIdx.x; r < end; r += kLossThreads) {
    const int t = target[r];
    if (t < 0 || t >= K) {
      ++mine.invalid;
      continue;
    }
    const float* row = logp + size_t(r) * K;
    mine.sum -= row[t];
    mine.hits += row_argmax(row, K) == t;
  }
  const NllResult total = block_total(mine);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: the partials, thread t adding t, t + 512, ... in order, then a fixed tree.
__global__ void nll_finish_kernel(NllResult* out, const NllResult* partials, int count) {
  NllResult mine{0.0, 0, 0};
  for (int i = threadIdx.x; i < count; i += kLossThreads) {
    mine.sum += partials[i].sum;
    mine.hits += partials[i].hits;
    mine.invalid += partials[i].invalid;
  }
  const NllResult total = block_total(mine);
  if (threadIdx.x == 0) *out = total;
}

// dx = scale * (exp(logp) - onehot(target)). A bad target (which nll_loss
// reports) only skips the one-hot term: no out-of-bounds access.
__global__ void nll_backward_kernel(float* dx, const float* logp, const int32_t* target, size_t M,
                                    int K, float scale) {
  const size_t total = M * K;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int k = static_cast<int>(i % K);
    float v = scale * expf(logp[i]);
    if (target[i / K] == k) v -= scale;
    dx[i] = v;
  }
}

__global__ void argmax_rows_kernel(int32_t* argmax, const float* x, int M, int K) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row < M) argmax[row] = row_argmax(x + size_t(row) * K, K);
}
}  // namespace

void CudaBackend::log_softmax_forward(float* y, const float* x, int M, int K) {
  PN_CHECK(K >= 1);
  if (M <= 0) return;
  const size_t threads = size_t(M) * kWarp;
  log_softmax_kernel<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, s_->stream>>>(y, x, M, K);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::queue_nll_loss(const float* logp, const int32_t* target, int M, int K) {
  PN_CHECK(M >= 1 && K >= 1);
  static_assert(sizeof(NllResult) <= State::kHostFlag - State::kHostNll, "the loss fits its host slot");
  const int blocks = (M + kLossRowsPerBlock - 1) / kLossRowsPerBlock;
  auto* out = static_cast<NllResult*>(s_->scratch(State::kSmall, (1 + size_t(blocks)) * sizeof(NllResult)));
  char* host = s_->host_results_for(State::kHostNorms);
  nll_partials_kernel<<<blocks, kLossThreads, 0, s_->stream>>>(out + 1, logp, target, M, K);
  CUDA_CHECK_LAUNCH();
  nll_finish_kernel<<<1, kLossThreads, 0, s_->stream>>>(out, out + 1, blocks);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(host + State::kHostNll, out, sizeof(NllResult), cudaMemcpyDeviceToHost, s_->stream));
  s_->queued_rows = M;
  s_->queued_classes = K;
}

double CudaBackend::nll_loss_result(int64_t* correct) {
  CUDA_CHECK(cudaStreamSynchronize(s_->stream));
  NllResult r;
  std::memcpy(&r, s_->host_results + State::kHostNll, sizeof(r));
  if (r.invalid > 0)
    fail("nll_loss: ", r.invalid, " of ", s_->queued_rows, " targets are outside [0, ", s_->queued_classes, ")");
  if (correct) *correct = r.hits;
  return r.sum / s_->queued_rows;
}

double CudaBackend::nll_loss(int64_t* correct, const float* logp, const int32_t* target, int M, int K) {
  queue_nll_loss(logp, target, M, K);
  return nll_loss_result(correct);
}

void CudaBackend::log_softmax_nll_backward(float* dx, const float* logp, const int32_t* target, int M,
                                           int K, float scale) {
  const size_t total = size_t(M) * K;
  if (total == 0) return;
  nll_backward_kernel<<<grid_for(total), kBlock, 0, s_->stream>>>(dx, logp, target, M, K, scale);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::argmax_rows(int32_t* argmax, const float* x, int M, int K) {
  PN_CHECK(K >= 1);
  if (M <= 0) return;
  argmax_rows_kernel<<<(M + kBlock - 1) / kBlock, kBlock, 0, s_->stream>>>(argmax, x, M, K);
  CUDA_CHECK_LAUNCH();
}

}  // namespace pointnet
