// Shared by the commands that take --model: load a checkpoint into a model on
// the chosen device, and register the --device / --precision flags.
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "model/make_backend.h"
#include "model/pointnet.h"
#include "train/checkpoint.h"

namespace pointnet::cli {

struct LoadedModel {
  Checkpoint checkpoint;
  std::unique_ptr<Backend<float>> backend;
  std::unique_ptr<PointNet<float>> model;
  int trained_points = 1024;  // the --points it was trained with
};

inline LoadedModel load_model(const std::string& path, const std::string& device, const std::string& precision) {
  LoadedModel m;
  m.checkpoint = load_checkpoint(path);
  m.backend = make_backend(device, precision);
  m.model = std::make_unique<PointNet<float>>(m.checkpoint.info.config, *m.backend);
  restore_model(m.checkpoint, *m.model);
  const auto& trainer = m.checkpoint.info.trainer;
  if (trainer.is_object() && trainer.contains("recipe") && trainer["recipe"].contains("points"))
    m.trained_points = trainer["recipe"]["points"];
  return m;
}

inline void add_device_options(CLI::App* sub, std::string* device, std::string* precision) {
  sub->add_option("--device", *device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--precision", *precision, "fp32, tf32, fp16 or bf16 (all but fp32 need --device cuda)")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16"}));
}

}  // namespace pointnet::cli
