// PointNet's HDF5 datasets: files with `data` (n, points, 3), `label` (n, 1)
// or (n) and, by layout, `normal` (n, points, 3) or `pid` (n, points). y is up
// (PointNet rotates about y). The file lists name files by PointNet's
// repository paths (data/modelnet40_ply_hdf5_2048/ply_data_train0.h5), so a
// file is looked up by its name in this folder first.
//   modelnet40_ply_hdf5_2048   shape_names.txt (classes in label order),
//                              {train,test}_files.txt; optional `normal`
//   ShapeNet part hdf5_data    all_object_categories.txt ("<Category> <synset>",
//                              label order), {train,val,test}_hdf5_file_list.txt;
//                              `label` is the category, `pid` the global part (0..49)
#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "data/layouts.h"
#include "io/h5.h"

namespace pointnet::layouts {
namespace {

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

// The .h5 file a list entry names: its file name in `dir`, else the entry as a path below `dir`.
std::string resolve_listed(const fs::path& dir, const std::string& list, const ListEntry& e) {
  std::error_code ec;
  const fs::path by_name = dir / fs::path(e.text).filename();
  if (fs::is_regular_file(by_name, ec)) return by_name.string();
  const fs::path below = dir / e.text;
  if (fs::is_regular_file(below, ec)) return below.string();
  fail(list, ": line ", e.line, ": '", e.text, "': no such file (looked for ", by_name.string(), ")");
}

// Appends the shapes of one .h5 file; `parts` also reads `pid` (global part labels).
void read_h5_shapes(const std::string& file, bool parts, const std::string& names_file, Dataset& ds) {
  const H5Array<float> data = read_h5_floats(file, "data");
  if (data.shape.size() != 3 || data.shape[1] == 0 || data.shape[2] != 3)
    fail(file, ": dataset 'data' has shape ", shape_text(data.shape), ": expected (shapes, points, 3)");
  const uint64_t n = data.shape[0], points = data.shape[1];
  const H5Array<int32_t> label = read_h5_ints(file, "label");
  if (label.values.size() != n || label.shape.empty() || label.shape[0] != n)
    fail(file, ": dataset 'label' has shape ", shape_text(label.shape), ": expected (", n, ", 1) or (", n,
         "), one label per shape of 'data'");
  H5Array<float> normal;
  if (h5_has_dataset(file, "normal")) {
    normal = read_h5_floats(file, "normal");
    if (normal.shape != data.shape)
      fail(file, ": dataset 'normal' has shape ", shape_text(normal.shape), ": expected ", shape_text(data.shape),
           " as 'data'");
  }
  H5Array<int32_t> pid;
  if (parts) {
    pid = read_h5_ints(file, "pid");
    if (pid.shape.size() != 2 || pid.shape[0] != n || pid.shape[1] != points)
      fail(file, ": dataset 'pid' has shape ", shape_text(pid.shape), ": expected (", n, ", ", points,
           "), one part label per point of 'data'");
  }
  const size_t floats = points * 3;
  for (uint64_t i = 0; i < n; ++i) {
    Shape s;
    s.path = file + ":" + std::to_string(i);
    s.label = label.values[i];
    if (s.label < 0 || s.label >= static_cast<int>(ds.class_names.size()))
      fail(file, ": label[", i, "] = ", s.label, ": expected 0..", ds.class_names.size() - 1, " (", names_file,
           " lists ", ds.class_names.size(), ")");
    s.points.assign(data.values.begin() + i * floats, data.values.begin() + (i + 1) * floats);
    if (!normal.values.empty())
      s.normals.assign(normal.values.begin() + i * floats, normal.values.begin() + (i + 1) * floats);
    for (size_t k = 0; k < floats; ++k)
      if (!std::isfinite(s.points[k]) || (!s.normals.empty() && !std::isfinite(s.normals[k])))
        fail(file, ": shape ", i, ", point ", k / 3, ": non-finite value: expected finite numbers");
    if (parts) s.parts.assign(pid.values.begin() + i * points, pid.values.begin() + (i + 1) * points);
    ds.shapes.push_back(std::move(s));
  }
}

// Reads the classes (first field of each line) of a names file.
std::vector<std::string> read_class_names(const std::string& names_file) {
  std::vector<std::string> names;
  for (const ListEntry& e : read_list_file(names_file)) {
    const std::string name = e.text.substr(0, e.text.find_first_of(" \t"));
    if (index_of(names, name) >= 0) fail(names_file, ": line ", e.line, ": class '", name, "' listed twice");
    names.push_back(name);
  }
  if (names.empty()) fail(names_file, ": no class names: expected one a line");
  return names;
}

// A dataset of the classes in `names_file` and the shapes of every file the lists name.
Dataset read_listed_files(const fs::path& dir, const std::string& layout, const std::string& names_file,
                          const std::vector<std::string>& lists, bool parts) {
  Dataset ds;
  ds.root = dir.string();
  ds.layout = layout;
  ds.format = "hdf5";
  ds.up_axis = 1;
  ds.class_names = read_class_names(names_file);
  for (const std::string& list : lists) {
    const std::vector<ListEntry> files = read_list_file(list);
    if (files.empty()) fail(list, ": no files listed: expected one .h5 file a line");
    for (const ListEntry& e : files) read_h5_shapes(resolve_listed(dir, list, e), parts, names_file, ds);
  }
  return ds;
}

bool is_file(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

}  // namespace

bool is_modelnet_hdf5(const fs::path& dir) {
  return is_file(dir / "shape_names.txt") && (is_file(dir / "train_files.txt") || is_file(dir / "test_files.txt"));
}

bool is_shapenet_part_hdf5(const fs::path& dir) {
  return is_file(dir / "all_object_categories.txt") && is_file(dir / "train_hdf5_file_list.txt");
}

Dataset load_modelnet_hdf5(const fs::path& dir, const LoadOptions& opt) {
  check_classification_options(dir.string(), opt, "ModelNet HDF5 folder");
  const std::string list = (dir / (opt.split + "_files.txt")).string();
  Dataset ds = read_listed_files(dir, "modelnet", (dir / "shape_names.txt").string(), {list}, false);
  if (ds.shapes.empty()) fail(list, ": the listed files hold no shapes");
  return ds;
}

Dataset load_shapenet_part_hdf5(const fs::path& dir, const LoadOptions& opt) {
  std::vector<std::string> lists;
  for (const std::string& split : shapenet_part_splits(dir.string(), opt.split))
    lists.push_back((dir / (split + "_hdf5_file_list.txt")).string());
  Dataset ds =
      read_listed_files(dir, "shapenet_part", (dir / "all_object_categories.txt").string(), lists, opt.with_parts);
  // As the other ShapeNet part loaders: grouped by category, in file order within one.
  std::stable_sort(ds.shapes.begin(), ds.shapes.end(), [](const Shape& a, const Shape& b) { return a.label < b.label; });
  keep_class_choice(ds, opt.class_choice);
  if (ds.shapes.empty()) fail(dir.string(), ": no shapes found for split '", opt.split, "'");
  if (opt.with_parts) {
    localise_global_parts(ds);
    number_parts(ds);
  }
  return ds;
}

}  // namespace pointnet::layouts
