// The engine's per-cloud kernels (engine_kernels.h): merging the tiles'
// maxima, fp32 layers over a few clouds, log-softmax, and folding the feature
// transform into the next layer's weights (quantised again for I8).
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <mutex>

#include "cuda/check.h"
#include "cuda/engine_fragment.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_mma.cuh"

namespace pointnet::cuda_engine {
namespace {

// One block per cloud: the merge of the tiles' maxima is a fixed-order loop
// (no atomics), so results do not depend on the schedule.
__global__ void merge_max_kernel(const float* partial, int tiles, const float* bias, bool relu, float* out) {
  const int b = blockIdx.x;
  const float* p = partial + static_cast<size_t>(b) * tiles * 1024;
  for (int c = threadIdx.x; c < 1024; c += blockDim.x) {
    float m = p[c];
    for (int t = 1; t < tiles; ++t) m = fmaxf(m, p[static_cast<size_t>(t) * 1024 + c]);
    const float v = m + bias[c];
    out[static_cast<size_t>(b) * 1024 + c] = relu ? fmaxf(v, 0.f) : v;
  }
}

// The rows of x into shared memory: a copy, or (merge.partial set) the merge
// of a trunk's tile maxima, as merge_max_kernel computes it.
__device__ void load_rows(float* xs, const float* x, int rows, int in, const SmallMerge& merge) {
  for (int i = threadIdx.x; i < rows * in; i += blockDim.x) {
    if (!merge.partial) {
      xs[i] = x[i];
      continue;
    }
    const int r = i / 1024, c = i % 1024;
    const float* p = merge.partial + static_cast<size_t>(r) * merge.tiles * 1024 + c;
    float m = p[0];
    for (int t = 1; t < merge.tiles; ++t) m = fmaxf(m, p[static_cast<size_t>(t) * 1024]);
    const float v = m + merge.bias[c];
    xs[i] = merge.relu ? fmaxf(v, 0.f) : v;
  }
}

// Output o of all rows: s[r] = x[r] . w[o] over the warp (w[o] read once,
// 16 bytes per lane at a time), reduced into lane 0.
__device__ void dot_rows(float (&s)[kSmallRows], const float* xs, int rows, int in, const float* wr) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int r = 0; r < kSmallRows; ++r) s[r] = 0.f;
  if (in % 128 == 0) {
#pragma unroll 4
    for (int k = lane * 4; k < in; k += 128) {
      const float4 w4 = __ldg(reinterpret_cast<const float4*>(wr + k));
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r)
        if (r < rows) {
          const float4 x4 = *reinterpret_cast<const float4*>(xs + r * in + k);
          s[r] = fmaf(x4.x, w4.x, fmaf(x4.y, w4.y, fmaf(x4.z, w4.z, fmaf(x4.w, w4.w, s[r]))));
        }
    }
  } else {
    for (int k = lane; k < in; k += 32) {
      const float wk = __ldg(&wr[k]);
#pragma unroll
      for (int r = 0; r < kSmallRows; ++r)
        if (r < rows) s[r] = fmaf(xs[r * in + k], wk, s[r]);
    }
  }
#pragma unroll
  for (int r = 0; r < kSmallRows; ++r)
    for (int d = 16; d > 0; d >>= 1) s[r] += __shfl_xor_sync(0xffffffffu, s[r], d);
}

// One warp per output channel: its weight row is read once (from L2) for all
// rows of x (in shared memory). Block row blockIdx.y: rows 8 y to 8 y + 7.
__global__ void small_linear_kernel(const float* x, int rows, int in, const float* w, const float* bias, int out,
                                    bool relu, float* y, SmallMerge merge) {
  extern __shared__ __align__(16) float xs[];  // (rows, in)
  const int r0 = blockIdx.y * kSmallRows;  // 0 with merge (one block row)
  rows = min(kSmallRows, rows - r0);
  if (x) x += static_cast<size_t>(r0) * in;
  y += static_cast<size_t>(r0) * out;
  load_rows(xs, x, rows, in, merge);
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int o = blockIdx.x * (blockDim.x >> 5) + warp;
  if (o >= out) return;
  float s[kSmallRows];
  dot_rows(s, xs, rows, in, w + static_cast<size_t>(o) * in);
#pragma unroll
  for (int r = 0; r < kSmallRows; ++r)
    if (r < rows && lane == 0) {
      const float v = s[r] + bias[o];
      y[static_cast<size_t>(r) * out + o] = relu ? fmaxf(v, 0.f) : v;
    }
}

