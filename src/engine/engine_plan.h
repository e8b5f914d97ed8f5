// What an engine is, in memory: the folded model, the precision it runs in,
// the int8 calibration (activation scales), and what a user needs to read its
// outputs (class names, part layout). Written to and read from an engine file
// (engine_file.h); run by CpuRunner (cpu_runner.h) or on CUDA.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/folded_model.h"

namespace pointnet {

enum class EnginePrecision { FP32, TF32, FP16, BF16, INT8 };

const char* precision_name(EnginePrecision p);  // "fp32", ...
// Throws pointnet::Error listing the accepted names.
EnginePrecision parse_precision(const std::string& name);

// The per-point activations an int8 engine quantises (unsigned, zero point 0:
// every one is a ReLU output), named as in EnginePlan::activation_scales.
// The layers reading them run in int8; every other layer stays fp32.
std::vector<std::string> int8_activation_names(const FoldedModel& model);

struct EnginePlan {
  FoldedModel model;
  EnginePrecision precision = EnginePrecision::FP32;
  std::string device = "cpu";                        // what it was built for: "cpu" or "cuda"
  int max_batch = 0, max_points = 0;                 // largest shapes it accepts
  std::map<std::string, float> activation_scales;    // int8: name -> scale (x ~= scale * q, q in 0..255)
  // For the user: classes (cls) or categories (seg), part layout, the data's up axis.
  std::vector<std::string> class_names;
  std::vector<int> part_offset, part_count;
  std::string class_choice;
  int up_axis = 2;
  int trained_points = 1024;
  nlohmann::json build;  // how it was built: source checkpoint, calibration method and clouds, layer precisions
};

}  // namespace pointnet
