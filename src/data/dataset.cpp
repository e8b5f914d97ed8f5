// Dataset loading for the two layouts in DESIGN.md: ModelNet-style class
// folders and ShapeNet part v0. Files are read in parallel (OpenMP) into
// preallocated slots, so the order of shapes never depends on scheduling.
#include "data/dataset.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <exception>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "io/cloud_file.h"
#include "io/npy.h"
#include "io/off.h"
#include "io/shapenet_text.h"
#include "data/pack.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

// FNV-1a then splitmix64: a platform-independent per-file seed, so a mesh is
// sampled identically whatever order (or thread) loads it.
uint64_t file_seed(uint64_t seed, const std::string& relative_path) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : relative_path) h = (h ^ c) * 1099511628211ULL;
  return splitmix64(seed ^ h);
}

std::vector<std::string> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden files, editor droppings
    bool is_dir = it->is_directory(ec);
    if (want_dirs ? is_dir : it->is_regular_file(ec)) names.push_back(name);
  }
  if (ec) fail(dir.string(), ": cannot list directory: ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::string lower_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// ---- ModelNet: DIR/<class>/{train,test}/<file>.{npy,off} ----

bool looks_like_modelnet(const fs::path& dir) {
  for (const std::string& cls : sorted_entries(dir, true)) {
    std::error_code ec;
    if (fs::is_directory(dir / cls / "train", ec) || fs::is_directory(dir / cls / "test", ec)) return true;
  }
  return false;
}

Dataset load_modelnet(const fs::path& dir, const LoadOptions& opt) {
  if (opt.split != "train" && opt.split != "test")
    fail(dir.string(), ": unknown split '", opt.split, "' for a ModelNet-style folder: expected 'train' or 'test'");
  if (opt.with_parts)
    fail(dir.string(), ": part labels requested, but a ModelNet-style folder has none (expected ShapeNet part)");
  if (!opt.class_choice.empty())
    fail(dir.string(), ": --class-choice '", opt.class_choice, "' selects a ShapeNet part category, but this is a ",
         "ModelNet-style folder");
  Dataset ds;
  ds.root = dir.string();
  ds.layout = "modelnet";
  ds.up_axis = 2;
  ds.class_names = sorted_entries(dir, true);

  struct Item {
    std::string path, relative;
    int label;
  };
  std::vector<Item> items;
  for (size_t c = 0; c < ds.class_names.size(); ++c) {
    const std::string& cls = ds.class_names[c];
    fs::path split_dir = dir / cls / opt.split;
    std::error_code ec;
    if (!fs::is_directory(split_dir, ec))
      fail(split_dir.string(), ": missing split folder: expected <class>/", opt.split,
           "/ in every class folder of ", dir.string());
    for (const std::string& file : sorted_entries(split_dir, false)) {
      std::string ext = lower_extension(file);
      if (ext != ".npy" && ext != ".off") continue;
      items.push_back({(split_dir / file).string(), cls + "/" + opt.split + "/" + file, static_cast<int>(c)});
    }
  }
  if (items.empty())
    fail(dir.string(), ": no shapes found for split '", opt.split, "' (expected .npy or .off files in <class>/",
         opt.split, "/)");

  ds.shapes.resize(items.size());
  parallel_for(items.size(), [&](size_t i) {
    const Item& it = items[i];
    Shape& s = ds.shapes[i];
    s.path = it.path;
    s.label = it.label;
    s.points = read_cloud_file(it.path, opt.mesh_points, file_seed(opt.seed, it.relative));
  }, 0, 8);
  return ds;
}

// ---- ShapeNet part v0 ----

struct Category {
  std::string name, synset;
};

std::vector<Category> read_categories(const std::string& path) {
  std::string text = read_file(path);
  std::vector<Category> cats;
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string s = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    std::vector<std::string> tok;
    size_t i = 0;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t start = i;
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i > start) tok.push_back(s.substr(start, i - start));
    }
    if (tok.empty()) continue;
    if (tok.size() != 2) fail(path, ": line ", line, ": expected '<Category> <synset>', found ", tok.size(), " fields");
    for (const Category& c : cats) {
      if (c.name == tok[0]) fail(path, ": line ", line, ": category '", tok[0], "' listed twice");
    }
    cats.push_back({tok[0], tok[1]});
  }
  if (cats.empty()) fail(path, ": no categories: expected lines '<Category> <synset>'");
  return cats;
}

