#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>

#include "../temp_dir.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "io/npy.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

class DatasetTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
  const fs::path root_ = tmp_.path;

  void text(const fs::path& rel, const std::string& content) {
    fs::create_directories((root_ / rel).parent_path());
    std::ofstream(root_ / rel) << content;
  }
  // (n, cols) cloud whose first coordinate encodes `tag` so tests can tell files apart.
  void cloud(const fs::path& rel, float tag, int n = 4, int cols = 3) {
    fs::create_directories((root_ / rel).parent_path());
    std::vector<float> v(static_cast<size_t>(n) * cols);
    for (int i = 0; i < n; ++i)
      for (int k = 0; k < cols; ++k) v[i * cols + k] = k == 0 ? tag : static_cast<float>(i + 10 * k);
    write_npy((root_ / rel).string(), {n, cols}, v.data());
  }
  Dataset load(const LoadOptions& o) { return load_dataset(root_.string(), o); }
  Dataset load(const std::string& split) {
    LoadOptions o;
    o.split = split;
    return load(o);
  }
  // Expects load to throw an Error containing every piece of `details`.
  void expect_error(const LoadOptions& o, std::initializer_list<std::string> details) {
    try {
      load(o);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      for (const std::string& d : details) EXPECT_NE(std::string(e.what()).find(d), std::string::npos) << e.what();
    }
  }
};

// ModelNet quirk header: counts glued to "OFF".
std::string quad_off() { return "OFF4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n3 0 2 3\n"; }

// ---- ModelNet-style ----

TEST_F(DatasetTest, ModelNetClassesSortedFilesSortedLabelsByFolder) {
  cloud("chair/train/chair_0002.npy", 2);
  cloud("chair/train/chair_0001.npy", 1);
  cloud("airplane/train/airplane_0001.npy", 0, 5, 6);  // extra columns: first 3 kept
  cloud("airplane/test/airplane_0100.npy", 100);
  cloud("chair/test/chair_0100.npy", 101);
  text("chair/train/notes.md", "ignored");  // not a cloud extension (.txt is one: see below)
  text("README.md", "ignored");

  Dataset ds = load("train");
  EXPECT_EQ(ds.layout, "modelnet");
  EXPECT_EQ(ds.up_axis, 2);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"airplane", "chair"}));
  ASSERT_EQ(ds.shapes.size(), 3u);
  EXPECT_EQ(ds.shapes[0].label, 0);
  EXPECT_EQ(ds.shapes[0].num_points(), 5);
  EXPECT_EQ(ds.shapes[0].points[3], 0.0f);   // point 1 x
  EXPECT_EQ(ds.shapes[0].points[4], 11.0f);  // point 1 y, not column 3 of 6
  EXPECT_EQ(ds.shapes[1].points[0], 1.0f);
  EXPECT_EQ(ds.shapes[2].points[0], 2.0f);
  EXPECT_EQ(ds.shapes[2].label, 1);
  EXPECT_TRUE(ds.shapes[2].parts.empty());
  EXPECT_NE(ds.shapes[2].path.find("chair_0002.npy"), std::string::npos);

  Dataset test = load("test");
  ASSERT_EQ(test.shapes.size(), 2u);
  EXPECT_EQ(test.shapes[1].points[0], 101.0f);
}

// .txt is a cloud format in class folders (text clouds), so a stray text file
// there is an error naming it, not a silently skipped or misread shape.
TEST_F(DatasetTest, ModelNetStrayTextFileIsAnErrorNamingIt) {
  cloud("chair/train/chair_0001.npy", 1);
  text("chair/train/notes.txt", "not a cloud");
  LoadOptions o;
  expect_error(o, {"chair/train/notes.txt", "line 1"});
}

TEST_F(DatasetTest, ModelNetOffMeshesAreSampledPerFileDeterministically) {
  text("box/train/box_0001.off", quad_off());
  LoadOptions o;
  o.mesh_points = 64;
  o.seed = 5;
  Dataset a = load(o);
  ASSERT_EQ(a.shapes.size(), 1u);
  ASSERT_EQ(a.shapes[0].num_points(), 64);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(a.shapes[0].points[3 * i + 2], 0.0f);

  // Adding other files (changing load order and thread assignment) leaves it unchanged.
  for (int i = 0; i < 20; ++i) text("aaa/train/x" + std::to_string(i) + ".off", quad_off());
  Dataset b = load(o);
  ASSERT_EQ(b.shapes.size(), 21u);
  EXPECT_EQ(b.shapes.back().points, a.shapes[0].points);
  EXPECT_NE(b.shapes[0].points, b.shapes[1].points);  // different files, different samples

  o.seed = 6;
  EXPECT_NE(load(o).shapes.back().points, a.shapes[0].points);
}

