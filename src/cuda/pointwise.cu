// Element-wise kernels: fill, accumulation, masks (dropout), ReLU, and the
// non-finite check. Grid-stride loops; each element is read before it is
// written, so y == x (in place) is fine for all of them.
#include <cstring>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
#define PN_GRID_STRIDE(i, n) \
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < (n); i += size_t(gridDim.x) * blockDim.x)

__global__ void fill_kernel(float* x, float value, size_t n) {
  PN_GRID_STRIDE(i, n) x[i] = value;
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
// flag = 1 if any element is inf or NaN (exponent bits all ones: a test that
// no fast-math flag can fold away). One OR per block; every writer writes the
// same 1, so the result needs no atomics and does not depend on the schedule.
__global__ void nonfinite_kernel(int* flag, const float* x, size_t n) {
  int bad = 0;
  PN_GRID_STRIDE(i, n) bad |= (__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u;
  if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}
#undef PN_GRID_STRIDE
}  // namespace

namespace cuda {
const int* nonfinite_flag(State& s, const float* x, size_t count) {
  int* flag = static_cast<int*>(s.scratch(State::kFlag, sizeof(int)));
  CUDA_CHECK(cudaMemsetAsync(flag, 0, sizeof(int), s.stream));
  if (count == 0) return flag;
  nonfinite_kernel<<<grid_for(count), kBlock, 0, s.stream>>>(flag, x, count);
  CUDA_CHECK_LAUNCH();
  return flag;
}
}  // namespace cuda

using cuda::grid_for;
using cuda::kBlock;

void CudaBackend::fill(float* x, float value, size_t count) {
  if (count == 0) return;
  s_->forget_weights_written(x, count * sizeof(float));
  fill_kernel<<<grid_for(count), kBlock, 0, s_->stream>>>(x, value, count);
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

void CudaBackend::queue_all_finite(const float* x, size_t count) {
  char* host = s_->host_results_for(State::kHostNorms);
  const int* flag = cuda::nonfinite_flag(*s_, x, count);
  CUDA_CHECK(cudaMemcpyAsync(host + State::kHostFlag, flag, sizeof(int), cudaMemcpyDeviceToHost, s_->stream));
}

bool CudaBackend::all_finite_result() {
  CUDA_CHECK(cudaStreamSynchronize(s_->stream));
  int flag;
  std::memcpy(&flag, s_->host_results + State::kHostFlag, sizeof(flag));
  return flag == 0;
}

bool CudaBackend::all_finite(const float* x, size_t count) {
  queue_all_finite(x, count);
  return all_finite_result();
}

}  // namespace pointnet
