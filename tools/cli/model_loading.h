// Shared by the commands that take --model: load a checkpoint into a CPU model.
#pragma once
#include <memory>
#include <string>

#include "cpu/cpu_backend.h"
#include "model/pointnet.h"
#include "train/checkpoint.h"

namespace pointnet::cli {

struct LoadedModel {
  Checkpoint checkpoint;
  std::unique_ptr<CpuBackend<float>> backend;
  std::unique_ptr<PointNet<float>> model;
  int trained_points = 1024;  // the --points it was trained with
};

inline LoadedModel load_model(const std::string& path) {
  LoadedModel m;
  m.checkpoint = load_checkpoint(path);
  m.backend = std::make_unique<CpuBackend<float>>();
  m.model = std::make_unique<PointNet<float>>(m.checkpoint.info.config, *m.backend);
  restore_model(m.checkpoint, *m.model);
  const auto& trainer = m.checkpoint.info.trainer;
  if (trainer.is_object() && trainer.contains("recipe") && trainer["recipe"].contains("points"))
    m.trained_points = trainer["recipe"]["points"];
  return m;
}

}  // namespace pointnet::cli
