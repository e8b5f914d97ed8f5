// PointNet's modelnet40_ply_hdf5_2048: shape_names.txt (classes in label
// order), {train,test}_files.txt listing ply_data_{train,test}<k>.h5, each
// with `data` (n, points, 3), `label` (n, 1) or (n) and optionally `normal`
// (n, points, 3). The lists name files by PointNet's repository paths
// (data/modelnet40_ply_hdf5_2048/ply_data_train0.h5), so a file is looked up
// by its name in this folder first. y is up (PointNet rotates about y).
#include <cmath>
#include <cstring>

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

// Appends the shapes of one .h5 file.
void read_h5_shapes(const std::string& file, Dataset& ds) {
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
  const size_t floats = points * 3;
  for (uint64_t i = 0; i < n; ++i) {
    Shape s;
    s.path = file + ":" + std::to_string(i);
    s.label = label.values[i];
    if (s.label < 0 || s.label >= static_cast<int>(ds.class_names.size()))
      fail(file, ": label[", i, "] = ", s.label, ": expected 0..", ds.class_names.size() - 1,
           " (shape_names.txt lists ", ds.class_names.size(), " classes)");
    s.points.assign(data.values.begin() + i * floats, data.values.begin() + (i + 1) * floats);
    if (!normal.values.empty())
      s.normals.assign(normal.values.begin() + i * floats, normal.values.begin() + (i + 1) * floats);
    for (size_t k = 0; k < floats; ++k)
      if (!std::isfinite(s.points[k]) || (!s.normals.empty() && !std::isfinite(s.normals[k])))
        fail(file, ": shape ", i, ", point ", k / 3, ": non-finite value: expected finite numbers");
    ds.shapes.push_back(std::move(s));
  }
}

}  // namespace

bool is_modelnet_hdf5(const fs::path& dir) {
  std::error_code ec;
  return fs::is_regular_file(dir / "shape_names.txt", ec) &&
         (fs::is_regular_file(dir / "train_files.txt", ec) || fs::is_regular_file(dir / "test_files.txt", ec));
}

Dataset load_modelnet_hdf5(const fs::path& dir, const LoadOptions& opt) {
  check_classification_options(dir.string(), opt, "ModelNet HDF5 folder");
  Dataset ds;
  ds.root = dir.string();
  ds.layout = "modelnet";
  ds.format = "hdf5";
  ds.up_axis = 1;
  const std::string names_file = (dir / "shape_names.txt").string();
  for (const ListEntry& e : read_list_file(names_file)) {
    if (index_of(ds.class_names, e.text) >= 0) fail(names_file, ": line ", e.line, ": class '", e.text, "' listed twice");
    ds.class_names.push_back(e.text);
  }
  if (ds.class_names.empty()) fail(names_file, ": no class names: expected one a line");
  const std::string list = (dir / (opt.split + "_files.txt")).string();
  const std::vector<ListEntry> files = read_list_file(list);
  if (files.empty()) fail(list, ": no files listed: expected one .h5 file a line");
  for (const ListEntry& e : files) read_h5_shapes(resolve_listed(dir, list, e), ds);
  if (ds.shapes.empty()) fail(list, ": the listed files hold no shapes");
  return ds;
}

}  // namespace pointnet::layouts
