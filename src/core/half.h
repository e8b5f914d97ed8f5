// IEEE 754 half precision (binary16) on the CPU, for .npy '<f2' data and f16
// dataset packs. Portable bit manipulation: no F16C or compiler extensions.
#pragma once
#include <cstdint>

namespace pointnet {

// Exact: every half is a float.
float half_to_float(uint16_t h);

// bfloat16 (the top 16 bits of a float) to float: exact.
float bfloat16_to_float(uint16_t b);

// Round to nearest, ties to even (what numpy and CUDA's __float2half_rn do);
// overflow gives +-inf, NaN stays NaN.
uint16_t float_to_half(float f);

}  // namespace pointnet
