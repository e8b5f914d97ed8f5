// Random-number order (fixed, so a seed reproduces a batch exactly):
//   1. num_points indices, rng.below(n) each;
//   2. if augment: theta = rng.uniform(0, 2*pi);
//   3. if augment: one rng.normal() per coordinate, point by point, x y z
//      (xyz only: normals are not jittered, so C = 3 and C = 6 draw alike).
// ScaleShift instead of 2-3: the dropout ratio r = uniform(0, 0.875), one
// uniform() per point (dropped when < r), the scale uniform(0.8, 1.25), then
// three shifts uniform(-0.1, 0.1).
#include "data/sampler.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet {

void normalize_cloud(float* points, int n, int stride) {
  if (n <= 0) return;
  const size_t s = static_cast<size_t>(stride);
  double centroid[3] = {0, 0, 0};
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) centroid[k] += points[s * i + k];
  for (double& c : centroid) c /= n;
  double max_norm = 0;
  for (int i = 0; i < n; ++i) {
    double sq = 0;
    for (int k = 0; k < 3; ++k) {
      double d = points[s * i + k] - centroid[k];
      sq += d * d;
    }
    max_norm = std::max(max_norm, sq);
  }
  max_norm = std::sqrt(max_norm);
  // All points equal: centring alone already puts them at the origin.
  double scale = max_norm > 0 ? 1.0 / max_norm : 1.0;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) points[s * i + k] = static_cast<float>((points[s * i + k] - centroid[k]) * scale);
}

void interleave_normals(const Floats& xyz, const Floats& normals, const std::string& path,
                        float* out) {
  if (normals.empty()) fail(path, ": the model takes normals (6 channels), but this cloud has none");
  if (normals.size() != xyz.size())
    fail(path, ": ", normals.size() / 3, " normals for ", xyz.size() / 3, " points: expected one per point");
  for (size_t i = 0; i < xyz.size() / 3; ++i)
    for (int k = 0; k < 3; ++k) {
      out[6 * i + k] = xyz[3 * i + k];
      out[6 * i + 3 + k] = normals[3 * i + k];
    }
}

Augmentation parse_augmentation(const std::string& name) {
  if (name == "rotate-jitter") return Augmentation::RotateJitter;
  if (name == "scale-shift") return Augmentation::ScaleShift;
  fail("unknown augmentation '", name, "': expected rotate-jitter or scale-shift");
}

const char* augmentation_name(Augmentation a) {
  return a == Augmentation::RotateJitter ? "rotate-jitter" : "scale-shift";
}

namespace {

// PointNet++ provider.py: random_point_dropout (dropped points become copies
// of the first point, so the count stays N), random_scale_point_cloud,
// shift_point_cloud. xyz only is scaled and shifted; a dropped row copies the
// whole row, normal included.
void scale_shift(float* points, int count, int C, Rng& rng, int32_t* parts) {
  const float ratio = rng.uniform(0.0f, 0.875f);
  for (int i = 0; i < count; ++i) {
    if (rng.uniform() >= ratio || i == 0) continue;
    for (int k = 0; k < C; ++k) points[C * i + k] = points[k];
    if (parts) parts[i] = parts[0];
  }
  const float scale = rng.uniform(0.8f, 1.25f);
  float shift[3];
  for (float& s : shift) s = rng.uniform(-0.1f, 0.1f);
  for (int i = 0; i < count; ++i)
    for (int k = 0; k < 3; ++k) points[C * i + k] = points[C * i + k] * scale + shift[k];
}

}  // namespace

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
  const int C = options.channels();
  if (options.use_normals && shape.normals.size() != shape.points.size())
    fail(shape.path, ": ", shape.normals.empty() ? "no normals" : "a normal count that differs from the point count",
         ", but normals were asked for (--use-normals)");

  for (int i = 0; i < count; ++i) {
    const uint32_t j = options.whole_when_exact && n == count ? static_cast<uint32_t>(i)
                                                              : rng.below(static_cast<uint32_t>(n));
    for (int k = 0; k < 3; ++k) points_out[C * i + k] = shape.points[3 * j + k];
    if (options.use_normals)
      for (int k = 0; k < 3; ++k) points_out[C * i + 3 + k] = shape.normals[3 * j + k];
    if (with_parts) parts_out[i] = shape.parts[j];
  }
  normalize_cloud(points_out, count, C);
  if (!options.augment) return;
  if (options.augmentation == Augmentation::ScaleShift) {
    scale_shift(points_out, count, C, rng, with_parts ? parts_out : nullptr);
    return;
  }

  // pointnet.pytorch: point_set[:, [a, b]] = point_set[:, [a, b]].dot([[c, -s], [s, c]]),
  // a row vector times the matrix: a' = a c + b s, b' = -a s + b c.
  float theta = rng.uniform(0.0f, 6.28318530717958647692f);
  float c = std::cos(theta), s = std::sin(theta);
  int a = 0, b = options.up_axis == 2 ? 1 : 2;
  for (int i = 0; i < count * C / 3; ++i) {  // every triple: xyz, and the normal beside it
    float* p = points_out + 3 * i;
    float pa = p[a], pb = p[b];
    p[a] = pa * c + pb * s;
    p[b] = -pa * s + pb * c;
  }
  for (int i = 0; i < count; ++i)
    for (int k = 0; k < 3; ++k) points_out[C * i + k] += rng.normal() * options.jitter_sigma;
}

}  // namespace pointnet
