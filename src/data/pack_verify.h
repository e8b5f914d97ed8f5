// Verifies a whole dataset pack in one pass over its bytes, near memory speed:
// the checksum and, in the same pass (while each block is in cache), that the
// f32 values of the given byte ranges are finite (one NaN would poison a
// training run). Version 3 sums 1 MiB chunks independently, so the chunks
// spread over the idle cores (core/idle_threads.h); versions 1-2 have one
// sequential sum.
#pragma once
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

namespace pointnet::pack {

constexpr size_t kChecksumChunk = size_t(1) << 20;

// What bytes 24..32 of a pack must hold, with those bytes read as zero.
// Version 3: c_i = checksum64x8 of the i-th 1 MiB chunk of the file (the last
// may be shorter), then checksum64x8 of the u64 LE list (file size, c_0, c_1, ...).
// Versions 1-2: checksum64 of the whole file. `size` >= 32.
uint64_t file_checksum(const unsigned char* file, size_t size, uint32_t version);

struct ByteRange {
  uint64_t begin = 0, end = 0;  // file offsets of f32 values; begin a multiple of 4
};

struct Verdict {
  bool checksum_ok = false;
  uint64_t first_nonfinite = std::numeric_limits<uint64_t>::max();  // file offset of the first NaN/Inf f32
};

// Compares file_checksum with the stored one and scans `finite_f32`. `size` >= 32.
Verdict verify(const unsigned char* file, size_t size, uint32_t version, const std::vector<ByteRange>& finite_f32);

}  // namespace pointnet::pack
