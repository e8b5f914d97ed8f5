#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "format_test_helpers.h"
#include "io/cloud_file.h"
#include "io/ply.h"
#include "../temp_dir.h"

namespace pointnet {
namespace {

using testing::expect_error;
using testing::put_scalar;

const CloudReadOptions kOpts{};

Cloud parse(const std::string& bytes, const CloudReadOptions& o = kOpts) { return parse_ply(bytes, "t.ply", o); }

TEST(Ply, AsciiWithCommentsSkippedPropertiesAndElements) {
  const std::string text =
      "ply\r\nformat ascii 1.0\ncomment hi\nobj_info scanner 7\nelement camera 1\nproperty float f\n"
      "property list uchar int l\nelement vertex 2\nproperty uchar red\nproperty float z\nproperty double y\n"
      "property float x\nproperty list ushort float weights\nproperty int class\nend_header\n"
      "0.5 3 1 2 3\n"
      "255 3.5 2.25 1.125 2 9 9 4\n"
      "7 -1 -2 -3 0 6\n";
  Cloud c = parse(text);
  EXPECT_EQ(c.xyz, (std::vector<float>{1.125f, 2.25f, 3.5f, -3, -2, -1}));
  EXPECT_EQ(c.labels, (std::vector<int32_t>{4, 6}));
  EXPECT_TRUE(c.normals.empty());
}

// Every PLY scalar type, in both byte orders, as a coordinate.
TEST(Ply, BinaryEveryTypeBothByteOrders) {
  const struct { const char* name; ScalarType type; double value; } kTypes[] = {
      {"char", ScalarType::I8, -100},        {"uchar", ScalarType::U8, 200},     {"int16", ScalarType::I16, -30000},
      {"ushort", ScalarType::U16, 60000},    {"int", ScalarType::I32, -2000000}, {"uint32", ScalarType::U32, 4000000000.0},
      {"float32", ScalarType::F32, 0.15625}, {"double", ScalarType::F64, -1e-3}};
  for (bool big : {false, true}) {
    for (const auto& t : kTypes) {
      std::string bytes = std::string("ply\nformat ") + (big ? "binary_big_endian" : "binary_little_endian") +
                          " 1.0\nelement vertex 2\nproperty " + t.name + " x\nproperty float y\nproperty double z\n"
                          "property int16 nx\nproperty int8 ny\nproperty uint8 nz\nend_header\n";
      for (int i = 0; i < 2; ++i) {
        put_scalar(bytes, t.type, i ? t.value : 0, big);
        put_scalar(bytes, ScalarType::F32, 1.5 + i, big);
        put_scalar(bytes, ScalarType::F64, -2.5 - i, big);
        put_scalar(bytes, ScalarType::I16, -1, big);
        put_scalar(bytes, ScalarType::I8, 0, big);
        put_scalar(bytes, ScalarType::U8, 1, big);
      }
      Cloud c = parse(bytes);
      SCOPED_TRACE(std::string(t.name) + (big ? " big" : " little"));
      EXPECT_EQ(c.xyz, (std::vector<float>{0, 1.5f, -2.5f, static_cast<float>(t.value), 2.5f, -3.5f}));
      EXPECT_EQ(c.normals, (std::vector<float>{-1, 0, 1, -1, 0, 1}));
    }
  }
}

TEST(Ply, LabelPropertyNames) {
  for (const char* name : {"label", "scalar_label", "class", "class_id", "category", "semantic", "segment"}) {
    Cloud c = parse(std::string("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                                "property float z\nproperty float ") + name + "\nend_header\n1 2 3 17\n");
    EXPECT_EQ(c.labels, std::vector<int32_t>{17}) << name;
  }
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                          "property float z\nproperty float label\nend_header\n1 2 3 1.5\n"); },
               {"t.ply", "line 9", "property 'label'", "expected a non-negative integer label"});
}

// A unit cube: 6 outward-facing quads.
std::string cube_ply() {
  return "ply\nformat ascii 1.0\nelement vertex 8\nproperty float x\nproperty float y\nproperty float z\n"
         "element face 6\nproperty list uchar int vertex_indices\nend_header\n"
         "0 0 0\n1 0 0\n1 1 0\n0 1 0\n0 0 1\n1 0 1\n1 1 1\n0 1 1\n"
         "4 0 3 2 1\n4 4 5 6 7\n4 0 1 5 4\n4 2 3 7 6\n4 1 2 6 5\n4 0 4 7 3\n";
}

// Checks sampled points lie on the unit cube's faces, each with its face's outward unit normal.
void expect_on_cube_with_outward_normals(const Cloud& c, int n) {
  ASSERT_EQ(c.num_points(), n);
  ASSERT_EQ(c.normals.size(), c.xyz.size());
  int faces_hit[6] = {};
  for (int i = 0; i < n; ++i) {
    const float* p = &c.xyz[3 * i];
    const float* nv = &c.normals[3 * i];
    EXPECT_NEAR(nv[0] * nv[0] + nv[1] * nv[1] + nv[2] * nv[2], 1.0, 1e-6);
    int axis = -1;  // the normal is an axis: the face's
    for (int k = 0; k < 3; ++k) {
      EXPECT_GE(p[k], -1e-6f);
      EXPECT_LE(p[k], 1 + 1e-6f);
      if (std::fabs(nv[k]) > 0.999f) axis = k;
    }
    ASSERT_GE(axis, 0) << "normal not along an axis at point " << i;
    const float side = nv[axis] > 0 ? 1.0f : 0.0f;  // outward: +x face at x = 1, -x face at x = 0
    EXPECT_NEAR(p[axis], side, 1e-6) << "point " << i << " is not on the face its normal names";
    ++faces_hit[2 * axis + (side > 0)];
  }
  for (int f = 0; f < 6; ++f) EXPECT_GT(faces_hit[f], n / 12) << "face " << f;  // equal areas: ~n/6 each
}

TEST(Ply, MeshIsSampledWithFaceNormals) {
  CloudReadOptions o;
  o.mesh_points = 3000;
  o.seed = 5;
  Cloud c = parse(cube_ply(), o);
  expect_on_cube_with_outward_normals(c, 3000);
  EXPECT_TRUE(c.labels.empty());
  EXPECT_EQ(parse(cube_ply(), o).xyz, c.xyz);  // deterministic for a seed
}

TEST(Ply, WriteReadRoundTripsExactly) {
  testing::TempDir dir;
  Cloud c;
  c.xyz = {0.1f, -2.0f, 3.14159274f, 1e-30f, 6.02e23f, -0.0f};
  c.normals = {0, 0, 1, 0.6f, 0.8f, 0};
  c.labels = {3, 0};
  for (PlyEncoding e : {PlyEncoding::BinaryLittleEndian, PlyEncoding::Ascii}) {
    const std::string path = (dir / "c.ply").string();
    write_ply(path, c, e);
    Cloud r = read_ply(path, kOpts);
    EXPECT_EQ(r.xyz, c.xyz);
    EXPECT_EQ(r.normals, c.normals);
    EXPECT_EQ(r.labels, c.labels);
    Cloud bare;
    bare.xyz = c.xyz;
    write_ply(path, bare, e);
    r = read_ply(path, kOpts);
    EXPECT_EQ(r.xyz, c.xyz);
    EXPECT_TRUE(r.normals.empty() && r.labels.empty());
  }
}

std::string binary_mesh() {
  std::string b = "ply\nformat binary_little_endian 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                  "property float z\nproperty uchar label\nelement face 1\nproperty list uchar uint vertex_indices\n"
                  "end_header\n";
  const float v[9] = {0, 0, 0, 1, 0, 0, 0, 1, 0};
  for (int i = 0; i < 3; ++i) {
    for (int k = 0; k < 3; ++k) put_scalar(b, ScalarType::F32, v[3 * i + k]);
    put_scalar(b, ScalarType::U8, i);
  }
  put_scalar(b, ScalarType::U8, 3);
  for (int i = 0; i < 3; ++i) put_scalar(b, ScalarType::U32, i);
  return b;
}

// Any cut of a binary file loses data the header promised: always an error, never a crash.
TEST(Ply, EveryTruncationOfABinaryFileIsAnError) {
  const std::string full = binary_mesh();
  ASSERT_EQ(parse(full).num_points(), kOpts.mesh_points);
  for (size_t cut = 0; cut < full.size(); ++cut)
    EXPECT_THROW(parse(full.substr(0, cut)), Error) << "cut at " << cut;
}

// An ascii cut can end inside the last number ("0.5" -> "0."), which reads as a number:
// every cut before the last token must be an error, none may crash.
TEST(Ply, EveryTruncationOfAnAsciiFileIsAnErrorOrAValidPrefix) {
  const std::string full = cube_ply();
  const size_t last_token = full.find_last_not_of(" \n", full.size() - 2);
  for (size_t cut = 0; cut < full.size(); ++cut) {
    if (cut <= last_token) {
      EXPECT_THROW(parse(full.substr(0, cut)), Error) << "cut at " << cut;
    } else {
      EXPECT_NO_THROW(parse(full.substr(0, cut)));
    }
  }
}

TEST(Ply, HeaderLiesAreRefusedNamingThePosition) {
  const std::string head = "ply\nformat binary_little_endian 1.0\nelement vertex ";
  const std::string props = "\nproperty float x\nproperty float y\nproperty float z\nend_header\n";
  std::string body;
  for (int i = 0; i < 6; ++i) put_scalar(body, ScalarType::F32, i);
  const std::string h2 = head + "2" + props;
  EXPECT_EQ(parse(h2 + body).num_points(), 2);
  // More vertices than the data holds.
  expect_error([&] { parse(head + "3" + props + body); },
               {"t.ply", "byte " + std::to_string(h2.size()), "element vertex declares 3 instances"});
  // A face list count beyond the data.
  std::string faces = "ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                      "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n";
  const size_t list_at = faces.size() + body.size();
  faces += body;
  put_scalar(faces, ScalarType::U8, 200);
  put_scalar(faces, ScalarType::I32, 0);
  expect_error([&] { parse(faces); }, {"t.ply", "byte " + std::to_string(list_at + 1), "declares 200 items"});
  // A u32 list count beyond any mesh: the message shows the number as written, not 4.29497e+09.
  std::string huge = "ply\nformat binary_little_endian 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                     "property float z\nelement face 1\nproperty list uint int vertex_indices\nend_header\n" + body;
  put_scalar(huge, ScalarType::U32, 4294967295.0);
  expect_error([&] { parse(huge); }, {"t.ply", "list count 4294967295: expected 0.."});
  // An ascii face claiming 700 million indices: an error at the end of the data, without
  // first reserving room for them (found by review; also a fuzz regression input).
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                          "property float z\nelement face 1\nproperty list uint int vertex_indices\nend_header\n"
                          "0 0 0\n1 0 0\n0 1 0\n700000000 0 1 2\n"); },
               {"line 14", "unexpected end of data", "element face 0"});
  // Face indices out of range.
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                          "property float z\nelement face 1\nproperty list uchar int vertex_indices\nend_header\n"
                          "0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n"); },
               {"line 13", "vertex index 3 out of range"});
  // Header problems.
  expect_error([] { parse("plx\n"); }, {"line 1", "'ply'"});
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n"); },
               {"line 5", "end_header"});
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 1\nproperty half x\nend_header\n"); },
               {"line 4", "unknown PLY type 'half'"});
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\nend_header\n1 2\n"); },
               {"lacks x, y or z"});
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex -1\nend_header\n"); }, {"line 3", "count"});
  expect_error([] { parse("ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nproperty float y\n"
                          "property float z\nend_header\n1 2 nope\n"); },
               {"line 8", "expected a number", "'nope'"});
}

