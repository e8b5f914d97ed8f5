#include "fuzz_common.h"
#include "io/pcd.h"

POINTNET_FUZZ_TARGET({
  size_t dropped = 0;
  pointnet::Cloud c = pointnet::parse_pcd(pointnet::fuzz::as_text(data, size), "fuzz.pcd", &dropped);
  pointnet::fuzz::check_cloud(c, true);  // non-finite points are dropped, never returned
  for (float v : c.normals)
    if (!(v - v == 0)) __builtin_trap();
})
