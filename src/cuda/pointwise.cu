// Element-wise kernels: fill, accumulation, masks (dropout), ReLU. Grid-stride
// loops; each element is read before it is written, so y == x (in place) is
// fine for all of them.
#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
#define PN_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)

__global__ void fill_kernel(float* x, float value, size_t n) {
  PN_GRID_STRIDE(i, n) x[i] = value;
}
__global__ void add_kernel(float* y, const float* x, size_t n) {
  PN_GRID_STRIDE(i, n) y[i] += x[i];
}
__global__ void multiply_kernel(float* y, const float* x, const float* mask, size_t n) {
  PN_GRID_STRIDE(i, n) y[i] = x[i] * mask[i];
}
__global__ void relu_forward_kernel(float* y, const float* x, size_t n) {
  PN_GRID_STRIDE(i, n) {
    const float v = x[i];
    y[i] = v > 0.0f ? v : 0.0f;  // as the CPU: NaN -> 0
  }
}
__global__ void relu_backward_kernel(float* dx, const float* dy, const float* y, size_t n) {
  PN_GRID_STRIDE(i, n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}
#undef PN_GRID_STRIDE
}  // namespace

using cuda::grid_for;
using cuda::kBlock;

void CudaBackend::fill(float* x, float value, size_t count) {
  if (count == 0) return;
  fill_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(x, value, count);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::add_accumulate(float* y, const float* x, size_t count) {
  if (count == 0) return;
  add_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(y, x, count);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::multiply(float* y, const float* x, const float* mask, size_t count) {
  if (count == 0) return;
  multiply_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(y, x, mask, count);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::relu_forward(float* y, const float* x, size_t count) {
  if (count == 0) return;
  relu_forward_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(y, x, count);
  CUDA_CHECK_LAUNCH();
}

void CudaBackend::relu_backward(float* dx, const float* dy, const float* y, size_t count) {
  if (count == 0) return;
  relu_backward_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(dx, dy, y, count);
  CUDA_CHECK_LAUNCH();
}

}  // namespace pointnet
