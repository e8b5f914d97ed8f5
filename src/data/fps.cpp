#include "data/fps.h"

#include <limits>
#include <type_traits>

#include "core/errors.h"
#include "core/parallel_for.h"
#include "data/dataset.h"

namespace pointnet {

std::vector<int> farthest_point_sample(const float* xyz, int n, int k, int start) {
  if (k < 0 || k > n) fail("farthest-point sampling: asked for ", k, " of ", n, " points: expected 0 <= k <= n");
  std::vector<int> picked;
  if (k == 0) return picked;
  if (start < 0 || start >= n) fail("farthest-point sampling: start index ", start, " is outside 0..", n - 1);
  picked.reserve(static_cast<size_t>(k));
  // nearest[i]: squared distance from point i to its nearest picked point;
  // picked points get -1 so they are never picked again (duplicates are at 0).
  std::vector<float> nearest(static_cast<size_t>(n), std::numeric_limits<float>::infinity());
  int current = start;
  for (int s = 0; s < k; ++s) {
    picked.push_back(current);
    nearest[current] = -1.0f;
    const float cx = xyz[3 * static_cast<size_t>(current)], cy = xyz[3 * static_cast<size_t>(current) + 1],
                cz = xyz[3 * static_cast<size_t>(current) + 2];
    int farthest = -1;
    float farthest_d = -1.0f;
    for (int i = 0; i < n; ++i) {
      const float* p = xyz + 3 * static_cast<size_t>(i);
      const float dx = p[0] - cx, dy = p[1] - cy, dz = p[2] - cz;
      const float d = dx * dx + dy * dy + dz * dz;
      float& best = nearest[i];
      if (best >= 0.0f && d < best) best = d;
      if (best > farthest_d) {  // strict: the lowest index wins a tie
        farthest_d = best;
        farthest = i;
      }
    }
    current = farthest;
  }
  return picked;
}

void keep_farthest_points(Dataset& data, int k) {
  parallel_for(data.shapes.size(), [&](size_t index) {
    Shape& shape = data.shapes[index];
    const int n = shape.num_points();
    if (n <= k) return;
    const std::vector<int> keep = farthest_point_sample(shape.points.data(), n, k);
    auto gather = [&](auto& values, int width) {
      if (values.empty()) return;
      std::vector<std::decay_t<decltype(values[0])>> kept(static_cast<size_t>(k) * width);  // float or int32_t
      for (int i = 0; i < k; ++i)
        for (int c = 0; c < width; ++c) kept[static_cast<size_t>(i) * width + c] = values[static_cast<size_t>(keep[i]) * width + c];
      values = std::move(kept);
    };
    gather(shape.points, 3);
    gather(shape.normals, 3);
    gather(shape.parts, 1);
  });
}

}  // namespace pointnet