// The logits layer and the log-softmax, rows 8 b to 8 b + 7 in block b (few classes).
__global__ void small_logits_kernel(const float* x, int rows, int in, const float* w, const float* bias, int out,
                                    float* y) {
  extern __shared__ __align__(16) float xs[];  // (rows, in), then logits (rows, out)
  const int r0 = blockIdx.x * kSmallRows;
  rows = min(kSmallRows, rows - r0);
  x += static_cast<size_t>(r0) * in;
  y += static_cast<size_t>(r0) * out;
  float* logits = xs + rows * in;
  load_rows(xs, x, rows, in, SmallMerge{});
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  for (int o = warp; o < out; o += warps) {
    float s[kSmallRows];
    dot_rows(s, xs, rows, in, w + static_cast<size_t>(o) * in);
#pragma unroll
    for (int r = 0; r < kSmallRows; ++r)
      if (r < rows && lane == 0) logits[r * out + o] = s[r] + bias[o];
  }
  __syncthreads();
  for (int r = warp; r < rows; r += warps) warp_log_softmax(logits + r * out, y + static_cast<size_t>(r) * out, out);
}

// One warp per row, as engine_cpu::log_softmax_rows.
__global__ void log_softmax_kernel(float* x, int rows, int K) {
  const int r = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= rows) return;
  float* v = x + static_cast<size_t>(r) * K;
  warp_log_softmax(v, v, K);
}

// Block (cloud b, 8 output channels); warp = channel o, lanes = inputs i and
// i + 32: w'[o][i] = sum_j w[o][j] t[i][j] (engine_cpu::fold_transform), then
// stored in `math`'s weight layout; I8 quantises the row first, as
// cpu::Int8Weights::quantize (scale = max |w'| / 127, q = round(w' / scale)).
__global__ void fold_transform_kernel(Math math, const float* w, int out, const float* transforms, void* dst,
                                      float* dst_scale) {
  __shared__ float t[64][65];  // padded: lanes read down a column
  __shared__ float wr[8][64];
  const int b = blockIdx.x, o0 = blockIdx.y * 8;
  const float* tb = transforms + static_cast<size_t>(b) * 64 * 64;
  for (int i = threadIdx.x; i < 64 * 64; i += blockDim.x) t[i / 64][i % 64] = tb[i];
  for (int i = threadIdx.x; i < 8 * 64; i += blockDim.x) wr[i / 64][i % 64] = w[static_cast<size_t>(o0 + i / 64) * 64 + i % 64];
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, o = o0 + warp;
  float v[2];
  for (int h = 0; h < 2; ++h) {
    const int i = lane + 32 * h;
    float s = 0.f;
    for (int j = 0; j < 64; ++j) s = fmaf(wr[warp][j], t[i][j], s);
    v[h] = s;
  }
  const int eb = elem_bytes(math);
  char* d = static_cast<char*>(dst) + static_cast<size_t>(b) * out * 64 * eb;
  if (math == Math::F32) {  // the transpose (in, out)
    for (int h = 0; h < 2; ++h) reinterpret_cast<float*>(d)[(lane + 32 * h) * out + o] = v[h];
    return;
  }
  float scale = 1.f;
  if (math == Math::I8) {
    float amax = fmaxf(fabsf(v[0]), fabsf(v[1]));
    for (int s = 16; s > 0; s >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, s));
    scale = amax >= 127.f * FLT_MIN ? __fdiv_rn(amax, 127.f) : 1.f;  // as Int8Weights::quantize
    if (lane == 0) dst_scale[static_cast<size_t>(b) * out + o] = scale;
  }
  for (int h = 0; h < 2; ++h) {
    char* p = d + fragment_byte(o, lane + 32 * h, 64, eb);
    switch (math) {
      case Math::F16: F16Op::store1(p, v[h], 1.f); break;
      case Math::BF16: BF16Op::store1(p, v[h], 1.f); break;
      case Math::TF32: TF32Op::store1(p, v[h], 1.f); break;
      case Math::F32X3: F32x3Op::store1(p, v[h], 1.f); break;
      default: {
        const float q = fminf(fmaxf(rintf(__fdiv_rn(v[h], scale)), -127.f), 127.f);
        *reinterpret_cast<int8_t*>(p) = static_cast<int8_t>(q);
      }
    }
  }
}

}  // namespace

