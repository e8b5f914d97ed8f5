// Adam exactly as torch.optim.Adam (L2 weight decay, no amsgrad), on the
// gradient g = grad * grad_scale (the loss scaler's 1/S, or 1) + wd * p:
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
#include <cmath>

#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

template <typename T>
void adam_step(T* param, const T* grad, T* m, T* v, size_t count, double lr, double beta1,
               double beta2, double eps, int64_t step, double grad_scale, double weight_decay) {
  const double bias1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(beta2, static_cast<double>(step)));
  const T step_size = static_cast<T>(lr / bias1);
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2);
  const T inv_bias2_sqrt = static_cast<T>(1.0 / bias2_sqrt), e = static_cast<T>(eps);
  const T scale = static_cast<T>(grad_scale);  // x * 1 is exact: unscaled runs keep their bits
  const T wd = static_cast<T>(weight_decay);
  const bool decay = weight_decay != 0.0;      // without it, not even a + 0: the bits stay
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < count; ++i) {
    const T g = decay ? grad[i] * scale + wd * param[i] : grad[i] * scale;
    m[i] = b1 * m[i] + (T(1) - b1) * g;
    v[i] = b2 * v[i] + (T(1) - b2) * g * g;
    param[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_bias2_sqrt + e);
  }
}

#define PN_ADAM(T) \
  template void adam_step<T>(T*, const T*, T*, T*, size_t, double, double, double, double, int64_t, double, double);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_ADAM)

}  // namespace pointnet::cpu
