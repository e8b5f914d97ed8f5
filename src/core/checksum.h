// A fast 64-bit checksum for detecting corrupted or truncated files (dataset
// packs). Not cryptographic. Four independent lanes over 8-byte words keep it
// at memory speed, so verifying a 150 MB pack costs a few tens of ms.
#pragma once
#include <cstddef>
#include <cstdint>

namespace pointnet {

class Checksum64 {
 public:
  void update(const void* data, size_t bytes);
  uint64_t digest() const;

 private:
  void absorb_block(const unsigned char* block);  // 32 bytes
  uint64_t lane_[4] = {0x9E3779B97F4A7C15ULL, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL,
                       0x85EBCA77C2B2AE63ULL};
  unsigned char pending_[32];
  size_t pending_bytes_ = 0;
  uint64_t total_bytes_ = 0;
};

uint64_t checksum64(const void* data, size_t bytes);

}  // namespace pointnet
