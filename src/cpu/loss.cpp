// log-softmax, negative log-likelihood and their joint gradient.
#include <cmath>

#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

template <typename T>
void log_softmax_forward(T* y, const T* x, int M, int K) {
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m) {
    const T* xr = x + static_cast<size_t>(m) * K;
    T* yr = y + static_cast<size_t>(m) * K;
    double top = xr[0];
    for (int k = 1; k < K; ++k) top = xr[k] > top ? xr[k] : top;
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += std::exp(xr[k] - top);
    const double log_sum = top + std::log(sum);
    for (int k = 0; k < K; ++k) yr[k] = static_cast<T>(xr[k] - log_sum);
  }
}

template <typename T>
void argmax_rows(int32_t* argmax, const T* x, int M, int K) {
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m) {
    const T* xr = x + static_cast<size_t>(m) * K;
    int best = 0;
    for (int k = 1; k < K; ++k)
      if (xr[k] > xr[best]) best = k;
    argmax[m] = best;
  }
}

template <typename T>
double nll_loss(int64_t* correct, const T* logp, const int32_t* target, int M, int K) {
  double sum = 0.0;
  int64_t hits = 0;
  for (int m = 0; m < M; ++m) {
    const T* row = logp + static_cast<size_t>(m) * K;
    sum -= row[target[m]];
    int best = 0;
    for (int k = 1; k < K; ++k)
      if (row[k] > row[best]) best = k;
    hits += best == target[m];
  }
  if (correct) *correct = hits;
  return sum / M;
}

template <typename T>
void log_softmax_nll_backward(T* dx, const T* logp, const int32_t* target, int M, int K, T scale) {
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m) {
    const size_t row = static_cast<size_t>(m) * K;
    for (int k = 0; k < K; ++k) dx[row + k] = scale * std::exp(logp[row + k]);
    dx[row + target[m]] -= scale;
  }
}

#define PN_LOSS(T)                                                                       \
  template void log_softmax_forward<T>(T*, const T*, int, int);                          \
  template void argmax_rows<T>(int32_t*, const T*, int, int);                            \
  template double nll_loss<T>(int64_t*, const T*, const int32_t*, int, int);             \
  template void log_softmax_nll_backward<T>(T*, const T*, const int32_t*, int, int, T);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_LOSS)

}  // namespace pointnet::cpu
