// ShapeNet part, both releases:
//   v0          synsetoffset2category.txt, <synset>/points/<id>.pts ("x y z"),
//               <synset>/points_label/<id>.seg (1-based part label within the category)
//   v0_normal   synsetoffset2category.txt, <synset>/<id>.txt ("x y z nx ny nz label",
//               labels numbered across all categories, 0..49)
// Splits in train_test_split/shuffled_{train,val,test}_file_list.json. y is up.
// Labels come out 0-based within the category; number_parts() then numbers
// them across the loaded categories, the same for both releases.
#include <algorithm>
#include <cctype>
#include <limits>
#include <map>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/parallel_for.h"
#include "data/layouts.h"
#include "io/cloud_file.h"
#include "io/shapenet_text.h"

namespace pointnet::layouts {
namespace {

struct Category {
  std::string name, synset;
};

std::vector<Category> read_categories(const std::string& path) {
  std::vector<Category> cats;
  for (const ListEntry& e : read_list_file(path)) {
    std::vector<std::string> tok;
    size_t i = 0;
    const std::string& s = e.text;
    while (i < s.size()) {
      while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      size_t start = i;
      while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
      if (i > start) tok.push_back(s.substr(start, i - start));
    }
    if (tok.size() != 2)
      fail(path, ": line ", e.line, ": expected '<Category> <synset>', found ", tok.size(), " fields");
    for (const Category& c : cats) {
      if (c.name == tok[0]) fail(path, ": line ", e.line, ": category '", tok[0], "' listed twice");
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
  } catch (const nlohmann::json::exception& e) {  // not only parse_error: 1e999 is out_of_range (406)
    fail(path, ": invalid JSON: ", e.what());
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

// The v0_normal release's global part numbering (PointNet++'s seg_classes):
// category -> (first global label, part count).
const std::map<std::string, std::pair<int, int>>& global_part_ranges() {
  static const std::map<std::string, std::pair<int, int>> ranges = {
      {"Airplane", {0, 4}},   {"Bag", {4, 2}},        {"Cap", {6, 2}},        {"Car", {8, 4}},
      {"Chair", {12, 4}},     {"Earphone", {16, 3}},  {"Guitar", {19, 3}},    {"Knife", {22, 2}},
      {"Lamp", {24, 4}},      {"Laptop", {28, 2}},    {"Motorbike", {30, 6}}, {"Mug", {36, 2}},
      {"Pistol", {38, 3}},    {"Rocket", {41, 3}},    {"Skateboard", {44, 3}}, {"Table", {47, 3}}};
  return ranges;
}

}  // namespace

// A known category uses the official ranges (a label outside is an error);
// another one starts at the smallest label its loaded shapes use.
void localise_global_parts(Dataset& ds) {
  for (size_t c = 0; c < ds.class_names.size(); ++c) {
    const auto known = global_part_ranges().find(ds.class_names[c]);
    int first = 0, count = 0;
    if (known != global_part_ranges().end()) {
      std::tie(first, count) = known->second;
    } else {
      first = std::numeric_limits<int>::max();
      for (const Shape& s : ds.shapes)
        if (s.label == static_cast<int>(c))
          for (int32_t p : s.parts) first = std::min(first, p);
      count = std::numeric_limits<int>::max();
    }
    for (Shape& s : ds.shapes) {
      if (s.label != static_cast<int>(c)) continue;
      for (size_t i = 0; i < s.parts.size(); ++i) {
        if (s.parts[i] < first || s.parts[i] - first >= count)
          fail(s.path, ": point ", i, ": part label ", s.parts[i],
               " is not one of category ", ds.class_names[c], "'s parts ", first, "..", first + count - 1);
        s.parts[i] -= first;
      }
    }
  }
}

std::vector<std::string> shapenet_part_splits(const std::string& dir, const std::string& split) {
  if (split == "trainval") return {"train", "val"};
  if (split == "train" || split == "val" || split == "test") return {split};
  fail(dir, ": unknown split '", split, "': expected train, val, test or trainval");
}

int category_index(const std::vector<std::string>& categories, const std::string& choice, const std::string& dir) {
  const int c = index_of(categories, choice);
  if (c >= 0) return c;
  std::string names;
  for (const std::string& name : categories) names += (names.empty() ? "" : ", ") + name;
  fail(dir, ": unknown class choice '", choice, "': expected one of ", names);
}

void keep_class_choice(Dataset& ds, const std::string& choice) {
  if (choice.empty()) return;
  const int c = category_index(ds.class_names, choice, ds.root);
  std::vector<Shape> kept;
  for (Shape& s : ds.shapes)
    if (s.label == c) {
      s.label = 0;
      kept.push_back(std::move(s));
    }
  ds.shapes = std::move(kept);
  ds.class_names = {choice};
}

bool is_shapenet_part(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / "synsetoffset2category.txt", ec);
}

Dataset load_shapenet_part(const fs::path& dir, const LoadOptions& opt) {
  const std::vector<std::string> split_files = shapenet_part_splits(dir.string(), opt.split);

  std::vector<Category> cats = read_categories((dir / "synsetoffset2category.txt").string());
  // v0 keeps points in <synset>/points/; v0_normal has the .txt files right in <synset>/.
  bool v0 = false;
  for (const Category& c : cats) {
    std::error_code ec;
    v0 = v0 || fs::is_directory(dir / c.synset / "points", ec);
  }
  if (!opt.class_choice.empty()) {
    std::vector<std::string> names;
    for (const Category& c : cats) names.push_back(c.name);
    cats = {cats[category_index(names, opt.class_choice, dir.string())]};
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
  ds.format = "txt";
  ds.up_axis = 1;
  for (const Category& c : cats) ds.class_names.push_back(c.name);
  for (size_t c = 0; c < cats.size(); ++c) {
    for (const std::string& id : ids[c]) {
      Shape s;
      s.path = v0 ? (dir / cats[c].synset / "points" / (id + ".pts")).string()
                  : (dir / cats[c].synset / (id + ".txt")).string();
      s.label = static_cast<int>(c);
      ds.shapes.push_back(std::move(s));
    }
  }
  if (ds.shapes.empty())
    fail(dir.string(), ": no shapes found for split '", opt.split, "'",
         opt.class_choice.empty() ? "" : " in category '" + opt.class_choice + "'");

  parallel_for(ds.shapes.size(), [&](size_t i) {
    Shape& s = ds.shapes[i];
    Cloud cloud = read_cloud(s.path, CloudReadOptions{});
    s.points = std::move(cloud.xyz);
    s.normals = std::move(cloud.normals);
    if (!opt.with_parts) return;
    if (!v0) {
      if (cloud.labels.empty())
        fail(s.path, ": no part labels: expected rows 'x y z nx ny nz label' (ShapeNet part v0_normal)");
      s.parts = std::move(cloud.labels);
      return;
    }
    std::string seg = (dir / cats[s.label].synset / "points_label" /
                       (fs::path(s.path).stem().string() + ".seg")).string();
    s.parts = read_seg(seg);
    if (s.parts.size() * 3 != s.points.size())
      fail(seg, ": ", s.parts.size(), " part labels but ", s.path, " has ", s.points.size() / 3,
           " points: expected one label per point");
  }, 0, 8);
  if (!opt.with_parts) return ds;

  if (!v0) localise_global_parts(ds);
  number_parts(ds);
  return ds;
}

}  // namespace pointnet::layouts
