#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/errors.h"
#include "core/rng.h"
#include "io/off.h"
#include "io/shapenet_text.h"

namespace pointnet {
namespace {

const char kSquare[] =
    "OFF\n"
    "4 2 0\n"
    "0 0 0\n1 0 0\n1 1 0\n0 1 0\n"
    "3 0 1 2\n3 0 2 3\n";

void expect_error(const std::string& text, const std::string& detail) {
  try {
    parse_off(text, "mesh.off");
    FAIL() << "expected an error containing '" << detail << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("mesh.off"), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  }
}

TEST(Off, ParsesPlainMesh) {
  Mesh m = parse_off(kSquare, "square.off");
  EXPECT_EQ(m.num_vertices(), 4);
  EXPECT_EQ(m.num_triangles(), 2);
  EXPECT_EQ(m.vertices[6], 1.0f);
  EXPECT_EQ(m.triangles, (std::vector<int32_t>{0, 1, 2, 0, 2, 3}));
}

TEST(Off, ParsesModelNetGluedHeaderCommentsAndVariants) {
  // ModelNet's quirk: counts glued to the keyword.
  Mesh a = parse_off("OFF4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n", "a.off");
  EXPECT_EQ(a.num_triangles(), 2);
  // Counts on the header line, comments, blank lines, CRLF.
  Mesh b = parse_off("# made by hand\r\n\r\nOFF 3 1 0 # counts\r\n0 0 0\r\n\r\n1 0 0\r\n0 1 0\r\n3 0 1 2\r\n", "b.off");
  EXPECT_EQ(b.num_triangles(), 1);
  // COFF: colours after the coordinates and after the face; NOFF: normals.
  Mesh c = parse_off("COFF\n3 1 0\n0 0 0 255 0 0 255\n1 0 0 0 255 0 255\n0 1 0 0 0 255 255\n3 0 1 2 9 9 9\n",
                     "c.off");
  EXPECT_EQ(c.vertices, (std::vector<float>{0, 0, 0, 1, 0, 0, 0, 1, 0}));
  Mesh d = parse_off("NOFF\n3 1 0\n0 0 0 0 0 1\n1 0 0 0 0 1\n0 1 0 0 0 1\n3 2 1 0\n", "d.off");
  EXPECT_EQ(d.triangles, (std::vector<int32_t>{2, 1, 0}));
}

TEST(Off, TriangulatesPolygonsAsFans) {
  Mesh m = parse_off("OFF\n5 1 0\n0 0 0\n1 0 0\n2 1 0\n1 2 0\n0 1 0\n5 0 1 2 3 4\n", "p.off");
  EXPECT_EQ(m.triangles, (std::vector<int32_t>{0, 1, 2, 0, 2, 3, 0, 3, 4}));
}

TEST(Off, ErrorsNameFileAndLine) {
  expect_error("PLY\n3 1 0\n", "line 1");
  expect_error("OFF\n3 1\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "line 6: vertex index 7 out of range");
  expect_error("OFF\n3 1 0\n0 0 0\n1 nan 0\n0 1 0\n3 0 1 2\n", "line 4");
  expect_error("OFF\n3 1 0\n0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n", "finite");
  expect_error("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n2 0 1\n", "line 6: expected a face with at least 3");
  expect_error("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n4 0 1 2\n", "line 6");
  expect_error("OFF\n3 1 0\n0 0 0\n1 0\n", "line 4");
  expect_error("OFF\n3 1 0\n0 0 0\n1 0 0\n", "end of file");
  expect_error("OFF\n3 -1 0\n", "face count");
  expect_error("OFF\nthree 1 0\n", "vertex count");
  expect_error("", "OFF header");
  // A header that promises far more than the file holds fails without allocating for it.
  expect_error("OFF\n700000000 700000000 0\n0 0 0\n", "line 3: unexpected end of file");
}

TEST(Off, ReadsFromDiskAndNamesThePath) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / ("pointnet_off_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ok.off") << kSquare;
  std::ofstream(dir / "bad.off") << "OFF\n1 0 0\n0 0 x\n";
  EXPECT_EQ(read_off((dir / "ok.off").string()).num_triangles(), 2);
  try {
    read_off((dir / "bad.off").string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "bad.off").string() + ": line 3"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(Off, SamplesUnitSquareUniformly) {
  Mesh m = parse_off(kSquare, "square.off");
  Rng rng(1);
  const int n = 20000;
  std::vector<float> p = sample_mesh_surface(m, n, rng);
  ASSERT_EQ(p.size(), 3u * n);
  double sx = 0, sy = 0;
  int lower_left = 0;
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(p[3 * i + 2], 0.0f);
    ASSERT_GE(p[3 * i], 0.0f);
    ASSERT_LE(p[3 * i], 1.0f);
    ASSERT_GE(p[3 * i + 1], 0.0f);
    ASSERT_LE(p[3 * i + 1], 1.0f);
    sx += p[3 * i];
    sy += p[3 * i + 1];
    lower_left += p[3 * i] < 0.5f && p[3 * i + 1] < 0.5f;
  }
  // Uniform on [0,1]: sd 0.289, so the mean's standard error is 0.002; 0.01 is 5 sigma.
  EXPECT_NEAR(sx / n, 0.5, 0.01);
  EXPECT_NEAR(sy / n, 0.5, 0.01);
  // A quarter of the area; binomial standard error 0.003.
  EXPECT_NEAR(lower_left / double(n), 0.25, 0.015);
}

TEST(Off, SamplesTrianglesByArea) {
  // Triangle A (area 1.5) near x = 0, triangle B (area 0.5) near x = 10, a 3:1 ratio.
  Mesh m = parse_off("OFF\n6 2 0\n0 0 0\n3 0 0\n0 1 0\n10 0 0\n11 0 0\n10 1 0\n3 0 1 2\n3 3 4 5\n", "two.off");
  Rng rng(7);
  const int n = 20000;
  std::vector<float> p = sample_mesh_surface(m, n, rng);
  int in_a = 0, near_corner = 0;
  for (int i = 0; i < n; ++i) {
    if (p[3 * i] < 5) {
      ++in_a;
      // Within A, points with x/3 + y < 0.5 cover a quarter of its area (uniform barycentrics).
      near_corner += p[3 * i] / 3 + p[3 * i + 1] < 0.5f;
    }
  }
  EXPECT_NEAR(in_a / double(n), 0.75, 0.015);  // binomial standard error 0.003
  EXPECT_NEAR(near_corner / double(in_a), 0.25, 0.015);
}

TEST(Off, SamplingIsDeterministicAndSkipsDegenerateTriangles) {
  // The second triangle has zero area and vertices far away: it must never be hit.
  Mesh m = parse_off("OFF\n5 2 0\n0 0 0\n1 0 0\n0 1 0\n50 50 50\n60 60 60\n3 0 1 2\n3 3 4 4\n", "deg.off");
  Rng r1(3), r2(3);
  std::vector<float> a = sample_mesh_surface(m, 1000, r1);
  EXPECT_EQ(a, sample_mesh_surface(m, 1000, r2));
  for (float v : a) EXPECT_LE(v, 1.0f);
}

TEST(Off, RejectsZeroAreaMeshes) {
  Rng rng(0);
  Mesh flat = parse_off("OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n", "line.off");
  EXPECT_THROW(sample_mesh_surface(flat, 10, rng), Error);
  Mesh empty = parse_off("OFF\n3 0 0\n0 0 0\n1 1 1\n2 2 2\n", "points.off");
  try {
    sample_mesh_surface(empty, 10, rng);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("points.off"), std::string::npos);
  }
}

// ShapeNet part text files live beside OFF as the other text mesh/cloud readers.
TEST(Off, ShapeNetPtsAndSeg) {
  EXPECT_EQ(parse_pts("0.1 0.2 0.3\n\n-1 2 3e-2\n", "a.pts"), (std::vector<float>{0.1f, 0.2f, 0.3f, -1, 2, 0.03f}));
  EXPECT_EQ(parse_seg("1\n3\n\n2\n", "a.seg"), (std::vector<int32_t>{0, 2, 1}));
  auto expect_error_text = [](auto fn, const std::string& text, const std::string& detail) {
    try {
      fn(text);
      FAIL() << detail;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(detail), std::string::npos) << e.what();
    }
  };
  auto pts = [](const std::string& t) { parse_pts(t, "a.pts"); };
  auto seg = [](const std::string& t) { parse_seg(t, "a.seg"); };
  expect_error_text(pts, "0 0 0\n1 2\n", "a.pts: line 2");
  expect_error_text(pts, "0 0 0\n1 2 nan\n", "a.pts: line 2, column 3: expected a finite");
  expect_error_text(pts, "0 0 0\n1 2 3x\n", "a.pts: line 2");
  expect_error_text(seg, "1\n0\n", "a.seg: line 2: expected a part label >= 1");
  expect_error_text(seg, "1\n2.5\n", "a.seg: line 2");
  expect_error_text(seg, "1 2\n", "a.seg: line 1");
}

}  // namespace
}  // namespace pointnet
