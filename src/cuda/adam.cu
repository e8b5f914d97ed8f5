// Adam exactly as torch.optim.Adam (L2 weight decay, no amsgrad), one fused
// pass over a flat parameter array, with the same float constants as the CPU
// (bias corrections computed on the host in double, then rounded), on the
// gradient g = grad * grad_scale + wd * p (the loss scaler's 1/S unscales
// here, so fp16 training needs no extra pass over the gradients):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#include <cmath>

#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
__global__ void adam_kernel(float* param, const float* grad, float* m, float* v, size_t n,
                            float step_size, float b1, float b2, float inv_bias2_sqrt, float eps,
                            float grad_scale, float weight_decay) {
  for (size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += size_t(gridDim.x) * blockDim.x) {
    // * 1 is exact, and no decay adds nothing: such runs keep their bits. The
    // CPU's a * s + wd * p: two roundings, no FMA, so both sides agree.
    const float g = weight_decay != 0.0f ? __fadd_rn(__fmul_rn(grad[i], grad_scale), __fmul_rn(weight_decay, param[i]))
                                         : grad[i] * grad_scale;
    const float mi = b1 * m[i] + (1.0f - b1) * g;
    const float vi = b2 * v[i] + (1.0f - b2) * g * g;
    m[i] = mi;
    v[i] = vi;
    param[i] -= step_size * mi / (sqrtf(vi) * inv_bias2_sqrt + eps);
  }
}
}  // namespace

void CudaBackend::adam_step(float* param, const float* grad, float* m, float* v, size_t count,
                            double lr, double beta1, double beta2, double eps, int64_t step,
                            double grad_scale, double weight_decay) {
  PN_CHECK(step >= 1);
  if (count == 0) return;
  s_->forget_weights_written(param, count * sizeof(float));  // the weights' copy (narrow_weights) is stale
  const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  adam_kernel<<<cuda::grid_for(count), cuda::kBlock, 0, s_->stream>>>(
      param, grad, m, v, count, static_cast<float>(lr / bias1), static_cast<float>(beta1),
      static_cast<float>(beta2), static_cast<float>(1.0 / bias2_sqrt), static_cast<float>(eps),
      static_cast<float>(grad_scale), static_cast<float>(weight_decay));
  CUDA_CHECK_LAUNCH();
}

}  // namespace pointnet
