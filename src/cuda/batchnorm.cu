// Batch normalisation over the rows of (M, C) (PyTorch's BatchNorm1d), and the
// deterministic column reduction it is built on (also used for bias gradients).
//
// Determinism and accuracy: column sums are taken in double. Rows are cut into
// chunks of kReduceChunkRows (a constant, not a function of the device); one
// block of 32 channels x 8 row lanes sums a chunk, each lane walking its rows in
// order, then a fixed tree over the 8 lanes; a second kernel adds the chunks
// (a warp per sum, a fixed tree). No atomics: the same input gives the same bits on every run.
// The forward statistics are one pass of shifted moments, sum(x - x0) and
// sum((x - x0)^2) with x0 = the channel's first value, which in double is as
// accurate as the CPU's two passes. The backward's per-element term
// dy - mean(dy) - xhat mean(dy xhat) cancels heavily, so it is formed in double
// as on the CPU.
#include <cmath>
#include <type_traits>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace cuda {
namespace {
constexpr int kTile = 32;   // channels per block (one warp wide: coalesced rows)
constexpr int kLanes = 8;   // row lanes per block

// Lane ty's running sums s1, s2 added over the block's kLanes row lanes by a
// fixed tree, left in sh1[0] and sh2[0]. Every thread of the block calls it
// (it synchronises). V: the channels per thread (a block spans kTile V).
template <int V>
__device__ __forceinline__ void add_lanes(double (&sh1)[kLanes][kTile * V], double (&sh2)[kLanes][kTile * V],
                                          const double (&s1)[V], const double (&s2)[V]) {
  const int tx = threadIdx.x, ty = threadIdx.y;
#pragma unroll
  for (int v = 0; v < V; ++v) {
    sh1[ty][tx * V + v] = s1[v];
    sh2[ty][tx * V + v] = s2[v];
  }
  __syncthreads();
  for (int half = kLanes / 2; half > 0; half /= 2) {
    if (ty < half) {
#pragma unroll
      for (int v = 0; v < V; ++v) {
        sh1[ty][tx * V + v] += sh1[ty + half][tx * V + v];
        sh2[ty][tx * V + v] += sh2[ty + half][tx * V + v];
      }
    }
    __syncthreads();
  }
}

// A chunk's two sums per channel (add_lanes) stored as partials[chunk][0 or
// 1][c]. Every block of the block shape (kTile, kLanes) takes part (it
// synchronises). Each of a thread's V channels (c0, c0 + 1, ...) is summed
// exactly as with one: the same bits.
template <int V>
__device__ __forceinline__ void store_chunk_sums(double (&sh1)[kLanes][kTile * V], double (&sh2)[kLanes][kTile * V],
                                                 const double (&s1)[V], const double (&s2)[V], double* partials,
                                                 int chunk, int c0, int C) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  add_lanes<V>(sh1, sh2, s1, s2);
  if (ty == 0) {
#pragma unroll
    for (int v = 0; v < V; ++v) {
      if (c0 + v >= C) break;
      partials[(size_t(chunk) * 2) * C + c0 + v] = sh1[0][tx * V + v];
      partials[(size_t(chunk) * 2 + 1) * C + c0 + v] = sh2[0][tx * V + v];
    }
  }
  __syncthreads();  // the shared arrays are reused by the next chunk
}

// A lane's rows of a chunk, begin + ty, + kLanes, ... < end, in order,
// kRowsInFlight at a time: load(m, j) reads row m into slot j, then add(j)
// sums (and writes) the slots in row order, so a group's loads go out before
// its stores (batchnorm_dx_sums_kernel, where dx may be dy).
constexpr int kRowsInFlight = 4;
template <typename Load, typename Add>
__device__ __forceinline__ void walk_rows(int begin, int end, Load&& load, Add&& add) {
  int m = begin + static_cast<int>(threadIdx.y);
  for (; m + (kRowsInFlight - 1) * kLanes < end; m += kRowsInFlight * kLanes) {
#pragma unroll
    for (int j = 0; j < kRowsInFlight; ++j) load(m + j * kLanes, j);
#pragma unroll
    for (int j = 0; j < kRowsInFlight; ++j) add(j);
  }
  for (; m < end; m += kLanes) {
    load(m, 0);
    add(0);
  }
}

// The forward statistics' terms of one value: sum(x - shift) and
// sum((x - shift)^2), shift = the channel's first value.
__device__ __forceinline__ void add_shifted_moments(double& s1, double& s2, float x, double shift) {
  const double d = static_cast<double>(x) - shift;
  s1 += d;
  s2 += d * d;
}

// The backward's sums, sum(dy) and sum(dy xhat), dy masked by the fused ReLU
// (recomputed from x and the forward's statistics) where `relu`.
struct GradSumsChannel {
  bool relu;
  double mu, is;
  float centre, scale, shift;
};
__device__ __forceinline__ GradSumsChannel grad_sums_channel(bool relu, const float* mean, const float* invstd,
                                                             const float* gamma, const float* beta, int c) {
  return {relu, mean[c], invstd[c], mean[c], relu ? batchnorm_scale(gamma[c], invstd[c]) : 0.0f,
          relu ? beta[c] : 0.0f};
}
template <typename Dy, typename X>
__device__ __forceinline__ void add_grad_sums(double& s1, double& s2, const Dy* dy, const X* x, size_t i,
                                              const GradSumsChannel& k) {
  // dy is read only where the ReLU passed. Reading it always (no branch per
  // row) moved more bytes and was slower: 9.7 -> 10.2 us per call (CUPTI,
  // H100, 2026-12-06, session 11).
  const float xv = widen(x[i]);
  const double g = k.relu && !(batchnorm_apply(xv, k.centre, k.scale, k.shift) > 0.0f) ? 0.0 : widen(dy[i]);
  s1 += g;
  s2 += g * ((static_cast<double>(xv) - k.mu) * k.is);
}

