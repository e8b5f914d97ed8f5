#include "io/scalar_types.h"

namespace pointnet {

bool ply_scalar_type(const std::string& name, ScalarType* out) {
  static const struct { const char* name; ScalarType type; } kNames[] = {
      {"char", ScalarType::I8},    {"int8", ScalarType::I8},      {"uchar", ScalarType::U8},
      {"uint8", ScalarType::U8},   {"short", ScalarType::I16},    {"int16", ScalarType::I16},
      {"ushort", ScalarType::U16}, {"uint16", ScalarType::U16},   {"int", ScalarType::I32},
      {"int32", ScalarType::I32},  {"uint", ScalarType::U32},     {"uint32", ScalarType::U32},
      {"float", ScalarType::F32},  {"float32", ScalarType::F32},  {"double", ScalarType::F64},
      {"float64", ScalarType::F64}};
  for (const auto& n : kNames) {
    if (name == n.name) { *out = n.type; return true; }
  }
  return false;
}

bool pcd_scalar_type(char type, size_t size, ScalarType* out) {
  if (type == 'F' && (size == 4 || size == 8)) {
    *out = size == 4 ? ScalarType::F32 : ScalarType::F64;
    return true;
  }
  if (type != 'I' && type != 'U') return false;
  const bool s = type == 'I';
  switch (size) {
    case 1: *out = s ? ScalarType::I8 : ScalarType::U8; return true;
    case 2: *out = s ? ScalarType::I16 : ScalarType::U16; return true;
    case 4: *out = s ? ScalarType::I32 : ScalarType::U32; return true;
    case 8: *out = s ? ScalarType::I64 : ScalarType::U64; return true;
    default: return false;
  }
}

}  // namespace pointnet
