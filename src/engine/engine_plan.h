// What an engine is, in memory: the folded model, the precision it runs in,
// the int8 calibration (activation scales), and what a user needs to read its
// outputs (class names, part layout). Written to and read from an engine file
// (engine_file.h); run by CpuRunner (cpu_runner.h) or on CUDA.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/folded_model.h"

namespace pointnet {

enum class EnginePrecision { FP32, TF32, FP16, BF16, INT8 };

const char* precision_name(EnginePrecision p);  // "fp32", ...
// Throws pointnet::Error listing the accepted names.
EnginePrecision parse_precision(const std::string& name);

// Every layer by name ("stn.conv1", ..., "conv3", "fstn.fc3", "head.0", ...),
// in a fixed order: how engine files and build records name them.
std::vector<std::pair<std::string, const FoldedLinear*>> named_layers(const FoldedModel& model);
std::vector<std::pair<std::string, FoldedLinear*>> named_layers(FoldedModel& model);

// The per-point activations an int8 engine quantises (unsigned, zero point 0:
// every one is a ReLU output), named as in EnginePlan::activation_scales.
std::vector<std::string> int8_activation_names(const FoldedModel& model);

// A layer that runs in int8, and the activation it reads. Per-cloud layers
// have a transform folded into their weights at run time (the feature
// transform before conv2 and the segmenter's head1 point part), so their
// weights are quantised per cloud then; the others are quantised once, by
// the builder. conv1 (3 or 6 inputs), the T-Nets' and classifier's fc
// layers (per cloud, a sliver of the work) and the logits stay fp32.
struct Int8Layer {
  std::string layer;       // "conv3", "head.0.point" (head.0's 64 point-feature columns), ...
  std::string input;       // an int8_activation_names() entry
  bool per_cloud = false;
};
std::vector<Int8Layer> int8_layers(const FoldedModel& model);

// Per output channel symmetric: w[o][i] ~= scale[o] * q[o][i], q in [-127, 127].
struct Int8LayerWeights {
  int out = 0, in = 0;
  std::vector<int8_t> q;      // (out, in)
  std::vector<float> scale;   // (out)
};

struct EnginePlan {
  FoldedModel model;
  EnginePrecision precision = EnginePrecision::FP32;
  std::string device = "cpu";                        // what it was built for: "cpu" or "cuda"
  int max_batch = 0, max_points = 0;                 // largest shapes it accepts
  std::map<std::string, float> activation_scales;    // int8: name -> scale (x ~= scale * q, q in 0..255)
  std::map<std::string, Int8LayerWeights> int8_weights;  // int8: fixed layers of int8_layers()
  // For the user: classes (cls) or categories (seg), part layout, the data's up axis.
  std::vector<std::string> class_names;
  std::vector<int> part_offset, part_count;
  std::string class_choice;
  int up_axis = 2;
  int trained_points = 1024;
  nlohmann::json build;  // how it was built: source checkpoint, calibration method and clouds, layer precisions
};

}  // namespace pointnet
