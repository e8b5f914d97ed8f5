// Readers refuse negative labels (.ply, .pcd: labels are part numbers, as the
// text reader takes them) and non-finite values (.ply, .npy), naming the file,
// the element or point, and the line or byte where the value stands.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "../temp_dir.h"
#include "core/atomic_file.h"
#include "format_test_helpers.h"
#include "io/cloud_file.h"
#include "io/npy.h"
#include "io/pcd.h"
#include "io/ply.h"

namespace pointnet {
namespace {

using testing::expect_error;
using testing::put_scalar;

const std::string kPlyHeader = "ply\nformat %s 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                               "property float z\nproperty int label\nend_header\n";

std::string ply_header(const std::string& format) {
  std::string h = kPlyHeader;
  return h.replace(h.find("%s"), 2, format);
}

TEST(ReaderPositions, PlyNegativeLabelNamesTheLineOrByteAndVertex) {
  expect_error([] { parse_ply(ply_header("ascii") + "1 2 3 4\n1 2 3 -1\n", "t.ply", {}); },
               {"t.ply: line 10: element vertex 1 property 'label' is -1: expected a non-negative integer label"});
  std::string b = ply_header("binary_little_endian");
  const size_t body = b.size();
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 3; ++k) put_scalar(b, ScalarType::F32, k, false);
    put_scalar(b, ScalarType::I32, i ? -7 : 0, false);
  }
  expect_error([&] { parse_ply(b, "t.ply", {}); },
               {"t.ply: byte " + std::to_string(body + 16 + 12) + ": element vertex 1 property 'label' is -7"});
}

TEST(ReaderPositions, PlyNonFiniteCoordinatesAndNormalsNameTheLineOrByte) {
  expect_error([] { parse_ply(ply_header("ascii") + "1 2 3 4\n1 inf 3 4\n", "t.ply", {}); },
               {"t.ply: line 10: element vertex 1 property 'y' is inf: expected a finite number"});
  expect_error([] { parse_ply(ply_header("ascii") + "nan 2 3 4\n1 2 3 4\n", "t.ply", {}); },
               {"t.ply: line 9: element vertex 0 property 'x' is nan"});
  std::string b = "ply\nformat binary_big_endian 1.0\nelement vertex 1\nproperty double x\nproperty double y\n"
                  "property double z\nproperty double nx\nproperty double ny\nproperty double nz\nend_header\n";
  const size_t body = b.size();
  for (double v : {1.0, 2.0, 3.0, 0.0, 1e300, 0.0}) put_scalar(b, ScalarType::F64, v, true);
  expect_error([&] { parse_ply(b, "t.ply", {}); },
               {"t.ply: byte " + std::to_string(body + 32) + ": element vertex 0 property 'ny' is 1e+300",
                "finite number within float range"});
}

TEST(ReaderPositions, PcdNegativeLabelNamesTheLineOrByteAndPoint) {
  const std::string h = "# .PCD v0.7\nVERSION 0.7\nFIELDS x y z label\nSIZE 4 4 4 4\nTYPE F F F I\nCOUNT 1 1 1 1\n"
                        "WIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA ";
  expect_error([&] { parse_pcd(h + "ascii\n1 2 3 0\n1 2 3 -2\n", "t.pcd", nullptr); },
               {"t.pcd: line 13", "label -2 of point 1", "non-negative"});
  std::string b = h + "binary\n";
  const size_t body = b.size();
  for (int i = 0; i < 2; ++i) {
    for (int k = 0; k < 3; ++k) put_scalar(b, ScalarType::F32, k, false);
    put_scalar(b, ScalarType::I32, i ? -3 : 5, false);
  }
  expect_error([&] { parse_pcd(b, "t.pcd", nullptr); },
               {"t.pcd: byte " + std::to_string(body + 16), "label -3 of point 1", "non-negative"});
}

TEST(ReaderPositions, WritersRefuseNegativeLabels) {
  testing::TempDir dir;
  Cloud c;
  c.xyz = {0, 0, 0, 1, 1, 1};
  c.labels = {2, -1};
  expect_error([&] { write_ply((dir.path / "a.ply").string(), c, PlyEncoding::Ascii); },
               {"a.ply: label -1 of point 1: expected a non-negative part number"});
  expect_error([&] { write_pcd((dir.path / "a.pcd").string(), c, PcdEncoding::Binary); },
               {"a.pcd: label -1 of point 1"});
}

// A (2, 3) f4 array, C or Fortran order, with one NaN at row 1, column 2.
std::string npy_with_nan(bool fortran, size_t* data_start) {
  std::string header = std::string("{'descr': '<f4', 'fortran_order': ") + (fortran ? "True" : "False") +
                       ", 'shape': (2, 3), }";
  header.resize(128 - 10 - 1, ' ');  // magic, version, length: data at byte 128
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8) + static_cast<char>(header.size()) + '\0' + header;
  *data_start = bytes.size();
  const float values[2][3] = {{1, 2, 3}, {4, 5, NAN}};
  for (int k = 0; k < 6; ++k) {
    const int row = fortran ? k % 2 : k / 3, col = fortran ? k / 2 : k % 3;
    put_scalar(bytes, ScalarType::F32, values[row][col], false);
  }
  return bytes;
}

TEST(ReaderPositions, NpyNonFiniteNamesTheByteInCAndFortranOrder) {
  testing::TempDir dir;
  for (bool fortran : {false, true}) {
    size_t start = 0;
    const std::string path = (dir.path / "a.npy").string();
    write_file_atomic(path, npy_with_nan(fortran, &start));
    // (1, 2) is element 5 in C order and in Fortran order (the last either way).
    const std::string byte = std::to_string(start + 5 * 4);
    expect_error([&] { read_cloud(path, {}); }, {"a.npy: byte " + byte + ": point 1 coordinate 2 is nan"});
    const NpyArray a = read_npy(path);
    EXPECT_EQ(a.byte_of(1), start + (fortran ? 2 : 1) * 4) << fortran;  // (0, 1)
  }
}

}  // namespace
}  // namespace pointnet