// A and B: float, or a 2-byte type where the summed tensor is kept so
// (Backend::narrow_linear_outputs); widened to float as read. One channel a
// thread, one row at a time: two channels a thread (as the dx pass) and
// cuda::walk_rows' groups of four rows both measured slower here for the
// backward sums, 19.5 -> 28-31 and -> 22.9 us a call at (M, 64) / (M, 128)
// (CUPTI, H100, session 17).
template <typename A, typename B>
__global__ void column_partials_kernel(double* partials, ReduceTerm term, const A* a,
                                       const B* b, const float* mean, const float* invstd,
                                       const float* gamma, const float* beta, const double* centre, int M, int C,
                                       int chunks) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kTile + tx;
  __shared__ double sh1[kLanes][kTile];
  __shared__ double sh2[kLanes][kTile];
  for (int chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int begin = chunk * kReduceChunkRows;
    const int end = min(M, begin + kReduceChunkRows);
    double s1 = 0.0, s2 = 0.0;
    if (c < C) {
      if (term == ReduceTerm::kSum) {
        for (int m = begin + ty; m < end; m += kLanes) s1 += static_cast<double>(widen(a[size_t(m) * C + c]));
      } else if (term == ReduceTerm::kCentredSquares) {
        const double mu = centre[c] / centre[C];
        for (int m = begin + ty; m < end; m += kLanes) {
          const double d = static_cast<double>(widen(a[size_t(m) * C + c])) - mu;
          s1 += d * d;
        }
      } else if (term == ReduceTerm::kShiftedMoments) {
        const double shift = widen(a[c]);
        for (int m = begin + ty; m < end; m += kLanes) add_shifted_moments(s1, s2, widen(a[size_t(m) * C + c]), shift);
      } else {  // kBatchNormGrad, kBatchNormReluGrad: a = dy, b = x
        const GradSumsChannel k =
            grad_sums_channel(term == ReduceTerm::kBatchNormReluGrad, mean, invstd, gamma, beta, c);
        for (int m = begin + ty; m < end; m += kLanes) add_grad_sums(s1, s2, a, b, size_t(m) * C + c, k);
      }
    }
    const double sums1[1] = {s1}, sums2[1] = {s2};
    store_chunk_sums<1>(sh1, sh2, sums1, sums2, partials, chunk, c, C);
  }
}

// For each j < J, the sum over k < chunks of partials[(k * rows_per_chunk +
// j0 + j) * C + c], in a fixed order: lane l adds chunks l, l + 32, ... in
// order, then a fixed shuffle tree; the totals are lane 0's. Every lane of
// the warp calls it. The loads go out kLoadsAhead chunks (times J) at a time
// before their adds: at 80,000 rows a lane has ~10 chunks, which one load at
// a time (and the J sums one after the other) made a chain of L2 round trips
// (the BatchNorm finishes took 5-6 us a call, CUPTI, session 21). The adds
// keep their order: the same bits.
constexpr int kLoadsAhead = 8;
template <int J>
__device__ __forceinline__ void chunk_totals(double (&s)[J], const double* partials, int rows_per_chunk, int j0,
                                             int c, int C, int chunks, int lane) {
  const auto at = [&](int k, int j) { return partials[(size_t(k) * rows_per_chunk + j0 + j) * C + c]; };
#pragma unroll
  for (int j = 0; j < J; ++j) s[j] = 0.0;
  for (int k = lane; k < chunks; k += kLoadsAhead * 32) {
    double v[kLoadsAhead][J];
#pragma unroll
    for (int u = 0; u < kLoadsAhead; ++u)
#pragma unroll
      for (int j = 0; j < J; ++j) v[u][j] = k + u * 32 < chunks ? at(k + u * 32, j) : 0.0;
#pragma unroll
    for (int u = 0; u < kLoadsAhead; ++u)
      if (k + u * 32 < chunks)
#pragma unroll
        for (int j = 0; j < J; ++j) s[j] += v[u][j];
  }
#pragma unroll
  for (int j = 0; j < J; ++j)
    for (int offset = 16; offset > 0; offset /= 2) s[j] += __shfl_down_sync(0xffffffffu, s[j], offset);
}
__device__ __forceinline__ double chunk_total(const double* partials, int rows_per_chunk, int j, int c, int C,
                                              int chunks, int lane) {
  double s[1];
  chunk_totals<1>(s, partials, rows_per_chunk, j, c, C, chunks, lane);
  return s[0];
}

// sums[j * C + c] = sum over chunks of partials[chunk][j][c] (partials laid
// out as (chunks, rows_per_chunk, C)): one warp per sum, lane l adding chunks
// l, l + 32, ... in order, then a fixed shuffle tree (a thread per sum walking
// ~300 chunks alone took 8 us, latency-bound).
__global__ void column_finish_kernel(double* sums, const double* partials, int C, int rows_of_sums,
                                     int rows_per_chunk, int chunks) {
  const int i = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (i >= rows_of_sums * C) return;  // the whole warp
  const double s = chunk_total(partials, rows_per_chunk, i / C, i % C, C, chunks, lane);
  if (lane == 0) sums[i] = s;
}

// out[c] = float(the sum over chunks of partials[k][0][c]): finish_column_sums
// and sums_to_float in one launch, the same bits.
__global__ void chunks_to_float_kernel(float* out, const double* partials, int C, int chunks) {
  const int c = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (c >= C) return;  // the whole warp
  const double s = chunk_total(partials, 2, 0, c, C, chunks, lane);
  if (lane == 0) out[c] = static_cast<float>(s);
}
}  // namespace

static unsigned warp_per_channel_blocks(int C) { return static_cast<unsigned>((size_t(C) * 32 + kBlock - 1) / kBlock); }

