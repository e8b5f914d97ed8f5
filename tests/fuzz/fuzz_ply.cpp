#include "fuzz_common.h"
#include "io/ply.h"

POINTNET_FUZZ_TARGET({
  pointnet::CloudReadOptions options;
  options.mesh_points = 64;  // meshes are sampled too
  pointnet::fuzz::check_cloud(pointnet::parse_ply(pointnet::fuzz::as_text(data, size), "fuzz.ply", options), false);
})
