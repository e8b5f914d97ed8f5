// The fused wide layer (conv 128 -> 1024 + BatchNorm + optional ReLU + max
// over points) without the (B*N, C) activation. Notation: x (M, K) the input
// rows, M = B*N; z = x w^T + bias (M, C); xbar, S the mean and biased
// covariance of x's rows; mu_c, var_c z's batch statistics; a_c = gamma_c *
// invstd_c; g(B, C) = dy masked by the ReLU.
//
// Forward:  mu_c = w_c . xbar + bias_c (z is linear in x); var_c from the
//           centred squares of z, summed in the same tiled pass that finds the
//           extremes (w_c^T S w_c would be cheaper but cancels badly in float
//           when var_c is small next to |w_c|^2 |S|); BN(z) is increasing in z where gamma >= 0 and decreasing where
//           gamma < 0, so the max over a cloud's points is BN of z's max (or
//           min) there: only each cloud's extreme z per channel is needed.
// Backward: BatchNorm's gradient dz = a (g at the picked points) - a dbeta/M
//           - a dgamma/M xhat is a sparse part plus a part affine in x, so
//             dw_c = a_c [sum_b g_bc (x_picked - xbar) - dgamma_c invstd_c S w_c]
//             dx_r = sum_{picked (b,c) at r} a_c g_bc w_c - u - (x_r - xbar) P
//           with u = sum_c a_c dbeta_c / M w_c and P = sum_c a_c invstd_c
//           dgamma_c / M w_c w_c^T (K x K); dbias = 0 exactly.
// The only O(M C) work left is the forward's GEMM, done in tiles that stay
// in cache.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/column_sums.h"
#include "cpu/group_sums.h"
#include "cpu/instantiate.h"
#include "cpu/kernels.h"

