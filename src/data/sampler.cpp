// Random-number order (fixed, so a seed reproduces a batch exactly):
//   1. num_points indices, rng.below(n) each;
//   2. if augment: theta = rng.uniform(0, 2*pi);
//   3. if augment: one rng.normal() per coordinate, point by point, x y z.
#include "data/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet {

void normalize_cloud(float* points, int n) {
  if (n <= 0) return;
  double centroid[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) centroid[k] += points[3 * i + k];
  for (double& c : centroid) c /= n;
  double max_norm = 0;
  for (int i = 0; i < n; ++i) {
    double sq = 0;
    for (int k = 0; k < 3; ++k) {
      double d = points[3 * i + k] - centroid[k];
      sq += d * d;
    }
    max_norm = std::max(max_norm, sq);
  }
  max_norm = std::sqrt(max_norm);
  // All points equal: centring alone already puts them at the origin.
  double scale = max_norm > 0 ? 1.0 / max_norm : 1.0;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) points[3 * i + k] = static_cast<float>((points[3 * i + k] - centroid[k]) * scale);
}

void sample_shape(const Shape& shape, const SampleOptions& options, Rng& rng, float* points_out,
                  int32_t* parts_out) {
  int n = shape.num_points();
  int count = options.num_points;
  if (n <= 0) fail(shape.path, ": cannot sample an empty point cloud");
  if (count <= 0) fail(shape.path, ": cannot sample ", count, " points: expected a positive count");
  if (options.up_axis != 1 && options.up_axis != 2)
    fail("sample_shape: up_axis ", options.up_axis, ": expected 1 (y) or 2 (z)");
  bool with_parts = parts_out != nullptr && !shape.parts.empty();
  if (with_parts && static_cast<int>(shape.parts.size()) != n)
    fail(shape.path, ": ", shape.parts.size(), " part labels for ", n, " points");

  for (int i = 0; i < count; ++i) {
    uint32_t j = rng.below(static_cast<uint32_t>(n));
    for (int k = 0; k < 3; ++k) points_out[3 * i + k] = shape.points[3 * j + k];
    if (with_parts) parts_out[i] = shape.parts[j];
  }
  normalize_cloud(points_out, count);
  if (!options.augment) return;

  // pointnet.pytorch: point_set[:, [a, b]] = point_set[:, [a, b]].dot([[c, -s], [s, c]]),
  // a row vector times the matrix: a' = a c + b s, b' = -a s + b c.
  float theta = rng.uniform(0.0f, 6.28318530717958647692f);
  float c = std::cos(theta), s = std::sin(theta);
  int a = 0, b = options.up_axis == 2 ? 1 : 2;
  for (int i = 0; i < count; ++i) {
    float* p = points_out + 3 * i;
    float pa = p[a], pb = p[b];
    p[a] = pa * c + pb * s;
    p[b] = -pa * s + pb * c;
  }
  for (int i = 0; i < 3 * count; ++i) points_out[i] += rng.normal() * options.jitter_sigma;
}

}  // namespace pointnet
