// The zip reader (io/zip_archive.h) on archives built here byte by byte
// (stored, zip64, compressed, corrupt, truncated) and on a real torch.save file.
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "expect_error.h"
#include "io/torch_file.h"
#include "io/zip_archive.h"

namespace pointnet {
namespace {

using testing::expect_error_containing;

std::string le(uint64_t v, int width) {
  std::string s;
  for (int i = 0; i < width; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

struct ZipSpec {
  std::vector<std::pair<std::string, std::string>> files;
  bool zip64 = false;    // sizes and offsets through zip64 extra fields and end record
  uint16_t method = 0;   // 0 stored; 8 would be deflate (the data is not actually compressed)
  std::string comment;
};

// A minimal zip writer: local headers, data, central directory, end record(s).
std::string build_zip(const ZipSpec& spec) {
  std::string out, cd;
  for (const auto& [name, data] : spec.files) {
    const uint64_t header = out.size();
    const uint32_t crc = crc32(data);
    out += le(0x04034b50, 4) + le(20, 2) + le(0, 2) + le(spec.method, 2) + le(0, 4) + le(crc, 4) +
           le(data.size(), 4) + le(data.size(), 4) + le(name.size(), 2) + le(0, 2) + name + data;
    const std::string extra = spec.zip64 ? le(1, 2) + le(24, 2) + le(data.size(), 8) + le(data.size(), 8) + le(header, 8)
                                         : std::string();
    const uint64_t big = 0xFFFFFFFF;
    cd += le(0x02014b50, 4) + le(45, 2) + le(45, 2) + le(0, 2) + le(spec.method, 2) + le(0, 4) + le(crc, 4) +
          le(spec.zip64 ? big : data.size(), 4) + le(spec.zip64 ? big : data.size(), 4) + le(name.size(), 2) +
          le(extra.size(), 2) + le(0, 2) + le(0, 2) + le(0, 2) + le(0, 4) + le(spec.zip64 ? big : header, 4) + name +
          extra;
  }
  const uint64_t cd_offset = out.size();
  out += cd;
  const uint64_t n = spec.files.size();
  if (spec.zip64) {
    const uint64_t z64 = out.size();
    out += le(0x06064b50, 4) + le(44, 8) + le(45, 2) + le(45, 2) + le(0, 4) + le(0, 4) + le(n, 8) + le(n, 8) +
           le(cd.size(), 8) + le(cd_offset, 8);
    out += le(0x07064b50, 4) + le(0, 4) + le(z64, 8) + le(1, 4);
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(0xFFFF, 2) + le(0xFFFF, 2) + le(0xFFFFFFFF, 4) +
           le(0xFFFFFFFF, 4) + le(spec.comment.size(), 2) + spec.comment;
  } else {
    out += le(0x06054b50, 4) + le(0, 2) + le(0, 2) + le(n, 2) + le(n, 2) + le(cd.size(), 4) + le(cd_offset, 4) +
           le(spec.comment.size(), 2) + spec.comment;
  }
  return out;
}

ZipSpec files(std::vector<std::pair<std::string, std::string>> entries) {
  ZipSpec spec;
  spec.files = std::move(entries);
  return spec;
}
const ZipSpec kTwoFiles = files({{"a/data.pkl", "hello"}, {"a/data/0", std::string("\x01\x02\x03\x04", 4)}});

TEST(ZipArchive, ReadsStoredEntries) {
  const std::string bytes = build_zip(kTwoFiles);
  EXPECT_TRUE(looks_like_zip(bytes));
  const ZipArchive zip(bytes, "t.zip");
  ASSERT_EQ(zip.entries().size(), 2u);
  EXPECT_EQ(zip.entries()[0].name, "a/data.pkl");
  EXPECT_EQ(zip.read(*zip.find("a/data.pkl")), "hello");
  EXPECT_EQ(zip.read(*zip.find("a/data/0")), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(zip.find("nope"), nullptr);
}

TEST(ZipArchive, ReadsZip64AndAComment) {
  ZipSpec spec = kTwoFiles;
  spec.zip64 = true;
  spec.comment = "a comment with PK\x05\x06 inside";
  const std::string bytes = build_zip(spec);
  const ZipArchive zip(bytes, "t.zip");
  ASSERT_EQ(zip.entries().size(), 2u);
  EXPECT_EQ(zip.read(*zip.find("a/data/0")), std::string("\x01\x02\x03\x04", 4));
  EXPECT_EQ(zip.read(*zip.find("a/data.pkl")), "hello");
}

TEST(ZipArchive, Crc32KnownValue) { EXPECT_EQ(crc32("123456789"), 0xCBF43926u); }

TEST(ZipArchive, RefusesCompressedEntries) {
  ZipSpec spec = kTwoFiles;
  spec.method = 8;
  const std::string bytes = build_zip(spec);
  expect_error_containing([&] { ZipArchive(bytes, "deflated.zip"); }, {"deflated.zip", "compression method 8", "a/data.pkl"});
}

TEST(ZipArchive, CorruptDataFailsItsCrc) {
  std::string bytes = build_zip(kTwoFiles);
  bytes[30 + 10] ^= 1;  // inside "hello"
  const ZipArchive zip(bytes, "flip.zip");
  expect_error_containing([&] { zip.read(*zip.find("a/data.pkl")); }, {"flip.zip", "byte 40", "CRC-32"});
}

TEST(ZipArchive, BadCentralDirectoryOffset) {
  std::string bytes = build_zip(kTwoFiles);
  const size_t end = bytes.size() - 22;
  bytes.replace(end + 16, 4, le(bytes.size() + 100, 4));  // past the end of the file
  expect_error_containing([&] { ZipArchive(bytes, "cd.zip"); }, {"cd.zip", "byte " + std::to_string(end), "central directory"});
  bytes.replace(end + 16, 4, le(3, 4));  // inside the first local header: no directory signature there
  expect_error_containing([&] { ZipArchive(bytes, "cd.zip"); }, {"cd.zip", "byte 3", "central directory record"});
}

TEST(ZipArchive, BadLocalHeaderOffset) {
  std::string bytes = build_zip(kTwoFiles);
  const size_t cd = bytes.find(std::string("PK\x01\x02", 4));
  bytes.replace(cd + 42, 4, le(7, 4));  // the first entry's local header "at byte 7"
  expect_error_containing([&] { ZipArchive(bytes, "lh.zip"); }, {"lh.zip", "byte 7", "local file header"});
}

TEST(ZipArchive, WrongMagicIsNotATorchFile) {
  expect_error_containing([&] { parse_torch_file("GIF89a not a checkpoint", "pic.pth"); },
               {"pic.pth", "byte 0", "not a torch.save file"});
  expect_error_containing([&] { parse_torch_file("", "empty.pth"); }, {"empty.pth", "not a torch.save file"});
}

TEST(ZipArchive, ZipWithoutAPickleIsNotATorchFile) {
  const std::string bytes = build_zip(files({{"readme.txt", "hi"}}));
  expect_error_containing([&] { parse_torch_file(bytes, "other.zip"); }, {"other.zip", "data.pkl", "readme.txt"});
}

// Every cut point of a small archive, and many of a real torch.save file: an
// Error naming the file each time, never a crash or a silent partial read.
TEST(ZipArchive, TruncatedAnywhereIsAnError) {
  const std::string small = build_zip(kTwoFiles);
  for (size_t cut = 0; cut < small.size(); ++cut)
    expect_error_containing([&] { ZipArchive(std::string_view(small).substr(0, cut), "cut.zip"); }, {"cut.zip"});
  const std::string real = read_file(std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/cls.pth");
  for (size_t cut = 0; cut < real.size(); cut += 997)
    expect_error_containing([&] { parse_torch_file(real.substr(0, cut), "cut.pth"); }, {"cut.pth"});
  for (size_t cut = real.size() - 200; cut < real.size(); ++cut)
    expect_error_containing([&] { parse_torch_file(real.substr(0, cut), "cut.pth"); }, {"cut.pth"});
}

TEST(ZipArchive, ReadsARealTorchSaveFile) {
  const std::string real = read_file(std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/cls.pth");
  const ZipArchive zip(real, "cls.pth");
  ASSERT_NE(zip.find("cls/data.pkl"), nullptr);
  ASSERT_NE(zip.find("cls/byteorder"), nullptr);
  EXPECT_EQ(zip.read(*zip.find("cls/byteorder")), "little");
  for (const ZipEntry& e : zip.entries()) EXPECT_NO_THROW(zip.read(e)) << e.name;
}

}  // namespace
}  // namespace pointnet
