// Reads the files that independent tools wrote (plyfile, pypcd4 with liblzf,
// PCL, numpy, trimesh, h5py; tests/data/formats/README.md) and compares them
// with the values those tools were given (expected.json).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/cloud_file.h"
#include "io/h5.h"
#include "io/npy.h"
#include "io/off.h"
#include "io/shapenet_text.h"
#include "io/text_cloud.h"

namespace pointnet {
namespace {

std::string fixture(const std::string& name) { return std::string(POINTNET_SOURCE_DIR) + "/tests/data/formats/" + name; }

const nlohmann::json& expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(fixture("expected.json"));
    return nlohmann::json::parse(in);
  }();
  return j;
}

std::vector<float> floats(const nlohmann::json& j) { return j.get<std::vector<float>>(); }

// The tools print ascii floats with limited digits (pypcd4: %.10f), so ascii
// values are compared to 4 float ulps; binary values must be exact.
void expect_values(const std::vector<float>& got, const std::vector<float>& want, bool exact, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (exact) EXPECT_EQ(got[i], want[i]) << what << " value " << i;
    else EXPECT_FLOAT_EQ(got[i], want[i]) << what << " value " << i;
  }
}

TEST(FormatFixtures, PlyCloudsFromPlyfile) {
  const nlohmann::json& e = expected()["points_ply"];
  for (const char* name : {"points_ascii.ply", "points_binary_le.ply", "points_binary_be.ply"}) {
    Cloud c = read_cloud(fixture(name), CloudReadOptions{});
    const bool exact = std::string(name).find("binary") != std::string::npos;
    expect_values(c.xyz, floats(e["xyz"]), exact, name);
    expect_values(c.normals, floats(e["normals"]), exact, name);
    EXPECT_EQ(c.labels, e["labels"].get<std::vector<int32_t>>()) << name;
  }
}

TEST(FormatFixtures, PlyIntegerAndDoubleCoordinates) {
  Cloud be = read_cloud(fixture("types_binary_be.ply"), CloudReadOptions{});
  expect_values(be.xyz, floats(expected()["types_binary_be_ply"]["xyz"]), true, "types_binary_be.ply");
  EXPECT_EQ(be.labels, expected()["types_binary_be_ply"]["labels"].get<std::vector<int32_t>>());
  Cloud a = read_cloud(fixture("types_ascii.ply"), CloudReadOptions{});
  expect_values(a.xyz, floats(expected()["types_ascii_ply"]["xyz"]), true, "types_ascii.ply");
}

TEST(FormatFixtures, PlyMeshesSampledOnTheCubeWithOutwardNormals) {
  for (const char* name : {"cube_ascii.ply", "cube_binary_le.ply"}) {
    CloudReadOptions o;
    o.mesh_points = 600;
    Cloud c = read_cloud(fixture(name), o);
    ASSERT_EQ(c.num_points(), 600) << name;
    ASSERT_EQ(c.normals.size(), c.xyz.size()) << name;
    for (int i = 0; i < c.num_points(); ++i) {
      const float* p = &c.xyz[3 * i];
      const float* n = &c.normals[3 * i];
      int axis = 0;
      for (int k = 1; k < 3; ++k) if (std::fabs(n[k]) > std::fabs(n[axis])) axis = k;
      EXPECT_FLOAT_EQ(std::fabs(n[axis]), 1.0f) << name << " point " << i;
      EXPECT_NEAR(p[axis], n[axis] > 0 ? 1.0 : 0.0, 1e-6) << name << " point " << i;  // on its face, normal outward
    }
  }
}

// One cloud (expected.json's points_pcd) in one file: binary exact, ascii to the
// digits the tool printed; nothing dropped.
void expect_points_pcd(const std::string& name) {
  const nlohmann::json& e = expected()["points_pcd"];
  CloudReadReport report;
  Cloud c = read_cloud(fixture(name), CloudReadOptions{}, &report);
  const bool exact = name.find("binary") != std::string::npos;
  expect_values(c.xyz, floats(e["xyz"]), exact, name);
  expect_values(c.normals, floats(e["normals"]), exact, name);
  EXPECT_EQ(c.labels, e["labels"].get<std::vector<int32_t>>()) << name;
  EXPECT_EQ(report.dropped_points, 0u) << name;
}

// The organised cloud (expected.json's organised_pcd): its NaN points dropped and counted.
void expect_organised_pcd(const std::string& name) {
  const nlohmann::json& e = expected()["organised_pcd"];
  CloudReadReport report;
  Cloud c = read_cloud(fixture(name), CloudReadOptions{}, &report);
  expect_values(c.xyz, floats(e["xyz"]), name.find("binary") != std::string::npos, name);
  EXPECT_EQ(report.dropped_points, e["dropped"].get<size_t>()) << name;
}

TEST(FormatFixtures, PcdCloudsFromPypcd4InEveryDataMode) {
  for (const char* name : {"points_ascii.pcd", "points_binary.pcd", "points_binary_compressed.pcd"})
    expect_points_pcd(name);
}