ColumnPartials column_partials_for(State& s, int M, int C) {
  ColumnPartials p;
  p.C = C;
  p.sums = static_cast<double*>(s.scratch(State::kSums, size_t(2) * C * sizeof(double)));
  p.chunks = (M + kReduceChunkRows - 1) / kReduceChunkRows;
  // One chunk (the per-cloud layers' M = B rows): its partials are laid out as
  // the sums, so they are written there and the finishing launch is skipped.
  p.partials = p.chunks == 1 ? p.sums
                             : static_cast<double*>(s.scratch(
                                   State::kPartials, size_t(p.chunks > 0 ? p.chunks : 1) * 2 * C * sizeof(double)));
  p.grid = dim3((C + kTile - 1) / kTile, p.chunks < 65535 ? p.chunks : 65535);
  p.block = dim3(kTile, kLanes);
  return p;
}

// column_partials_for's grid for blocks of kTile channel pairs (the dx pass).
static dim3 pairs_grid(const ColumnPartials& p) { return dim3((p.C + 2 * kTile - 1) / (2 * kTile), p.grid.y); }

void add_chunks(cudaStream_t stream, double* sums, const double* partials, int C, int rows_of_sums,
                int rows_per_chunk, int chunks) {
  const size_t threads = size_t(rows_of_sums) * C * 32;  // a warp per sum
  if (threads == 0) return;
  column_finish_kernel<<<static_cast<unsigned>((threads + kBlock - 1) / kBlock), kBlock, 0, stream>>>(
      sums, partials, C, rows_of_sums, rows_per_chunk, chunks);
  CUDA_CHECK_LAUNCH();
}

const double* finish_column_sums(State& s, const ColumnPartials& p, int rows_of_sums) {
  if (p.chunks == 1) return p.sums;
  add_chunks(s.stream, p.sums, p.partials, p.C, rows_of_sums, 2, p.chunks);
  return p.sums;
}

// column_sums' first half: the per-chunk partials, not yet added up (a
// kernel that adds them itself with chunk_total gives the same bits).
template <typename A, typename B>
ColumnPartials column_partials_of(State& s, ReduceTerm term, const A* a, const B* b, const float* mean,
                                  const float* invstd, int M, int C, const float* gamma = nullptr,
                                  const float* beta = nullptr, const double* centre = nullptr) {
  PN_CHECK(term != ReduceTerm::kBatchNormReluGrad || (gamma && beta));
  PN_CHECK(term != ReduceTerm::kCentredSquares || centre);
  const ColumnPartials p = column_partials_for(s, M, C);
  if (p.chunks > 0) {
    column_partials_kernel<A, B><<<p.grid, p.block, 0, s.stream>>>(p.partials, term, a, b, mean, invstd, gamma,
                                                                   beta, centre, M, C, p.chunks);
    CUDA_CHECK_LAUNCH();
  }
  return p;
}

template <typename A, typename B>
const double* column_sums_of(State& s, ReduceTerm term, const A* a, const B* b, const float* mean,
                             const float* invstd, int M, int C, const float* gamma = nullptr,
                             const float* beta = nullptr, const double* centre = nullptr) {
  const int rows_of_sums = term == ReduceTerm::kSum || term == ReduceTerm::kCentredSquares ? 1 : 2;
  return finish_column_sums(
      s, column_partials_of(s, term, a, b, mean, invstd, M, C, gamma, beta, centre), rows_of_sums);
}

const double* column_sums(State& s, ReduceTerm term, const float* a, const float* b,
                          const float* mean, const float* invstd, int M, int C, const float* gamma,
                          const float* beta, const double* centre) {
  return column_sums_of(s, term, a, b, mean, invstd, M, C, gamma, beta, centre);
}

namespace {
__global__ void sums_to_float_kernel(float* out, const double* sums, int C) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c < C) out[c] = static_cast<float>(sums[c]);
}
}  // namespace

void sums_to_float(State& s, float* out, const double* sums, int C) {
  if (C <= 0) return;
  sums_to_float_kernel<<<(C + kBlock - 1) / kBlock, kBlock, 0, s.stream>>>(out, sums, C);
  CUDA_CHECK_LAUNCH();
}

// out(C) = float(the first row of p's sums): sums_to_float(finish_column_sums(p, 1)) in one launch.
static void chunks_to_float(State& s, float* out, const ColumnPartials& p) {
  if (p.C <= 0) return;
  chunks_to_float_kernel<<<warp_per_channel_blocks(p.C), kBlock, 0, s.stream>>>(out, p.partials, p.C, p.chunks);
  CUDA_CHECK_LAUNCH();
}

}  // namespace cuda

namespace {
using cuda::batchnorm_apply;
using cuda::batchnorm_scale;
using cuda::grid_for;
using cuda::kBlock;
using State = CudaBackend::State;

// y = (x - centre[c]) * scale[c] + shift[c], as the CPU: subtracting the mean
// first (as PyTorch) rather than folding it into the shift keeps precision when
// a channel's mean is large next to its spread (the segmenter's 1088->512 layer).
// With `relu`, then max(y, 0) as relu_forward (NaN -> 0): the same bits as the
// two passes, one pass over the activations fewer.
__device__ __forceinline__ float normalized(float x, float centre, float scale, float shift, bool relu) {
  const float v = batchnorm_apply(x, centre, scale, shift);
  return relu ? (v > 0.0f ? v : 0.0f) : v;
}
__device__ __forceinline__ float normalized(float x, const float* centre, const float* scale, const float* shift,
                                            int c, bool relu) {
  return normalized(x, centre[c], scale[c], shift[c], relu);
}
// Narrow: the 2-byte type y's copy is written in (Backend::narrow_activations),
// or NoNarrow for none.
// In: x's type (float, or its 2-byte form, Backend::narrow_linear_outputs).
template <typename Narrow, typename In>
__global__ void normalize_kernel(float* y, Narrow* y_narrow, const In* x, const float* centre, const float* scale,
                                 const float* shift, size_t M, int C, bool relu) {
  const size_t n = M * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = normalized(cuda::widen(x[i]), centre, scale, shift, static_cast<int>(i % C), relu);
    if (y) y[i] = v;
    cuda::store_narrow(y_narrow, i, v);
  }
}
// The same four values at a time (C % 4 == 0, x and y 16-byte aligned): the
// element-wise passes moved ~2 TB/s one float per thread.
template <typename Narrow, typename In>
__global__ void normalize4_kernel(float4* y, Narrow* y_narrow, const In* x, const float* centre,
                                  const float* scale, const float* shift, size_t quads, int C, bool relu) {
  for (size_t q = blockIdx.x * size_t(blockDim.x) + threadIdx.x; q < quads; q += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(q * 4 % C);
    const float4 v = cuda::load4(x, q);
    const float4 out = make_float4(normalized(v.x, centre, scale, shift, c, relu),
                                   normalized(v.y, centre, scale, shift, c + 1, relu),
                                   normalized(v.z, centre, scale, shift, c + 2, relu),
                                   normalized(v.w, centre, scale, shift, c + 3, relu));
    if (y) y[q] = out;
    cuda::store_narrow4(y_narrow, q, out);
  }
}