TEST_F(DatasetTest, ModelNetErrors) {
  cloud("chair/train/a.npy", 1);
  cloud("table/train/a.npy", 1);
  cloud("chair/test/a.npy", 1);
  LoadOptions o;
  o.split = "test";
  expect_error(o, {"table", "missing split folder"});
  o.split = "val";
  expect_error(o, {"unknown split 'val'"});
  o.split = "train";
  o.with_parts = true;
  expect_error(o, {"part labels"});

  cloud("table/test/keep.npy", 1);
  fs::remove(root_ / "chair/test/a.npy");
  fs::remove(root_ / "table/test/keep.npy");
  o = LoadOptions();
  o.split = "test";
  expect_error(o, {root_.string(), "no shapes found for split 'test'"});
}

TEST_F(DatasetTest, ModelNetBadFilesNameTheFile) {
  cloud("chair/train/a.npy", 1);
  LoadOptions o;
  fs::path bad = root_ / "chair/train/b.npy";

  std::vector<float> nan_cloud = {0, 0, 0, 1, std::numeric_limits<float>::quiet_NaN(), 0};
  write_npy(bad.string(), {2, 3}, nan_cloud.data());
  expect_error(o, {bad.string(), "point 1", "finite"});

  write_npy(bad.string(), {0, 3}, nan_cloud.data());
  expect_error(o, {bad.string(), "empty point cloud"});

  write_npy(bad.string(), {6}, nan_cloud.data());
  expect_error(o, {bad.string(), "shape (n, 3)", "found shape (6)"});

  std::ofstream(bad, std::ios::binary | std::ios::trunc) << "garbage";
  expect_error(o, {bad.string(), "byte 0"});
  fs::remove(bad);

  text("chair/train/m.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n");
  expect_error(o, {(root_ / "chair/train/m.off").string(), "line 6"});
}

TEST_F(DatasetTest, UnrecognisedLayout) {
  text("random/file.txt", "x");
  expect_error(LoadOptions(), {root_.string(), "unrecognised dataset layout", "synsetoffset2category.txt"});
  try {
    load_dataset((root_ / "nope").string(), LoadOptions());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not a directory"), std::string::npos);
  }
}

// ---- ShapeNet part ----

class DatasetShapeNet : public DatasetTest {
 protected:
  // Two categories; Bag shapes have 3 parts, Airplane 2 (listed second on purpose).
  void build() {
    text("synsetoffset2category.txt", "Bag\t02773838\nAirplane\t02691156\n");
    text("train_test_split/shuffled_train_file_list.json",
         R"(["shape_data/02691156/p1", "shape_data/02773838/b1", "shape_data/99999999/zz", "shape_data/02773838/b2"])");
    text("train_test_split/shuffled_val_file_list.json", R"(["shape_data/02773838/b3"])");
    text("train_test_split/shuffled_test_file_list.json", R"(["shape_data/02691156/p2"])");
    shape("02691156", "p1", {1, 2, 2});
    shape("02691156", "p2", {2, 1, 1});
    shape("02773838", "b1", {1, 3, 1});
    shape("02773838", "b2", {2, 2, 2});
    shape("02773838", "b3", {1, 1, 1});
  }
  void shape(const std::string& synset, const std::string& id, const std::vector<int>& labels) {
    std::string pts, seg;
    for (size_t i = 0; i < labels.size(); ++i) {
      pts += std::to_string(i) + " " + std::to_string(labels[i]) + " 0.5\n";
      seg += std::to_string(labels[i]) + "\n";
    }
    text(synset + "/points/" + id + ".pts", pts);
    text(synset + "/points_label/" + id + ".seg", seg);
  }
};

TEST_F(DatasetShapeNet, ClassificationDoesNotReadSegFiles) {
  build();
  fs::remove(root_ / "02773838/points_label/b1.seg");
  Dataset ds = load("train");
  EXPECT_EQ(ds.layout, "shapenet_part");
  EXPECT_EQ(ds.up_axis, 1);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"Bag", "Airplane"}));
  // Grouped by category in file order, then list order; unknown synsets skipped.
  ASSERT_EQ(ds.shapes.size(), 3u);
  EXPECT_NE(ds.shapes[0].path.find("b1.pts"), std::string::npos);
  EXPECT_NE(ds.shapes[1].path.find("b2.pts"), std::string::npos);
  EXPECT_NE(ds.shapes[2].path.find("p1.pts"), std::string::npos);
  EXPECT_EQ(ds.shapes[2].label, 1);
  EXPECT_EQ(ds.shapes[0].num_points(), 3);
  EXPECT_TRUE(ds.shapes[0].parts.empty());
  EXPECT_EQ(ds.num_parts, 0);
}

