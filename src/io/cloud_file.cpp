#include "io/cloud_file.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/errors.h"
#include "core/rng.h"
#include "io/npy.h"
#include "io/off.h"
#include "io/pcd.h"
#include "io/ply.h"
#include "io/text_cloud.h"

namespace pointnet {

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::vector<float> npy_xyz(const std::string& path) {
  NpyArray a = read_npy(path);
  if (a.shape.size() != 2 || a.shape[1] < 3) {
    std::string found = "(";
    for (size_t i = 0; i < a.shape.size(); ++i) found += (i ? ", " : "") + std::to_string(a.shape[i]);
    fail(path, ": expected an array of shape (n, 3) or (n, >=3), found shape ", found, ")");
  }
  const size_t n = static_cast<size_t>(a.shape[0]), cols = static_cast<size_t>(a.shape[1]);
  for (size_t i = 0; i < n; ++i)  // checked here, where the byte offset is known (read_cloud checks again)
    for (size_t k = 0; k < 3; ++k)
      if (!std::isfinite(a.values[i * cols + k]))
        fail(path, ": byte ", a.byte_of(i * cols + k), ": point ", i, " coordinate ", k, " is ", a.values[i * cols + k],
             ": expected a finite number (within float range)");
  if (cols == 3) return std::move(a.values);
  std::vector<float> xyz(n * 3);
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < 3; ++k) xyz[3 * i + k] = a.values[i * cols + k];
  return xyz;
}

}  // namespace

bool is_cloud_file(const std::string& path) {
  const std::string ext = lower_extension(path);
  return ext == ".npy" || ext == ".off" || ext == ".ply" || ext == ".pcd" || ext == ".pts" || ext == ".txt" ||
         ext == ".xyz";
}

Cloud read_cloud(const std::string& path, const CloudReadOptions& options, CloudReadReport* report) {
  if (!report) {  // nobody to hand the report to: say it here
    CloudReadReport own;
    Cloud cloud = read_cloud(path, options, &own);
    if (own.dropped_points)
      std::fprintf(stderr, "%s: dropped %zu points with non-finite coordinates (kept %d)\n", path.c_str(),
                   own.dropped_points, cloud.num_points());
    return cloud;
  }
  const std::string ext = lower_extension(path);
  Cloud cloud;
  *report = CloudReadReport{};
  if (ext == ".npy") {
    cloud.xyz = npy_xyz(path);
  } else if (ext == ".off") {
    Rng rng(options.seed);
    cloud.xyz = sample_mesh_surface(read_off(path), options.mesh_points, rng, &cloud.normals);
  } else if (ext == ".ply") {
    cloud = read_ply(path, options);
  } else if (ext == ".pcd") {
    cloud = read_pcd(path, &report->dropped_points);
  } else if (ext == ".pts" || ext == ".txt" || ext == ".xyz") {
    cloud = read_text_cloud(path);  // xyz, plus normals and labels when the rows have them
  } else {
    fail(path, ": unknown file type '", ext, "' (expected .npy, .off, .ply, .pcd, .pts, .txt or .xyz)");
  }
  const std::vector<float>& xyz = cloud.xyz;
  if (xyz.empty()) fail(path, ": empty point cloud: expected at least one point");
  for (size_t i = 0; i < xyz.size(); ++i)
    if (!std::isfinite(xyz[i]))
      fail(path, ": point ", i / 3, " coordinate ", i % 3, " is ", xyz[i], ": expected a finite number");
  for (size_t i = 0; i < cloud.normals.size(); ++i)
    if (!std::isfinite(cloud.normals[i]))
      fail(path, ": point ", i / 3, " normal component ", i % 3, " is ", cloud.normals[i],
           ": expected a finite number");
  return cloud;
}

std::vector<float> read_cloud_file(const std::string& path, int mesh_points, uint64_t seed) {
  return read_cloud(path, CloudReadOptions{mesh_points, seed}).xyz;
}

}  // namespace pointnet
