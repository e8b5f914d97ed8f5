// The dataset layouts' list and split files (ModelNet normal_resampled's
// shape names and id lists, ShapeNet part's synsetoffset2category.txt and
// train_test_split JSON, the HDF5 layouts' name and file lists): the first
// input byte picks one file of a small valid tree of each layout (the unit
// tests' fixtures), the rest replaces its text, and the folder is loaded as
// training and evaluation would load it. Every answer must be a Dataset that
// keeps its contract, or a pointnet::Error.
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "../layout_fixtures.h"
#include "data/dataset.h"
#include "fuzz_common.h"

namespace {

namespace fs = std::filesystem;
namespace t = pointnet::testing;

struct Target {
  const char* folder;
  const char* file;
};

const Target kTargets[] = {
    {"normal", "modelnet40_shape_names.txt"},  {"normal", "modelnet40_train.txt"},
    {"normal", "modelnet10_shape_names.txt"},  {"normal", "modelnet10_test.txt"},
    {"part", "synsetoffset2category.txt"},     {"part", "train_test_split/shuffled_train_file_list.json"},
    {"part", "train_test_split/shuffled_val_file_list.json"}, {"part_v0", "synsetoffset2category.txt"},
    {"part_v0", "train_test_split/shuffled_test_file_list.json"},
#ifdef POINTNET_HAS_HDF5
    {"h5", "shape_names.txt"},                 {"h5", "train_files.txt"},
    {"h5_part", "all_object_categories.txt"},  {"h5_part", "train_hdf5_file_list.txt"},
#endif
};
constexpr size_t kCount = sizeof kTargets / sizeof kTargets[0];

const fs::path& root() {
  static const fs::path dir = [] {
    const fs::path d = "/tmp/pointnet_fuzz_layouts_" + std::to_string(getpid());
    fs::remove_all(d);
    t::write_modelnet_normal(d / "normal");
    t::write_shapenet_part(d / "part", true);
    t::write_shapenet_part(d / "part_v0", false);
#ifdef POINTNET_HAS_HDF5
    t::write_modelnet_hdf5(d / "h5", true);
    t::write_shapenet_part_hdf5(d / "h5_part");
#endif
    return d;
  }();
  return dir;
}

std::string read_text(const fs::path& path) {
  std::ostringstream s;
  s << std::ifstream(path, std::ios::binary).rdbuf();
  return s.str();
}

// The fixture's own text of every target file, to put back after each input.
const std::vector<std::string>& originals() {
  static const std::vector<std::string> texts = [] {
    std::vector<std::string> v;
    for (const Target& x : kTargets) v.push_back(read_text(root() / x.folder / x.file));
    return v;
  }();
  return texts;
}

void write_text(const fs::path& path, std::string_view text) {
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(text.data(), static_cast<std::streamsize>(text.size()));
}

// Dataset's contract: labels name classes, clouds are whole, parts number points.
void check(const pointnet::Dataset& ds, bool parts) {
  for (const pointnet::Shape& s : ds.shapes) {
    if (s.label < 0 || s.label >= static_cast<int>(ds.class_names.size()) || s.points.empty() ||
        s.points.size() % 3 != 0 || (!s.normals.empty() && s.normals.size() != s.points.size()))
      __builtin_trap();
    if (parts && s.parts.size() * 3 != s.points.size()) __builtin_trap();
    for (int32_t p : s.parts)
      if (p < 0 || p >= ds.num_parts) __builtin_trap();
  }
}

void load(const std::string& folder, const char* split, bool parts, const char* choice = "", int classes = 0) {
  pointnet::LoadOptions o;
  o.split = split;
  o.with_parts = parts;
  o.class_choice = choice;
  o.modelnet_classes = classes;
  try {
    check(pointnet::load_dataset((root() / folder).string(), o), parts);
  } catch (const pointnet::Error&) {
  }
}

}  // namespace

POINTNET_FUZZ_TARGET({
  if (size == 0) return 0;
  const size_t pick = data[0] % kCount;
  const Target& target = kTargets[pick];
  const fs::path file = root() / target.folder / target.file;
  (void)originals();  // read before the first change
  write_text(file, pointnet::fuzz::as_text(data + 1, size - 1));
  const std::string folder = target.folder;
  if (folder == "normal") {
    load(folder, "train", false);
    load(folder, "test", false, "", 10);
  } else if (folder == "h5") {
    load(folder, "train", false);
  } else {
    load(folder, "train", true);
    load(folder, "trainval", true);
    load(folder, "test", true, "Chair");
  }
  write_text(file, originals()[pick]);
})
