// load_dataset(): finds which layout a folder has (data/layouts.h, one file
// per layout) or reads a pack. Loaders read files in parallel (OpenMP) into
// preallocated slots, so the order of shapes never depends on scheduling.
#include "data/dataset.h"

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>

#include "core/errors.h"
#include "data/layouts.h"
#include "data/pack.h"

namespace pointnet {

void number_parts(Dataset& ds) {
  // Part counts come from the loaded split (max label per category); training
  // stores them in the checkpoint so evaluation reuses the same numbering.
  const size_t categories = ds.class_names.size();
  ds.part_count.assign(categories, 0);
  for (const Shape& s : ds.shapes) {
    for (int32_t p : s.parts) ds.part_count[s.label] = std::max(ds.part_count[s.label], p + 1);
  }
  ds.part_offset.assign(categories, 0);
  for (size_t c = 1; c < categories; ++c) ds.part_offset[c] = ds.part_offset[c - 1] + ds.part_count[c - 1];
  ds.num_parts = ds.part_offset.back() + ds.part_count.back();
  for (Shape& s : ds.shapes) {
    for (int32_t& p : s.parts) p += ds.part_offset[s.label];
  }
}

namespace {

namespace fs = std::filesystem;

enum class Folder { ShapeNetPart, ShapeNetPartHdf5, ModelNetNormal, ModelNetHdf5, ModelNetFolders };

Folder detect_folder(const std::string& path) {
  const fs::path root(path);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    fail(path, ": not a directory or dataset pack (expected a dataset folder or a file from `pointnet pack`)");
  if (layouts::is_shapenet_part(root)) return Folder::ShapeNetPart;
  if (layouts::is_shapenet_part_hdf5(root)) return Folder::ShapeNetPartHdf5;
  if (layouts::is_modelnet_normal(root)) return Folder::ModelNetNormal;
  if (layouts::is_modelnet_hdf5(root)) return Folder::ModelNetHdf5;
  if (layouts::is_modelnet_folders(root)) return Folder::ModelNetFolders;
  fail(path, ": unrecognised dataset layout: expected synsetoffset2category.txt (ShapeNet part), "
             "all_object_categories.txt + train_hdf5_file_list.txt (ShapeNet part HDF5), "
             "modelnet40_shape_names.txt (ModelNet normal_resampled), {train,test}_files.txt + shape_names.txt "
             "(ModelNet HDF5), <class>/{train,test}/ folders of .npy/.off files (ModelNet), or a pack from "
             "`pointnet pack`");
}

// Normals count only when every shape has one per point.
void set_has_normals(Dataset& ds) {
  ds.has_normals = !ds.shapes.empty() && std::all_of(ds.shapes.begin(), ds.shapes.end(), [](const Shape& s) {
    return s.normals.size() == s.points.size();
  });
}

}  // namespace

std::string combined_format(const std::vector<std::string>& formats) {
  std::set<std::string> names;
  for (const std::string& format : formats) {
    std::istringstream parts(format);
    for (std::string name; std::getline(parts, name, '+');)
      if (!name.empty()) names.insert(name);
  }
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : "+") + name;
  return out;
}

std::string dataset_layout(const std::string& path) {
  if (is_pack_file(path)) return pack_layout(path);
  const Folder f = detect_folder(path);
  return f == Folder::ShapeNetPart || f == Folder::ShapeNetPartHdf5 ? "shapenet_part" : "modelnet";
}

Dataset load_dataset(const std::string& dir, const LoadOptions& options) {
  if (is_pack_file(dir)) return read_pack(dir, options);
  Dataset ds;
  switch (detect_folder(dir)) {
    case Folder::ShapeNetPart: ds = layouts::load_shapenet_part(dir, options); break;
    case Folder::ShapeNetPartHdf5: ds = layouts::load_shapenet_part_hdf5(dir, options); break;
    case Folder::ModelNetNormal: ds = layouts::load_modelnet_normal(dir, options); break;
    case Folder::ModelNetHdf5: ds = layouts::load_modelnet_hdf5(dir, options); break;
    case Folder::ModelNetFolders: ds = layouts::load_modelnet_folders(dir, options); break;
  }
  set_has_normals(ds);
  return ds;
}

}  // namespace pointnet