namespace pointnet::cpu {
namespace {

constexpr int kTileRows = 256;

// Per cloud and channel: z's max and min over the cloud's points and where
// they are (first occurrence, as torch.max). z = x w^T + bias, in row tiles.
// With `mu` given, also sums (z - mu_c)^2 over each cloud's points into
// centred_sq(B, C), in double: the variance straight from z, which stays
// accurate where w_c^T S w_c would cancel (var much smaller than |w|^2 |S|).
// The work items are (cloud, tile) pairs, so one cloud (B = 1, latency) still
// uses every core; each tile's partial results are merged in tile order, so
// the bits do not depend on the thread count.
template <typename T>
void cloud_extremes(T* zmax, int32_t* argmax, T* zmin, int32_t* argmin, const T* x, const T* w,
                    const T* bias, int B, int N, int K, int C, const double* mu = nullptr,
                    double* centred_sq = nullptr) {
  const int tiles = (N + kTileRows - 1) / kTileRows;
  const size_t items = static_cast<size_t>(B) * tiles;
  std::vector<T> tile_max(items * C), tile_min(items * C);
  std::vector<int32_t> tile_argmax(items * C), tile_argmin(items * C);
  std::vector<double> tile_sq(mu ? items * C : 0);
#pragma omp parallel
  {
    std::vector<T> tile(static_cast<size_t>(kTileRows) * C);
#pragma omp for schedule(static)
    for (long long item = 0; item < static_cast<long long>(items); ++item) {
      const int b = static_cast<int>(item / tiles);
      const int n0 = static_cast<int>(item % tiles) * kTileRows;
      const int rows = std::min(kTileRows, N - n0);
      const T* xt = x + (static_cast<size_t>(b) * N + n0) * K;
      gemm<T>(false, true, rows, C, K, T(1), xt, K, w, K, T(0), tile.data(), C);
      T* mx = tile_max.data() + item * C;
      T* mn = tile_min.data() + item * C;
      int32_t* amx = tile_argmax.data() + item * C;
      int32_t* amn = tile_argmin.data() + item * C;
      std::copy(tile.data(), tile.data() + C, mx);
      std::copy(tile.data(), tile.data() + C, mn);
      std::fill(amx, amx + C, n0);
      std::fill(amn, amn + C, n0);
      for (int i = 1; i < rows; ++i) {
        const T* row = tile.data() + static_cast<size_t>(i) * C;
        for (int c = 0; c < C; ++c) {
          if (row[c] > mx[c]) { mx[c] = row[c]; amx[c] = n0 + i; }
          if (row[c] < mn[c]) { mn[c] = row[c]; amn[c] = n0 + i; }
        }
      }
      if (mu) {
        double* sq = tile_sq.data() + item * C;
        std::fill(sq, sq + C, 0.0);
        for (int i = 0; i < rows; ++i) {
          const T* row = tile.data() + static_cast<size_t>(i) * C;
          for (int c = 0; c < C; ++c) {
            const double d = static_cast<double>(row[c]) + bias[c] - mu[c];
            sq[c] += d * d;
          }
        }
      }
    }
  }
  // Merge each cloud's tiles in point order: a later tile wins only when strictly better.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    T* mx = zmax + static_cast<size_t>(b) * C;
    T* mn = zmin + static_cast<size_t>(b) * C;
    int32_t* amx = argmax + static_cast<size_t>(b) * C;
    int32_t* amn = argmin + static_cast<size_t>(b) * C;
    double* sq = mu ? centred_sq + static_cast<size_t>(b) * C : nullptr;
    for (int t = 0; t < tiles; ++t) {
      const size_t at = (static_cast<size_t>(b) * tiles + t) * C;
      for (int c = 0; c < C; ++c) {
        if (t == 0 || tile_max[at + c] > mx[c]) { mx[c] = tile_max[at + c]; amx[c] = tile_argmax[at + c]; }
        if (t == 0 || tile_min[at + c] < mn[c]) { mn[c] = tile_min[at + c]; amn[c] = tile_argmin[at + c]; }
        if (sq) sq[c] = (t == 0 ? 0.0 : sq[c]) + tile_sq[at + c];
      }
    }
    for (int c = 0; c < C; ++c) {
      mx[c] += bias[c];
      mn[c] += bias[c];
    }
  }
}

// y = act(gamma (picked - center) scale + beta), picking z's max where gamma >= 0.
template <typename T>
void select_and_normalize(T* y, T* selected, int32_t* selected_row, const T* zmax, const int32_t* argmax,
                          const T* zmin, const int32_t* argmin, const T* center, const double* scale,
                          const T* gamma, const T* beta, int B, int C, bool relu) {
  for (int b = 0; b < B; ++b) {
    for (int c = 0; c < C; ++c) {
      const size_t i = static_cast<size_t>(b) * C + c;
      const bool up = gamma[c] >= T(0);
      const T z = up ? zmax[i] : zmin[i];
      if (selected) selected[i] = z;
      if (selected_row) selected_row[i] = up ? argmax[i] : argmin[i];
      // The same float operations as batchnorm_forward_* (centre first, then one scale).
      const T v = (z - center[c]) * static_cast<T>(gamma[c] * scale[c]) + beta[c];
      y[i] = relu && !(v > T(0)) ? T(0) : v;
    }
  }
}

}  // namespace

