// One point cloud from a file, whatever its format: .npy (n, >=3), .off and
// .ply meshes (sampled over their surface), .ply and .pcd clouds,
// .pts/.txt/.xyz text. The one place that decides
// what a cloud file is, for the dataset loader and for `predict` alike.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

// What a cloud file holds. Readers fill what their format carries; the
// optional parts are empty when the file has none.
struct Cloud {
  std::vector<float> xyz;        // (n, 3), n >= 1, all finite
  std::vector<float> normals;    // (n, 3) or empty (.off/.ply meshes: the sampled face's normal)
  std::vector<int32_t> labels;   // (n) per-point labels (non-negative part numbers), or empty
  int num_points() const { return static_cast<int>(xyz.size() / 3); }
};

struct CloudReadOptions {
  int mesh_points = 2048;  // points sampled over a mesh's surface
  uint64_t seed = 0;       // seeds that sampling
};

// What reading a file left out, for the caller to report.
struct CloudReadReport {
  size_t dropped_points = 0;  // .pcd points with non-finite xyz/normals (organised clouds' "no return")
};

// Reads any known cloud file; throws pointnet::Error naming the file, the
// position and what was expected. xyz (and normals, when present) are all finite.
// Without a `report`, dropped points are logged to stderr (one line per file).
Cloud read_cloud(const std::string& path, const CloudReadOptions& options, CloudReadReport* report = nullptr);

// Returns (n, 3) xyz, n >= 1, all finite; throws pointnet::Error naming the
// file otherwise. `mesh_points` and `seed` drive mesh surface sampling.
// Dropped points are logged to stderr, one line per file that had any.
std::vector<float> read_cloud_file(const std::string& path, int mesh_points, uint64_t seed);

// Whether read_cloud_file knows the file's extension.
bool is_cloud_file(const std::string& path);

}  // namespace pointnet
