#include "fuzz_common.h"
#include "io/npy.h"

POINTNET_FUZZ_TARGET({
  pointnet::NpyArray a = pointnet::parse_npy(std::string(pointnet::fuzz::as_text(data, size)), "fuzz.npy");
  size_t n = 1;
  for (int64_t d : a.shape) n *= static_cast<size_t>(d);
  if (n != a.values.size()) __builtin_trap();
})
