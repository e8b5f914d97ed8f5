#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/rng.h"
#include "io/lzf.h"

namespace pointnet {
namespace {

using Bytes = std::vector<unsigned char>;

Bytes from_hex(const std::string& hex) {
  Bytes out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<unsigned char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

Bytes decode(const std::string& packed, size_t size) {
  Bytes out(size);
  lzf_decompress(reinterpret_cast<const unsigned char*>(packed.data()), packed.size(), out.data(), size, "t");
  return out;
}

void expect_round_trip(const Bytes& raw) {
  const std::string packed = lzf_compress(raw.data(), raw.size());
  EXPECT_LE(packed.size(), raw.size() + raw.size() / 32 + 1);
  EXPECT_EQ(decode(packed, raw.size()), raw);
}

TEST(Lzf, RoundTripsAllKindsOfInput) {
  expect_round_trip({});
  expect_round_trip({42});
  expect_round_trip({1, 2});
  expect_round_trip(Bytes(100000, 0));  // long runs: many maximal (264-byte) back references
  Rng rng(3);
  Bytes random(70000);
  for (auto& b : random) b = static_cast<unsigned char>(rng.next_u32());
  expect_round_trip(random);  // incompressible: literal runs only
  // Repeats at distances around the 8192-byte window limit.
  for (size_t distance : {1u, 2u, 8191u, 8192u, 8193u, 9000u}) {
    Bytes r(distance + 3000);
    for (size_t i = 0; i < distance; ++i) r[i] = static_cast<unsigned char>(rng.next_u32());
    for (size_t i = distance; i < r.size(); ++i) r[i] = r[i - distance];
    expect_round_trip(r);
  }
  // Float data like a point cloud's, which PCD compresses.
  Bytes floats(4 * 30000);
  for (size_t i = 0; i < floats.size(); ++i) floats[i] = static_cast<unsigned char>((i % 4 == 3) ? 0x3f : (i * 7) % 13);
  expect_round_trip(floats);
}

TEST(Lzf, CompressesRepetitiveData) {
  Bytes zeros(10000, 0);
  EXPECT_LT(lzf_compress(zeros.data(), zeros.size()).size(), 200u);
}

nlohmann::json liblzf_vector() {
  std::ifstream in(std::string(POINTNET_SOURCE_DIR) + "/tests/data/formats/expected.json");
  return nlohmann::json::parse(in)["lzf"];
}

// A vector that liblzf's lzf_compress produced (python-lzf, tests/data/formats/make_fixtures.py).
TEST(Lzf, DecodesLiblzfOutput) {
  const nlohmann::json v = liblzf_vector();
  const Bytes raw = from_hex(v["raw_hex"]), packed = from_hex(v["compressed_hex"]);
  ASSERT_LT(packed.size(), raw.size());  // it does contain back references
  Bytes out(raw.size());
  lzf_decompress(packed.data(), packed.size(), out.data(), out.size(), "liblzf");
  EXPECT_EQ(out, raw);
}

TEST(Lzf, RefusesEveryTruncationAndWrongSize) {
  const nlohmann::json v = liblzf_vector();
  const Bytes raw = from_hex(v["raw_hex"]), packed = from_hex(v["compressed_hex"]);
  Bytes out(raw.size());
  for (size_t cut = 0; cut < packed.size(); ++cut)
    EXPECT_THROW(lzf_decompress(packed.data(), cut, out.data(), out.size(), "cut"), Error) << cut;
  Bytes small(raw.size() - 1), big(raw.size() + 1);
  EXPECT_THROW(lzf_decompress(packed.data(), packed.size(), small.data(), small.size(), "small"), Error);
  EXPECT_THROW(lzf_decompress(packed.data(), packed.size(), big.data(), big.size(), "big"), Error);
}

TEST(Lzf, RefusesCorruptReferencesNamingTheByte) {
  // One literal byte, then a back reference 3 bytes back: before the output's start.
  const Bytes bad = {0x00, 'a', 0x20, 0x02};
  Bytes out(4);
  try {
    lzf_decompress(bad.data(), bad.size(), out.data(), out.size(), "bad.pcd", 100);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("bad.pcd: byte 102"), std::string::npos) << e.what();
  }
  // A literal run longer than the data left.
  const Bytes run = {0x05, 'a', 'b'};
  EXPECT_THROW(lzf_decompress(run.data(), run.size(), out.data(), out.size(), "run"), Error);
}

}  // namespace
}  // namespace pointnet
