// pointnet show: a picture of a point cloud, coloured by part labels from a
// .seg file and/or by a model's prediction, from one to four views.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "commands.h"
#include "core/errors.h"
#include "core/rng.h"
#include "data/sampler.h"
#include "io/cloud_file.h"
#include "io/shapenet_text.h"
#include "model/device_batch.h"
#include "model_loading.h"
#include "render/cloud_figure.h"
#include "render/palette.h"
#include "render/png_writer.h"
#include "size_option.h"

namespace pointnet::cli {
namespace {

using render::Rgb;

// Keeps `count` points chosen at random (fixed seed), in their file order.
void subsample(std::vector<float>& xyz, std::vector<int32_t>& labels, int count) {
  const int n = static_cast<int>(xyz.size() / 3);
  if (count <= 0 || count >= n) return;
  std::vector<int> idx(n);
  for (int i = 0; i < n; ++i) idx[i] = i;
  Rng rng(7);
  for (int i = 0; i < count; ++i) std::swap(idx[i], idx[i + rng.below(static_cast<uint32_t>(n - i))]);
  idx.resize(count);
  std::sort(idx.begin(), idx.end());
  std::vector<float> kept_xyz(static_cast<size_t>(count) * 3);
  std::vector<int32_t> kept_labels;
  for (int i = 0; i < count; ++i) std::copy_n(&xyz[3 * static_cast<size_t>(idx[i])], 3, &kept_xyz[3 * i]);
  if (!labels.empty())
    for (int i : idx) kept_labels.push_back(labels[i]);
  xyz.swap(kept_xyz);
  labels.swap(kept_labels);
}

// What the model says about one cloud.
struct Prediction {
  bool segmentation = false;
  std::vector<int32_t> labels;  // seg: per point, 0-based within the category's parts
  std::string class_name;       // cls
  double probability = 0;       // cls
};

Prediction predict_cloud(LoadedModel& m, const std::vector<float>& xyz, const std::string& category) {
  const CheckpointInfo& info = m.checkpoint.info;
  const int K = info.config.num_classes, n = static_cast<int>(xyz.size() / 3);
  constexpr int kMaxPoints = 262144;  // as predict: one forward holds (n, 1024) activations several times
  if (n > kMaxPoints) fail(n, " points: show --model takes at most ", kMaxPoints, " points (use --points)");
  const std::vector<float>& lp = m.predictor->predict(xyz.data(), 1, n);
  Prediction p;
  p.segmentation = info.config.task == ModelTask::Segmentation;
  if (!p.segmentation) {
    const int best = static_cast<int>(std::max_element(lp.begin(), lp.begin() + K) - lp.begin());
    p.class_name = best < static_cast<int>(info.class_names.size()) ? info.class_names[best] : std::to_string(best);
    p.probability = std::exp(lp[best]);
    return p;
  }
  // An all-category model picks among the named category's parts, as evaluation does.
  int first = 0, count = K;
  if (info.part_offset.size() > 1) {
    const auto it = std::find(info.class_names.begin(), info.class_names.end(), category);
    if (it == info.class_names.end())
      fail("the model segments ", info.class_names.size(),
           " categories: name the shape's category with --category (one of its class names, e.g. ",
           info.class_names.front(), ")");
    const size_t c = static_cast<size_t>(it - info.class_names.begin());
    first = info.part_offset[c];
    count = info.part_count[c];
  }
  p.labels.resize(n);
  for (int i = 0; i < n; ++i) {
    const float* row = &lp[static_cast<size_t>(i) * K + first];
    p.labels[i] = static_cast<int32_t>(std::max_element(row, row + count) - row);
  }
  return p;
}

std::vector<Rgb> colors_of(const std::vector<int32_t>& labels) {
  std::vector<Rgb> out;
  for (int32_t l : labels) out.push_back(render::label_color(l));
  return out;
}

}  // namespace

Command add_show(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("show", "Render a point cloud to a PNG, coloured by part labels or a model");
  struct Options {
    std::string input, labels, model, out, size, up, category, part_names;
    std::string device = "cpu", precision = "fp32";
    int views = 1, points = 0;
  };
  auto o = std::make_shared<Options>();
  sub->add_option("--input", o->input, "cloud file: .npy, .pts, .txt, .xyz, .off")->required();
  sub->add_option("--labels", o->labels, ".seg file: one 1-based part label per point");
  sub->add_option("--model", o->model, "checkpoint: segmenters colour by predicted part, classifiers title the class");
  sub->add_option("--out", o->out, "PNG file to write")->required();
  sub->add_option("--views", o->views, "1 (three-quarter), 2 (+ front), 3 (front, side, top), 4 (all)")
      ->check(CLI::Range(1, 4));
  sub->add_option("--size", o->size, "WIDTHxHEIGHT of the whole image (default: 420 pixels per tile)");
  sub->add_option("--points", o->points, "draw at most N points (random subset; .off: points sampled)")
      ->check(CLI::Range(1, 10000000));
  sub->add_option("--up", o->up, "the data's up axis: y (ShapeNet) or z (ModelNet); default: the model's, else z")
      ->check(CLI::IsMember({"y", "z"}));
  sub->add_option("--category", o->category, "the shape's category, for a model trained on all categories");
  sub->add_option("--part-names", o->part_names, "legend names for parts 0, 1, ... (comma-separated)");
  add_device_options(sub, &o->device, &o->precision);
  return {sub, [o] {
    const auto [width, height] = parse_size(o->size);
    Cloud cloud = read_cloud(o->input, CloudReadOptions{o->points > 0 ? o->points : 2048, 1});
    std::vector<int32_t> truth;
    if (!o->labels.empty()) {
      truth = read_seg(o->labels);
      if (static_cast<int>(truth.size()) != cloud.num_points())
        fail(o->labels, ": ", truth.size(), " labels for the ", cloud.num_points(), " points of ", o->input,
             ": expected one label per point");
    }
    subsample(cloud.xyz, truth, o->points);
    const int n = cloud.num_points();
    normalize_cloud(cloud.xyz.data(), n);

    render::CloudFigure figure;
    figure.width = width;
    figure.height = height;
    figure.views = render::standard_views(o->views);
    figure.up_axis = o->up == "y" ? 1 : 2;
    const std::string name = std::filesystem::path(o->input).filename().string();
    figure.title = name;

    Prediction pred;
    if (!o->model.empty()) {
      LoadedModel m = load_model(o->model, o->device, o->precision);
      if (o->up.empty()) figure.up_axis = m.checkpoint.info.up_axis;
      pred = predict_cloud(m, cloud.xyz, o->category);
      if (!pred.segmentation && !truth.empty())
        fail(o->model, ": a classifier; --labels needs a segmentation model (or leave out --model)");
    }
    std::set<int32_t> used(truth.begin(), truth.end());
    used.insert(pred.labels.begin(), pred.labels.end());
    if (!truth.empty()) figure.panels.push_back({pred.labels.empty() ? "" : "truth", colors_of(truth)});
    if (!pred.labels.empty()) {
      figure.panels.push_back({truth.empty() ? "" : "prediction", colors_of(pred.labels)});
      if (!truth.empty()) {
        int agree = 0;
        for (int i = 0; i < n; ++i) agree += truth[i] == pred.labels[i];
        char buf[64];
        std::snprintf(buf, sizeof buf, ": accuracy %.1f%% (%d points)", 100.0 * agree / n, n);
        figure.title += buf;
      }
    }
    if (figure.panels.empty()) figure.panels.push_back({"", std::vector<Rgb>(n, render::neutral_color())});
    if (!pred.class_name.empty()) {
      char buf[32];
      std::snprintf(buf, sizeof buf, " (p=%.2f)", pred.probability);
      figure.title += " - predicted: " + pred.class_name + buf;
    }
    std::vector<std::string> part_names;
    if (!o->part_names.empty()) {
      std::stringstream s(o->part_names);
      for (std::string part; std::getline(s, part, ',');) part_names.push_back(part);
    }
    constexpr size_t kMaxLegend = 24;  // more would crowd out the cloud
    for (int32_t l : used) {
      if (figure.legend.size() + 1 == kMaxLegend && used.size() > kMaxLegend) {
        figure.legend.push_back({render::kBackground, "+" + std::to_string(used.size() - figure.legend.size()) +
                                                          " more labels"});
        break;
      }
      const std::string label = l < static_cast<int32_t>(part_names.size()) ? part_names[l] : "part " + std::to_string(l);
      figure.legend.push_back({render::label_color(l), label});
    }
    render::write_png(o->out, render::render_figure(cloud.xyz, figure));
    std::cout << "wrote " << o->out << "\n";
    return 0;
  }};
}

}  // namespace pointnet::cli
