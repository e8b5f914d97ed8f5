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
  sub->add_option("data", *data, "dataset folder or pack")->required();
  sub->add_flag("--json", *json, "print one JSON object");
  return {sub, [=] {
    const std::string layout = dataset_layout(*data);
    std::string format = layout + " folder";
    if (is_pack_file(*data)) format = layout + " pack (" + pack_header(*data).value("dtype", "?") + ")";
    nlohmann::json out = {{"format", format}, {"layout", layout}, {"path", *data}};
    std::vector<std::string> class_names;
    std::map<std::string, std::vector<size_t>> per_class;  // split -> count per class
    std::vector<int> points;
    nlohmann::json splits = nlohmann::json::object(), problems = nlohmann::json::array();
    for (const std::string& split : splits_of(layout)) {
      LoadOptions load;
      load.split = split;
      Dataset ds;
      try {
        ds = load_dataset(*data, load);
      } catch (const Error& e) {
        problems.push_back(split + ": " + e.what());
        continue;
      }
      if (class_names.empty()) class_names = ds.class_names;
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
    nlohmann::json classes = nlohmann::json::array();
    for (size_t c = 0; c < class_names.size(); ++c) {
      nlohmann::json entry = {{"name", class_names[c]}};
      for (const auto& [split, counts] : per_class) entry[split] = c < counts.size() ? counts[c] : 0;
      classes.push_back(entry);
    }
    out["classes"] = classes;
    out["splits"] = splits;
    if (!points.empty()) {
      std::sort(points.begin(), points.end());
      out["points_per_shape"] = {{"min", points.front()}, {"median", points[points.size() / 2]}, {"max", points.back()}};
    }
    out["problems"] = problems;
    if (*json) {
      std::cout << out.dump() << "\n";
    } else {
      std::cout << *data << ": " << format << ", " << class_names.size() << " classes\n";
      for (const std::string& split : splits_of(layout))
        if (splits.contains(split)) std::cout << "  " << split << ": " << splits[split] << " shapes\n";
      if (out.contains("points_per_shape"))
        std::cout << "  points per shape: min " << out["points_per_shape"]["min"] << ", median "
                  << out["points_per_shape"]["median"] << ", max " << out["points_per_shape"]["max"] << "\n";
      for (const nlohmann::json& c : classes) {
        std::cout << "  " << c["name"].get<std::string>();
        for (const auto& [split, counts] : per_class) std::cout << "  " << split << " " << c[split];
        std::cout << "\n";
      }
      for (const auto& p : problems) std::cout << "  problem: " << p.get<std::string>() << "\n";
    }
    return 0;
  }};
}

}  // namespace pointnet::cli
