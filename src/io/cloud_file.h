// One point cloud from a file, whatever its format: .npy (n, >=3), .off mesh
// (sampled over its surface), .pts/.txt/.xyz text. The one place that decides
// what a cloud file is, for the dataset loader and for `predict` alike.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

// Returns (n, 3) xyz, n >= 1, all finite; throws pointnet::Error naming the
// file otherwise. `mesh_points` and `seed` drive .off surface sampling.
std::vector<float> read_cloud_file(const std::string& path, int mesh_points, uint64_t seed);

// Whether read_cloud_file knows the file's extension.
bool is_cloud_file(const std::string& path);

}  // namespace pointnet