// Returns (synset, id) pairs from one shuffled_*_file_list.json, in file order.
std::vector<std::pair<std::string, std::string>> read_split_list(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": byte ", e.byte, ": invalid JSON: ", e.what());
  }
  if (!j.is_array()) fail(path, ": expected a JSON array of \"shape_data/<synset>/<id>\" strings");
  std::vector<std::pair<std::string, std::string>> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string bad = "\": expected \"shape_data/<synset>/<id>\"";
    if (!j[i].is_string()) fail(path, ": entry ", i, ": expected a string \"shape_data/<synset>/<id>\"");
    std::string s = j[i].get<std::string>();
    size_t a = s.find('/');
    size_t b = a == std::string::npos ? a : s.find('/', a + 1);
    if (b == std::string::npos || s.find('/', b + 1) != std::string::npos || a == 0 || b == a + 1 ||
        b + 1 == s.size())
      fail(path, ": entry ", i, ": found \"", s, bad);
    out.emplace_back(s.substr(a + 1, b - a - 1), s.substr(b + 1));
  }
  return out;
}

Dataset load_shapenet_part(const fs::path& dir, const LoadOptions& opt) {
  std::vector<std::string> split_files;
  if (opt.split == "trainval") split_files = {"train", "val"};
  else if (opt.split == "train" || opt.split == "val" || opt.split == "test") split_files = {opt.split};
  else fail(dir.string(), ": unknown split '", opt.split, "': expected train, val, test or trainval");

  std::vector<Category> cats = read_categories((dir / "synsetoffset2category.txt").string());
  if (!opt.class_choice.empty()) {
    auto it = std::find_if(cats.begin(), cats.end(), [&](const Category& c) { return c.name == opt.class_choice; });
    if (it == cats.end()) {
      std::string names;
      for (const Category& c : cats) names += (names.empty() ? "" : ", ") + c.name;
      fail(dir.string(), ": unknown class choice '", opt.class_choice, "': expected one of ", names);
    }
    cats = {*it};
  }

  // Group by category (file order), then by the split lists' order, as pointnet.pytorch does.
  std::vector<std::vector<std::string>> ids(cats.size());
  for (const std::string& split : split_files) {
    std::string list = (dir / "train_test_split" / ("shuffled_" + split + "_file_list.json")).string();
    for (auto& [synset, id] : read_split_list(list)) {
      for (size_t c = 0; c < cats.size(); ++c) {
        if (cats[c].synset == synset) ids[c].push_back(id);
      }
    }
  }

  Dataset ds;
  ds.root = dir.string();
  ds.layout = "shapenet_part";
  ds.up_axis = 1;
  for (const Category& c : cats) ds.class_names.push_back(c.name);
  for (size_t c = 0; c < cats.size(); ++c) {
    for (const std::string& id : ids[c]) {
      Shape s;
      s.path = (dir / cats[c].synset / "points" / (id + ".pts")).string();
      s.label = static_cast<int>(c);
      ds.shapes.push_back(std::move(s));
    }
  }
  if (ds.shapes.empty())
    fail(dir.string(), ": no shapes found for split '", opt.split, "'",
         opt.class_choice.empty() ? "" : " in category '" + opt.class_choice + "'");

  parallel_for(ds.shapes.size(), [&](size_t i) {
    Shape& s = ds.shapes[i];
    s.points = read_pts(s.path);
    if (s.points.empty()) fail(s.path, ": empty point cloud: expected at least one 'x y z' line");
    if (!opt.with_parts) return;
    std::string seg = (dir / cats[s.label].synset / "points_label" /
                       (fs::path(s.path).stem().string() + ".seg")).string();
    s.parts = read_seg(seg);
    if (s.parts.size() * 3 != s.points.size())
      fail(seg, ": ", s.parts.size(), " part labels but ", s.path, " has ", s.points.size() / 3,
           " points: expected one label per point");
  }, 0, 8);
  if (!opt.with_parts) return ds;

  number_parts(ds);
  return ds;
}

}  // namespace

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

// A folder's layout; the pack case is handled by the callers.
std::string folder_layout(const std::string& path) {
  fs::path root(path);
  std::error_code ec;
  if (!fs::is_directory(root, ec))
    fail(path, ": not a directory or dataset pack (expected a dataset folder or a file from `pointnet pack`)");
  if (fs::exists(root / "synsetoffset2category.txt", ec)) return "shapenet_part";
  if (looks_like_modelnet(root)) return "modelnet";
  fail(path, ": unrecognised dataset layout: expected synsetoffset2category.txt (ShapeNet part), "
             "<class>/{train,test}/ folders of .npy/.off files (ModelNet), or a pack from `pointnet pack`");
}

}  // namespace

std::string dataset_layout(const std::string& path) {
  return is_pack_file(path) ? pack_layout(path) : folder_layout(path);
}

Dataset load_dataset(const std::string& dir, const LoadOptions& options) {
  if (is_pack_file(dir)) return read_pack(dir, options);
  if (folder_layout(dir) == "shapenet_part") return load_shapenet_part(fs::path(dir), options);
  return load_modelnet(fs::path(dir), options);
}

}  // namespace pointnet
