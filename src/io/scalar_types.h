// Numeric types as binary point-cloud formats declare them (PLY's "float32",
// "uchar"..., PCD's TYPE/SIZE pairs), and loading one value of any of them
// from bytes in either byte order. Shared by the .ply and .pcd readers (and
// to_float by the .npy one).
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>

namespace pointnet {

enum class ScalarType { I8, U8, I16, U16, I32, U32, I64, U64, F32, F64 };

inline size_t scalar_size(ScalarType t) {
  switch (t) {
    case ScalarType::I8: case ScalarType::U8: return 1;
    case ScalarType::I16: case ScalarType::U16: return 2;
    case ScalarType::I32: case ScalarType::U32: case ScalarType::F32: return 4;
    default: return 8;
  }
}

inline bool scalar_is_float(ScalarType t) { return t == ScalarType::F32 || t == ScalarType::F64; }

// The PLY type names (both the classic and the sized spellings); false if unknown.
bool ply_scalar_type(const std::string& name, ScalarType* out);

// A PCD TYPE letter (F, I, U) with its SIZE; false if the pair is not one PCL defines.
bool pcd_scalar_type(char type, size_t size, ScalarType* out);

// Loads one value stored at `p` (unaligned), converting to double
// (exact for every type but 64-bit integers beyond 2^53).
inline double load_scalar(const unsigned char* p, ScalarType t, bool big_endian) {
  unsigned char b[8];
  const size_t n = scalar_size(t);
  if (big_endian) {
    for (size_t i = 0; i < n; ++i) b[i] = p[n - 1 - i];
  } else {
    std::memcpy(b, p, n);
  }
  switch (t) {
    case ScalarType::I8: return static_cast<int8_t>(b[0]);
    case ScalarType::U8: return b[0];
    case ScalarType::I16: { int16_t v; std::memcpy(&v, b, 2); return v; }
    case ScalarType::U16: { uint16_t v; std::memcpy(&v, b, 2); return v; }
    case ScalarType::I32: { int32_t v; std::memcpy(&v, b, 4); return v; }
    case ScalarType::U32: { uint32_t v; std::memcpy(&v, b, 4); return v; }
    case ScalarType::I64: { int64_t v; std::memcpy(&v, b, 8); return static_cast<double>(v); }
    case ScalarType::U64: { uint64_t v; std::memcpy(&v, b, 8); return static_cast<double>(v); }
    case ScalarType::F32: { float v; std::memcpy(&v, b, 4); return v; }
    case ScalarType::F64: { double v; std::memcpy(&v, b, 8); return v; }
  }
  return 0;
}

// double -> float without undefined behaviour: values beyond float's range
// become +-inf (which the finite checks downstream then refuse), NaN stays NaN.
inline float to_float(double v) {
  constexpr double kMax = 3.4028234663852886e38;
  if (v > kMax) return std::numeric_limits<float>::infinity();
  if (v < -kMax) return -std::numeric_limits<float>::infinity();
  return static_cast<float>(v);
}

}  // namespace pointnet
