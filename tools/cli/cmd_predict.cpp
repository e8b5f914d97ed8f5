// pointnet predict: classify or segment files, using all of their points.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "core/errors.h"
#include "data/sampler.h"
#include "io/cloud_file.h"
#include "model/device_batch.h"
#include "model_loading.h"

namespace pointnet::cli {

Command add_predict(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("predict", "Classify or segment point-cloud files with a checkpoint");
  auto model_path = std::make_shared<std::string>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto json = std::make_shared<bool>(false);
  auto mesh_points = std::make_shared<int>(2048);
  sub->add_option("--model", *model_path, "checkpoint (.safetensors, or a pointnet.pytorch .pth), or an engine from pointnet build")->required();
  auto device = std::make_shared<std::string>("cpu");
  auto precision = std::make_shared<std::string>("fp32");
  add_device_options(sub, device.get(), precision.get());
  sub->add_option("--input", *inputs, "files: .npy, .ply, .pcd, .off, .pts, .txt, .xyz")->required();
  sub->add_option("--mesh-points", *mesh_points, "points sampled from a .off or .ply mesh")->check(CLI::Range(1, 1000000));
  sub->add_flag("--json", *json, "one JSON object per line (a public contract)");
  return {sub, [=] {
    LoadedModel m = load_model(*model_path, *device, *precision);
    const CheckpointInfo& info = m.checkpoint.info;
    const bool seg = info.config.task == ModelTask::Segmentation;
    const int K = info.config.num_classes;
    for (const std::string& path : *inputs) {
      const Cloud cloud = read_cloud(path, CloudReadOptions{*mesh_points, 1});
      const int n = cloud.num_points();
      // One forward holds (n, 1024) activations several times over: bound it
      // rather than risk the process being killed for memory.
      constexpr int kMaxPoints = 262144;
      if (n > kMaxPoints)
        fail(path, ": ", n, " points; predict takes at most ", kMaxPoints,
             " points per cloud (memory): subsample the cloud first");
      // The model's input rows: xyz, or xyz + normal when it was trained with normals.
      const int C = info.config.input_channels;
      std::vector<float> input = cloud.xyz;
      if (C == 6) {
        input.resize(static_cast<size_t>(n) * 6);
        interleave_normals(cloud.xyz, cloud.normals, path, input.data());
      }
      normalize_cloud(input.data(), n, C);
      const std::vector<float>& log_probs = m.predictor->predict(input.data(), 1, n);
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
