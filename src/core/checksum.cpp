#include "core/checksum.h"

#include <algorithm>
#include <cstring>

namespace pointnet {
namespace {

constexpr uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
// Lane seeds; the first four are Checksum64's since version 1 of the pack format.
constexpr uint64_t kSeed[8] = {0x9E3779B97F4A7C15ULL, 0xC2B2AE3D27D4EB4FULL, 0x165667B19E3779F9ULL,
                               0x85EBCA77C2B2AE63ULL, 0x27D4EB2F165667C5ULL, 0x94D049BB133111EBULL,
                               0xBF58476D1CE4E5B9ULL, 0xFF51AFD7ED558CCDULL};
constexpr int kDigestRotation[8] = {1, 7, 12, 18, 23, 29, 34, 40};

inline uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

inline uint64_t load64(const unsigned char* p) {  // little-endian on every host
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  uint64_t v;
  std::memcpy(&v, p, 8);  // one load (a byte loop is not always fused into one)
  return v;
#else
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | p[k];
  return v;
#endif
}

inline uint64_t mix(uint64_t lane, uint64_t word) { return rotl(lane + word * kPrime2, 31) * kPrime1; }

inline uint64_t finalize(uint64_t h) {  // splitmix64's avalanche
  h ^= h >> 30;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 27;
  h *= 0x94D049BB133111EBULL;
  return h ^ (h >> 31);
}

}  // namespace

template <int Lanes>
LaneChecksum<Lanes>::LaneChecksum() {
  static_assert(Lanes >= 1 && Lanes <= 8, "seeds for up to 8 lanes");
  std::copy(kSeed, kSeed + Lanes, lane_);
}

template <int Lanes>
void LaneChecksum<Lanes>::update(const void* data, size_t bytes) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  total_bytes_ += bytes;
  // The lanes live in a local array (registers) for the bulk: through lane_,
  // every store might alias the input (read as unsigned char), 10x slower.
  uint64_t l[Lanes];
  std::copy(lane_, lane_ + Lanes, l);
  auto absorb = [&l](const unsigned char* block) {
#pragma GCC unroll 8
    for (int k = 0; k < Lanes; ++k) l[k] = mix(l[k], load64(block + 8 * k));
  };
  if (pending_bytes_ > 0) {
    const size_t take = std::min(bytes, kBlock - pending_bytes_);
    std::memcpy(pending_ + pending_bytes_, p, take);
    pending_bytes_ += take;
    p += take;
    bytes -= take;
    if (pending_bytes_ < kBlock) return;
    absorb(pending_);
    pending_bytes_ = 0;
  }
  for (; bytes >= kBlock; p += kBlock, bytes -= kBlock) absorb(p);
  std::copy(l, l + Lanes, lane_);
  std::memcpy(pending_, p, bytes);
  pending_bytes_ = bytes;
}

template <int Lanes>
uint64_t LaneChecksum<Lanes>::digest() const {
  uint64_t h = 0;
  for (int k = 0; k < Lanes; ++k) h += rotl(lane_[k], kDigestRotation[k]);
  for (size_t i = 0; i < pending_bytes_; ++i) h = mix(h, pending_[i] + 0x100ULL * (i + 1));
  return finalize(h ^ total_bytes_);
}

template class LaneChecksum<4>;
template class LaneChecksum<8>;

uint64_t checksum64(const void* data, size_t bytes) {
  Checksum64 c;
  c.update(data, bytes);
  return c.digest();
}

uint64_t checksum64x8(const void* data, size_t bytes) {
  Checksum64x8 c;
  c.update(data, bytes);
  return c.digest();
}

}  // namespace pointnet
