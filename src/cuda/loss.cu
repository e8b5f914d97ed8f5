// log-softmax, negative log-likelihood (with the accuracy count), their joint
// gradient, and the argmax of each row. nll_loss waits for the stream: it
// returns the loss to the host (queue_nll_loss does not; nll_loss_result waits).
//
// Rows are short (the segmenter's K = 50, the classifier's 40): a warp per row
// (log-softmax) or a thread per row (the loss) left them latency-bound, 39 and
// 40 us at 80,000 rows on an H100. Now a row gets a group of G = 4..32 lanes
// (the fewest that hold it in kValuesPerLane registers each; a warp takes
// 32 / G adjacent rows, so loads are coalesced): log-softmax reads x once into
// registers, the loss and the gradient read each element once. Rows wider than
// 32 kValuesPerLane columns take general paths (a warp per row, looping over
// the columns).
//
// Determinism: row sums are in double, reduced by fixed shuffle trees within
// the group; the loss sums over blocks of kLossRowsPerBlock rows (a constant),
// each a fixed tree, then one finishing block. G depends on K only, so the
// same input gives the same bits on every run and every GPU. No atomics.
#include <climits>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::kBlock;

constexpr int kWarp = 32;
constexpr int kValuesPerLane = 8;  // a row of up to 8 G columns stays in registers
constexpr int kLossThreads = 512;
// Rows per block of the loss sum: a constant (the same sums on any GPU), small
// enough for many blocks (313 at 80,000 rows on 132 SMs; 2048 gave 40 blocks
// and 40 us), large enough that the finishing block has few partials.
constexpr int kLossRowsPerBlock = 256;

// Lanes per row: the fewest that hold a row of K in kValuesPerLane registers
// each; 0 beyond 32 kValuesPerLane columns (the general paths).
int lanes_per_row(int K) {
  for (int g = 4; g <= kWarp; g *= 2)
    if (K <= g * kValuesPerLane) return g;
  return 0;
}

// The lanes of this thread's G-lane group (G divides 32): the shuffles' mask,
// so that a group may leave early without the others.
template <int G>
__device__ __forceinline__ unsigned group_mask() {
  if constexpr (G == kWarp) return 0xffffffffu;
  else return ((1u << G) - 1u) << (threadIdx.x % kWarp / G * G);
}

// A group of G lanes per row, lane j holding columns j, j + G, ... (a warp
// reads 32 / G adjacent rows per load, coalesced) for K <= G V: x read once,
// max and the double exp-sum by G-lane shuffle trees (every lane gets the same
// bits), then y = x - (max + log(sum)).
template <int G, int V>
__global__ void __launch_bounds__(kBlock) log_softmax_rows_kernel(float* y, const float* x, int M, int K) {
  const long long row = static_cast<long long>(blockIdx.x) * (kBlock / G) + threadIdx.x / G;
  if (row >= M) return;  // uniform per group
  const int j = threadIdx.x % G;
  const unsigned mask = group_mask<G>();
  const float* xr = x + size_t(row) * K;
  float v[V];
  float top = -INFINITY;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int k = i * G + j;
    v[i] = k < K ? xr[k] : -INFINITY;
    top = fmaxf(top, v[i]);
  }
#pragma unroll
  for (int offset = G / 2; offset > 0; offset /= 2) top = fmaxf(top, __shfl_xor_sync(mask, top, offset, G));
  double sum = 0.0;
#pragma unroll
  for (int i = 0; i < V; ++i)
    if (i * G + j < K) sum += exp(static_cast<double>(v[i]) - top);
#pragma unroll
  for (int offset = G / 2; offset > 0; offset /= 2) sum += __shfl_xor_sync(mask, sum, offset, G);
  const double log_sum = static_cast<double>(top) + log(sum);
  float* yr = y + size_t(row) * K;
#pragma unroll
  for (int i = 0; i < V; ++i) {
    const int k = i * G + j;
    if (k < K) yr[k] = static_cast<float>(v[i] - log_sum);
  }
}

// Rows wider than 32 kValuesPerLane: one warp per row, reading x three times.
__global__ void log_softmax_warp_kernel(float* y, const float* x, int M, int K) {
  const long long row = (static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
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

// row_argmax split over lanes: the largest (key, -column) is its answer in any
// order of combining (the first maximum; a NaN at column 0 stays first, as
// nothing is > NaN; other NaNs never win).
__device__ __forceinline__ float argmax_key(float value, int k) {
  return isnan(value) ? (k == 0 ? INFINITY : -INFINITY) : value;
}
__device__ __forceinline__ void keep_better(float& key, int& col, float other_key, int other_col) {
  if (other_key > key || (other_key == key && other_col < col)) {
    key = other_key;
    col = other_col;
  }
}

// A warp's results added by a fixed xor tree (every lane gets the same bits).
__device__ NllResult warp_total(NllResult mine) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    mine.sum += __shfl_xor_sync(0xffffffffu, mine.sum, offset);
    mine.hits += __shfl_xor_sync(0xffffffffu, mine.hits, offset);
    mine.invalid += __shfl_xor_sync(0xffffffffu, mine.invalid, offset);
  }
  return mine;
}

