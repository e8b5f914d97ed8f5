// Pack format version 3: the chunked checksum is the documented one, f32
// shapes are zero-copy views that outlive their Dataset, the path table and
// non-finite values are checked, and damage anywhere in a multi-chunk file is seen.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/checksum.h"
#include "format_test_helpers.h"
#include "pack_fixtures.h"

namespace pointnet {
namespace {

uint64_t le64(const std::string& bytes, size_t at) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(bytes[at + k]);
  return v;
}

// The JSON header of a pack's bytes, as a reader finds it.
nlohmann::json header_of(const std::string& bytes) {
  return nlohmann::json::parse(bytes.substr(32, le64(bytes, 12) & 0xffffffffu));
}

// Where section `name` starts in the file, and how long it is.
std::pair<size_t, uint64_t> section_of(const std::string& bytes, const char* name) {
  const size_t data = (32 + (le64(bytes, 12) & 0xffffffffu) + 63) / 64 * 64;
  const nlohmann::json s = header_of(bytes)["sections"][name];
  return {data + s["offset"].get<size_t>(), s["bytes"].get<uint64_t>()};
}

TEST(PackChecksum, IsTheDocumentedOnePerVersion) {
  std::string file(3 * (1 << 20) + 12345, '\0');  // three full 1 MiB chunks and a short one
  for (size_t i = 0; i < file.size(); ++i) file[i] = static_cast<char>((i * 2654435761u) >> 13);
  std::string zeroed = file;
  std::memset(&zeroed[24], 0, 8);
  file[8] = 3, zeroed[8] = 3;
  file[9] = file[10] = file[11] = zeroed[9] = zeroed[10] = zeroed[11] = 0;
  // Version 3: checksum64x8 of (file size, one checksum64x8 per 1 MiB chunk), u64 LE each.
  std::vector<uint64_t> list = {file.size()};
  for (size_t at = 0; at < zeroed.size(); at += 1 << 20)
    list.push_back(checksum64x8(zeroed.data() + at, std::min<size_t>(1 << 20, zeroed.size() - at)));
  EXPECT_EQ(pack_checksum(file.data(), file.size()), checksum64x8(list.data(), 8 * list.size()));  // little-endian host
  // Versions 1-2: checksum64 of the whole file.
  file[8] = 2, zeroed[8] = 2;
  EXPECT_EQ(pack_checksum(file.data(), file.size()), checksum64(zeroed.data(), zeroed.size()));
}

TEST_F(PackTest, F32ShapesViewTheFileAndOutliveTheirDataset) {
  const std::string dir = synth("cls");
  write_pack(dir, path("v.pack"), {});
  const Dataset folder = load_dataset(dir, {});
  Shape kept;
  {
    const Dataset packed = load_dataset(path("v.pack"), {});
    for (const Shape& s : packed.shapes) EXPECT_TRUE(s.points.is_view());
    kept = packed.shapes.back();
  }
  EXPECT_EQ(kept.points, folder.shapes.back().points);  // the mapping lives with the view (ASan would see it)
  kept.points.push_back(1.0f);                           // an edit copies: the file is never written
  EXPECT_FALSE(kept.points.is_view());
  EXPECT_EQ(load_dataset(path("v.pack"), {}).shapes.back().points, folder.shapes.back().points);
  PackOptions half;
  half.dtype = "f16";
  write_pack(dir, path("h.pack"), half);
  EXPECT_FALSE(load_dataset(path("h.pack"), {}).shapes.front().points.is_view());  // converted to f32: a copy
}

// train and test of one pack share one mapping, verified once; a pack written
// anew at the same path (a new file: write_pack renames) is mapped anew.
TEST_F(PackTest, SplitsShareTheMappingUntilTheFileChanges) {
  const std::string dir = synth("cls");
  write_pack(dir, path("s.pack"), {});
  LoadOptions test;
  test.split = "test";
  const Dataset train = load_dataset(path("s.pack"), {});
  const Dataset tested = load_dataset(path("s.pack"), test);
  size_t train_values = 0;
  for (const Shape& s : train.shapes) train_values += s.points.size();
  EXPECT_EQ(tested.shapes.front().points.data(), train.shapes.front().points.data() + train_values);
  SynthOptions other;
  other.seed = 7;
  other.points = 50;
  other.train_per_class = 3;
  other.test_per_class = 2;
  write_synthetic_classification(path("other"), other);
  write_pack(path("other"), path("s.pack"), {});
  EXPECT_EQ(load_dataset(path("s.pack"), test).shapes.front().points,
            load_dataset(path("other"), test).shapes.front().points);
  EXPECT_NE(train.shapes.front().points, load_dataset(path("s.pack"), {}).shapes.front().points);
}

TEST_F(CraftedPack, NonFiniteValuesAreRefusedNamingTheByteAndShape) {
  write_pack(synth("cls"), path("ok.pack"), {});
  const std::string bytes = read_file(path("ok.pack"));
  const size_t points = section_of(bytes, "points").first;
  // Shape 1 (50 points each) starts at point 50; its coordinate 4 is point 1's y.
  const size_t at = points + 4 * (3 * 50 + 4);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    std::string damaged = bytes;
    std::memcpy(&damaged[at], &bad, 4);
    std::ofstream(path("nan.pack"), std::ios::binary | std::ios::trunc) << seal(damaged);
    testing::expect_error([&] { load_dataset(path("nan.pack"), {}); },
                          {"nan.pack: byte " + std::to_string(at) + ": shape 1 (", "non-finite coordinate at point 1"});
  }
}

