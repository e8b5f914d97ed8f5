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

struct Dataset;

// --sampling fps (as PointNet++'s --use_uniform_sample): every shape with more
// than k points keeps only its k farthest points (from point 0), with their
// normals and part labels, once, in parallel over shapes. Shapes with k or
// fewer points stay as they are.
void keep_farthest_points(Dataset& data, int k);

}  // namespace pointnet
