// pointnet info: what a dataset folder or pack holds, and what looks wrong.
#include <algorithm>
#include <iostream>
#include <map>

#include "commands.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "data/pack.h"

namespace pointnet::cli {
namespace {

std::vector<std::string> splits_of(const std::string& layout) {
  if (layout == "shapenet_part") return {"train", "val", "test"};
  return {"train", "test"};
}

}  // namespace

Command add_info(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("info", "Describe a dataset folder or pack: format, classes, splits, points");
  auto data = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  auto modelnet_classes = std::make_shared<int>(0);
  sub->add_option("data", *data, "dataset folder or pack")->required();
  sub->add_flag("--json", *json, "print one JSON object");
  sub->add_flag_function("--modelnet10", [=](int64_t) { *modelnet_classes = 10; },
                         "ModelNet normal_resampled folders: read the 10-class lists (default: 40 when present)");
  return {sub, [=] {
    const std::string layout = dataset_layout(*data);
    // "format": what the shapes are stored as ("npy", "off", "txt", "hdf5", "pack", ...).
    nlohmann::json out = {{"layout", layout}, {"path", *data}};
    if (is_pack_file(*data)) {
      const nlohmann::json header = pack_header(*data);
      out["dtype"] = header.value("dtype", "?");
      out["pack_version"] = header.value("version", 0);
      if (header.contains("source_format")) out["source_format"] = header["source_format"];
    }
    bool normals = true;
    std::vector<std::string> class_names;
    std::map<std::string, std::vector<size_t>> per_class;  // split -> count per class
    std::vector<int> points;
    std::vector<std::string> formats;  // per split read: one split may hold .npy, another .off
    nlohmann::json splits = nlohmann::json::object(), problems = nlohmann::json::array();
    for (const std::string& split : splits_of(layout)) {
      LoadOptions load;
      load.split = split;
      load.modelnet_classes = *modelnet_classes;
      Dataset ds;
      try {
        ds = load_dataset(*data, load);
      } catch (const Error& e) {
        problems.push_back(split + ": " + e.what());
        continue;
      }
      if (class_names.empty()) class_names = ds.class_names;
      formats.push_back(ds.format);
      normals = normals && ds.has_normals;
      std::vector<size_t>& counts = per_class[split];
      counts.assign(ds.class_names.size(), 0);
      for (const Shape& s : ds.shapes) {
        ++counts[s.label];
        points.push_back(s.num_points());
      }
      splits[split] = ds.shapes.size();
      for (size_t c = 0; c < counts.size(); ++c)
        if (counts[c] == 0) problems.push_back(split + ": class '" + ds.class_names[c] + "' has no shapes");
    }
    if (splits.empty()) fail(*data, ": no split could be read: ", problems.front().get<std::string>());
    out["format"] = combined_format(formats);
    nlohmann::json classes = nlohmann::json::array();
    for (size_t c = 0; c < class_names.size(); ++c) {
      nlohmann::json entry = {{"name", class_names[c]}};
      for (const auto& [split, counts] : per_class) entry[split] = c < counts.size() ? counts[c] : 0;
      classes.push_back(entry);
    }
    out["classes"] = classes;
    out["normals"] = normals;
    out["splits"] = splits;
    if (!points.empty()) {
      std::sort(points.begin(), points.end());
      out["points_per_shape"] = {{"min", points.front()}, {"median", points[points.size() / 2]}, {"max", points.back()}};
    }
    out["problems"] = problems;
    if (*json) {
      std::cout << out.dump() << "\n";
    } else {
      std::cout << *data << ": " << layout << ", format " << out["format"].get<std::string>()
                << (out.contains("dtype") ? " (" + out["dtype"].get<std::string>() + ")" : "") << ", "
                << class_names.size() << " classes, normals " << (normals ? "yes" : "no") << "\n";
      for (const std::string& split : splits_of(layout))
        if (splits.contains(split)) std::cout << "  " << split << ": " << splits[split] << " shapes\n";
      if (out.contains("points_per_shape"))
        std::cout << "  points per shape: min " << out["points_per_shape"]["min"] << ", median "
                  << out["points_per_shape"]["median"] << ", max " << out["points_per_shape"]["max"] << "\n";
      for (const nlohmann::json& c : classes) {
        std::cout << "  " << c["name"].get<std::string>();
        for (const std::string& split : splits_of(layout))  // the summary's order (train first), not the map's
          if (c.contains(split)) std::cout << "  " << split << " " << c[split];
        std::cout << "\n";
      }
      for (const auto& p : problems) std::cout << "  problem: " << p.get<std::string>() << "\n";
    }
    return 0;
  }};
}

}  // namespace pointnet::cli
