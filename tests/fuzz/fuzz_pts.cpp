// ShapeNet part text: .pts points and .seg labels.
#include "fuzz_common.h"
#include "io/shapenet_text.h"

POINTNET_FUZZ_TARGET({
  const std::string text(pointnet::fuzz::as_text(data, size));
  try {
    if (pointnet::parse_pts(text, "fuzz.pts").size() % 3 != 0) __builtin_trap();
  } catch (const pointnet::Error&) {
  }
  for (int32_t label : pointnet::parse_seg(text, "fuzz.seg"))
    if (label < 0) __builtin_trap();
})
