#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "format_test_helpers.h"
#include "io/cloud_file.h"
#include "io/lzf.h"
#include "io/pcd.h"
#include "../temp_dir.h"

namespace pointnet {
namespace {

using testing::expect_error;
using testing::put_scalar;

Cloud parse(const std::string& bytes, size_t* dropped = nullptr) { return parse_pcd(bytes, "t.pcd", dropped); }

std::string header(const std::string& fields, const std::string& size, const std::string& type,
                   const std::string& count, int width, int height, const std::string& data) {
  return "# .PCD v0.7\nVERSION 0.7\nFIELDS " + fields + "\nSIZE " + size + "\nTYPE " + type + "\nCOUNT " + count +
         "\nWIDTH " + std::to_string(width) + "\nHEIGHT " + std::to_string(height) +
         "\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS " + std::to_string(width * height) + "\nDATA " + data + "\n";
}

TEST(Pcd, AsciiFieldsInAnyOrderWithSkippedFields) {
  const std::string h = header("rgb z label x _ y hist", "4 8 2 4 1 4 4", "F F U F U F F", "1 1 1 1 1 1 3", 2, 1,
                               "ascii");
  Cloud c = parse(h + "4.2e-39 3 7 1 0 2 1 2 3\n\n-0 -6.5 0 -4 0 -5 0 0 0\n");
  EXPECT_EQ(c.xyz, (std::vector<float>{1, 2, 3, -4, -5, -6.5f}));
  EXPECT_EQ(c.labels, (std::vector<int32_t>{7, 0}));
  EXPECT_TRUE(c.normals.empty());
  expect_error([&] { parse(h + "1 2 3 4 5 6 7 8\n"); }, {"t.pcd", "line 12", "point 0 has 8 values: expected 9"});
  expect_error([&] { parse(h + "1 2 3 4 5 6 7 8 9\n"); }, {"line 13", "unexpected end of data", "point 1"});
  expect_error([&] { parse(h + "1 x 3 4 5 6 7 8 9\n"); }, {"line 12", "field 'z'", "'x'"});
}

// Row-major binary records of every PCD type, as x.
TEST(Pcd, BinaryEveryType) {
  const struct { char type; int size; ScalarType t; double v; } kTypes[] = {
      {'I', 1, ScalarType::I8, -7},    {'U', 1, ScalarType::U8, 250},      {'I', 2, ScalarType::I16, -300},
      {'U', 2, ScalarType::U16, 65000}, {'I', 4, ScalarType::I32, -70000}, {'U', 4, ScalarType::U32, 3e9},
      {'I', 8, ScalarType::I64, -5e12}, {'U', 8, ScalarType::U64, 9e15},   {'F', 4, ScalarType::F32, 0.375},
      {'F', 8, ScalarType::F64, 1e-300}};
  for (const auto& t : kTypes) {
    std::string b = header("y x z", "4 " + std::to_string(t.size) + " 4", std::string("F ") + t.type + " F",
                           "1 1 1", 1, 1, "binary");
    put_scalar(b, ScalarType::F32, 2);
    put_scalar(b, t.t, t.v);
    put_scalar(b, ScalarType::F32, 3);
    Cloud c = parse(b);
    EXPECT_EQ(c.xyz, (std::vector<float>{static_cast<float>(t.v), 2, 3})) << t.type << t.size;
  }
}

// Builds a PCL-layout binary_compressed body: each field's values (COUNT per point) for all points in turn.
TEST(Pcd, BinaryCompressedFieldMajorWithCountAndPadding) {
  const int n = 50;
  std::string raw;
  for (int i = 0; i < n; ++i) put_scalar(raw, ScalarType::F32, i * 0.5);           // x
  for (int i = 0; i < n; ++i) for (int k = 0; k < 3; ++k) put_scalar(raw, ScalarType::U8, k);  // rgb3: COUNT 3
  for (int i = 0; i < n; ++i) put_scalar(raw, ScalarType::F64, -i);                // z
  for (int i = 0; i < n; ++i) put_scalar(raw, ScalarType::I16, i % 5);             // label
  for (int i = 0; i < n; ++i) put_scalar(raw, ScalarType::F32, 1);                 // y
  // '_' padding (4 bytes) is in the header but not in the compressed data, as PCL writes it.
  std::string b = header("x rgb3 z _ label y", "4 1 8 4 2 4", "F U F U I F", "1 3 1 1 1 1", n, 1,
                         "binary_compressed");
  const std::string packed = lzf_compress(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
  put_scalar(b, ScalarType::U32, packed.size());
  put_scalar(b, ScalarType::U32, raw.size());
  Cloud c = parse(b + packed);
  ASSERT_EQ(c.num_points(), n);
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(c.xyz[3 * i], i * 0.5f);
    EXPECT_EQ(c.xyz[3 * i + 1], 1.0f);
    EXPECT_EQ(c.xyz[3 * i + 2], static_cast<float>(-i));
    EXPECT_EQ(c.labels[i], i % 5);
  }
  // Header lies about the sizes.
  std::string wrong_usize = header("x rgb3 z _ label y", "4 1 8 4 2 4", "F U F U I F", "1 3 1 1 1 1", n, 1,
                                   "binary_compressed");
  const size_t sizes_at = wrong_usize.size();
  put_scalar(wrong_usize, ScalarType::U32, packed.size());
  put_scalar(wrong_usize, ScalarType::U32, raw.size() + 4);
  expect_error([&] { parse(wrong_usize + packed); },
               {"byte " + std::to_string(sizes_at + 4), "uncompressed size", "expected POINTS 50"});
  std::string big_csize = wrong_usize.substr(0, sizes_at);
  put_scalar(big_csize, ScalarType::U32, packed.size() + 1);
  put_scalar(big_csize, ScalarType::U32, raw.size());
  expect_error([&] { parse(big_csize + packed); }, {"compressed size", "bytes follow"});
}

TEST(Pcd, OrganisedCloudDropsNonFinitePointsAndCountsThem) {
  std::string b = header("x y z normal_x normal_y normal_z", "4 4 4 4 4 4", "F F F F F F", "1 1 1 1 1 1", 3, 2,
                         "binary");
  const float nan = NAN, inf = INFINITY;
  const float pts[6][6] = {{1, 2, 3, 0, 0, 1}, {nan, nan, nan, nan, nan, nan}, {4, 5, 6, 1, 0, 0},
                           {7, inf, 9, 0, 1, 0}, {1, 1, 1, nan, 0, 0}, {0, 0, 0, 0, 0, -1}};
  for (const auto& p : pts) for (float v : p) put_scalar(b, ScalarType::F32, v);
  size_t dropped = 99;
  Cloud c = parse(b, &dropped);
  EXPECT_EQ(dropped, 3u);
  EXPECT_EQ(c.xyz, (std::vector<float>{1, 2, 3, 4, 5, 6, 0, 0, 0}));
  EXPECT_EQ(c.normals, (std::vector<float>{0, 0, 1, 1, 0, 0, 0, 0, -1}));
  // All invalid: an error, not an empty cloud.
  std::string all_nan = header("x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "ascii") + "nan nan nan\n";
  expect_error([&] { parse(all_nan); }, {"t.pcd", "no valid points", "1 dropped"});
}

TEST(Pcd, WriteReadRoundTripsExactlyInEveryEncoding) {
  testing::TempDir dir;
  Cloud c;
  for (int i = 0; i < 300; ++i) {
    c.xyz.insert(c.xyz.end(), {i * 0.1f, -1e-20f * i, 3.4e38f / (i + 1)});
    c.normals.insert(c.normals.end(), {0.6f, 0, i % 2 ? 0.8f : -0.8f});
    c.labels.push_back(i % 7);
  }
  for (PcdEncoding e : {PcdEncoding::Ascii, PcdEncoding::Binary, PcdEncoding::BinaryCompressed}) {
    const std::string path = (dir / "c.pcd").string();
    write_pcd(path, c, e);
    size_t dropped = 1;
    Cloud r = read_pcd(path, &dropped);
    EXPECT_EQ(dropped, 0u);
    EXPECT_EQ(r.xyz, c.xyz);
    EXPECT_EQ(r.normals, c.normals);
    EXPECT_EQ(r.labels, c.labels);
    Cloud bare;
    bare.xyz = c.xyz;
    write_pcd(path, bare, e);
    r = read_cloud(path, CloudReadOptions{});
    EXPECT_EQ(r.xyz, c.xyz);
    EXPECT_TRUE(r.normals.empty() && r.labels.empty());
  }
}

std::string small_binary(const std::string& data) {
  Cloud c;
  c.xyz = {1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 2, 3};
  c.labels = {1, 2, 3, 1};
  testing::TempDir dir;
  const std::string path = (dir / "s.pcd").string();
  write_pcd(path, c, data == "binary" ? PcdEncoding::Binary : PcdEncoding::BinaryCompressed);
  return read_file(path);
}

TEST(Pcd, EveryTruncationOfABinaryFileIsAnError) {
  for (const char* data : {"binary", "binary_compressed"}) {
    const std::string full = small_binary(data);
    ASSERT_EQ(parse(full).num_points(), 4);
    for (size_t cut = 0; cut < full.size(); ++cut)
      EXPECT_THROW(parse(full.substr(0, cut)), Error) << data << " cut at " << cut;
  }
}

// A cut inside the last value can still read as a number ("0.25" -> "0."): cuts
// before the last value must be errors, the others only must not crash.
TEST(Pcd, EveryTruncationOfAnAsciiFileIsAnErrorOrAValidPrefix) {
  Cloud c;
  c.xyz = {1.5f, 2, 3, -4, 5.25f, 6};
  c.labels = {7, 8};
  testing::TempDir dir;
  write_pcd((dir / "a.pcd").string(), c, PcdEncoding::Ascii);
  const std::string full = read_file((dir / "a.pcd").string());
  ASSERT_EQ(parse(full).labels, c.labels);
  const size_t last_value = full.find_last_of(' ') + 1;
  for (size_t cut = 0; cut < full.size(); ++cut) {
    if (cut <= last_value) {
      EXPECT_THROW(parse(full.substr(0, cut)), Error) << "cut at " << cut;
    } else {
      try {
        parse(full.substr(0, cut));
      } catch (const Error&) {
      }
    }
  }
}

TEST(Pcd, HeaderLiesAreRefusedNamingThePosition) {
  const std::string h = header("x y z", "4 4 4", "F F F", "1 1 1", 3, 1, "binary");
  std::string body;
  for (int i = 0; i < 6; ++i) put_scalar(body, ScalarType::F32, i);
  expect_error([&] { parse(h + body); },
               {"t.pcd", "byte " + std::to_string(h.size() + 24), "POINTS 3 x 12 bytes = 36 bytes expected"});
  expect_error([] { parse(header("x y z", "4 4 2", "F F F", "1 1 1", 1, 1, "ascii")); },
               {"line 11", "field 'z' has TYPE 'F' with SIZE 2"});
  expect_error([] { parse(header("x y z", "4 4", "F F F", "1 1 1", 1, 1, "ascii")); },
               {"FIELDS lists 3 fields but SIZE lists 2"});
  expect_error([] { parse(header("x y", "4 4", "F F", "1 1", 1, 1, "ascii")); }, {"lack x, y or z"});
  // Records so large that POINTS x record size could overflow are refused in the header.
  expect_error([] { parse(header("x y z a b c", "4 4 4 8 8 8", "F F F F F F", "1 1 1 1048576 1048576 1048576", 1, 1,
                                 "binary")); },
               {"line 11", "a point record of more than 16777216 bytes"});
  expect_error([] { parse(header("x y z", "4 4 4", "F F F", "1 3 1", 1, 1, "ascii")); },
               {"field 'y' has COUNT 3: expected 1"});
  expect_error([] { parse("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2\nHEIGHT 1\nPOINTS 3\nDATA ascii\n"); },
               {"line 8", "POINTS 3 differs from WIDTH x HEIGHT = 2 x 1"});
  expect_error([] { parse("VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\n"); },
               {"line 6", "expected a 'DATA' line"});
  expect_error([] { parse(header("x y z", "4 4 4", "F F F", "1 1 1", 1, 1, "zip")); }, {"unknown DATA 'zip'"});
  expect_error([] { parse(header("x y z label", "4 4 4 4", "F F F F", "1 1 1 1", 1, 1, "ascii") + "1 2 3 0.5\n"); },
               {"line 12", "label 0.5"});
}

}  // namespace
}  // namespace pointnet
