// Tiny dataset trees in the layouts the popular repositories ship
// (data/layouts.h), written by the tests that read them back: the unit tests
// of each layout, the pack round trips and `pointnet info` end to end.
// Every value is a function of (shape, point, column), so readers can be
// checked against value_of() without storing expected data.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#ifdef POINTNET_HAS_HDF5
#include <hdf5.h>
#endif

namespace pointnet::testing {

namespace fs = std::filesystem;

// Column c (0..5: xyz then normal) of point p of the shape tagged `tag`;
// exactly representable in text ("%g") and in float.
inline float value_of(int tag, int p, int c) {
  return static_cast<float>(tag) + 0.25f * static_cast<float>(p) - 0.5f * static_cast<float>(c);
}

inline void write_text_file(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Rows "x<sep>y<sep>z<sep>nx<sep>ny<sep>nz[<sep>label]" with value_of(tag, ...).
inline std::string text_rows(int tag, int points, const std::string& sep, const std::vector<int>& labels = {}) {
  std::string out;
  for (int p = 0; p < points; ++p) {
    for (int c = 0; c < 6; ++c) out += (c ? sep : "") + std::to_string(value_of(tag, p, c));
    if (!labels.empty()) out += sep + std::to_string(labels[p]) + ".000000";
    out += "\n";
  }
  return out;
}

// modelnet40_normal_resampled with 3 classes (40-lists) and a 2-class
// subset (10-lists). Shape tags: airplane_0001 = 1, airplane_0002 = 2,
// night_stand_0001 = 11, night_stand_0002 = 12, sofa_0001 = 21.
// Train: airplane_0001, night_stand_0001, sofa_0001, airplane_0002; test: night_stand_0002.
inline void write_modelnet_normal(const fs::path& dir, int points = 5) {
  write_text_file(dir / "modelnet40_shape_names.txt", "airplane\nnight_stand\nsofa\n");
  write_text_file(dir / "modelnet40_train.txt", "airplane_0001\nnight_stand_0001\r\nsofa_0001\nairplane_0002\n\n");
  write_text_file(dir / "modelnet40_test.txt", "night_stand_0002\n");
  write_text_file(dir / "modelnet10_shape_names.txt", "night_stand\nsofa\n");
  write_text_file(dir / "modelnet10_train.txt", "sofa_0001\nnight_stand_0001\n");
  write_text_file(dir / "modelnet10_test.txt", "night_stand_0002\n");
  const std::vector<std::pair<std::string, int>> shapes = {
      {"airplane_0001", 1}, {"airplane_0002", 2}, {"night_stand_0001", 11}, {"night_stand_0002", 12}, {"sofa_0001", 21}};
  for (const auto& [id, tag] : shapes) {
    const std::string cls = id.substr(0, id.rfind('_'));
    write_text_file(dir / cls / (id + ".txt"), text_rows(tag, points, ","));
  }
}

// ShapeNet part with two categories, Airplane (4 parts) and Chair (4 parts),
// in the v0 layout (.pts + 1-based .seg) or the v0_normal one (.txt rows with
// global labels: Airplane 0..3, Chair 12..15). Both hold the same points and
// parts: shape tag t, point p has local part (t + p) % 4.
// Train: a1 (tag 1), c1 (tag 5); val: c2 (tag 6); test: a2 (tag 2).
inline void write_shapenet_part(const fs::path& dir, bool normal, int points = 6) {
  write_text_file(dir / "synsetoffset2category.txt", "Airplane\t02691156\nChair\t03001627\n");
  write_text_file(dir / "train_test_split" / "shuffled_train_file_list.json",
                  R"(["shape_data/03001627/c1", "shape_data/02691156/a1"])");
  write_text_file(dir / "train_test_split" / "shuffled_val_file_list.json", R"(["shape_data/03001627/c2"])");
  write_text_file(dir / "train_test_split" / "shuffled_test_file_list.json", R"(["shape_data/02691156/a2"])");
  struct Item {
    std::string synset, id;
    int tag, first_global;
  };
  for (const Item& it : {Item{"02691156", "a1", 1, 0}, Item{"02691156", "a2", 2, 0}, Item{"03001627", "c1", 5, 12},
                         Item{"03001627", "c2", 6, 12}}) {
    std::vector<int> local(points);
    for (int p = 0; p < points; ++p) local[p] = (it.tag + p) % 4;
    if (normal) {
      std::vector<int> global(local);
      for (int& g : global) g += it.first_global;
      write_text_file(dir / it.synset / (it.id + ".txt"), text_rows(it.tag, points, " ", global));
    } else {
      std::string pts, seg;
      for (int p = 0; p < points; ++p) {
        for (int c = 0; c < 3; ++c) pts += (c ? " " : "") + std::to_string(value_of(it.tag, p, c));
        pts += "\n";
        seg += std::to_string(local[p] + 1) + "\n";
      }
      write_text_file(dir / it.synset / "points" / (it.id + ".pts"), pts);
      write_text_file(dir / it.synset / "points_label" / (it.id + ".seg"), seg);
    }
  }
}

#ifdef POINTNET_HAS_HDF5
// One dataset of `dims` at the file's root, from `values` in memory type `type`.
inline void write_h5_dataset(hid_t file, const char* name, const std::vector<hsize_t>& dims, hid_t file_type,
                             hid_t memory_type, const void* values) {
  const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  const hid_t set = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(set, memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
  H5Dclose(set);
  H5Sclose(space);
}

// ply_data_<name>.h5 as PointNet's: `data` (n, points, 3) f32, `label` (n, 1)
// u8, with `normals` also `normal` (n, points, 3), with `pid` (n * points
// values) also `pid` (n, points). Shape i has tag tags[i].
inline void write_ply_data_h5(const fs::path& path, const std::vector<int>& tags, const std::vector<uint8_t>& labels,
                              int points, bool normals, const std::vector<uint8_t>& pid = {}) {
  const hsize_t n = tags.size();
  std::vector<float> data, normal;
  for (int tag : tags)
    for (int p = 0; p < points; ++p)
      for (int c = 0; c < 6; ++c) (c < 3 ? data : normal).push_back(value_of(tag, p, c));
  const hid_t file = H5Fcreate(path.string().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  write_h5_dataset(file, "data", {n, static_cast<hsize_t>(points), 3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, data.data());
  write_h5_dataset(file, "label", {n, 1}, H5T_STD_U8LE, H5T_NATIVE_UINT8, labels.data());
  if (normals)
    write_h5_dataset(file, "normal", {n, static_cast<hsize_t>(points), 3}, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT,
                     normal.data());
  if (!pid.empty())
    write_h5_dataset(file, "pid", {n, static_cast<hsize_t>(points)}, H5T_STD_U8LE, H5T_NATIVE_UINT8, pid.data());
  H5Fclose(file);
}

// modelnet40_ply_hdf5_2048 with 3 classes: train = two files (tags 1, 2 | 3),
// test = one (tag 4); lists name the files by PointNet's repository paths.
inline void write_modelnet_hdf5(const fs::path& dir, bool normals, int points = 4) {
  fs::create_directories(dir);
  write_text_file(dir / "shape_names.txt", "airplane\nbathtub\nbed\n");
  write_text_file(dir / "train_files.txt",
                  "data/modelnet40_ply_hdf5_2048/ply_data_train0.h5\ndata/modelnet40_ply_hdf5_2048/ply_data_train1.h5\n");
  write_text_file(dir / "test_files.txt", "data/modelnet40_ply_hdf5_2048/ply_data_test0.h5\n");
  write_ply_data_h5(dir / "ply_data_train0.h5", {1, 2}, {2, 0}, points, normals);
  write_ply_data_h5(dir / "ply_data_train1.h5", {3}, {1}, points, normals);
  write_ply_data_h5(dir / "ply_data_test0.h5", {4}, {2}, points, normals);
}

// PointNet's part_seg hdf5_data holding write_shapenet_part()'s shapes (same
// points, categories and parts; `pid` global as in v0_normal). The train file
// lists Chair c1 before Airplane a1, as the files mix categories.
inline void write_shapenet_part_hdf5(const fs::path& dir, int points = 6) {
  fs::create_directories(dir);
  write_text_file(dir / "all_object_categories.txt", "Airplane\t02691156\nChair\t03001627\n");
  write_text_file(dir / "train_hdf5_file_list.txt", "hdf5_data/ply_data_train0.h5\n");
  write_text_file(dir / "val_hdf5_file_list.txt", "ply_data_val0.h5\n");
  write_text_file(dir / "test_hdf5_file_list.txt", "ply_data_test0.h5\n");
  auto write = [&](const std::string& name, const std::vector<int>& tags, const std::vector<uint8_t>& categories) {
    std::vector<uint8_t> pid;
    for (size_t i = 0; i < tags.size(); ++i)
      for (int p = 0; p < points; ++p) pid.push_back(static_cast<uint8_t>((tags[i] + p) % 4 + (categories[i] ? 12 : 0)));
    write_ply_data_h5(dir / name, tags, categories, points, false, pid);
  };
  write("ply_data_train0.h5", {5, 1}, {1, 0});
  write("ply_data_val0.h5", {6}, {1});
  write("ply_data_test0.h5", {2}, {0});
}
#endif

}  // namespace pointnet::testing