TEST_F(CraftedPack, LyingPathTablesAreRefused) {
  write_pack(synth("cls"), path("ok.pack"), {});
  const std::string bytes = read_file(path("ok.pack"));
  const size_t table = section_of(bytes, "paths").first;  // (no structured binding: the lambda below uses it)
  const uint64_t table_bytes = section_of(bytes, "paths").second;
  auto with_end = [&](size_t shape, uint32_t end) {
    std::string b = bytes;
    std::memcpy(&b[table + 4 * shape], &end, 4);
    return seal(b);
  };
  expect_refused(with_end(0, 0xffffffffu), "a path ending past the table");
  expect_refused(with_end(1, 0), "a path ending before the previous one");
  const std::string entry = "\"paths\":{\"bytes\":" + std::to_string(table_bytes);
  expect_refused(with_header(bytes, entry, "\"paths\":{\"bytes\":" + std::to_string(table_bytes - 1)),
                 "a table shorter than its offsets say");
  expect_refused(with_header(bytes, entry, "\"paths\":{\"bytes\":3"), "a table shorter than one offset per shape");
}

TEST_F(CraftedPack, HeaderNumbersBeyondDoubleAreRefused) {  // nlohmann's out_of_range, not parse_error
  write_pack(synth("cls"), path("ok.pack"), {});
  expect_refused(with_header(read_file(path("ok.pack")), "\"format\":\"pointnet-pack\"", "\"format\":1e999"),
                 "a number overflowing double");
}

TEST_F(PackTest, DamageInAnyChunkOfALargePackIsSeen) {
  SynthOptions o;
  o.points = 2048;
  o.train_per_class = 8;
  o.test_per_class = 2;
  const std::string dir = path("large");
  write_synthetic_classification(dir, o);
  write_pack(dir, path("large.pack"), {});
  const std::string bytes = read_file(path("large.pack"));
  ASSERT_GT(bytes.size(), size_t(2) << 20) << "want at least three checksum chunks";
  for (size_t at : {size_t(1) << 20, (size_t(1) << 20) - 1, bytes.size() - 7}) {
    std::string damaged = bytes;
    damaged[at] = static_cast<char>(damaged[at] ^ 0x01);
    std::ofstream(path("bad.pack"), std::ios::binary | std::ios::trunc) << damaged;
    SCOPED_TRACE("byte " + std::to_string(at) + " flipped");
    testing::expect_error([&] { load_dataset(path("bad.pack"), {}); }, {"bad.pack: checksum mismatch"});
  }
  expect_same(load_dataset(dir, {}), load_dataset(path("large.pack"), {}));
}

}  // namespace
}  // namespace pointnet
