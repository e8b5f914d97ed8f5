// `pointnet build`'s work: a folded model becomes an engine plan for one
// precision and device; int8 plans are calibrated on clouds from the
// training data and their fixed layers' weights quantised per output channel.
#pragma once
#include <string>

#include "engine/calibration.h"
#include "engine/engine_plan.h"
#include "train/checkpoint.h"

namespace pointnet {

struct BuildOptions {
  EnginePrecision precision = EnginePrecision::FP32;
  std::string device = "cpu";
  int max_batch = 65536, max_points = 262144;
  CalibrationMethod calibration = CalibrationMethod::Entropy;  // TensorRT's default too
  double percentile = 99.99;
};

// calib_clouds: (calib_count, calib_points, C) normalised clouds; int8 needs them.
EnginePlan build_plan(FoldedModel model, const BuildOptions& options, const std::vector<float>& calib_clouds,
                      int calib_count, int calib_points);

// Class names, part layout, up axis and training points from the checkpoint.
void describe_plan(EnginePlan& plan, const CheckpointInfo& info);

// Per output channel symmetric (cpu::Int8Weights::quantize): the stored form.
Int8LayerWeights quantize_layer(const float* weight, int out, int in);

}  // namespace pointnet
