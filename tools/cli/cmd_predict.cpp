// pointnet predict: classify or segment files, using all of their points.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "core/errors.h"
#include "data/sampler.h"
#include "io/npy.h"
#include "io/off.h"
#include "io/shapenet_text.h"
#include "model/device_batch.h"
#include "model_loading.h"

namespace pointnet::cli {

namespace {

// Reads the xyz of one cloud from .npy (n, >=3), .pts/.txt/.xyz or an .off mesh.
std::vector<float> read_cloud(const std::string& path, int mesh_points) {
  const std::string ext = std::filesystem::path(path).extension().string();
  std::vector<float> xyz;
  if (ext == ".npy") {
    NpyArray a = read_npy(path);
    if (a.shape.size() != 2 || a.shape[1] < 3)
      fail(path, ": expected an array of shape (n, 3) or (n, >3), got ", a.shape.size(), " dimensions");
    const int64_t n = a.shape[0], c = a.shape[1];
    xyz.resize(static_cast<size_t>(n) * 3);
    for (int64_t i = 0; i < n; ++i)
      for (int k = 0; k < 3; ++k) xyz[static_cast<size_t>(i) * 3 + k] = a.values[static_cast<size_t>(i * c + k)];
  } else if (ext == ".pts" || ext == ".txt" || ext == ".xyz") {
    xyz = read_pts(path);
  } else if (ext == ".off") {
    Rng rng(1);
    xyz = sample_mesh_surface(read_off(path), mesh_points, rng);
  } else {
    fail(path, ": unknown file type '", ext, "' (expected .npy, .pts, .txt, .xyz or .off)");
  }
  if (xyz.empty()) fail(path, ": the cloud has no points");
  for (size_t i = 0; i < xyz.size(); ++i)
    if (!std::isfinite(xyz[i])) fail(path, ": point ", i / 3, " has a non-finite coordinate");
  return xyz;
}

}  // namespace

Command add_predict(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("predict", "Classify or segment point-cloud files with a checkpoint");
  auto model_path = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto mesh_points = std::make_shared<int>(2048);
  sub->add_option("--model", *model_path, "checkpoint (.safetensors)")->required();
  sub->add_option("--input", *inputs, "files: .npy, .pts, .txt, .xyz, .off")->required();
  sub->add_option("--mesh-points", *mesh_points, "points sampled from an .off mesh")->check(CLI::Range(1, 1000000));
  sub->add_flag("--json", *json, "one JSON object per line (a public contract)");
  return {sub, [=] {
    LoadedModel m = load_model(*model_path);
    const CheckpointInfo& info = m.checkpoint.info;
    const bool seg = info.config.task == ModelTask::Segmentation;
    const int K = info.config.num_classes;
    for (const std::string& path : *inputs) {
      std::vector<float> xyz = read_cloud(path, *mesh_points);
      const int n = static_cast<int>(xyz.size() / 3);
      normalize_cloud(xyz.data(), n);
      DeviceBatch<float> batch(m.model->backend());
      m.model->forward(batch.points(xyz.data(), xyz.size()), 1, n, false);
      const std::vector<float> log_probs =
          to_host(m.model->backend(), m.model->log_probs(), static_cast<size_t>(m.model->output_rows()) * K);
      const float* lp = log_probs.data();
      if (!seg) {
        int best = 0;
        for (int k = 1; k < K; ++k) if (lp[k] > lp[best]) best = k;
        if (*json) {
          nlohmann::json out = {{"file", path}, {"class", info.class_names[best]}, {"label", best},
                                {"log_probs", std::vector<float>(lp, lp + K)}};
          std::cout << out.dump() << "\n";
        } else {
          std::printf("%s: %s (%.1f%%)\n", path.c_str(), info.class_names[best].c_str(), 100.0 * std::exp(lp[best]));
        }
      } else {
        std::vector<int> labels(n);
        nlohmann::json rows = nlohmann::json::array();
        for (int i = 0; i < n; ++i) {
          const float* row = lp + static_cast<size_t>(i) * K;
          int best = 0;
          for (int k = 1; k < K; ++k) if (row[k] > row[best]) best = k;
          labels[i] = best;
          if (*json) rows.push_back(std::vector<float>(row, row + K));
        }
        if (*json) {
          std::cout << nlohmann::json({{"file", path}, {"labels", labels}, {"log_probs", rows}}).dump() << "\n";
        } else {
          std::vector<int> counts(K, 0);
          for (int l : labels) counts[l]++;
          std::printf("%s: %d points;", path.c_str(), n);
          for (int k = 0; k < K; ++k) if (counts[k]) std::printf(" part %d: %d", k, counts[k]);
          std::printf("\n");
        }
      }
    }
    return 0;
  }};
}

}  // namespace pointnet::cli
