// Pieces of our sealed binary files (dataset packs, engines): little-endian
// integers at fixed offsets, and a checksum over the whole file that reads its
// own 8 bytes as zero, so a flipped byte anywhere is caught.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/checksum.h"

namespace pointnet {

inline void put_le(std::string& out, size_t at, uint64_t value, int bytes) {
  for (int k = 0; k < bytes; ++k) out[at + k] = static_cast<char>((value >> (8 * k)) & 0xff);
}

inline uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

// Checksum of p[0, size) with the 8 bytes at checksum_at read as zero.
inline uint64_t sealed_checksum(const unsigned char* p, size_t size, size_t checksum_at) {
  const unsigned char zeros[8] = {};
  Checksum64 c;
  c.update(p, checksum_at);
  c.update(zeros, sizeof zeros);
  c.update(p + checksum_at + 8, size - checksum_at - 8);
  return c.digest();
}

}  // namespace pointnet
