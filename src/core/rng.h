// Deterministic random numbers that are identical on every platform and
// compiler (std::*_distribution is not), so a seed reproduces a run exactly.
#pragma once
#include <cmath>
#include <cstdint>

namespace pointnet {

// splitmix64 (Steele et al.): turns any 64-bit number into a well-spread
// seed. The one mixing function for deriving seeds (per file, shape, batch).
inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// PCG32 (O'Neill, pcg-random.org): small state, good statistics, can be saved
// to a checkpoint as two integers.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t stream = 0x853c49e6748fea9bULL) { reseed(seed, stream); }

  void reseed(uint64_t seed, uint64_t stream = 0x853c49e6748fea9bULL) {
    state_ = 0;
    inc_ = (stream << 1u) | 1u;
    next_u32();
    state_ += seed;
    next_u32();
  }

  uint32_t next_u32() {
    uint64_t old = state_;
    state_ = old * 6364136223846793005ULL + inc_;
    uint32_t xorshifted = static_cast<uint32_t>(((old >> 18u) ^ old) >> 27u);
    uint32_t rot = static_cast<uint32_t>(old >> 59u);
    return (xorshifted >> rot) | (xorshifted << ((-rot) & 31));
  }

  // Uniform in [0, 1) with 24 random bits (exactly representable as float).
  float uniform() { return static_cast<float>(next_u32() >> 8) * (1.0f / 16777216.0f); }
  // Uniform in [lo, hi).
  float uniform(float lo, float hi) { return lo + (hi - lo) * uniform(); }
  // Uniform integer in [0, n), n > 0, without modulo bias.
  uint32_t below(uint32_t n) {
    uint32_t threshold = (-n) % n;
    for (;;) {
      uint32_t r = next_u32();
      if (r >= threshold) return r % n;
    }
  }
  // Standard normal (Box-Muller; one value per call, the pair's twin discarded
  // so the stream position does not depend on call history).
  float normal() {
    float u1 = uniform();
    float u2 = uniform();
    if (u1 < 1e-12f) u1 = 1e-12f;
    return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530717958647692f * u2);
  }

  uint64_t state() const { return state_; }
  uint64_t increment() const { return inc_; }
  void restore(uint64_t state, uint64_t increment) { state_ = state; inc_ = increment; }

 private:
  uint64_t state_ = 0;
  uint64_t inc_ = 1;
};

}  // namespace pointnet