using cuda::by_four;

// y_narrow: y's 2-byte copy is written there too, or null; y may then be null.
template <typename In>
void normalize(State& s, float* y, void* y_narrow, const In* x, const float* centre, const float* scale,
               const float* shift, size_t M, int C, bool relu) {
  cuda::with_narrow_type(s, y_narrow, [&](auto* narrow) {
    using Narrow = std::remove_pointer_t<decltype(narrow)>;
    if (by_four(C, y, x, narrow)) {
      const size_t quads = M * C / 4;
      normalize4_kernel<Narrow, In><<<grid_for(quads), kBlock, 0, s.stream>>>(
          reinterpret_cast<float4*>(y), narrow, x, centre, scale, shift, quads, C, relu);
    } else {
      normalize_kernel<Narrow, In><<<grid_for(M * C), kBlock, 0, s.stream>>>(y, narrow, x, centre, scale, shift, M,
                                                                             C, relu);
    }
  });
  CUDA_CHECK_LAUNCH();
}

// Channel c's mean and invstd (saved for the backward) and running statistics
// from its shifted moments s1 = sum(x - x0), s2 = sum((x - x0)^2), x0 its
// first value. Returns the normalisation's (centre, scale = gamma invstd).
__device__ __forceinline__ float2 store_train_statistics(float* mean, float* invstd, float* running_mean,
                                                         float* running_var, int c, double s1, double s2, float x0,
                                                         const float* gamma, int M, double eps, double momentum) {
  const double mu = static_cast<double>(x0) + s1 / M;
  const double squares = fmax(s2 - s1 * s1 / M, 0.0);  // sum (x - mu)^2
  const double is = 1.0 / sqrt(squares / M + eps);
  mean[c] = static_cast<float>(mu);
  invstd[c] = static_cast<float>(is);
  running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
  running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * (squares / (M - 1)));
  return make_float2(static_cast<float>(mu), batchnorm_scale(gamma[c], static_cast<float>(is)));
}

// mean, invstd (saved for the backward), scale = gamma invstd, running stats,
// from the shifted moments' per-chunk partials ((chunks, 2, C); one chunk:
// the sums themselves): a warp per channel adds them as column_sums would.
template <typename In>
__global__ void finish_train_kernel(float* mean, float* invstd, float* running_mean,
                                    float* running_var, float* scale, const double* partials, int chunks,
                                    const In* x, const float* gamma, int M, int C, double eps,
                                    double momentum) {
  const int c = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (c >= C) return;  // the whole warp
  double s[2];
  cuda::chunk_totals<2>(s, partials, 2, 0, c, C, chunks, lane);
  const double s1 = s[0], s2 = s[1];
  if (lane != 0) return;
  scale[c] = store_train_statistics(mean, invstd, running_mean, running_var, c, s1, s2, cuda::widen(x[c]), gamma, M,
                                    eps, momentum)
                 .y;
}

// SyncBN's finish: sums = (x's sums, rows) and squares = (sum (x - mu)^2,
// rows), both over every rank (group_sums).
__global__ void finish_train_group_kernel(float* mean, float* invstd, float* running_mean, float* running_var,
                                          float* scale, const double* sums, const double* squares,
                                          const float* gamma, int C, double eps, double momentum) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  const double rows = sums[C];
  const double mu = sums[c] / rows;
  const double is = 1.0 / sqrt(squares[c] / rows + eps);
  mean[c] = static_cast<float>(mu);
  invstd[c] = static_cast<float>(is);
  scale[c] = batchnorm_scale(gamma[c], invstd[c]);
  running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
  running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * (squares[c] / (rows - 1)));
}

__global__ void finish_eval_kernel(float* scale, const float* gamma, const float* running_var, int C,
                                   double eps) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  scale[c] = static_cast<float>(gamma[c] / sqrt(static_cast<double>(running_var[c]) + eps));
}

// Channel c's dgamma and dbeta (where given) and the dx pass's coefficients
// gamma invstd, mean(dy), mean(dy xhat), from sum(dy) and sum(dy xhat) over `rows`.
struct BackwardCoeffs {
  double coeff, mean_dy, mean_dy_xhat;
};
__device__ __forceinline__ BackwardCoeffs backward_coeffs(float* dgamma, float* dbeta, int c, double sum_dy,
                                                          double sum_dy_xhat, const float* gamma,
                                                          const float* invstd, double rows) {
  if (dgamma) dgamma[c] = static_cast<float>(sum_dy_xhat);
  if (dbeta) dbeta[c] = static_cast<float>(sum_dy);
  return {gamma[c] * static_cast<double>(invstd[c]), sum_dy / rows, sum_dy_xhat / rows};
}

