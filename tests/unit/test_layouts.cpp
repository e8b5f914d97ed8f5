// The layouts of the popular repositories, read through load_dataset():
// ModelNet normal_resampled (PointNet++), ShapeNet part v0_normal, ModelNet
// HDF5 (PointNet). Fixtures: tests/layout_fixtures.h.
#include <gtest/gtest.h>

#include <filesystem>

#include "../layout_fixtures.h"
#include "../temp_dir.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "io/h5.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;
using testing::value_of;
using testing::write_text_file;

class LayoutTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
  const fs::path root_ = tmp_.path / "data";

  Dataset load(const std::string& split, int modelnet_classes = 0, bool parts = false) {
    LoadOptions o;
    o.split = split;
    o.modelnet_classes = modelnet_classes;
    o.with_parts = parts;
    return load_dataset(root_.string(), o);
  }
  void expect_error(const LoadOptions& o, std::initializer_list<std::string> details) {
    try {
      load_dataset(root_.string(), o);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      for (const std::string& d : details) EXPECT_NE(std::string(e.what()).find(d), std::string::npos) << e.what();
    }
  }
  // Every point and normal of `s` is value_of(tag, ...).
  static void expect_tagged(const Shape& s, int tag, int points, bool normals) {
    ASSERT_EQ(s.num_points(), points) << s.path;
    ASSERT_EQ(s.normals.size(), normals ? s.points.size() : 0u) << s.path;
    for (int p = 0; p < points; ++p)
      for (int c = 0; c < 3; ++c) {
        EXPECT_EQ(s.points[3 * p + c], value_of(tag, p, c)) << s.path << " point " << p;
        if (normals) {
          EXPECT_EQ(s.normals[3 * p + c], value_of(tag, p, 3 + c)) << s.path << " point " << p;
        }
      }
  }
};

// ---- ModelNet normal_resampled ----

TEST_F(LayoutTest, ModelNetNormalReadsListsInOrderWithNormals) {
  testing::write_modelnet_normal(root_);
  EXPECT_EQ(dataset_layout(root_.string()), "modelnet");
  Dataset ds = load("train");
  EXPECT_EQ(ds.layout, "modelnet");
  EXPECT_EQ(ds.format, "txt");
  EXPECT_EQ(ds.up_axis, 1);
  EXPECT_TRUE(ds.has_normals);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"airplane", "night_stand", "sofa"}));
  ASSERT_EQ(ds.shapes.size(), 4u);
  const int tags[] = {1, 11, 21, 2}, labels[] = {0, 1, 2, 0};  // list order, not sorted
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(ds.shapes[i].label, labels[i]);
    expect_tagged(ds.shapes[i], tags[i], 5, true);
  }
  EXPECT_NE(ds.shapes[1].path.find("night_stand/night_stand_0001.txt"), std::string::npos);
  ASSERT_EQ(load("test").shapes.size(), 1u);
}

TEST_F(LayoutTest, ModelNetNormalPicksTenClassesWhenAskedOrWhenOnlyTheyExist) {
  testing::write_modelnet_normal(root_);
  Dataset ten = load("train", 10);
  EXPECT_EQ(ten.class_names, (std::vector<std::string>{"night_stand", "sofa"}));
  ASSERT_EQ(ten.shapes.size(), 2u);
  EXPECT_EQ(ten.shapes[0].label, 1);  // sofa_0001
  expect_tagged(ten.shapes[0], 21, 5, true);

  fs::remove(root_ / "modelnet40_shape_names.txt");
  EXPECT_EQ(load("train").class_names.size(), 2u);
  LoadOptions forty;
  forty.modelnet_classes = 40;
  expect_error(forty, {"modelnet40_shape_names.txt", "ModelNet40 was asked for"});
  forty.modelnet_classes = 20;
  expect_error(forty, {"expected 40 or 10"});
}

