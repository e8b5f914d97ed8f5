// PointNet++'s modelnet40_normal_resampled: modelnet40_shape_names.txt (one
// class a line, in label order), modelnet40_{train,test}.txt (shape ids such
// as night_stand_0001), each shape at <class>/<id>.txt with rows
// "x,y,z,nx,ny,nz" (10,000 points). The same folder has modelnet10_*.txt
// lists for ModelNet10. y is up (PointNet++ rotates about y).
#include <map>

#include "core/errors.h"
#include "core/parallel_for.h"
#include "data/layouts.h"
#include "io/cloud_file.h"

namespace pointnet::layouts {
namespace {

bool has_lists(const fs::path& dir, int classes) {
  std::error_code ec;
  return fs::is_regular_file(dir / ("modelnet" + std::to_string(classes) + "_shape_names.txt"), ec);
}

// 40 or 10: what the options ask for, else 40 when its lists are there.
int pick_variant(const fs::path& dir, int wanted) {
  if (wanted != 0 && wanted != 40 && wanted != 10)
    fail(dir.string(), ": ModelNet variant ", wanted, ": expected 40 or 10");
  if (wanted == 0) return has_lists(dir, 40) ? 40 : 10;
  if (!has_lists(dir, wanted))
    fail((dir / ("modelnet" + std::to_string(wanted) + "_shape_names.txt")).string(),
         ": missing: ModelNet", wanted, " was asked for, but this folder has no such list");
  return wanted;
}

}  // namespace

bool is_modelnet_normal(const fs::path& dir) { return has_lists(dir, 40) || has_lists(dir, 10); }

Dataset load_modelnet_normal(const fs::path& dir, const LoadOptions& opt) {
  check_classification_options(dir.string(), opt, "ModelNet normal_resampled folder");
  const std::string prefix = "modelnet" + std::to_string(pick_variant(dir, opt.modelnet_classes));
  Dataset ds;
  ds.root = dir.string();
  ds.layout = "modelnet";
  ds.format = "txt";
  ds.up_axis = 1;

  const std::string names_file = (dir / (prefix + "_shape_names.txt")).string();
  std::map<std::string, int> label_of;
  for (const ListEntry& e : read_list_file(names_file)) {
    if (!label_of.emplace(e.text, static_cast<int>(ds.class_names.size())).second)
      fail(names_file, ": line ", e.line, ": class '", e.text, "' listed twice");
    ds.class_names.push_back(e.text);
  }
  if (ds.class_names.empty()) fail(names_file, ": no class names: expected one a line");

  const std::string list = (dir / (prefix + "_" + opt.split + ".txt")).string();
  for (const ListEntry& e : read_list_file(list)) {
    // "night_stand_0001": the class is everything before the last '_'.
    const size_t cut = e.text.rfind('_');
    const auto it = cut == std::string::npos ? label_of.end() : label_of.find(e.text.substr(0, cut));
    if (it == label_of.end())
      fail(list, ": line ", e.line, ": shape id '", e.text, "': expected <class>_<number> with a class from ",
           names_file);
    Shape s;
    s.path = (dir / it->first / (e.text + ".txt")).string();
    s.label = it->second;
    ds.shapes.push_back(std::move(s));
  }
  if (ds.shapes.empty()) fail(list, ": no shape ids: expected one a line (e.g. airplane_0001)");

  parallel_for(ds.shapes.size(), [&](size_t i) {
    Shape& s = ds.shapes[i];
    Cloud cloud = read_cloud(s.path, CloudReadOptions{});
    s.points = std::move(cloud.xyz);
    s.normals = std::move(cloud.normals);
  }, 0, 4);
  return ds;
}

}  // namespace pointnet::layouts