// coeffs (3, C): gamma * invstd, mean(dy), mean(dy xhat), from the sums'
// per-chunk partials ((chunks, 2, C); one chunk: the sums themselves), a
// warp per channel adding them as column_sums would.
// With SyncBN, called twice: with this rank's sums for dgamma and dbeta, then
// with the group's (global_rows: their row count) for the coefficients.
__global__ void finish_backward_kernel(float* dgamma, float* dbeta, double* coeffs, const double* partials,
                                       int chunks, const float* gamma, const float* invstd, int M, int C,
                                       const double* global_rows) {
  const int c = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
  if (c >= C) return;  // the whole warp
  double s[2];
  cuda::chunk_totals<2>(s, partials, 2, 0, c, C, chunks, lane);
  const double sum_dy = s[0], sum_dy_xhat = s[1];
  if (lane != 0) return;
  const BackwardCoeffs k = backward_coeffs(dgamma, dbeta, c, sum_dy, sum_dy_xhat, gamma, invstd,
                                           cuda::row_count(global_rows, M));
  coeffs[c] = k.coeff;
  coeffs[C + c] = k.mean_dy;
  coeffs[2 * C + c] = k.mean_dy_xhat;
}

// dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), in double. dx == dy allowed.
// With gamma and beta (the fused ReLU's backward), dy is first masked where the
// forward's output was not positive, recomputed from x as the forward did.
struct DxTerms {
  const float *mean, *invstd, *gamma, *beta;  // gamma, beta: null without the ReLU
  const double* coeffs;
  int C;
};
// One channel's terms, read once: a kernel whose thread keeps one channel
// (batchnorm_dx_sums_kernel) holds them in registers across its rows, where
// reading them per element (dx may alias them, as far as the compiler knows)
// cost seven loads per value.
struct DxChannel {
  bool relu;
  float mean, invstd, scale, shift;
  double coeff, mean_dy, mean_dy_xhat;
};
// (t.coeffs unread: the coefficients are b.)
__device__ __forceinline__ DxChannel dx_channel(const DxTerms& t, int c, const BackwardCoeffs& b) {
  DxChannel k;
  k.relu = t.gamma != nullptr;
  k.mean = t.mean[c];
  k.invstd = t.invstd[c];
  k.scale = k.relu ? batchnorm_scale(t.gamma[c], t.invstd[c]) : 0.0f;
  k.shift = k.relu ? t.beta[c] : 0.0f;
  k.coeff = b.coeff;
  k.mean_dy = b.mean_dy;
  k.mean_dy_xhat = b.mean_dy_xhat;
  return k;
}
__device__ __forceinline__ DxChannel dx_channel(const DxTerms& t, int c) {
  return dx_channel(t, c, BackwardCoeffs{t.coeffs[c], t.coeffs[t.C + c], t.coeffs[2 * t.C + c]});
}
__device__ __forceinline__ float batchnorm_dx(float dy, float x, const DxChannel& k) {
  const bool cut = k.relu && !(batchnorm_apply(x, k.mean, k.scale, k.shift) > 0.0f);
  const double g = cut ? 0.0 : dy;
  const double xh = (static_cast<double>(x) - k.mean) * k.invstd;
  return static_cast<float>(k.coeff * (g - k.mean_dy - xh * k.mean_dy_xhat));
}
__device__ __forceinline__ float batchnorm_dx(float dy, float x, const DxTerms& t, int c) {
  return batchnorm_dx(dy, x, dx_channel(t, c));
}
// Narrow, In as normalize_kernel's: dx's 2-byte copy or NoNarrow; x's type.
// Dy: dy's type, float or the mode's 2-byte one (Backend::narrow_gradients).
template <typename Narrow, typename In, typename Dy>
__global__ void batchnorm_dx_kernel(float* dx, Narrow* dx_narrow, const Dy* dy, const In* x, DxTerms t,
                                    size_t M) {
  const size_t n = M * t.C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    const float v = batchnorm_dx(cuda::widen(dy[i]), cuda::widen(x[i]), t, static_cast<int>(i % t.C));
    dx[i] = v;
    cuda::store_narrow(dx_narrow, i, v);
  }
}
template <typename Narrow, typename In, typename Dy>
__global__ void batchnorm_dx4_kernel(float4* dx, Narrow* dx_narrow, const Dy* dy, const In* x, DxTerms t,
                                     size_t quads) {
  for (size_t q = blockIdx.x * size_t(blockDim.x) + threadIdx.x; q < quads; q += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(q * 4 % t.C);
    const float4 g = cuda::load4(dy, q), v = cuda::load4(x, q);
    const float4 out = make_float4(batchnorm_dx(g.x, v.x, t, c), batchnorm_dx(g.y, v.y, t, c + 1),
                                   batchnorm_dx(g.z, v.z, t, c + 2), batchnorm_dx(g.w, v.w, t, c + 3));
    dx[q] = out;
    cuda::store_narrow4(dx_narrow, q, out);
  }
}

// batchnorm_dx_kernel in column_partials_kernel's layout (blocks of 32
// channel lanes x 8 row lanes over fixed row chunks), also summing dx per
// channel in that kernel's order: the same bits as column_sums(kSum) of dx,
// without reading dx back. dx may be null (only the copy written).
// V: channels per lane, 1 or 2 (C even, every pointer aligned to pairs; a
// block then spans 64 channels): each channel's values and sums are the same
// operations in the same order either way. Pairs: seg bf16 step -106 us, the
// (M, 512) layer's call 56 -> 39 us (CUPTI, H100, session 17).
template <typename Narrow, typename In, typename Dy, int V>  // Dy: dy's type, float or the mode's 2-byte one
__global__ void batchnorm_dx_sums_kernel(float* dx, Narrow* dx_narrow, double* partials, const Dy* dy,
                                         const In* x, DxTerms t, int M, int chunks) {
  const int tx = threadIdx.x, C = t.C;
  const int c0 = (blockIdx.x * cuda::kTile + tx) * V;
  __shared__ double sh1[cuda::kLanes][cuda::kTile * V];
  __shared__ double sh2[cuda::kLanes][cuda::kTile * V];
  for (int chunk = blockIdx.y; chunk < chunks; chunk += gridDim.y) {
    const int begin = chunk * cuda::kReduceChunkRows;
    const int end = min(M, begin + cuda::kReduceChunkRows);
    double s1[V], s2[V];
#pragma unroll
    for (int v = 0; v < V; ++v) s1[v] = s2[v] = 0.0;
    if (c0 < C) {
      DxChannel k[V];
#pragma unroll
      for (int v = 0; v < V; ++v) k[v] = dx_channel(t, c0 + v);
      // All of a group's reads before its writes: dx may be dy (in place),
      // so the compiler may not move a later row's reads above an earlier
      // row's stores itself (cuda::walk_rows). Distinct elements, the same
      // adds in the same order: the same bits.
      float g[cuda::kRowsInFlight][V], xv[cuda::kRowsInFlight][V];
      size_t at[cuda::kRowsInFlight];
      const auto load = [&](int m, int j) {
        at[j] = size_t(m) * C + c0;
        cuda::load_lanes<V>(dy, at[j], g[j]);
        cuda::load_lanes<V>(x, at[j], xv[j]);
      };
      cuda::walk_rows(begin, end, load, [&](int j) {
        float out[V];
#pragma unroll
        for (int v = 0; v < V; ++v) {
          out[v] = batchnorm_dx(g[j][v], xv[j][v], k[v]);
          s1[v] += static_cast<double>(out[v]);
        }
        if (dx) cuda::store_lanes<V>(dx, at[j], out);
        cuda::store_narrow_lanes<V>(dx_narrow, at[j], out);
      });
    }
    cuda::store_chunk_sums<V>(sh1, sh2, s1, s2, partials, chunk, c0, C);
  }
}

