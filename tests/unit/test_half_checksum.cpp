// The CPU half-precision conversions and the pack checksum.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "core/checksum.h"
#include "core/half.h"

namespace pointnet {
namespace {

TEST(Half, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t h = 0; h < 0x10000u; ++h) {
    const float f = half_to_float(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(half_to_float(float_to_half(f)))) << std::hex << h;
      continue;
    }
    EXPECT_EQ(float_to_half(f), h) << std::hex << h << " -> " << f;
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(float_to_half(1.0f), 0x3C00);
  EXPECT_EQ(float_to_half(-2.0f), 0xC000);
  EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);                 // largest finite half
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -24)), 0x0001);    // smallest subnormal
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -14)), 0x0400);    // smallest normal
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);                     // numpy.float16(0.1).view(uint16)
  EXPECT_EQ(float_to_half(-0.0f), 0x8000);
  EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(float_to_half(1e6f), 0x7C00);                      // overflow -> inf
  EXPECT_EQ(float_to_half(65519.0f), 0x7BFF);                 // below the rounding boundary
  EXPECT_EQ(float_to_half(65520.0f), 0x7C00);                 // halfway to 2^16: ties to even -> inf
  EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(Half, Bfloat16IsTheTopHalfOfAFloat) {
  EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
  EXPECT_EQ(bfloat16_to_float(0xC000), -2.0f);
  EXPECT_EQ(bfloat16_to_float(0x3F81), 1.0f + std::ldexp(1.0f, -7));  // one ulp above 1
  EXPECT_EQ(bfloat16_to_float(0x0001), std::ldexp(1.0f, -133));       // smallest subnormal
  EXPECT_TRUE(std::signbit(bfloat16_to_float(0x8000)));
  EXPECT_EQ(bfloat16_to_float(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(bfloat16_to_float(0x7FC0)));
}

TEST(Half, RoundsToNearestTiesToEven) {
  // 1 + 2^-11 is halfway between 1 (even mantissa) and 1 + 2^-10: rounds down.
  EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
  // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 (odd) and 1 + 2^-9: rounds up.
  EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
  // Just above halfway rounds up.
  EXPECT_EQ(float_to_half(std::nextafter(1.0f + std::ldexp(1.0f, -11), 2.0f)), 0x3C01);
  // Subnormals: 1.5 * 2^-24 ties to 2 * 2^-24 (even); 2^-25 ties to 0.
  EXPECT_EQ(float_to_half(1.5f * std::ldexp(1.0f, -24)), 0x0002);
  EXPECT_EQ(float_to_half(std::ldexp(1.0f, -25)), 0x0000);
  EXPECT_EQ(float_to_half(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
}

TEST(Half, ErrorIsWithinHalfAnUlpOverTheUnitRange) {
  for (int i = -10000; i <= 10000; ++i) {
    const float f = static_cast<float>(i) * 1.2345e-4f;
    const float back = half_to_float(float_to_half(f));
    EXPECT_LE(std::fabs(back - f), std::fabs(f) * std::ldexp(1.0f, -11) + std::ldexp(1.0f, -25)) << f;
  }
}

TEST(Checksum, StreamingEqualsOneShotForEverySplit) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  const uint64_t whole = checksum64(data.data(), data.size());
  for (size_t cut : {0, 1, 7, 31, 32, 33, 500, 999, 1000}) {
    Checksum64 c;
    c.update(data.data(), cut);
    c.update(data.data() + cut, data.size() - cut);
    EXPECT_EQ(c.digest(), whole) << "split at " << cut;
  }
}

TEST(Checksum, EveryBitFlipAndLengthChangeIsSeen) {
  std::string data(100, 'x');
  const uint64_t base = checksum64(data.data(), data.size());
  for (size_t byte = 0; byte < data.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string changed = data;
      changed[byte] = static_cast<char>(changed[byte] ^ (1 << bit));
      EXPECT_NE(checksum64(changed.data(), changed.size()), base) << byte << ":" << bit;
    }
  }
  EXPECT_NE(checksum64(data.data(), 99), base);
  std::string zeros(64, '\0');
  EXPECT_NE(checksum64(zeros.data(), 64), checksum64(zeros.data(), 63));  // trailing zeros count
}

// The 8-lane variant (pack format 3) streams and sees changes as the 4-lane one does.
TEST(Checksum, EightLanesStreamAndSeeEveryChange) {
  std::string data(1000, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  const uint64_t whole = checksum64x8(data.data(), data.size());
  EXPECT_NE(whole, checksum64(data.data(), data.size()));
  for (size_t cut : {0, 1, 63, 64, 65, 500, 999, 1000}) {
    Checksum64x8 c;
    c.update(data.data(), cut);
    c.update(data.data() + cut, data.size() - cut);
    EXPECT_EQ(c.digest(), whole) << "split at " << cut;
  }
  for (size_t byte = 0; byte < 200; ++byte) {
    std::string changed = data;
    changed[byte] = static_cast<char>(changed[byte] ^ 1);
    EXPECT_NE(checksum64x8(changed.data(), changed.size()), whole) << byte;
  }
  EXPECT_NE(checksum64x8(data.data(), 999), whole);
}

}  // namespace
}  // namespace pointnet