// The same clouds as written by the Point Cloud Library itself (pcl-tools'
// pcl_convert_pcd_ascii_binary): its binary_compressed lays out COUNT > 1
// fields as PCL does (field-major, each element of `desc` in turn).
TEST(FormatFixtures, PcdCloudsFromPclInEveryDataMode) {
  for (const char* name : {"pcl_points_ascii.pcd", "pcl_points_binary.pcd", "pcl_points_binary_compressed.pcd"})
    expect_points_pcd(name);
  for (const char* name :
       {"pcl_organised_ascii.pcd", "pcl_organised_binary.pcd", "pcl_organised_binary_compressed.pcd"})
    expect_organised_pcd(name);
}

// .npy files written by numpy itself (numpy.lib.format.write_array): f2/f4/f8,
// both byte orders, C and Fortran order, format versions 1, 2 and 3.
TEST(FormatFixtures, NpyFromNumpy) {
  const nlohmann::json& e = expected()["numpy_npy"]["values"];
  ASSERT_EQ(e.size(), 5u);
  for (const auto& [name, values] : e.items()) {
    const NpyArray a = read_npy(fixture(name));
    EXPECT_EQ(a.shape, (std::vector<int64_t>{10, 3})) << name;
    EXPECT_EQ(a.values, floats(values)) << name;  // exact: every value is a float32 (or f2) value
  }
}

TEST(FormatFixtures, OrganisedPcdDropsNaNPoints) {
  for (const char* name : {"organised_ascii.pcd", "organised_binary.pcd", "organised_binary_compressed.pcd"})
    expect_organised_pcd(name);
}

// .off meshes get their faces' normals too.
TEST(FormatFixtures, OffMeshesGetFaceNormals) {
  Mesh m = parse_off("OFF\n4 2 0\n0 0 0\n2 0 0\n2 3 0\n0 3 0\n3 0 1 2\n3 0 2 3\n", "square.off");
  Rng rng(1), same(1);
  std::vector<float> normals;
  std::vector<float> xyz = sample_mesh_surface(m, 200, rng, &normals);
  EXPECT_EQ(xyz, sample_mesh_surface(m, 200, same));  // asking for normals draws nothing more
  ASSERT_EQ(normals.size(), xyz.size());
  for (size_t i = 0; i < normals.size(); i += 3) {
    EXPECT_EQ(normals[i], 0.0f);
    EXPECT_EQ(normals[i + 1], 0.0f);
    EXPECT_EQ(normals[i + 2], 1.0f);  // counter-clockwise seen from +z
    EXPECT_EQ(xyz[i + 2], 0.0f);
  }
}

// make_more_fixtures.py's files: every value was written so that it reads back
// exactly (trimesh's fixed decimals of binary fractions, numpy's %.9g of float32
// values, h5py's binary data).
const nlohmann::json& more(const std::string& name) { return expected().at("more").at(name); }

TEST(FormatFixtures, OffFromTrimesh) {
  const Mesh m = read_off(fixture("trimesh_mesh.off"));
  EXPECT_EQ(m.vertices, floats(more("trimesh_mesh.off")["vertices"]));
  EXPECT_EQ(m.triangles, more("trimesh_mesh.off")["triangles"].get<std::vector<int32_t>>());
}

TEST(FormatFixtures, TextCloudsFromNumpySavetxt) {
  for (const char* name : {"numpy_points.xyz", "numpy_normals.txt", "numpy_parts.txt", "numpy_shape.pts"}) {
    SCOPED_TRACE(name);
    const nlohmann::json& e = more(name);
    const Cloud c = read_text_cloud(fixture(name));
    EXPECT_EQ(c.xyz, floats(e["xyz"]));
    EXPECT_EQ(c.normals, e.contains("normals") ? floats(e["normals"]) : std::vector<float>{});
    EXPECT_EQ(c.labels, e.contains("labels") ? e["labels"].get<std::vector<int32_t>>() : std::vector<int32_t>{});
  }
  // The same cloud through the generic reader and the ShapeNet .pts reader.
  EXPECT_EQ(read_cloud(fixture("numpy_normals.txt"), {}).normals, floats(more("numpy_normals.txt")["normals"]));
  EXPECT_EQ(read_pts(fixture("numpy_shape.pts")), floats(more("numpy_shape.pts")["xyz"]));
}

TEST(FormatFixtures, SegLabelsFromNumpySavetxt) {
  std::vector<int32_t> zero_based;
  for (int v : more("numpy_shape.seg")["labels"].get<std::vector<int>>()) zero_based.push_back(v - 1);
  EXPECT_EQ(read_seg(fixture("numpy_shape.seg")), zero_based);
}

TEST(FormatFixtures, Hdf5FromH5py) {
  if (!hdf5_supported()) GTEST_SKIP() << "built without libhdf5";
  const nlohmann::json& e = more("h5py_ply_data.h5");
  const H5Array<float> data = read_h5_floats(fixture("h5py_ply_data.h5"), "data");  // gzip-compressed, chunked
  EXPECT_EQ(data.shape, e["data_shape"].get<std::vector<uint64_t>>());
  EXPECT_EQ(data.values, floats(e["data"]));
  const H5Array<int32_t> label = read_h5_ints(fixture("h5py_ply_data.h5"), "label");  // uint8 on disk
  EXPECT_EQ(label.shape, (std::vector<uint64_t>{3, 1}));
  EXPECT_EQ(label.values, e["label"].get<std::vector<int32_t>>());
  EXPECT_EQ(read_h5_floats(fixture("h5py_ply_data.h5"), "normal").values, floats(e["normal"]));
}

}  // namespace
}  // namespace pointnet
