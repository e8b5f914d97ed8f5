// Max over points with argmax (and its scatter backward), and the segmenter's
// concatenation of the global feature onto every point (and its backward).
//
// Max: one block of 32 channels x 8 point lanes per (cloud, channel tile). Each
// lane walks its points in increasing order with a strict '>', so it keeps its
// first maximum; lanes are merged by a fixed tree that prefers the larger value
// and, on a tie, the smaller point index: the first maximum overall, as the CPU
// (and torch.max on CPU). The concat gradient of the global part is a sum over
// points, done the same way in double (deterministic).
#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
using cuda::grid_for;
using cuda::kBlock;

constexpr int kTile = 32;
constexpr int kLanes = 8;

__global__ void max_over_points_kernel(float* y, int32_t* argmax, const float* x, int N, int C) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int c = blockIdx.x * kTile + tx;
  const int b = blockIdx.y;
  __shared__ float best_value[kLanes][kTile];
  __shared__ int best_index[kLanes][kTile];
  float best = 0.0f;
  int index = -1;  // -1: this lane saw no point
  if (c < C) {
    const float* xb = x + size_t(b) * N * C + c;
    for (int n = ty; n < N; n += kLanes) {
      const float v = xb[size_t(n) * C];
      if (index < 0 || v > best) {
        best = v;
        index = n;
      }
    }
  }
  best_value[ty][tx] = best;
  best_index[ty][tx] = index;
  __syncthreads();
  for (int half = kLanes / 2; half > 0; half /= 2) {
    if (ty < half) {
      const float v = best_value[ty + half][tx];
      const int i = best_index[ty + half][tx];
      const int mine = best_index[ty][tx];
      if (i >= 0 && (mine < 0 || v > best_value[ty][tx] || (v == best_value[ty][tx] && i < mine))) {
        best_value[ty][tx] = v;
        best_index[ty][tx] = i;
      }
    }
    __syncthreads();
  }
  if (ty == 0 && c < C) {
    y[size_t(b) * C + c] = best_value[0][tx];
    argmax[size_t(b) * C + c] = best_index[0][tx];
  }
}

// dx(B, N, C) = dy(b, c) where n is the argmax, 0 elsewhere: one write per element.
__global__ void max_backward_kernel(float* dx, const float* dy, const int32_t* argmax, size_t B,
                                    int N, int C) {
  const size_t total = B * N * C;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(i % C);
    const size_t row = i / C;
    const int n = static_cast<int>(row % N);
    const size_t bc = (row / N) * C + c;
    dx[i] = argmax[bc] == n ? dy[bc] : 0.0f;
  }
}

__global__ void concat_forward_kernel(float* y, const float* global, const float* pointfeat,
                                      size_t rows, int N, int G, int P) {
  const int width = G + P;
  const size_t total = rows * width;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / width;
    const int j = static_cast<int>(i % width);
    y[i] = j < G ? global[(r / N) * G + j] : pointfeat[r * P + (j - G)];
  }
}

__global__ void concat_pointfeat_backward_kernel(float* dpointfeat, const float* dy, size_t rows,
                                                 int G, int P) {
  const int width = G + P;
  const size_t total = rows * P;
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < total; i += size_t(gridDim.x) * blockDim.x) {
    const size_t r = i / P;
    const int p = static_cast<int>(i % P);
    dpointfeat[i] = dy[r * width + G + p];
  }
}

// dglobal(b, g) = sum over n of dy(b, n, g), in double, fixed order.
__global__ void concat_global_backward_kernel(float* dglobal, const float* dy, int N, int G, int P) {
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int g = blockIdx.x * kTile + tx;
  const int b = blockIdx.y;
  const int width = G + P;
  __shared__ double sums[kLanes][kTile];
  double s = 0.0;
  if (g < G) {
    const float* col = dy + size_t(b) * N * width + g;
    for (int n = ty; n < N; n += kLanes) s += static_cast<double>(col[size_t(n) * width]);
  }
  sums[ty][tx] = s;
  __syncthreads();
  for (int half = kLanes / 2; half > 0; half /= 2) {
    if (ty < half) sums[ty][tx] += sums[ty + half][tx];
    __syncthreads();
  }
  if (ty == 0 && g < G) dglobal[size_t(b) * G + g] = static_cast<float>(sums[0][tx]);
}
}  // namespace

void CudaBackend::max_over_points_forward(float* y, int32_t* argmax, const float* x, int B, int N,
                                          int C) {
  PN_CHECK(B >= 0 && N >= 1 && C >= 0);
  PN_CHECK(B <= 65535);
  if (B == 0 || C == 0) return;
  const dim3 block(kTile, kLanes), grid((C + kTile - 1) / kTile, B);
  max_over_points_kernel<<<grid, block, 0, s_->stream>>>(y, argmax, x, N, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::max_over_points_backward(float* dx, const float* dy, const int32_t* argmax, int B,
                                           int N, int C) {
  const size_t total = size_t(B) * N * C;
  if (total == 0) return;
  max_backward_kernel<<<grid_for(total), kBlock, 0, s_->stream>>>(dx, dy, argmax, B, N, C);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::concat_global_forward(float* y, const float* global, const float* pointfeat, int B,
                                        int N, int G, int P) {
  const size_t rows = size_t(B) * N;
  if (rows == 0 || G + P == 0) return;
  concat_forward_kernel<<<grid_for(rows * (G + P)), kBlock, 0, s_->stream>>>(y, global, pointfeat,
                                                                             rows, N, G, P);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::concat_global_backward(float* dglobal, float* dpointfeat, const float* dy, int B,
                                         int N, int G, int P) {
  PN_CHECK(B <= 65535);
  const size_t rows = size_t(B) * N;
  if (dglobal && B > 0 && G > 0) {
    const dim3 block(kTile, kLanes), grid((G + kTile - 1) / kTile, B);
    concat_global_backward_kernel<<<grid, block, 0, s_->stream>>>(dglobal, dy, N, G, P);
    CUDA_CHECK_LAUNCH();
  }
  if (dpointfeat && rows > 0 && P > 0) {
    concat_pointfeat_backward_kernel<<<grid_for(rows * P), kBlock, 0, s_->stream>>>(dpointfeat, dy,
                                                                                    rows, G, P);
    CUDA_CHECK_LAUNCH();
  }
}

}  // namespace pointnet
