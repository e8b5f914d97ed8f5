// Sampling with normals (--use-normals): rows are x y z nx ny nz; the normals
// ride along with their points, turn with the rotation, and are neither
// centred, scaled nor jittered.
#include <gtest/gtest.h>

#include <cmath>

#include "core/errors.h"
#include "core/rng.h"
#include "data/batch.h"
#include "data/sampler.h"

namespace pointnet {
namespace {

// Points on a sphere of radius 3 around (5, -2, 10), each with its outward unit normal.
Shape sphere_with_normals(int n, uint64_t seed) {
  Shape s;
  s.path = "sphere.txt";
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    float d[3] = {rng.normal(), rng.normal(), rng.normal()};
    const float len = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
    for (float& v : d) v /= len;
    s.points.insert(s.points.end(), {5 + 3 * d[0], -2 + 3 * d[1], 10 + 3 * d[2]});
    s.normals.insert(s.normals.end(), {d[0], d[1], d[2]});
  }
  return s;
}

TEST(SamplerNormals, RowsCarryTheirOwnNormalsAfterNormalisation) {
  const Shape s = sphere_with_normals(200, 1);
  SampleOptions o;
  o.num_points = 300;
  o.use_normals = true;
  std::vector<float> out(6 * o.num_points);
  Rng rng(2);
  sample_shape(s, o, rng, out.data(), nullptr);
  // After centring and scaling the sphere to radius ~1, each point equals its
  // normal (to the centroid's sampling offset): the pairing survived.
  double worst = 0;
  for (int i = 0; i < o.num_points; ++i) {
    const float* row = &out[6 * i];
    EXPECT_NEAR(std::sqrt(row[3] * row[3] + row[4] * row[4] + row[5] * row[5]), 1.0, 1e-6);
    for (int k = 0; k < 3; ++k) worst = std::max(worst, std::fabs(double(row[k]) - row[3 + k]));
  }
  EXPECT_LT(worst, 0.15);  // the sample's centroid is off the sphere's centre by a little
}

TEST(SamplerNormals, RotationTurnsNormalsAndJitterLeavesThemAlone) {
  const Shape s = sphere_with_normals(100, 3);
  SampleOptions plain;
  plain.num_points = 128;
  plain.use_normals = true;
  SampleOptions augmented = plain;
  augmented.augment = true;
  std::vector<float> a(6 * 128), b(6 * 128);
  Rng r1(5), r2(5);
  sample_shape(s, plain, r1, a.data(), nullptr);
  sample_shape(s, augmented, r2, b.data(), nullptr);
  // The same rotation about z for every normal: recover it from the first one.
  const double angle = std::atan2(b[4], b[3]) - std::atan2(a[4], a[3]);
  const double c = std::cos(angle), sn = std::sin(angle);
  for (int i = 0; i < 128; ++i) {
    const float* p = &a[6 * i + 3];
    const float* q = &b[6 * i + 3];
    EXPECT_NEAR(q[0], c * p[0] - sn * p[1], 1e-5) << i;
    EXPECT_NEAR(q[1], sn * p[0] + c * p[1], 1e-5) << i;
    EXPECT_EQ(q[2], p[2]) << i;  // z is up: untouched, and not jittered
  }
}

TEST(SamplerNormals, XyzDrawsTheSameRandomNumbersWithOrWithoutNormals) {
  const Shape s = sphere_with_normals(50, 7);
  SampleOptions xyz;
  xyz.num_points = 64;
  xyz.augment = true;
  SampleOptions six = xyz;
  six.use_normals = true;
  std::vector<float> a(3 * 64), b(6 * 64);
  Rng r1(9), r2(9);
  sample_shape(s, xyz, r1, a.data(), nullptr);
  sample_shape(s, six, r2, b.data(), nullptr);
  for (int i = 0; i < 64; ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(a[3 * i + k], b[6 * i + k]);
}

TEST(SamplerNormals, ExactSizeBatchInterleavesInOrder) {
  Dataset data;
  data.shapes = {sphere_with_normals(16, 11)};
  data.has_normals = true;
  SampleOptions o;
  o.num_points = 16;
  o.use_normals = true;
  std::vector<float> points(6 * 16);
  std::vector<int32_t> labels(1);
  assemble_batch(data, {0}, o, 1, false, points.data(), labels.data());
  for (int i = 0; i < 16; ++i)
    for (int k = 0; k < 3; ++k) EXPECT_EQ(points[6 * i + 3 + k], data.shapes[0].normals[3 * i + k]);
}

TEST(SamplerNormals, ShapeWithoutNormalsIsRefusedByName) {
  Shape s = sphere_with_normals(10, 1);
  s.normals.clear();
  SampleOptions o;
  o.num_points = 8;
  o.use_normals = true;
  std::vector<float> out(6 * 8);
  Rng rng(1);
  try {
    sample_shape(s, o, rng, out.data(), nullptr);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("sphere.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("normals"), std::string::npos) << e.what();
  }
  std::vector<float> xyz = {1, 2, 3}, too_few;
  EXPECT_THROW(interleave_normals(xyz, too_few, "a.ply", out.data()), Error);
}

}  // namespace
}  // namespace pointnet

namespace pointnet {
namespace {

// --augmentation scale-shift: each row is the unaugmented row (or, dropped,
// row 0) scaled by one s in [0.8, 1.25] and shifted by one t in [-0.1, 0.1]^3;
// normals ride along unscaled.
TEST(SamplerScaleShift, RowsAreScaledShiftedOrDroppedCopies) {
  const Shape s = sphere_with_normals(400, 13);
  SampleOptions plain;
  plain.num_points = 512;
  plain.use_normals = true;
  SampleOptions augmented = plain;
  augmented.augment = true;
  augmented.augmentation = Augmentation::ScaleShift;
  std::vector<float> a(6 * 512), b(6 * 512);
  Rng r1(21), r2(21);
  sample_shape(s, plain, r1, a.data(), nullptr);
  sample_shape(s, augmented, r2, b.data(), nullptr);
  auto dist = [](const float* p, const float* q) {
    return std::sqrt(double(p[0] - q[0]) * (p[0] - q[0]) + double(p[1] - q[1]) * (p[1] - q[1]) +
                     double(p[2] - q[2]) * (p[2] - q[2]));
  };
  // The scale from a row that was kept: the farthest from row 0 in the output.
  int far = 1;
  for (int i = 1; i < 512; ++i)
    if (dist(&b[6 * i], &b[0]) > dist(&b[6 * far], &b[0])) far = i;
  const double scale = dist(&b[6 * far], &b[0]) / dist(&a[6 * far], &a[0]);
  EXPECT_GE(scale, 0.8 - 1e-5);
  EXPECT_LE(scale, 1.25 + 1e-5);
  double shift[3];
  for (int k = 0; k < 3; ++k) {
    shift[k] = b[k] - scale * a[k];
    EXPECT_LE(std::fabs(shift[k]), 0.1 + 1e-5);
  }
  int dropped = 0;
  for (int i = 0; i < 512; ++i) {
    const bool kept = std::fabs(b[6 * i] - (scale * a[6 * i] + shift[0])) < 1e-5;
    const int j = kept ? i : 0;
    dropped += !kept;
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(b[6 * i + k], scale * a[6 * j + k] + shift[k], 1e-5) << i;
    for (int k = 3; k < 6; ++k) EXPECT_EQ(b[6 * i + k], a[6 * j + k]) << i;
  }
  EXPECT_LT(dropped, 512 * 0.875 + 1);
  EXPECT_THROW(parse_augmentation("flip"), Error);
  EXPECT_EQ(parse_augmentation(augmentation_name(Augmentation::ScaleShift)), Augmentation::ScaleShift);
}

}  // namespace
}  // namespace pointnet
