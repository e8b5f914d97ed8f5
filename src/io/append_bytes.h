// Appending values to an output buffer, for the .ply and .pcd writers:
// little-endian bytes whatever the host, or the shortest decimal text that
// reads back to the same value.
#pragma once
#include <charconv>
#include <cstdint>
#include <cstring>
#include <string>

namespace pointnet {

inline void append_u32_le(std::string& out, uint32_t v) {
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xff));
}

inline void append_f32_le(std::string& out, float f) {
  uint32_t v;
  std::memcpy(&v, &f, 4);
  append_u32_le(out, v);
}

template <class T>
void append_text(std::string& out, T v) {
  char buf[32];
  auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form for floats
  out.append(buf, r.ptr);
}

}  // namespace pointnet