// The per-cloud layers' few rows (M <= kReduceChunkRows: one chunk; not
// SyncBN) in one launch each way, where the chunked path takes three (sums,
// finish, element pass), each a few microseconds of mostly latency at B = 32.
// A block of kTile channels x kLanes row lanes sums its channels as
// column_partials_kernel sums its one chunk, finishes them as the finish
// kernels do and then makes the element pass itself: the same operations in
// the same order, so the same bits as the chunked path (default;
// POINTNET_BATCHNORM_ROWS=chunked to compare). y == x and dx == dy
// allowed: a thread's element pass reads an element before writing it, after
// every read of the sums' pass (a block barrier), and a block owns its
// channels.
template <typename Narrow, typename In>
__global__ void batchnorm_train_rows_kernel(float* y, Narrow* y_narrow, float* mean, float* invstd,
                                            float* running_mean, float* running_var, const In* x,
                                            const float* gamma, const float* beta, int M, int C, double eps,
                                            double momentum, bool relu) {
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * cuda::kTile + tx;
  __shared__ double sh1[cuda::kLanes][cuda::kTile];
  __shared__ double sh2[cuda::kLanes][cuda::kTile];
  __shared__ float2 centre_scale[cuda::kTile];
  double s1[1] = {0.0}, s2[1] = {0.0};
  if (c < C) {
    const double shift = cuda::widen(x[c]);
    for (int m = ty; m < M; m += cuda::kLanes)
      cuda::add_shifted_moments(s1[0], s2[0], cuda::widen(x[size_t(m) * C + c]), shift);
  }
  cuda::add_lanes<1>(sh1, sh2, s1, s2);
  if (ty == 0 && c < C)
    centre_scale[tx] = store_train_statistics(mean, invstd, running_mean, running_var, c, sh1[0][tx], sh2[0][tx],
                                              cuda::widen(x[c]), gamma, M, eps, momentum);
  __syncthreads();
  if (c >= C) return;
  const float2 k = centre_scale[tx];
  const float shift = beta[c];
  for (int m = ty; m < M; m += cuda::kLanes) {
    const size_t i = size_t(m) * C + c;
    const float v = normalized(cuda::widen(x[i]), k.x, k.y, shift, relu);
    if (y) y[i] = v;
    cuda::store_narrow(y_narrow, i, v);
  }
}

// The backward's counterpart: the sums, dgamma and dbeta, then (write_dx) dx
// and its copy, and (dx_sum) dx's column sums as batchnorm_dx_sums_kernel
// adds them.
template <typename Narrow, typename In, typename Dy>
__global__ void batchnorm_grad_rows_kernel(float* dx, Narrow* dx_narrow, float* dx_sum, bool write_dx,
                                           float* dgamma, float* dbeta, const Dy* dy, const In* x,
                                           const float* gamma, const float* beta, const float* mean,
                                           const float* invstd, int M, int C, bool relu) {
  const int tx = threadIdx.x, ty = threadIdx.y, c = blockIdx.x * cuda::kTile + tx;
  __shared__ double sh1[cuda::kLanes][cuda::kTile];
  __shared__ double sh2[cuda::kLanes][cuda::kTile];
  __shared__ BackwardCoeffs coeffs[cuda::kTile];
  double s1[1] = {0.0}, s2[1] = {0.0};
  if (c < C) {
    const cuda::GradSumsChannel k = cuda::grad_sums_channel(relu, mean, invstd, gamma, beta, c);
    for (int m = ty; m < M; m += cuda::kLanes) cuda::add_grad_sums(s1[0], s2[0], dy, x, size_t(m) * C + c, k);
  }
  cuda::add_lanes<1>(sh1, sh2, s1, s2);
  if (ty == 0 && c < C) coeffs[tx] = backward_coeffs(dgamma, dbeta, c, sh1[0][tx], sh2[0][tx], gamma, invstd, M);
  __syncthreads();
  if (!write_dx) return;
  double sums[1] = {0.0};
  const double unused[1] = {0.0};
  if (c < C) {
    const DxTerms t{mean, invstd, relu ? gamma : nullptr, relu ? beta : nullptr, nullptr, C};
    const DxChannel k = dx_channel(t, c, coeffs[tx]);
    for (int m = ty; m < M; m += cuda::kLanes) {
      const size_t i = size_t(m) * C + c;
      const float v = batchnorm_dx(cuda::widen(dy[i]), cuda::widen(x[i]), k);
      if (dx) dx[i] = v;
      cuda::store_narrow(dx_narrow, i, v);
      sums[0] += static_cast<double>(v);
    }
  }
  if (!dx_sum) return;
  cuda::add_lanes<1>(sh1, sh2, sums, unused);
  if (ty == 0 && c < C) dx_sum[c] = static_cast<float>(sh1[0][tx]);
}

