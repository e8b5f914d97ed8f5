// Farthest-point sampling (as PointNet++'s sampling layer): picks k of n
// points, each the one farthest from all picked so far, so the subset covers
// the shape evenly where a random draw clumps.
#pragma once
#include <vector>

namespace pointnet {

// `xyz` is (n, 3). Returns k distinct indices into it: `start` first, then
// each next index is the unpicked point whose squared distance to its nearest
// picked point is largest (ties: the lowest index). O(n k) time, O(n) memory,
// deterministic; no shared state, so callers may run it for many clouds in
// parallel. Throws pointnet::Error when k > n, k < 0 or start is not in [0, n).
std::vector<int> farthest_point_sample(const float* xyz, int n, int k, int start = 0);

}  // namespace pointnet
