// Finite-difference gradient checking in double, shared by the op and model tests.
#pragma once
#include <cmath>
#include <functional>
#include <vector>

#include "core/rng.h"

namespace pointnet::testing {

inline std::vector<double> random_vector(size_t n, Rng& rng, double scale = 1.0) {
  std::vector<double> v(n);
  for (double& x : v) x = scale * rng.normal();
  return v;
}

// Central difference of f at x[i]; restores x[i].
inline double numeric_derivative(std::vector<double>& x, size_t i, const std::function<double()>& f,
                                 double h = 1e-6) {
  const double saved = x[i];
  x[i] = saved + h;
  const double up = f();
  x[i] = saved - h;
  const double down = f();
  x[i] = saved;
  return (up - down) / (2 * h);
}

// |a - n| / max(|a| + |n|, floor): symmetric, and absolute near zero.
inline double gradient_mismatch(double analytic, double numeric, double floor = 1e-7) {
  return std::fabs(analytic - numeric) / std::max(std::fabs(analytic) + std::fabs(numeric), floor);
}

// sum_i w[i] * y[i]: turns a vector output into a scalar whose gradient wrt y is w.
inline double weighted_sum(const std::vector<double>& y, const std::vector<double>& w) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * w[i];
  return s;
}

}  // namespace pointnet::testing