void launch_merge_max(const float* partial, int B, int tiles, const float* bias, bool relu, float* out,
                      cudaStream_t stream) {
  merge_max_kernel<<<B, 256, 0, stream>>>(partial, tiles, bias, relu, out);
  CUDA_CHECK_LAUNCH();
}

void launch_small_linear(const float* x, int rows, int in, const float* w, const float* bias, int out, bool relu,
                         float* y, cudaStream_t stream, const SmallMerge& merge) {
  const int most = merge.partial ? kSmallRows : kMaxRowsLinear;
  if (rows < 1 || rows > most) fail("launch_small_linear: ", rows, " rows, expected 1..", most);
  if (merge.partial && in != 1024) fail("launch_small_linear: a merged input has 1024 channels, not ", in);
  const size_t smem = static_cast<size_t>(std::min(rows, kSmallRows)) * in * sizeof(float);
  const dim3 grid((out + 7) / 8, (rows + kSmallRows - 1) / kSmallRows);
  small_linear_kernel<<<grid, 256, smem, stream>>>(x, rows, in, w, bias, out, relu, y, merge);
  CUDA_CHECK_LAUNCH();
}

// A block's rows of x and their logits in 48 KiB of shared memory.
static bool logits_block_fits(int block_rows, int in, int out) {
  return static_cast<size_t>(block_rows) * (in + out) * sizeof(float) <= 48 * 1024;
}

bool small_logits_fit(int rows, int in, int out) {
  return rows >= 1 && rows <= kSmallRows && logits_block_fits(rows, in, out);
}

bool logits_by_rows_fit(int in, int out) { return logits_block_fits(kSmallRows, in, out); }

void launch_small_logits(const float* x, int rows, int in, const float* w, const float* bias, int out, float* y,
                         cudaStream_t stream) {
  if (rows < 1) fail("launch_small_logits: ", rows, " rows, expected at least 1");
  if (!logits_block_fits(std::min(rows, kSmallRows), in, out))
    fail("launch_small_logits: ", rows, " x ", in, " -> ", out, " is too large");
  const size_t smem = static_cast<size_t>(std::min(rows, kSmallRows)) * (in + out) * sizeof(float);
  small_logits_kernel<<<(rows + kSmallRows - 1) / kSmallRows, 256, smem, stream>>>(x, rows, in, w, bias, out, y);
  CUDA_CHECK_LAUNCH();
}

void launch_log_softmax(float* x, int rows, int K, cudaStream_t stream) {
  log_softmax_kernel<<<(rows + 7) / 8, 256, 0, stream>>>(x, rows, K);
  CUDA_CHECK_LAUNCH();
}

void launch_fold_transform(Math math, const float* w, int out, const float* transforms, int B, void* dst,
                           float* dst_scale, cudaStream_t stream) {
  fold_transform_kernel<<<dim3(B, out / 8), 256, 0, stream>>>(math, w, out, transforms, dst, dst_scale);
  CUDA_CHECK_LAUNCH();
}

void prepare_engine_kernels() {
  static std::once_flag once;
  std::call_once(once, [] {
    prepare_trunk_kernels();
    prepare_seg_kernels();
  });
}

}  // namespace pointnet::cuda_engine