TEST_F(LayoutTest, ModelNetNormalErrorsNameTheListLineOrFile) {
  testing::write_modelnet_normal(root_);
  write_text_file(root_ / "modelnet40_test.txt", "night_stand_0002\nchair_0001\n");
  LoadOptions o;
  o.split = "test";
  expect_error(o, {"modelnet40_test.txt: line 2", "chair_0001"});
  write_text_file(root_ / "modelnet40_test.txt", "airplane_0009\n");
  expect_error(o, {"airplane_0009.txt"});
  write_text_file(root_ / "modelnet40_test.txt", "airplane_0001\n");
  write_text_file(root_ / "airplane" / "airplane_0001.txt", "0,0,0,0,0,1\n1,1,1,0,1\n");
  expect_error(o, {"airplane_0001.txt: line 2", "5 columns"});
  o.split = "val";
  expect_error(o, {"unknown split 'val'"});
  o.split = "train";
  o.with_parts = true;
  expect_error(o, {"part labels"});
}

// ---- ShapeNet part v0_normal ----

TEST_F(LayoutTest, ShapeNetNormalMatchesV0PointsAndPartsPlusNormals) {
  const fs::path v0 = tmp_.path / "v0";
  testing::write_shapenet_part(v0, false);
  testing::write_shapenet_part(root_, true);
  for (const std::string split : {"train", "val", "test", "trainval"}) {
    LoadOptions o;
    o.split = split;
    o.with_parts = true;
    const Dataset a = load_dataset(v0.string(), o), b = load_dataset(root_.string(), o);
    EXPECT_EQ(b.layout, "shapenet_part");
    EXPECT_FALSE(a.has_normals);
    EXPECT_TRUE(b.has_normals);
    EXPECT_EQ(a.class_names, b.class_names);
    EXPECT_EQ(a.part_offset, b.part_offset) << split;
    EXPECT_EQ(a.part_count, b.part_count) << split;
    ASSERT_EQ(a.shapes.size(), b.shapes.size());
    for (size_t i = 0; i < a.shapes.size(); ++i) {
      EXPECT_EQ(a.shapes[i].label, b.shapes[i].label);
      EXPECT_EQ(a.shapes[i].points, b.shapes[i].points);
      EXPECT_EQ(a.shapes[i].parts, b.shapes[i].parts) << split << " shape " << i;
    }
  }
  // Train: Airplane a1 (tag 1) then Chair c1 (tag 5): parts numbered across categories.
  Dataset train = load("train", 0, true);
  EXPECT_EQ(train.part_offset, (std::vector<int>{0, 4}));
  ASSERT_EQ(train.shapes.size(), 2u);
  expect_tagged(train.shapes[1], 5, 6, true);
  EXPECT_EQ(train.shapes[1].parts[0], 4 + (5 + 0) % 4);
}

TEST_F(LayoutTest, ShapeNetNormalRefusesLabelsOutsideTheCategoryAndMissingLabels) {
  testing::write_shapenet_part(root_, true);
  write_text_file(root_ / "03001627" / "c1.txt", "0 0 0 0 0 1 12\n1 1 1 0 0 1 3\n");  // 3 is an Airplane part
  LoadOptions o;
  o.with_parts = true;
  expect_error(o, {"c1.txt", "point 1", "part label 3", "Chair", "12..15"});
  write_text_file(root_ / "03001627" / "c1.txt", "0 0 0 0 0 1\n");
  expect_error(o, {"c1.txt", "no part labels"});
  o.with_parts = false;  // classification needs no labels
  EXPECT_EQ(load_dataset(root_.string(), o).shapes.size(), 2u);
}

TEST_F(LayoutTest, ShapeNetNormalUnknownCategoryStartsAtItsSmallestLabel) {
  testing::write_shapenet_part(root_, true);
  write_text_file(root_ / "synsetoffset2category.txt", "Airplane 02691156\nWidget 03001627\n");
  Dataset ds = load("train", 0, true);
  EXPECT_EQ(ds.part_count, (std::vector<int>{4, 4}));  // Widget's 12..15 -> 0..3
}

// ---- ModelNet HDF5 ----

