// ModelNet-style class folders: DIR/<class>/{train,test}/<file>, any cloud
// file read_cloud() knows (.npy .off .ply .pcd .txt .xyz .pts).
// Class index = alphabetical folder order; z is up.
#include <set>

#include "core/errors.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "data/layouts.h"
#include "io/cloud_file.h"

namespace pointnet::layouts {
namespace {

// FNV-1a then splitmix64: a platform-independent per-file seed, so a mesh is
// sampled identically whatever order (or thread) loads it.
uint64_t file_seed(uint64_t seed, const std::string& relative_path) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : relative_path) h = (h ^ c) * 1099511628211ULL;
  return splitmix64(seed ^ h);
}

}  // namespace

bool is_modelnet_folders(const fs::path& dir) {
  for (const std::string& cls : sorted_entries(dir, true)) {
    std::error_code ec;
    if (fs::is_directory(dir / cls / "train", ec) || fs::is_directory(dir / cls / "test", ec)) return true;
  }
  return false;
}

Dataset load_modelnet_folders(const fs::path& dir, const LoadOptions& opt) {
  check_classification_options(dir.string(), opt, "ModelNet-style folder");
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
  std::set<std::string> formats;  // extensions seen, for Dataset::format
  for (size_t c = 0; c < ds.class_names.size(); ++c) {
    const std::string& cls = ds.class_names[c];
    fs::path split_dir = dir / cls / opt.split;
    std::error_code ec;
    if (!fs::is_directory(split_dir, ec))
      fail(split_dir.string(), ": missing split folder: expected <class>/", opt.split,
           "/ in every class folder of ", dir.string());
    for (const std::string& file : sorted_entries(split_dir, false)) {
      std::string ext = lower_extension(file);
      if (!is_cloud_file(file)) continue;
      formats.insert(ext.substr(1));
      items.push_back({(split_dir / file).string(), cls + "/" + opt.split + "/" + file, static_cast<int>(c)});
    }
  }
  if (items.empty())
    fail(dir.string(), ": no shapes found for split '", opt.split, "' (expected .npy, .off, .ply, .pcd, .txt, ",
         ".xyz or .pts files in <class>/", opt.split, "/)");
  for (const std::string& f : formats) ds.format += (ds.format.empty() ? "" : "+") + f;

  ds.shapes.resize(items.size());
  parallel_for(items.size(), [&](size_t i) {
    const Item& it = items[i];
    Shape& s = ds.shapes[i];
    s.path = it.path;
    s.label = it.label;
    Cloud cloud = read_cloud(it.path, CloudReadOptions{opt.mesh_points, file_seed(opt.seed, it.relative)});
    s.points = std::move(cloud.xyz);
    s.normals = std::move(cloud.normals);
  }, 0, 8);
  return ds;
}

}  // namespace pointnet::layouts
