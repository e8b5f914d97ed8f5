// 1x1 convolution / fully connected layer as one GEMM over all points.
#include <algorithm>
#include <vector>

#include "cpu/column_sums.h"
#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

template <typename T>
void linear_forward(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout) {
  // Start from the bias so the GEMM accumulates onto it (beta = 1): one pass fewer.
  if (b) {
#pragma omp parallel for schedule(static)
    for (int m = 0; m < M; ++m) std::copy(b, b + Cout, y + static_cast<size_t>(m) * Cout);
  }
  gemm<T>(false, true, M, Cout, Cin, T(1), x, Cin, w, Cin, b ? T(1) : T(0), y, Cout);
}

template <typename T>
void linear_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, int M, int Cin,
                     int Cout, bool accumulate_dx) {
  if (dx) gemm<T>(false, false, M, Cin, Cout, T(1), dy, Cout, w, Cin, accumulate_dx ? T(1) : T(0), dx, Cin);
  if (dw) gemm<T>(true, false, Cout, Cin, M, T(1), dy, Cout, x, Cin, T(0), dw, Cin);
  if (db) {
    std::vector<double> sums(Cout);
    column_sums(sums.data(), M, Cout, [&](int m, int c) { return static_cast<double>(dy[static_cast<size_t>(m) * Cout + c]); });
    for (int c = 0; c < Cout; ++c) db[c] = static_cast<T>(sums[c]);
  }
}

template <typename T>
void linear_forward_reference(T* y, const T* x, const T* w, const T* b, int M, int Cin, int Cout) {
  for (int m = 0; m < M; ++m) {
    for (int o = 0; o < Cout; ++o) {
      double sum = b ? b[o] : 0.0;
      for (int i = 0; i < Cin; ++i)
        sum += static_cast<double>(x[static_cast<size_t>(m) * Cin + i]) * w[static_cast<size_t>(o) * Cin + i];
      y[static_cast<size_t>(m) * Cout + o] = static_cast<T>(sum);
    }
  }
}

#define PN_LINEAR(T)                                                                           \
  template void linear_forward<T>(T*, const T*, const T*, const T*, int, int, int);            \
  template void linear_backward<T>(T*, T*, T*, const T*, const T*, const T*, int, int, int, bool); \
  template void linear_forward_reference<T>(T*, const T*, const T*, const T*, int, int, int);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_LINEAR)

}  // namespace pointnet::cpu