TEST_F(DatasetShapeNet, GlobalPartIdsOverAllCategories) {
  build();
  LoadOptions o;
  o.split = "trainval";
  o.with_parts = true;
  Dataset ds = load(o);
  ASSERT_EQ(ds.shapes.size(), 4u);  // b1 b2 b3 p1
  EXPECT_EQ(ds.part_count, (std::vector<int>{3, 2}));
  EXPECT_EQ(ds.part_offset, (std::vector<int>{0, 3}));
  EXPECT_EQ(ds.num_parts, 5);
  EXPECT_EQ(ds.shapes[0].parts, (std::vector<int32_t>{0, 2, 0}));
  EXPECT_EQ(ds.shapes[3].parts, (std::vector<int32_t>{3, 4, 4}));  // Airplane local {0,1,1} + 3
}

TEST_F(DatasetShapeNet, ClassChoiceKeepsLocalParts) {
  build();
  LoadOptions o;
  o.split = "test";
  o.with_parts = true;
  o.class_choice = "Airplane";
  Dataset ds = load(o);
  EXPECT_EQ(ds.class_names, std::vector<std::string>{"Airplane"});
  ASSERT_EQ(ds.shapes.size(), 1u);
  EXPECT_EQ(ds.shapes[0].label, 0);
  EXPECT_EQ(ds.shapes[0].parts, (std::vector<int32_t>{1, 0, 0}));
  EXPECT_EQ(ds.num_parts, 2);
  EXPECT_EQ(ds.part_offset, std::vector<int>{0});
}

TEST_F(DatasetShapeNet, Errors) {
  build();
  LoadOptions o;
  o.with_parts = true;
  o.split = "everything";
  expect_error(o, {"unknown split 'everything'"});
  o.split = "train";
  o.class_choice = "Boat";
  expect_error(o, {"unknown class choice 'Boat'", "Bag, Airplane"});
  o.class_choice = "";

  text("02773838/points_label/b2.seg", "1\n0\n1\n");
  expect_error(o, {"b2.seg", "line 2", ">= 1"});
  text("02773838/points_label/b2.seg", "1\n1\n");
  expect_error(o, {"b2.seg", "b2.pts", "2 part labels", "3 points"});
  text("02773838/points_label/b2.seg", "1\n1\n1\n");
  text("02773838/points/b2.pts", "0 0 0\n1 1 inf\n");
  expect_error(o, {"b2.pts", "line 2"});
  text("02773838/points/b2.pts", "0 0 0\n1 1 1\n2 2 2\n");

  text("train_test_split/shuffled_train_file_list.json", "[\"shape_data/02773838/b1\", ");
  expect_error(o, {"shuffled_train_file_list.json", "byte", "invalid JSON"});
  text("train_test_split/shuffled_train_file_list.json", "[1e999]");  // nlohmann's out_of_range, not parse_error
  expect_error(o, {"shuffled_train_file_list.json", "invalid JSON", "number overflow"});
  text("train_test_split/shuffled_train_file_list.json", "[\"02773838/b1\"]");
  expect_error(o, {"shuffled_train_file_list.json", "entry 0", "shape_data/<synset>/<id>"});
  text("train_test_split/shuffled_train_file_list.json", "[]");
  expect_error(o, {"no shapes found for split 'train'"});
  text("synsetoffset2category.txt", "Bag 02773838 extra\n");
  expect_error(o, {"synsetoffset2category.txt", "line 1"});
}

// ---- The real ModelNet40 copy, when present ----

TEST(DatasetModelNet40, LoadsOfficialSplit) {
  std::string dir = POINTNET_SOURCE_DIR "/../shared/data/modelnet40-npy1024";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " not present";
  auto start = std::chrono::steady_clock::now();
  LoadOptions o;
  Dataset train = load_dataset(dir, o);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  o.split = "test";
  Dataset test = load_dataset(dir, o);
  EXPECT_EQ(train.class_names.size(), 40u);
  EXPECT_EQ(train.class_names.front(), "airplane");
  EXPECT_EQ(train.class_names.back(), "xbox");
  EXPECT_EQ(train.class_names, test.class_names);
  EXPECT_EQ(train.shapes.size(), 9843u);
  EXPECT_EQ(test.shapes.size(), 2468u);
  EXPECT_EQ(train.shapes.front().label, 0);
  EXPECT_EQ(train.shapes.back().label, 39);
  EXPECT_EQ(train.shapes.front().num_points(), 1024);
  std::cout << "[ info     ] ModelNet40 train loaded in " << seconds << " s\n";
}

}  // namespace
}  // namespace pointnet
