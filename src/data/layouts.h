// The folder layouts load_dataset() reads (data/dataset.h), one file each,
// and the small helpers they share. Internal to src/data.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace pointnet::layouts {

namespace fs = std::filesystem;

// ModelNet-style class folders: <class>/{train,test}/*.{npy,off} (modelnet_folders.cpp).
bool is_modelnet_folders(const fs::path& dir);
Dataset load_modelnet_folders(const fs::path& dir, const LoadOptions& options);

// PointNet++'s modelnet40_normal_resampled (and its 10-class lists) (modelnet_normal.cpp).
bool is_modelnet_normal(const fs::path& dir);
Dataset load_modelnet_normal(const fs::path& dir, const LoadOptions& options);

// PointNet's modelnet40_ply_hdf5_2048 and ShapeNet part hdf5_data (hdf5_layouts.cpp).
bool is_modelnet_hdf5(const fs::path& dir);
Dataset load_modelnet_hdf5(const fs::path& dir, const LoadOptions& options);
bool is_shapenet_part_hdf5(const fs::path& dir);
Dataset load_shapenet_part_hdf5(const fs::path& dir, const LoadOptions& options);

// ShapeNet part v0 and v0_normal, told apart by their files (shapenet_part.cpp).
bool is_shapenet_part(const fs::path& dir);
Dataset load_shapenet_part(const fs::path& dir, const LoadOptions& options);

// ShapeNet part helpers (shapenet_part.cpp): the split files a split reads
// ("trainval" is train then val); the index of a --class-choice category
// (fails listing the categories); keeping one category's shapes (label 0);
// global part labels (0..49, PointNet++'s numbering) to 0-based per category.
std::vector<std::string> shapenet_part_splits(const std::string& dir, const std::string& split);
int category_index(const std::vector<std::string>& categories, const std::string& choice, const std::string& dir);
void keep_class_choice(Dataset& ds, const std::string& choice);
void localise_global_parts(Dataset& ds);

// ---- helpers (layout_files.cpp) ----

// Names in `dir` (folders or regular files), sorted, hidden ones skipped.
std::vector<std::string> sorted_entries(const fs::path& dir, bool want_dirs);

// ".npy" for "a.NPY".
std::string lower_extension(const std::string& name);

// One entry per non-blank line of a text list, trimmed (CRLF-safe).
struct ListEntry {
  int line;
  std::string text;
};
std::vector<ListEntry> read_list_file(const std::string& path);

// The checks every classification-only layout makes of the load options.
void check_classification_options(const std::string& dir, const LoadOptions& options, const std::string& kind);

// Index of `name` in `names`, or -1.
int index_of(const std::vector<std::string>& names, const std::string& name);

}  // namespace pointnet::layouts