unsigned channel_blocks(int C) { return static_cast<unsigned>((C + kBlock - 1) / kBlock); }

// The forward passes, with or without the ReLU fused into the apply; x in
// float or in its 2-byte form.
template <typename In>
void batchnorm_train(State& s, float* y, void* y_narrow, float* mean, float* invstd, float* running_mean,
                     float* running_var, const In* x, const float* gamma, const float* beta, int M, int C,
                     double eps, double momentum, bool relu) {
  const bool group = cuda::synchronised(s);
  // PyTorch refuses this too: the unbiased variance of one value is undefined.
  // (With SyncBN the group has two ranks or more, each with a row at least.)
  if (M < 2 && !group)
    fail("batch normalisation in training needs at least 2 values per channel, got ", M,
         " (use a batch size of 2 or more)");
  if (C <= 0) return;
  if (!group && s.batchnorm_rows && M <= cuda::kReduceChunkRows) {
    cuda::with_narrow_type(s, y_narrow, [&](auto* narrow) {
      batchnorm_train_rows_kernel<<<(C + cuda::kTile - 1) / cuda::kTile, dim3(cuda::kTile, cuda::kLanes), 0,
                                    s.stream>>>(y, narrow, mean, invstd, running_mean, running_var, x, gamma, beta, M,
                                                C, eps, momentum, relu);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  float* scale = static_cast<float*>(s.scratch(State::kCoeffs, size_t(C) * sizeof(float)));
  if (!group) {
    // The chunks added up inside the finish (one launch fewer than column_sums).
    const cuda::ColumnPartials p = cuda::column_partials_of(s, cuda::ReduceTerm::kShiftedMoments, x,
                                                            static_cast<const float*>(nullptr), nullptr, nullptr, M, C);
    finish_train_kernel<<<cuda::warp_per_channel_blocks(C), kBlock, 0, s.stream>>>(
        mean, invstd, running_mean, running_var, scale, p.partials, p.chunks, x, gamma, M, C, eps, momentum);
  } else {
    // Two passes over the global batch: the ranks' first rows differ, so no
    // common shift exists for the one-pass moments.
    const double* sums = cuda::group_sums(
        s, State::kGroupSums,
        {{cuda::column_sums_of(s, cuda::ReduceTerm::kSum, x, static_cast<const float*>(nullptr), nullptr, nullptr, M, C),
          C}},
        M);
    const double* squares = cuda::group_sums(
        s, State::kGroupSums2,
        {{cuda::column_sums_of(s, cuda::ReduceTerm::kCentredSquares, x, static_cast<const float*>(nullptr), nullptr,
                               nullptr, M, C, nullptr, nullptr, sums),
          C}},
        M);
    finish_train_group_kernel<<<channel_blocks(C), kBlock, 0, s.stream>>>(
        mean, invstd, running_mean, running_var, scale, sums, squares, gamma, C, eps, momentum);
  }
  CUDA_CHECK_LAUNCH();
  // After the statistics (stream order), so y == x works too.
  normalize(s, y, y_narrow, x, mean, scale, beta, M, C, relu);
}

void batchnorm_eval(State& s, float* y, const float* x, const float* gamma, const float* beta,
                    const float* running_mean, const float* running_var, int M, int C, double eps, bool relu) {
  if (M <= 0 || C <= 0) return;
  float* scale = static_cast<float*>(s.scratch(State::kCoeffs, size_t(C) * sizeof(float)));
  finish_eval_kernel<<<channel_blocks(C), kBlock, 0, s.stream>>>(scale, gamma, running_var, C, eps);
  CUDA_CHECK_LAUNCH();
  normalize(s, y, nullptr, x, running_mean, scale, beta, M, C, relu);
}
}  // namespace

void CudaBackend::batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                          float* running_var, const float* x, const float* gamma,
                                          const float* beta, int M, int C, double eps,
                                          double momentum) {
  batchnorm_train(*s_, y, nullptr, mean, invstd, running_mean, running_var, x, gamma, beta, M, C, eps, momentum,
                  false);
}

void CudaBackend::batchnorm_relu_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                                               float* running_var, const float* x, const float* gamma,
                                               const float* beta, int M, int C, double eps, double momentum,
                                               void* y_narrow, const void* x_narrow) {
  const bool copy = cuda::narrow_copies_on(*s_) && y_narrow;
  PN_CHECK(y || copy);  // "only the copy" where no copy is written
  PN_CHECK(!x_narrow || narrow_linear_outputs());
  cuda::with_input_type(*s_, x, x_narrow, [&](const auto* in) {
    batchnorm_train(*s_, y, copy ? y_narrow : nullptr, mean, invstd, running_mean, running_var, in, gamma, beta, M,
                    C, eps, momentum, true);
  });
}

void CudaBackend::batchnorm_forward_eval(float* y, const float* x, const float* gamma,
                                         const float* beta, const float* running_mean,
                                         const float* running_var, int M, int C, double eps) {
  batchnorm_eval(*s_, y, x, gamma, beta, running_mean, running_var, M, C, eps, false);
}

void CudaBackend::batchnorm_relu_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                              const float* running_mean, const float* running_var, int M, int C,
                                              double eps) {
  batchnorm_eval(*s_, y, x, gamma, beta, running_mean, running_var, M, C, eps, true);
}

