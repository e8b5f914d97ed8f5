// Checkpoints: one safetensors file. Tensors are named as pointnet.pytorch's
// state_dict (feat.stn.conv1.weight, ..., bn1.num_batches_tracked) so they map
// one to one; the optimizer state rides along as "optimizer.exp_avg.<name>" /
// "optimizer.exp_avg_sq.<name>". The metadata holds one JSON document under
// "pointnet": architecture, class names, part layout, epoch, trainer state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "model/pointnet.h"
#include "train/adam.h"

namespace pointnet {

constexpr const char* kCheckpointFormat = "pointnet-checkpoint";
constexpr int kCheckpointVersion = 1;

struct CheckpointInfo {
  ModelConfig config;
  std::vector<std::string> class_names;  // classes (cls) or categories (seg)
  std::vector<int> part_offset, part_count;  // seg: the part layout the model was trained on
  std::string class_choice;              // seg: the one category, when trained on one
  int up_axis = 2;                       // of the training data (1 = y, 2 = z)
  int epoch = 0;                         // completed epochs
  nlohmann::json trainer;                // recipe and state for --resume (opaque here)
};

// Writes atomically (a crash leaves the previous file intact). `adam` may be null.
void save_checkpoint(const std::string& path, const PointNet<float>& model, const Adam<float>* adam,
                     const CheckpointInfo& info);

// Reads and validates a checkpoint: format, version, metadata, and that every
// tensor the architecture needs is present with the right shape. Throws
// pointnet::Error naming the file and what is wrong.
struct Checkpoint {
  CheckpointInfo info;
  SafeTensors file;
};
Checkpoint load_checkpoint(const std::string& path);

// Copies the checkpoint's parameters (and running statistics, num_batches_tracked)
// into `model`, whose config must be info.config.
void restore_model(const Checkpoint& checkpoint, PointNet<float>& model);
// Restores Adam's moments and step count; throws if the checkpoint has none.
void restore_optimizer(const Checkpoint& checkpoint, const PointNet<float>& model, Adam<float>& adam);

}  // namespace pointnet
