// The T-Net transforms: applying a per-cloud K x K matrix to every point, the
// "+ identity" on the T-Net output, and the orthogonality regulariser.
#include <cmath>
#include <vector>

#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

template <typename T>
void transform_forward(T* y, const T* x, const T* t, int B, int N, int K) {
  for (int b = 0; b < B; ++b) {
    const size_t off = static_cast<size_t>(b) * N * K;
    gemm<T>(false, false, N, K, K, T(1), x + off, K, t + static_cast<size_t>(b) * K * K, K, T(0),
            y + off, K);
  }
}

template <typename T>
void transform_backward(T* dx, T* dt, const T* dy, const T* x, const T* t, int B, int N, int K) {
  for (int b = 0; b < B; ++b) {
    const size_t off = static_cast<size_t>(b) * N * K;
    const size_t toff = static_cast<size_t>(b) * K * K;
    // dx = dy t^T ; dt = x^T dy
    if (dx) gemm<T>(false, true, N, K, K, T(1), dy + off, K, t + toff, K, T(0), dx + off, K);
    if (dt) gemm<T>(true, false, K, K, N, T(1), x + off, K, dy + off, K, T(0), dt + toff, K);
  }
}

template <typename T>
void add_identity(T* t, int B, int K) {
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < K; ++i) t[static_cast<size_t>(b) * K * K + static_cast<size_t>(i) * K + i] += T(1);
}

namespace {
// a(K, K) = t t^T - I for one cloud, in double.
template <typename T>
std::vector<double> gram_minus_identity(const T* t, int K) {
  std::vector<double> a(static_cast<size_t>(K) * K);
  for (int i = 0; i < K; ++i)
    for (int j = 0; j < K; ++j) {
      double sum = 0.0;
      for (int k = 0; k < K; ++k)
        sum += static_cast<double>(t[static_cast<size_t>(i) * K + k]) * t[static_cast<size_t>(j) * K + k];
      a[static_cast<size_t>(i) * K + j] = sum - (i == j ? 1.0 : 0.0);
    }
  return a;
}

double frobenius(const std::vector<double>& a) {
  double sum = 0.0;
  for (double v : a) sum += v * v;
  return std::sqrt(sum);
}
}  // namespace

template <typename T>
double transform_regularizer(const T* t, int B, int K) {
  double total = 0.0;
  for (int b = 0; b < B; ++b) total += frobenius(gram_minus_identity(t + static_cast<size_t>(b) * K * K, K));
  return total / B;
}

template <typename T>
void transform_regularizer_backward_accumulate(T* dt, const T* t, int B, int K, T weight) {
  // d||A||_F / dt = (A + A^T) t / ||A||_F = 2 A t / ||A||_F (A is symmetric).
  for (int b = 0; b < B; ++b) {
    const T* tb = t + static_cast<size_t>(b) * K * K;
    T* db = dt + static_cast<size_t>(b) * K * K;
    const std::vector<double> a = gram_minus_identity(tb, K);
    const double norm = frobenius(a);
    if (norm == 0.0) continue;  // the minimum: torch's subgradient there is 0 too
    const double k = static_cast<double>(weight) * 2.0 / (norm * B);
    for (int i = 0; i < K; ++i)
      for (int j = 0; j < K; ++j) {
        double sum = 0.0;
        for (int m = 0; m < K; ++m) sum += a[static_cast<size_t>(i) * K + m] * tb[static_cast<size_t>(m) * K + j];
        db[static_cast<size_t>(i) * K + j] += static_cast<T>(k * sum);
      }
  }
}

#define PN_TRANSFORM(T)                                                                          \
  template void transform_forward<T>(T*, const T*, const T*, int, int, int);                     \
  template void transform_backward<T>(T*, T*, const T*, const T*, const T*, int, int, int);      \
  template void add_identity<T>(T*, int, int);                                                   \
  template double transform_regularizer<T>(const T*, int, int);                                  \
  template void transform_regularizer_backward_accumulate<T>(T*, const T*, int, int, T);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_TRANSFORM)

}  // namespace pointnet::cpu