// The block's per-thread results summed in a fixed tree (each warp's, then the
// warps' totals in warp 0): the same bits every run. Thread 0 gets the total.
// Every thread of the block must call it.
__device__ NllResult block_total(const NllResult& mine) {
  constexpr int kWarps = kLossThreads / kWarp;
  static_assert(kWarps <= kWarp, "one warp adds the warps' totals");
  __shared__ NllResult warp_totals[kWarps];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp;
  const NllResult in_warp = warp_total(mine);
  __syncthreads();  // an earlier call's warp 0 has read warp_totals
  if (lane == 0) warp_totals[warp] = in_warp;
  __syncthreads();
  if (warp != 0) return in_warp;  // (not the block's total)
  return warp_total(lane < kWarps ? warp_totals[lane] : NllResult{0.0, 0, 0});
}

// Block b takes rows [b kLossRowsPerBlock, (b + 1) kLossRowsPerBlock): the
// block's G-lane groups take consecutive rows (coalesced), then step by the
// number of groups. A group reads its row once, lane j columns j, j + G, ...
// (V of them in registers; V = 0: a loop, for any K): the lane with the
// target's column adds -logp[target] to its own sum, the argmax comes from a
// G-lane shuffle tree, and lane 0 counts the hit or the invalid target (whose
// row is read in bounds but adds nothing). Then a fixed tree into partials[b].
template <int G, int V>
__global__ void __launch_bounds__(kLossThreads) nll_partials_kernel(NllResult* __restrict__ partials,
                                                                    const float* __restrict__ logp,
                                                                    const int32_t* __restrict__ target, int M,
                                                                    int K) {
  constexpr int kGroups = kLossThreads / G;
  static_assert(kLossRowsPerBlock % kGroups == 0, "every group takes the same number of rows");
  const int j = threadIdx.x % G;
  const unsigned mask = group_mask<G>();
  const long long begin = static_cast<long long>(blockIdx.x) * kLossRowsPerBlock;
  const long long end = min(static_cast<long long>(M), begin + kLossRowsPerBlock);  // (no int overflow near INT_MAX)
  NllResult mine{0.0, 0, 0};
  for (long long r = begin + threadIdx.x / G; r < end; r += kGroups) {  // uniform per group
    const int t = target[r];  // not waited for before the row's loads
    const float* row = logp + size_t(r) * K;
    float key = -INFINITY;
    int col = INT_MAX;  // loses every tie: a lane without columns never wins
    if constexpr (V > 0) {
      float v[V];
#pragma unroll
      for (int i = 0; i < V; ++i) v[i] = i * G + j < K ? row[i * G + j] : 0.0f;
#pragma unroll
      for (int i = 0; i < V; ++i) {
        const int k = i * G + j;
        if (k < K) {
          keep_better(key, col, argmax_key(v[i], k), k);
          if (k == t) mine.sum -= v[i];  // never for an invalid target
        }
      }
    } else {
      for (int k = j; k < K; k += G) {
        const float value = row[k];
        keep_better(key, col, argmax_key(value, k), k);
        if (k == t) mine.sum -= value;
      }
    }
#pragma unroll
    for (int offset = G / 2; offset > 0; offset /= 2) {
      const float other_key = __shfl_xor_sync(mask, key, offset, G);
      const int other_col = __shfl_xor_sync(mask, col, offset, G);
      keep_better(key, col, other_key, other_col);
    }
    if (j == 0) {
      if (t < 0 || t >= K) ++mine.invalid;
      else mine.hits += col == t;
    }
  }
  const NllResult total = block_total(mine);
  if (threadIdx.x == 0) partials[blockIdx.x] = total;
}

// One block: the partials, thread t adding t, t + 512, ... in order, then a fixed tree.
__global__ void __launch_bounds__(kLossThreads) nll_finish_kernel(NllResult* out, const NllResult* partials,
                                                                  int count) {
  NllResult mine{0.0, 0, 0};
  for (int i = threadIdx.x; i < count; i += kLossThreads) {
    mine.sum += partials[i].sum;
    mine.hits += partials[i].hits;
    mine.invalid += partials[i].invalid;
  }
  const NllResult total = block_total(mine);
  if (threadIdx.x == 0) *out = total;
}