template <typename T>
void wide_max_forward_train(T* y, T* input_mean, T* input_cov, T* mean, T* invstd, T* selected,
                            int32_t* selected_row, T* running_mean, T* running_var, const T* x, const T* w,
                            const T* bias, const T* gamma, const T* beta, int B, int N, int K, int C, bool relu,
                            double eps, double momentum, Communicator* group) {
  const int M = B * N;
  const bool sync = synchronised(group);
  // x's mean (double, fixed-block) and covariance from the centred rows. With
  // a group (SyncBN): x's sums with the row count after them, the covariance
  // around the global mean and z's centred squares are summed over the ranks.
  std::vector<double> xbar(K);
  column_sums(xbar.data(), M, K, [&](int m, int k) { return static_cast<double>(x[static_cast<size_t>(m) * K + k]); });
  const double rows = sum_over_group(group, {&xbar}, M);
  for (int k = 0; k < K; ++k) {
    xbar[k] /= rows;
    input_mean[k] = static_cast<T>(xbar[k]);
  }
  std::vector<T> centred(static_cast<size_t>(M) * K);
#pragma omp parallel for schedule(static)
  for (int m = 0; m < M; ++m)
    for (int k = 0; k < K; ++k)
      centred[static_cast<size_t>(m) * K + k] = x[static_cast<size_t>(m) * K + k] - input_mean[k];
  if (!sync) {
    gemm<T>(true, false, K, K, M, static_cast<T>(1.0 / M), centred.data(), K, centred.data(), K, T(0), input_cov, K);
  } else {
    gemm<T>(true, false, K, K, M, T(1), centred.data(), K, centred.data(), K, T(0), input_cov, K);
    std::vector<double> cov(input_cov, input_cov + static_cast<size_t>(K) * K);
    sum_over_group(group, cov);
    for (size_t i = 0; i < cov.size(); ++i) input_cov[i] = static_cast<T>(cov[i] / rows);
  }

  // z's mean per channel from x's (exact: z is linear in x), then one pass of
  // tiled GEMMs for each cloud's extremes and the centred squares.
  std::vector<double> mu(C);
  for (int c = 0; c < C; ++c) {
    const T* wc = w + static_cast<size_t>(c) * K;
    double m = bias[c];
    for (int k = 0; k < K; ++k) m += static_cast<double>(wc[k]) * xbar[k];
    mu[c] = m;
  }
  std::vector<T> zmax(static_cast<size_t>(B) * C), zmin(zmax.size());
  std::vector<int32_t> argmax(zmax.size()), argmin(zmax.size());
  std::vector<double> centred_sq(zmax.size());
  cloud_extremes(zmax.data(), argmax.data(), zmin.data(), argmin.data(), x, w, bias, B, N, K, C, mu.data(),
                 centred_sq.data());

  std::vector<double> scale(C), squares(C, 0.0);
  for (int c = 0; c < C; ++c)
    for (int b = 0; b < B; ++b) squares[c] += centred_sq[static_cast<size_t>(b) * C + c];  // clouds in order
  sum_over_group(group, squares);
  const double unbias = rows > 1 ? rows / (rows - 1) : 1.0;
  for (int c = 0; c < C; ++c) {
    const double var = squares[c] / rows;
    scale[c] = 1.0 / std::sqrt(var + eps);
    mean[c] = static_cast<T>(mu[c]);
    invstd[c] = static_cast<T>(scale[c]);
    running_mean[c] = static_cast<T>((1.0 - momentum) * running_mean[c] + momentum * mu[c]);
    running_var[c] = static_cast<T>((1.0 - momentum) * running_var[c] + momentum * var * unbias);
  }
  select_and_normalize(y, selected, selected_row, zmax.data(), argmax.data(), zmin.data(), argmin.data(), mean,
                       scale.data(), gamma, beta, B, C, relu);
}

template <typename T>
void wide_max_forward_eval(T* y, const T* x, const T* w, const T* bias, const T* gamma, const T* beta,
                           const T* running_mean, const T* running_var, int B, int N, int K, int C, bool relu,
                           double eps) {
  std::vector<T> zmax(static_cast<size_t>(B) * C), zmin(zmax.size());
  std::vector<int32_t> argmax(zmax.size()), argmin(zmax.size());
  cloud_extremes(zmax.data(), argmax.data(), zmin.data(), argmin.data(), x, w, bias, B, N, K, C);
  std::vector<double> scale(C);
  for (int c = 0; c < C; ++c) scale[c] = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
  select_and_normalize<T>(y, nullptr, nullptr, zmax.data(), argmax.data(), zmin.data(), argmin.data(), running_mean,
                          scale.data(), gamma, beta, B, C, relu);
}

template <typename T>
void wide_max_backward(T* dx, T* dw, T* dbias, T* dgamma, T* dbeta, const T* dy, const T* y,
                       const T* input_mean, const T* input_cov, const T* mean, const T* invstd, const T* selected,
                       const int32_t* selected_row, const T* x, const T* w, const T* gamma, int B, int N, int K,
                       int C, bool relu, Communicator* group) {
  const int M = B * N;
  auto g = [&](size_t i) { return relu && !(y[i] > T(0)) ? 0.0 : static_cast<double>(dy[i]); };
  std::vector<double> a(C), db(C), dg(C);
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    double sum = 0.0, sum_xhat = 0.0;
    for (int b = 0; b < B; ++b) {
      const size_t i = static_cast<size_t>(b) * C + c;
      const double gi = g(i);
      sum += gi;
      sum_xhat += gi * (static_cast<double>(selected[i]) - mean[c]) * invstd[c];
    }
    db[c] = sum;
    dg[c] = sum_xhat;
    a[c] = static_cast<double>(gamma[c]) * invstd[c];
    dbeta[c] = static_cast<T>(sum);
    dgamma[c] = static_cast<T>(sum_xhat);
    dbias[c] = T(0);
  }
  // dw_c = a_c [sum_b g_bc (x_picked - xbar) - dgamma_c invstd_c S w_c]