TEST(Ply, ReadCloudDispatchesAndChecksFiniteness) {
  testing::TempDir dir;
  Cloud c;
  c.xyz = {1, 2, 3};
  write_ply((dir / "a.PLY").string(), c, PlyEncoding::Ascii);
  EXPECT_TRUE(is_cloud_file((dir / "a.PLY").string()));
  EXPECT_EQ(read_cloud((dir / "a.PLY").string(), kOpts).xyz, c.xyz);
  c.xyz[1] = NAN;
  write_ply((dir / "nan.ply").string(), c, PlyEncoding::BinaryLittleEndian);
  const std::string bytes = read_file((dir / "nan.ply").string());
  const std::string y_at = std::to_string(bytes.find("end_header\n") + 11 + 4);  // after x
  expect_error([&] { read_cloud((dir / "nan.ply").string(), kOpts); },
               {"nan.ply: byte " + y_at + ": element vertex 0 property 'y' is nan: expected a finite number"});
}

}  // namespace
}  // namespace pointnet

namespace pointnet {
namespace {

// ascii PLY is one element instance per line: a row with a value too many or
// too few is refused at its line (a token stream would shift every value after
// it, or drop a trailing one, silently), and so is data after the last element.
TEST(PlyAsciiRows, ExtraShortAndTrailingValuesAreRefusedAtTheirLine) {
  const std::string head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                           "property float z\nend_header\n";
  EXPECT_EQ(parse(head + "1 2 3\n4 5 6\n7 8 9\n").xyz, (std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  expect_error([&] { parse(head + "1 2 3 4\n5 6 7\n8 9 10\n"); }, {"t.ply", "line 8", "more values"});
  expect_error([&] { parse(head + "1 2\n3 4 5\n6 7 8\n9\n"); }, {"t.ply", "line 8", "fewer values"});
  expect_error([&] { parse(head + "1 2 3\n4 5 6\n7 8 9 10\n"); }, {"t.ply", "line 10", "after the last element"});
  expect_error([&] { parse(head + "1 2 3\n4 5 6\n7 8 9\n10\n"); }, {"t.ply", "line 11", "after the last element"});
  EXPECT_EQ(parse(head + "1 2 3\n\n4 5 6\r\n7 8 9\n\n").xyz.size(), 9u);  // blank lines and CRLF are fine
}

}  // namespace
}  // namespace pointnet