TEST_F(LayoutTest, ModelNetHdf5ReadsListedFilesWithNormals) {
#ifndef POINTNET_HAS_HDF5
  GTEST_SKIP() << "built without HDF5 (libhdf5-dev)";
#else
  testing::write_modelnet_hdf5(root_, true);
  EXPECT_EQ(dataset_layout(root_.string()), "modelnet");
  Dataset ds = load("train");
  EXPECT_EQ(ds.format, "hdf5");
  EXPECT_EQ(ds.up_axis, 1);
  EXPECT_TRUE(ds.has_normals);
  EXPECT_EQ(ds.class_names, (std::vector<std::string>{"airplane", "bathtub", "bed"}));
  ASSERT_EQ(ds.shapes.size(), 3u);
  const int tags[] = {1, 2, 3}, labels[] = {2, 0, 1};
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(ds.shapes[i].label, labels[i]);
    expect_tagged(ds.shapes[i], tags[i], 4, true);
  }
  EXPECT_NE(ds.shapes[2].path.find("ply_data_train1.h5:0"), std::string::npos);
  const Dataset test = load("test");
  ASSERT_EQ(test.shapes.size(), 1u);
  expect_tagged(test.shapes[0], 4, 4, true);
#endif
}

TEST_F(LayoutTest, ModelNetHdf5WithoutNormalsAndItsErrors) {
#ifndef POINTNET_HAS_HDF5
  GTEST_SKIP() << "built without HDF5 (libhdf5-dev)";
#else
  testing::write_modelnet_hdf5(root_, false);
  Dataset ds = load("train");
  EXPECT_FALSE(ds.has_normals);
  expect_tagged(ds.shapes[0], 1, 4, false);

  LoadOptions o;
  testing::write_ply_data_h5(root_ / "ply_data_train1.h5", {3}, {3}, 4, false);  // label 3 of 3 classes
  expect_error(o, {"ply_data_train1.h5", "label[0] = 3", "0..2"});
  write_text_file(root_ / "ply_data_train1.h5", "not hdf5");
  expect_error(o, {"ply_data_train1.h5", "HDF5"});
  write_text_file(root_ / "train_files.txt", "ply_data_train0.h5\nply_data_train7.h5\n");
  expect_error(o, {"train_files.txt: line 2", "ply_data_train7.h5"});
#endif
}

// Without libhdf5 an HDF5 folder is still recognised, and refused saying why.
TEST_F(LayoutTest, Hdf5FolderWithoutHdf5IsAClearError) {
  if (hdf5_supported()) GTEST_SKIP() << "this build reads HDF5 (the error is for builds without libhdf5-dev)";
  write_text_file(root_ / "shape_names.txt", "airplane\n");
  write_text_file(root_ / "train_files.txt", "data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\n");
  write_text_file(root_ / "ply_data_train0.h5", "\x89HDF\r\n");
  expect_error(LoadOptions(), {"ply_data_train0.h5", "built without HDF5: install libhdf5-dev and rebuild"});
}

TEST_F(LayoutTest, ShapeNetPartHdf5MatchesV0PointsAndParts) {
#ifndef POINTNET_HAS_HDF5
  GTEST_SKIP() << "built without HDF5 (libhdf5-dev)";
#else
  const fs::path v0 = tmp_.path / "v0";
  testing::write_shapenet_part(v0, false);
  testing::write_shapenet_part_hdf5(root_);
  EXPECT_EQ(dataset_layout(root_.string()), "shapenet_part");
  for (const std::string split : {"train", "val", "test", "trainval"}) {
    for (const std::string choice : {"", "Chair"}) {
      LoadOptions o;
      o.split = split;
      o.with_parts = true;
      o.class_choice = choice;
      if (choice == "Chair" && split == "test") continue;  // the test split has no chair
      const Dataset a = load_dataset(v0.string(), o), b = load_dataset(root_.string(), o);
      EXPECT_EQ(b.format, "hdf5");
      EXPECT_EQ(b.up_axis, 1);
      EXPECT_EQ(a.class_names, b.class_names);
      EXPECT_EQ(a.part_offset, b.part_offset) << split;
      ASSERT_EQ(a.shapes.size(), b.shapes.size()) << split << " " << choice;
      for (size_t i = 0; i < a.shapes.size(); ++i) {
        EXPECT_EQ(a.shapes[i].label, b.shapes[i].label);
        EXPECT_EQ(a.shapes[i].points, b.shapes[i].points) << split << " shape " << i;
        EXPECT_EQ(a.shapes[i].parts, b.shapes[i].parts) << split << " shape " << i;
      }
    }
  }
  LoadOptions o;
  o.class_choice = "Lamp";
  expect_error(o, {"unknown class choice 'Lamp'", "Airplane, Chair"});
#endif
}

}  // namespace
}  // namespace pointnet