#pragma omp parallel for schedule(static)
  for (int c = 0; c < C; ++c) {
    const T* wc = w + static_cast<size_t>(c) * K;
    for (int k = 0; k < K; ++k) {
      double picked = 0.0, sw = 0.0;
      for (int b = 0; b < B; ++b) {
        const size_t i = static_cast<size_t>(b) * C + c;
        const T* xr = x + (static_cast<size_t>(b) * N + selected_row[i]) * K;
        picked += g(i) * (static_cast<double>(xr[k]) - input_mean[k]);
      }
      for (int l = 0; l < K; ++l) sw += static_cast<double>(input_cov[static_cast<size_t>(k) * K + l]) * wc[l];
      dw[static_cast<size_t>(c) * K + k] = static_cast<T>(a[c] * (picked - dg[c] * invstd[c] * sw));
    }
  }
  if (!dx) return;
  // dx = -(x - xbar) P - u, then the picked points' sparse part. With a group,
  // P and u take the global batch's sums and row count (dw above is linear in
  // this rank's dg: the gradient all-reduce completes it).
  const double rows = sum_over_group(group, {&db, &dg}, M);
  std::vector<T> scaled_w(static_cast<size_t>(C) * K);
  std::vector<double> u(K, 0.0);
  for (int c = 0; c < C; ++c) {
    const double d = a[c] * invstd[c] * dg[c] / rows;
    const double e = a[c] * db[c] / rows;
    for (int k = 0; k < K; ++k) {
      scaled_w[static_cast<size_t>(c) * K + k] = static_cast<T>(d * w[static_cast<size_t>(c) * K + k]);
      u[k] += e * w[static_cast<size_t>(c) * K + k];
    }
  }
  std::vector<T> P(static_cast<size_t>(K) * K);
  gemm<T>(true, false, K, K, C, T(1), w, K, scaled_w.data(), K, T(0), P.data(), K);
  std::vector<T> offset(K);  // xbar P - u, added to every row
  for (int l = 0; l < K; ++l) {
    double v = -u[l];
    for (int k = 0; k < K; ++k) v += static_cast<double>(input_mean[k]) * P[static_cast<size_t>(k) * K + l];
    offset[l] = static_cast<T>(v);
  }
  gemm<T>(false, false, M, K, K, T(-1), x, K, P.data(), K, T(0), dx, K);
#pragma omp parallel for schedule(static)
  for (int b = 0; b < B; ++b) {
    T* dxb = dx + static_cast<size_t>(b) * N * K;
    for (int n = 0; n < N; ++n)
      for (int k = 0; k < K; ++k) dxb[static_cast<size_t>(n) * K + k] += offset[k];
    for (int c = 0; c < C; ++c) {  // channels in order: deterministic
      const size_t i = static_cast<size_t>(b) * C + c;
      const double v = a[c] * g(i);
      if (v == 0.0) continue;
      T* row = dxb + static_cast<size_t>(selected_row[i]) * K;
      const T* wc = w + static_cast<size_t>(c) * K;
      for (int k = 0; k < K; ++k) row[k] += static_cast<T>(v * wc[k]);
    }
  }
}

#define PN_WIDE_MAX(T)                                                                                              \
  template void wide_max_forward_train<T>(T*, T*, T*, T*, T*, T*, int32_t*, T*, T*, const T*, const T*, const T*, \
                                          const T*, const T*, int, int, int, int, bool, double, double,           \
                                          Communicator*);                                                          \
  template void wide_max_forward_eval<T>(T*, const T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                                         int, int, int, int, bool, double);                                        \
  template void wide_max_backward<T>(T*, T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*,         \
                                     const T*, const T*, const int32_t*, const T*, const T*, const T*, int, int,   \
                                     int, int, bool, Communicator*);
PN_INSTANTIATE_FLOAT_AND_DOUBLE(PN_WIDE_MAX)

}  // namespace pointnet::cpu
