// Batch normalisation over the rows of (M, C): PyTorch's BatchNorm1d, both for
// conv features (rows = points of all clouds) and fc features (rows = clouds).
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/errors.h"
#include "cpu/column_sums.h"
#include "cpu/group_sums.h"
#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

namespace {
// y = (x - centre) * scale + shift per channel. Subtracting the mean first
// (as PyTorch does) rather than folding it into the shift keeps precision when
// a channel's mean is large next to its spread, which happens in the
// segmenter's 1088->512 layer (the global feature is constant over a cloud).
template <typename T>
void apply_scale_shift(T* y, const T* x, const std::vector<T>& centre, const std::vector<T>& scale,
                       const std::vector<T>& shift, int M, int C) {
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m) {
    const T* xr = x + static_cast<size_t>(m) * C;
    T* yr = y + static_cast<size_t>(m) * C;
    for (int c = 0; c < C; ++c) yr[c] = (xr[c] - centre[c]) * scale[c] + shift[c];
  }
}
}  // namespace

template <typename T>
void batchnorm_forward_train(T* y, T* mean, T* invstd, T* running_mean, T* running_var, const T* x,
                             const T* gamma, const T* beta, int M, int C, double eps,
                             double momentum, Communicator* group) {
  auto at = [&](int m, int c) { return static_cast<double>(x[static_cast<size_t>(m) * C + c]); };
  // Two passes (mean, then squared deviations) for accuracy in float. With a
  // group, each pass's sums (and the row count) are summed over the ranks:
  // the statistics of the global batch.
  std::vector<double> mu(C), var(C);
  column_sums(mu.data(), M, C, at);
  const double rows = sum_over_group(group, {&mu}, M);
  // PyTorch refuses this too: the unbiased variance of one value is undefined.
  if (rows < 2) fail("batch normalisation in training needs at least 2 values per channel, got ", rows,
                     " (use a batch size of 2 or more)");
  for (int c = 0; c < C; ++c) mu[c] /= rows;
  column_sums(var.data(), M, C, [&](int m, int c) {
    double d = at(m, c) - mu[c];
    return d * d;
  });
  sum_over_group(group, var);
  std::vector<T> centre(C), scale(C), shift(beta, beta + C);
  for (int c = 0; c < C; ++c) {
    const double biased = var[c] / rows;
    const double is = 1.0 / std::sqrt(biased + eps);
    mean[c] = static_cast<T>(mu[c]);
    invstd[c] = static_cast<T>(is);
    centre[c] = static_cast<T>(mu[c]);
    scale[c] = static_cast<T>(gamma[c] * is);
    const double unbiased = var[c] / (rows - 1);
    running_mean[c] = static_cast<T>((1.0 - momentum) * running_mean[c] + momentum * mu[c]);
    running_var[c] = static_cast<T>((1.0 - momentum) * running_var[c] + momentum * unbiased);
  }
  apply_scale_shift(y, x, centre, scale, shift, M, C);
}

template <typename T>
void batchnorm_forward_eval(T* y, const T* x, const T* gamma, const T* beta, const T* running_mean,
                            const T* running_var, int M, int C, double eps) {
  std::vector<T> centre(running_mean, running_mean + C), scale(C), shift(beta, beta + C);
  for (int c = 0; c < C; ++c) scale[c] = static_cast<T>(gamma[c] / std::sqrt(static_cast<double>(running_var[c]) + eps));
  apply_scale_shift(y, x, centre, scale, shift, M, C);
}

template <typename T>
void batchnorm_backward(T* dx, T* dgamma, T* dbeta, const T* dy, const T* x, const T* gamma,
                        const T* mean, const T* invstd, int M, int C, Communicator* group) {
  auto xhat = [&](int m, int c) {
    return (static_cast<double>(x[static_cast<size_t>(m) * C + c]) - mean[c]) * invstd[c];
  };
  auto grad = [&](int m, int c) { return static_cast<double>(dy[static_cast<size_t>(m) * C + c]); };
  std::vector<double> sum_dy(C), sum_dy_xhat(C);
  column_sums(sum_dy.data(), M, C, grad);
  column_sums(sum_dy_xhat.data(), M, C, [&](int m, int c) { return grad(m, c) * xhat(m, c); });
  for (int c = 0; c < C; ++c) {
    if (dgamma) dgamma[c] = static_cast<T>(sum_dy_xhat[c]);
    if (dbeta) dbeta[c] = static_cast<T>(sum_dy[c]);
  }
  if (!dx) return;
  // dx = gamma * invstd / M * (M * dy - sum(dy) - xhat * sum(dy * xhat))
  // Per element in double: dy - mean(dy) - xhat * mean(dy xhat) cancels heavily
  // (its column sums are exactly zero), and float loses digits there. With a
  // group, the sums and M are the global batch's (the parameter gradients
  // above stay this rank's: the gradient all-reduce adds them).
  const double rows = sum_over_group(group, {&sum_dy, &sum_dy_xhat}, M);
  std::vector<double> k(C), mean_dy(C), mean_dy_xhat(C);
  for (int c = 0; c < C; ++c) {
    k[c] = gamma[c] * static_cast<double>(invstd[c]);
    mean_dy[c] = sum_dy[c] / rows;
    mean_dy_xhat[c] = sum_dy_xhat[c] / rows;
  }
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m) {
    const size_t row = static_cast<size_t>(m) * C;
    for (int c = 0; c < C; ++c) {
      const double xh = (static_cast<double>(x[row + c]) - mean[c]) * invstd[c];
      dx[row + c] = static_cast<T>(k[c] * (dy[row + c] - mean_dy[c] - xh * mean_dy_xhat[c]));
    }
  }
}

#define PN_BATCHNORM(T)                                                                            \
  template void batchnorm_forward_train<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, int,  \
                                           int, double, double, Communicator*);                    \
  template void batchnorm_forward_eval<T>(T*, const T*, const T*, const T*, const T*, const T*,    \
                                          int, int, double);                               \
  template void batchnorm_backward<T>(T*, T*, T*, const T*, const T*, const T*, const T*,          \
                                      const T*, int, int, Communicator*);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_BATCHNORM)

}  // namespace pointnet::cpu