namespace {
// The backward, optionally through the fused ReLU (gamma/beta for its mask
// when relu; see batchnorm_dx_kernel). Dy: float, or the mode's 2-byte type
// (Backend::narrow_gradients: then only the copy and its sums are written).
template <typename In, typename Dy>
void batchnorm_grad(State& s, float* dx, void* dx_narrow, float* dx_sum, float* dgamma, float* dbeta,
                    const Dy* dy, const In* x, const float* gamma, const float* beta, const float* mean,
                    const float* invstd, int M, int C, bool relu) {
  if (C <= 0) return;
  const cuda::ReduceTerm term = relu ? cuda::ReduceTerm::kBatchNormReluGrad : cuda::ReduceTerm::kBatchNormGrad;
  const bool group = cuda::synchronised(s);
  PN_CHECK(dx || dx_sum || !dx_narrow);  // a copy alone comes with its sums
  PN_CHECK(!relu || (gamma && beta));    // the ReLU's mask is recomputed from them
  if (!group && s.batchnorm_rows && M >= 1 && M <= cuda::kReduceChunkRows) {
    cuda::with_narrow_type(s, dx_narrow, [&](auto* narrow) {
      batchnorm_grad_rows_kernel<<<(C + cuda::kTile - 1) / cuda::kTile, dim3(cuda::kTile, cuda::kLanes), 0,
                                   s.stream>>>(dx, narrow, dx_sum, dx || dx_narrow || dx_sum, dgamma, dbeta, dy, x,
                                               gamma, beta, mean, invstd, M, C, relu);
    });
    CUDA_CHECK_LAUNCH();
    return;
  }
  // Alone, the finish adds the chunks itself; SyncBN all-reduces the sums first.
  const cuda::ColumnPartials p = cuda::column_partials_of(s, term, dy, x, mean, invstd, M, C, gamma, beta);
  const double* sums = group ? cuda::finish_column_sums(s, p, 2) : p.partials;
  double* coeffs = static_cast<double*>(s.scratch(State::kCoeffs, size_t(3) * C * sizeof(double)));
  finish_backward_kernel<<<cuda::warp_per_channel_blocks(C), kBlock, 0, s.stream>>>(
      dgamma, dbeta, coeffs, sums, group ? 1 : p.chunks, gamma, invstd, M, C, nullptr);
  CUDA_CHECK_LAUNCH();
  if (!dx && !dx_narrow && !dx_sum) return;  // the same on every rank (as the CPU)
  if (group) {
    // dgamma and dbeta stay this rank's (the gradient all-reduce adds them);
    // dx takes the global batch's sums. A rank without rows still takes part.
    const double* global = cuda::group_sums(s, State::kGroupSums, {{sums, 2 * C}}, M);
    finish_backward_kernel<<<cuda::warp_per_channel_blocks(C), kBlock, 0, s.stream>>>(
        nullptr, nullptr, coeffs, global, 1, gamma, invstd, M, C, global + 2 * C);
    CUDA_CHECK_LAUNCH();
  }
  const DxTerms terms{mean, invstd, relu ? gamma : nullptr, relu ? beta : nullptr, coeffs, C};
  if (dx_sum) {
    // The partials' scratch is free again: finish_backward_kernel has read it (stream order).
    if (p.chunks > 0) {
      cuda::with_narrow_type(s, dx_narrow, [&](auto* narrow) {
        using Narrow = std::remove_pointer_t<decltype(narrow)>;
        if (s.dx_pairs && cuda::by_two(C, dx, narrow, dy, x))
          batchnorm_dx_sums_kernel<Narrow, In, Dy, 2><<<cuda::pairs_grid(p), p.block, 0, s.stream>>>(
              dx, narrow, p.partials, dy, x, terms, M, p.chunks);
        else
          batchnorm_dx_sums_kernel<Narrow, In, Dy, 1><<<p.grid, p.block, 0, s.stream>>>(dx, narrow, p.partials, dy, x,
                                                                                       terms, M, p.chunks);
      });
      CUDA_CHECK_LAUNCH();
    }
    cuda::chunks_to_float(s, dx_sum, p);
    return;
  }
  if (M <= 0) return;
  cuda::with_narrow_type(s, dx_narrow, [&](auto* narrow) {
    using Narrow = std::remove_pointer_t<decltype(narrow)>;
    if (by_four(C, dx, dy, x) && by_four(C, narrow)) {
      const size_t quads = size_t(M) * C / 4;
      batchnorm_dx4_kernel<Narrow, In, Dy><<<grid_for(quads), kBlock, 0, s.stream>>>(
          reinterpret_cast<float4*>(dx), narrow, dy, x, terms, quads);
    } else {
      batchnorm_dx_kernel<Narrow, In, Dy><<<grid_for(size_t(M) * C), kBlock, 0, s.stream>>>(dx, narrow, dy, x,
                                                                                             terms, M);
    }
  });
  CUDA_CHECK_LAUNCH();
}
}  // namespace

void CudaBackend::batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy,
                                     const float* x, const float* gamma, const float* mean,
                                     const float* invstd, int M, int C) {
  batchnorm_grad(*s_, dx, nullptr, nullptr, dgamma, dbeta, dy, x, gamma, nullptr, mean, invstd, M, C, false);
}

// The ReLU's mask comes from x and the saved statistics (the forward's own
// formula and bits), so y is not read and the relu_backward pass is gone.
void CudaBackend::batchnorm_relu_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                                          const float* /*y*/, const float* gamma, const float* beta,
                                          const float* mean, const float* invstd, int M, int C, void* dx_narrow,
                                          float* dx_sum, const void* x_narrow, const void* dy_narrow) {
  const bool copy = cuda::narrow_copies_on(*s_) && dx_narrow;
  PN_CHECK(dx || copy || !dx_narrow);  // "only the copy" where no copy is written
  PN_CHECK(!x_narrow || narrow_linear_outputs());
  PN_CHECK(!dy_narrow || (narrow_gradients() && copy && dx_sum && !dx));  // backend.h's contract
  cuda::with_input_type(*s_, x, x_narrow, [&](const auto* in) {
    cuda::with_input_type(*s_, dy, dy_narrow, [&](const auto* g) {
      batchnorm_grad(*s_, dx, copy ? dx_narrow : nullptr, dx_sum, dgamma, dbeta, g, in, gamma, beta, mean, invstd,
                     M, C, true);
    });
  });
}

}  // namespace pointnet
