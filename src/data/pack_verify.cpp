#include "data/pack_verify.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/checksum.h"
#include "core/errors.h"
#include "core/idle_threads.h"
#include "core/parallel_for.h"
#include "data/pack.h"
#include "data/pack_format.h"

namespace pointnet::pack {
namespace {

constexpr uint64_t kNone = std::numeric_limits<uint64_t>::max();
constexpr size_t kBlock = size_t(64) << 10;  // checksum and scan a block while it is in L2

// Feeds file bytes [a, b) to `c`, the stored checksum's 8 bytes as zeros.
template <typename Sum>
void absorb(Sum& c, const unsigned char* file, size_t a, size_t b) {
  static const unsigned char zeros[8] = {};
  const size_t z0 = kChecksumAt, z1 = kChecksumAt + 8;
  if (b <= z0 || a >= z1) {
    c.update(file + a, b - a);
    return;
  }
  // Only a range from 0 reaches here (chunks start at multiples of 1 MiB; files hold >= 32 bytes).
  c.update(file + a, z0 - a);
  c.update(zeros, sizeof zeros);
  c.update(file + z1, b - z1);
}

// File offset of the first f32 in [lo, hi) whose exponent is all ones (NaN, Inf), or kNone.
uint64_t first_nonfinite(const unsigned char* file, uint64_t lo, uint64_t hi) {
  const unsigned char* p = file + lo;
  const size_t n = (hi - lo) / 4;
  auto exponent_gap = [p](size_t i) {  // 0 exactly when the exponent bits are all ones
    uint32_t bits;
    std::memcpy(&bits, p + 4 * i, 4);
    return ~bits & 0x7f800000u;
  };
  uint32_t least = 0x7f800000u;  // a min reduction: vectorised, no branch per value
  for (size_t i = 0; i < n; ++i) least = std::min(least, exponent_gap(i));
  if (least != 0) return kNone;
  for (size_t i = 0; i < n; ++i)
    if (exponent_gap(i) == 0) return lo + 4 * i;
  return kNone;
}

uint64_t scan_ranges(const unsigned char* file, uint64_t a, uint64_t b, const std::vector<ByteRange>& ranges) {
  uint64_t first = kNone;
  for (const ByteRange& r : ranges) {
    const uint64_t lo = std::max(r.begin, a), hi = std::min(r.end, b);
    if (lo < hi) first = std::min(first, first_nonfinite(file, lo, hi));
  }
  return first;
}

// One 1 MiB chunk of a version-3 pack: its checksum, and the first non-finite value in it.
uint64_t chunk_pass(const unsigned char* file, size_t a, size_t b, const std::vector<ByteRange>& ranges,
                    uint64_t& nonfinite) {
  Checksum64x8 c;
  nonfinite = kNone;
  for (size_t x = a; x < b; x += kBlock) {
    const size_t y = std::min(b, x + kBlock);
    absorb(c, file, x, y);
    if (nonfinite == kNone) nonfinite = scan_ranges(file, x, y, ranges);
  }
  return c.digest();
}

size_t chunk_count(size_t size) { return (size + kChecksumChunk - 1) / kChecksumChunk; }

// Version 3: every chunk's digest and first non-finite value, the chunks spread over the cores.
std::vector<uint64_t> chunk_digests(const unsigned char* file, size_t size, const std::vector<ByteRange>& ranges,
                                    std::vector<uint64_t>& nonfinite) {
  std::vector<uint64_t> digests(chunk_count(size));
  nonfinite.assign(digests.size(), kNone);
  parallel_for(digests.size(), [&](size_t i) {
    digests[i] = chunk_pass(file, i * kChecksumChunk, std::min(size, (i + 1) * kChecksumChunk), ranges, nonfinite[i]);
  }, idle_threads());
  return digests;
}

uint64_t combine(size_t size, const std::vector<uint64_t>& digests) {
  std::string list(8 * (digests.size() + 1), '\0');
  put_le(list, 0, size, 8);
  for (size_t i = 0; i < digests.size(); ++i) put_le(list, 8 * (i + 1), digests[i], 8);
  return checksum64x8(list.data(), list.size());
}

}  // namespace

uint64_t file_checksum(const unsigned char* file, size_t size, uint32_t version) {
  if (version < 3) {
    Checksum64 c;
    absorb(c, file, 0, size);
    return c.digest();
  }
  std::vector<uint64_t> unused;
  return combine(size, chunk_digests(file, size, {}, unused));
}

Verdict verify(const unsigned char* file, size_t size, uint32_t version, const std::vector<ByteRange>& finite_f32) {
  Verdict v;
  const uint64_t stored = get_le(file + kChecksumAt, 8);
  std::vector<uint64_t> nonfinite;
  if (version >= 3) {
    v.checksum_ok = combine(size, chunk_digests(file, size, finite_f32, nonfinite)) == stored;
  } else {  // one sequential sum, then the scan over the cores
    v.checksum_ok = file_checksum(file, size, version) == stored;
    nonfinite.assign(chunk_count(size), kNone);
    parallel_for(nonfinite.size(), [&](size_t i) {
      nonfinite[i] = scan_ranges(file, i * kChecksumChunk, std::min(size, (i + 1) * kChecksumChunk), finite_f32);
    }, idle_threads());
  }
  v.first_nonfinite = *std::min_element(nonfinite.begin(), nonfinite.end());
  return v;
}

}  // namespace pointnet::pack

namespace pointnet {

uint64_t pack_checksum(const void* file, size_t size) {
  const unsigned char* p = static_cast<const unsigned char*>(file);
  PN_CHECK(size >= pack::kFixedHeader);
  return pack::file_checksum(p, size, static_cast<uint32_t>(pack::get_le(p + 8, 4)));
}

}  // namespace pointnet
