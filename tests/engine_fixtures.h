// Checkpoints with random weights AND non-trivial BatchNorm statistics (the
// initialisation's mean 0 / var 1 / gamma 1 would hide folding mistakes),
// written and read back as a user's would be. Shared by the engine tests.
#pragma once
#include <string>
#include <vector>

#include "cpu/cpu_backend.h"
#include "model/pointnet.h"
#include "temp_dir.h"
#include "train/checkpoint.h"

namespace pointnet::testing {

inline ModelConfig engine_config(ModelTask task, int classes, bool feature_transform, int channels = 3) {
  ModelConfig c;
  c.task = task;
  c.num_classes = classes;
  c.feature_transform = feature_transform;
  c.input_channels = channels;
  return c;
}

// Saves to dir/model.safetensors and loads it back.
inline Checkpoint make_random_checkpoint(const ModelConfig& config, uint64_t seed, const TempDir& dir) {
  CpuBackend<float> be;
  PointNet<float> model(config, be);
  Rng rng(seed);
  model.initialize(rng);
  ParamStore<float>& store = model.params();
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& info = store.infos()[i];
    const auto ends = [&](const char* s) {
      const std::string suffix(s);
      return info.name.size() >= suffix.size() && info.name.compare(info.name.size() - suffix.size(), suffix.size(), suffix) == 0;
    };
    const bool bn = info.name.find(".bn") != std::string::npos || info.name.rfind("bn", 0) == 0;
    if (!bn || info.count == 0 || ends("num_batches_tracked")) continue;
    std::vector<float> v(info.count);
    for (float& x : v) {
      if (ends(".running_var")) x = static_cast<float>(rng.uniform(0.2, 3.0));
      else if (ends(".running_mean")) x = static_cast<float>(rng.uniform(-0.5, 0.5));
      else if (ends(".weight")) x = static_cast<float>(rng.uniform(-1.5, 1.5));  // negative gammas too
      else x = static_cast<float>(rng.uniform(-0.3, 0.3));
    }
    be.upload(store.value(static_cast<int>(i)), v.data(), v.size());
  }
  CheckpointInfo info;
  info.config = config;
  if (config.task == ModelTask::Classification) {
    for (int c = 0; c < config.num_classes; ++c) info.class_names.push_back("class" + std::to_string(c));
  } else {
    info.class_names = {"Chair"};
    info.part_offset = {0};
    info.part_count = {config.num_classes};
    info.class_choice = "Chair";
  }
  const std::string path = (dir.path / "model.safetensors").string();
  save_checkpoint(path, model, nullptr, info);
  return load_checkpoint(path);
}

// B clouds of N points, C channels: xyz in the unit ball, normals unit length.
inline std::vector<float> random_clouds(int B, int N, int C, uint64_t seed) {
  Rng rng(seed);
  std::vector<float> p(static_cast<size_t>(B) * N * C);
  for (size_t i = 0; i < p.size(); i += C) {
    for (int c = 0; c < 3; ++c) p[i + c] = static_cast<float>(rng.uniform(-0.6, 0.6));
    if (C == 6) {
      float n[3], len = 0.0f;
      for (float& v : n) {
        v = static_cast<float>(rng.uniform(-1.0, 1.0));
        len += v * v;
      }
      for (int c = 0; c < 3; ++c) p[i + 3 + c] = n[c] / std::sqrt(len + 1e-12f);
    }
  }
  return p;
}

// Log-probs of the training-code model (CPU backend, eval mode) for `points`.
inline std::vector<float> model_log_probs(const Checkpoint& ckpt, const std::vector<float>& points, int B, int N) {
  CpuBackend<float> be;
  PointNet<float> model(ckpt.info.config, be);
  restore_model(ckpt, model);
  model.forward(points.data(), B, N, false);
  const size_t rows = static_cast<size_t>(model.output_rows());
  return std::vector<float>(model.log_probs(), model.log_probs() + rows * ckpt.info.config.num_classes);
}

}  // namespace pointnet::testing
