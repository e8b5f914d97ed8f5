// Max over points (the symmetric function that makes PointNet order-invariant)
// and the segmenter's concatenation of the global feature onto every point.
#include <algorithm>
#include <vector>

#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {

template <typename T>
void max_over_points_forward(T* y, int32_t* argmax, const T* x, int B, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    T* yb = y + static_cast<size_t>(b) * C;
    int32_t* ab = argmax + static_cast<size_t>(b) * C;
    const T* xb = x + static_cast<size_t>(b) * N * C;
    std::copy(xb, xb + C, yb);
    std::fill(ab, ab + C, 0);
    // Strict '>' keeps the first maximum, as torch.max does on CPU.
    for (int n = 1; n < N; ++n) {
      const T* row = xb + static_cast<size_t>(n) * C;
      for (int c = 0; c < C; ++c) {
        if (row[c] > yb[c]) {
          yb[c] = row[c];
          ab[c] = n;
        }
      }
    }
  }
}

template <typename T>
void max_over_points_backward(T* dx, const T* dy, const int32_t* argmax, int B, int N, int C) {
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    T* dxb = dx + static_cast<size_t>(b) * N * C;
    std::fill(dxb, dxb + static_cast<size_t>(N) * C, T(0));
    for (int c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(b) * C + c;
      dxb[static_cast<size_t>(argmax[i]) * C + c] = dy[i];
    }
  }
}

template <typename T>
void concat_global_forward(T* y, const T* global, const T* pointfeat, int B, int N, int G, int P) {
  const int width = G + P;
#pragma omp parallel for schedule(static)
  for (int r = 0; r < B * N; ++r) {
    const int b = r / N;
    T* yr = y + static_cast<size_t>(r) * width;
    std::copy(global + static_cast<size_t>(b) * G, global + static_cast<size_t>(b + 1) * G, yr);
    std::copy(pointfeat + static_cast<size_t>(r) * P, pointfeat + static_cast<size_t>(r + 1) * P, yr + G);
  }
}

template <typename T>
void concat_global_backward(T* dglobal, T* dpointfeat, const T* dy, int B, int N, int G, int P) {
  const int width = G + P;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    // The global feature was repeated N times: its gradient is the sum over points.
    if (dglobal) {
      std::vector<double> sum(G, 0.0);
      for (int n = 0; n < N; ++n) {
        const T* row = dy + (static_cast<size_t>(b) * N + n) * width;
        for (int g = 0; g < G; ++g) sum[g] += row[g];
      }
      for (int g = 0; g < G; ++g) dglobal[static_cast<size_t>(b) * G + g] = static_cast<T>(sum[g]);
    }
    if (dpointfeat) {
      for (int n = 0; n < N; ++n) {
        const size_t r = static_cast<size_t>(b) * N + n;
        std::copy(dy + r * width + G, dy + (r + 1) * width, dpointfeat + r * P);
      }
    }
  }
}

#define PN_POOLING(T)                                                                          \
  template void max_over_points_forward<T>(T*, int32_t*, const T*, int, int, int);             \
  template void max_over_points_backward<T>(T*, const T*, const int32_t*, int, int, int);      \
  template void concat_global_forward<T>(T*, const T*, const T*, int, int, int, int);          \
  template void concat_global_backward<T>(T*, T*, const T*, int, int, int, int);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_POOLING)

}  // namespace pointnet::cpu
