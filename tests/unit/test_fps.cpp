// Farthest-point sampling (data/fps.h) against a brute-force definition.
#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <numeric>
#include <random>

#include "core/errors.h"
#include "data/fps.h"

namespace pointnet {
namespace {

std::vector<float> random_cloud(int n, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> xyz(3 * static_cast<size_t>(n));
  for (float& v : xyz) v = u(gen);
  return xyz;
}

float squared_distance(const std::vector<float>& xyz, int a, int b) {
  float d = 0;
  for (int c = 0; c < 3; ++c) d += (xyz[3 * a + c] - xyz[3 * b + c]) * (xyz[3 * a + c] - xyz[3 * b + c]);
  return d;
}

// The definition, computed from scratch at every step: the next pick maximises
// the distance to the nearest already-picked point (lowest index on ties).
std::vector<int> brute_force_fps(const std::vector<float>& xyz, int n, int k, int start) {
  std::vector<int> picked{start};
  while (static_cast<int>(picked.size()) < k) {
    int best = -1;
    float best_d = -1;
    for (int i = 0; i < n; ++i) {
      if (std::find(picked.begin(), picked.end(), i) != picked.end()) continue;
      float nearest = std::numeric_limits<float>::infinity();
      for (int p : picked) nearest = std::min(nearest, squared_distance(xyz, i, p));
      if (nearest > best_d) {
        best_d = nearest;
        best = i;
      }
    }
    picked.push_back(best);
  }
  return picked;
}

TEST(Fps, EachPickIsTheFarthestFromThoseChosen) {
  for (unsigned seed = 1; seed <= 5; ++seed) {
    const int n = 40 + 7 * static_cast<int>(seed);
    const std::vector<float> xyz = random_cloud(n, seed);
    const int start = static_cast<int>(seed) % n;
    EXPECT_EQ(farthest_point_sample(xyz.data(), n, 16, start), brute_force_fps(xyz, n, 16, start)) << "seed " << seed;
  }
}

TEST(Fps, AllPointsGiveAPermutationEvenWithDuplicates) {
  std::vector<float> xyz = random_cloud(30, 9);
  for (int i = 20; i < 30; ++i)  // ten exact copies of earlier points
    std::copy(xyz.begin() + 3 * (i - 20), xyz.begin() + 3 * (i - 19), xyz.begin() + 3 * i);
  std::vector<int> order = farthest_point_sample(xyz.data(), 30, 30, 3);
  ASSERT_EQ(order.size(), 30u);
  EXPECT_EQ(order[0], 3);
  std::sort(order.begin(), order.end());
  std::vector<int> all(30);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ(order, all);
}

TEST(Fps, PicksTheCornersOfALineFirst) {
  // Points on the x axis at 0..9: from 4, the farthest is 9, then 0.
  std::vector<float> xyz(30, 0.0f);
  for (int i = 0; i < 10; ++i) xyz[3 * i] = static_cast<float>(i);
  EXPECT_EQ(farthest_point_sample(xyz.data(), 10, 3, 4), (std::vector<int>{4, 9, 0}));
}

TEST(Fps, RefusesImpossibleRequests) {
  const std::vector<float> xyz = random_cloud(5, 1);
  EXPECT_THROW(farthest_point_sample(xyz.data(), 5, 6, 0), Error);
  EXPECT_THROW(farthest_point_sample(xyz.data(), 5, -1, 0), Error);
  EXPECT_THROW(farthest_point_sample(xyz.data(), 5, 2, 5), Error);
  EXPECT_TRUE(farthest_point_sample(xyz.data(), 5, 0, 0).empty());
}

}  // namespace
}  // namespace pointnet