// dx = scale * (exp(logp) - onehot(target)), a G-lane group per row (as
// log_softmax_rows_kernel; no 64-bit / and % per element, one target load per
// row). A bad target (which nll_loss reports) only skips the one-hot term: no
// out-of-bounds access.
template <int G>
__global__ void __launch_bounds__(kBlock) nll_backward_kernel(float* dx, const float* logp, const int32_t* target,
                                                              int M, int K, float scale) {
  const long long row = static_cast<long long>(blockIdx.x) * (kBlock / G) + threadIdx.x / G;
  if (row >= M) return;
  const int t = target[row];
  const size_t base = size_t(row) * K;
#pragma unroll 4
  for (int k = threadIdx.x % G; k < K; k += G) {
    float v = scale * expf(logp[base + k]);
    if (k == t) v -= scale;
    dx[base + k] = v;
  }
}

__global__ void argmax_rows_kernel(int32_t* argmax, const float* x, int M, int K) {
  const int row = blockIdx.x * blockDim.x + threadIdx.x;
  if (row < M) argmax[row] = row_argmax(x + size_t(row) * K, K);
}

// Blocks of kBlock threads for M rows of G lanes each.
unsigned row_blocks(int M, int G) {
  const int rows = kBlock / G;
  return static_cast<unsigned>((static_cast<long long>(M) + rows - 1) / rows);
}

// Calls f with std::integral_constant<int, G>, G = lanes_per_row(K) as a
// compile-time value (4, 8, 16 or 32), or 0 for rows wider than that (the
// general paths): the one dispatch from K to the kernels' templates.
template <typename F>
void with_row_lanes(int K, F&& f) {
  switch (lanes_per_row(K)) {
    case 4: return f(std::integral_constant<int, 4>{});
    case 8: return f(std::integral_constant<int, 8>{});
    case 16: return f(std::integral_constant<int, 16>{});
    case 32: return f(std::integral_constant<int, 32>{});
    default: return f(std::integral_constant<int, 0>{});
  }
}
}  // namespace

void CudaBackend::log_softmax_forward(float* y, const float* x, int M, int K) {
  PN_CHECK(K >= 1);
  if (M <= 0) return;
  cudaStream_t stream = s_->stream;
  with_row_lanes(K, [&](auto lanes) {
    constexpr int G = decltype(lanes)::value;
    if constexpr (G > 0) {
      log_softmax_rows_kernel<G, kValuesPerLane><<<row_blocks(M, G), kBlock, 0, stream>>>(y, x, M, K);
    } else {
      log_softmax_warp_kernel<<<row_blocks(M, kWarp), kBlock, 0, stream>>>(y, x, M, K);
    }
  });
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::queue_nll_loss(const float* logp, const int32_t* target, int M, int K) {
  PN_CHECK(M >= 1 && K >= 1);
  static_assert(sizeof(NllResult) <= State::kHostFlag - State::kHostNll, "the loss fits its host slot");
  const int blocks = static_cast<int>((static_cast<long long>(M) + kLossRowsPerBlock - 1) / kLossRowsPerBlock);
  auto* out = static_cast<NllResult*>(s_->scratch(State::kSmall, (1 + size_t(blocks)) * sizeof(NllResult)));
  char* host = s_->host_results_for(State::kHostNorms);
  cudaStream_t stream = s_->stream;
  with_row_lanes(K, [&](auto lanes) {
    // Wider rows (lanes 0): a warp per row, looping over the columns (V = 0).
    constexpr bool wide = decltype(lanes)::value == 0;
    constexpr int G = wide ? kWarp : decltype(lanes)::value, V = wide ? 0 : kValuesPerLane;
    nll_partials_kernel<G, V><<<blocks, kLossThreads, 0, stream>>>(out + 1, logp, target, M, K);
  });
  CUDA_CHECK_LAUNCH();
  nll_finish_kernel<<<1, kLossThreads, 0, stream>>>(out, out + 1, blocks);
  CUDA_CHECK_LAUNCH();
  CUDA_CHECK(cudaMemcpyAsync(host + State::kHostNll, out, sizeof(NllResult), cudaMemcpyDeviceToHost, stream));
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
  if (M <= 0 || K <= 0) return;
  cudaStream_t stream = s_->stream;
  with_row_lanes(K, [&](auto lanes) {
    constexpr int G = decltype(lanes)::value > 0 ? decltype(lanes)::value : kWarp;  // 32 lanes loop over wide rows
    nll_backward_kernel<G><<<row_blocks(M, G), kBlock, 0, stream>>>(dx, logp, target, M, K, scale);
  });
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::argmax_rows(int32_t* argmax, const float* x, int M, int K) {
  PN_CHECK(K >= 1);
  if (M <= 0) return;
  argmax_rows_kernel<<<(M + kBlock - 1) / kBlock, kBlock, 0, s_->stream>>>(argmax, x, M, K);
  CUDA_CHECK_LAUNCH();
}

}  // namespace pointnet
