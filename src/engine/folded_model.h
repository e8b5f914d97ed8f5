// PointNet for inference: every BatchNorm folded into the layer before it
// (eval mode: running statistics), the T-Nets' "+ identity" folded into their
// last bias, dropout gone. What the inference engine builds from a checkpoint,
// stores and runs; all weights fp32 here (quantisation happens later).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "model/config.h"

namespace pointnet {

struct Checkpoint;

// y(M, out) = x(M, in) weight^T + bias.
struct FoldedLinear {
  int in = 0, out = 0;
  std::vector<float> weight;  // (out, in) row-major
  std::vector<float> bias;    // (out)
};

// conv1, conv2 (ReLU), conv3 then max over points then ReLU (max commutes with
// the monotone ReLU), fc1, fc2 (ReLU), fc3 -> the (K, K) transform, row-major.
struct FoldedTNet {
  int k = 3;
  FoldedLinear conv1, conv2, conv3, fc1, fc2, fc3;
};

struct FoldedModel {
  ModelConfig config;
  FoldedTNet stn;                      // input transform over config.input_channels
  FoldedLinear conv1, conv2, conv3;    // conv1, conv2 with ReLU; conv3 then max over points (no ReLU)
  bool has_fstn = false;
  FoldedTNet fstn;                     // feature transform (64 x 64), when has_fstn
  // cls: fc1 (1024 -> 512), fc2 (-> 256) with ReLU, fc3 (-> classes).
  // seg: conv1 (1088 -> 512; input columns [global 1024 | point feature 64]),
  //      conv2 (-> 256), conv3 (-> 128) with ReLU, conv4 (-> parts).
  std::vector<FoldedLinear> head;
};

// The architecture's layers with their shapes and zero weights (what an
// engine file must hold, checked on read).
FoldedModel folded_skeleton(const ModelConfig& config);

// Folds a model's parameters, read by pointnet.pytorch name through `get`
// (values in PyTorch's layout). BatchNorm eps is PyTorch's default 1e-5.
using ParameterReader = std::function<std::vector<float>(const std::string& name)>;
FoldedModel fold_model(const ModelConfig& config, const ParameterReader& get);
// From a checkpoint (ours or an imported .pth), or a model in memory.
FoldedModel fold_model(const Checkpoint& checkpoint);
template <typename T> class PointNet;
FoldedModel fold_model(const PointNet<float>& model);

// Straightforward fp32 inference, one cloud at a time, no fusion: the
// reference the fast executors are tested against. points (B, N, C) already
// normalised as the model expects; returns log-probabilities, (B, classes) or
// (B, N, parts).
std::vector<float> folded_forward_reference(const FoldedModel& model, const float* points, int B, int N);

}  // namespace pointnet
