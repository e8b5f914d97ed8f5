#include "core/rng.h"
#include "fuzz_common.h"
#include "io/off.h"

POINTNET_FUZZ_TARGET({
  pointnet::Mesh mesh = pointnet::parse_off(std::string(pointnet::fuzz::as_text(data, size)), "fuzz.off");
  if (mesh.num_triangles() > 0) {
    pointnet::Rng rng(1);
    std::vector<float> normals;
    std::vector<float> xyz = pointnet::sample_mesh_surface(mesh, 32, rng, &normals);
    if (xyz.size() != 96 || normals.size() != 96) __builtin_trap();
  }
})
