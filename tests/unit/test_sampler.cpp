#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "core/rng.h"
#include "data/batch.h"
#include "data/sampler.h"

namespace pointnet {
namespace {

// A lopsided random cloud away from the origin, so centring and scaling matter.
Shape random_shape(int n, uint64_t seed, bool with_parts = false) {
  Shape s;
  s.path = "cloud.npy";
  Rng rng(seed);
  for (int i = 0; i < n; ++i) {
    s.points.push_back(5 + 3 * rng.uniform());
    s.points.push_back(-2 + rng.uniform());
    s.points.push_back(10 + 0.5f * rng.uniform());
    if (with_parts) s.parts.push_back(i % 4);
  }
  return s;
}

double norm(const float* p) { return std::sqrt(double(p[0]) * p[0] + double(p[1]) * p[1] + double(p[2]) * p[2]); }

TEST(Sampler, NormalisedCloudIsCentredInTheUnitSphere) {
  Shape s = random_shape(500, 1);
  SampleOptions o;
  o.num_points = 1024;
  std::vector<float> out(3 * o.num_points);
  Rng rng(2);
  sample_shape(s, o, rng, out.data(), nullptr);
  double c[3] = {0, 0, 0}, max_norm = 0;
  for (int i = 0; i < o.num_points; ++i) {
    for (int k = 0; k < 3; ++k) c[k] += out[3 * i + k];
    max_norm = std::max(max_norm, norm(&out[3 * i]));
  }
  for (double v : c) EXPECT_NEAR(v / o.num_points, 0.0, 1e-6);  // fp32 rounding of O(1) values
  EXPECT_NEAR(max_norm, 1.0, 1e-6);
}

TEST(Sampler, NormalizeDegenerateClouds) {
  std::vector<float> same = {3, 4, 5, 3, 4, 5, 3, 4, 5};
  normalize_cloud(same.data(), 3);
  for (float v : same) EXPECT_EQ(v, 0.0f);
  std::vector<float> one = {7, -1, 2};
  normalize_cloud(one.data(), 1);
  for (float v : one) EXPECT_EQ(v, 0.0f);
  normalize_cloud(nullptr, 0);  // no-op
}

TEST(Sampler, DrawsWithReplacementAndCarriesParts) {
  // Points on a line at x = i with part i: the normalised x order must follow the labels.
  Shape s;
  for (int i = 0; i < 8; ++i) {
    s.points.insert(s.points.end(), {static_cast<float>(i), 0, 0});
    s.parts.push_back(i);
  }
  SampleOptions o;
  o.num_points = 100;  // more than the cloud holds: with replacement
  std::vector<float> out(300);
  std::vector<int32_t> parts(100, -1);
  Rng rng(4);
  sample_shape(s, o, rng, out.data(), parts.data());
  for (int i = 0; i < 100; ++i) {
    ASSERT_GE(parts[i], 0);
    ASSERT_LT(parts[i], 8);
    for (int j = 0; j < 100; ++j) {
      if (parts[i] < parts[j]) {
        ASSERT_LT(out[3 * i], out[3 * j]);
      } else if (parts[i] == parts[j]) {
        ASSERT_EQ(out[3 * i], out[3 * j]);
      }
    }
  }
  std::vector<int32_t> sorted = parts;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_GT(std::unique(sorted.begin(), sorted.end()) - sorted.begin(), 4);  // not one index repeated
}

// Augmentation without jitter is a rotation about the up axis of the same
// sample (the indices come first from the same Rng stream).
void check_rotation(int up_axis) {
  Shape s = random_shape(300, 9);
  SampleOptions plain;
  plain.num_points = 512;
  plain.up_axis = up_axis;
  SampleOptions rotated = plain;
  rotated.augment = true;
  rotated.jitter_sigma = 0;
  std::vector<float> a(3 * 512), b(3 * 512);
  Rng r1(11), r2(11);
  sample_shape(s, plain, r1, a.data(), nullptr);
  sample_shape(s, rotated, r2, b.data(), nullptr);
  int h1 = 0, h2 = up_axis == 2 ? 1 : 2;
  double moved = 0;
  for (int i = 0; i < 512; ++i) {
    EXPECT_EQ(a[3 * i + up_axis], b[3 * i + up_axis]);
    EXPECT_NEAR(norm(&a[3 * i]), norm(&b[3 * i]), 1e-6);
    moved = std::max(moved, double(std::fabs(a[3 * i + h1] - b[3 * i + h1]) + std::fabs(a[3 * i + h2] - b[3 * i + h2])));
  }
  EXPECT_GT(moved, 1e-3);  // it did rotate
}

TEST(Sampler, AugmentRotatesAboutZUp) { check_rotation(2); }
TEST(Sampler, AugmentRotatesAboutYUp) { check_rotation(1); }

TEST(Sampler, JitterHasTheRequestedSigma) {
  Shape s = random_shape(300, 5);
  SampleOptions no_jitter;
  no_jitter.num_points = 4096;
  no_jitter.augment = true;
  no_jitter.jitter_sigma = 0;
  SampleOptions jitter = no_jitter;
  jitter.jitter_sigma = 0.02f;
  std::vector<float> a(3 * 4096), b(3 * 4096);
  Rng r1(8), r2(8);
  sample_shape(s, no_jitter, r1, a.data(), nullptr);
  sample_shape(s, jitter, r2, b.data(), nullptr);
  double sum = 0, sq = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double d = b[i] - a[i];
    sum += d;
    sq += d * d;
  }
  double n = static_cast<double>(a.size());
  EXPECT_NEAR(sum / n, 0.0, 0.001);             // standard error 0.02 / sqrt(12288) = 1.8e-4
  EXPECT_NEAR(std::sqrt(sq / n), 0.02, 0.001);  // relative standard error of sigma ~0.6%
}

TEST(Sampler, DeterministicForASeed) {
  Shape s = random_shape(200, 3, true);
  SampleOptions o;
  o.num_points = 256;
  o.augment = true;
  std::vector<float> a(768), b(768), c(768);
  std::vector<int32_t> pa(256), pb(256);
  Rng r1(42), r2(42), r3(43);
  sample_shape(s, o, r1, a.data(), pa.data());
  sample_shape(s, o, r2, b.data(), pb.data());
  sample_shape(s, o, r3, c.data(), nullptr);
  EXPECT_EQ(a, b);
  EXPECT_EQ(pa, pb);
  EXPECT_NE(a, c);
  EXPECT_EQ(r1.state(), r2.state());
}

TEST(Sampler, RejectsBadInputs) {
  SampleOptions o;
  std::vector<float> out(3 * o.num_points);
  std::vector<int32_t> parts(o.num_points);
  Rng rng(0);
  Shape empty;
  empty.path = "empty.npy";
  try {
    sample_shape(empty, o, rng, out.data(), nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("empty.npy"), std::string::npos);
  }
  Shape mismatched = random_shape(10, 1, true);
  mismatched.parts.pop_back();
  EXPECT_THROW(sample_shape(mismatched, o, rng, out.data(), parts.data()), Error);
  o.up_axis = 0;
  EXPECT_THROW(sample_shape(random_shape(10, 1), o, rng, out.data(), nullptr), Error);
}

// An error inside the parallel batch assembly reaches the caller as an Error
// (an exception leaving an OpenMP region would terminate the program).
TEST(Sampler, BatchAssemblyErrorsReachTheCaller) {
  Dataset data;
  data.class_names = {"a"};
  for (int i = 0; i < 8; ++i) {
    Shape s;
    s.points = {0, 0, 0, 1, 1, 1};
    data.shapes.push_back(s);
  }
  SampleOptions options;
  options.num_points = 4;
  options.augment = true;
  options.up_axis = 0;  // not a valid up axis: sample_shape refuses it
  std::vector<float> points(8 * 4 * 3);
  std::vector<int32_t> labels(8);
  EXPECT_THROW(assemble_batch(data, {0, 1, 2, 3, 4, 5, 6, 7}, options, 1, false, points.data(), labels.data()), Error);
}

}  // namespace
}  // namespace pointnet
