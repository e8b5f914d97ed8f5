// INT8 calibration: run the fp32 engine over calibration clouds, record every
// quantised activation (all ReLU outputs, so >= 0), and pick one scale per
// activation: x ~= scale * q, q in 0..255.
//   minmax      the largest value seen / 255: nothing clips, coarse steps
//   percentile  the given percentile of the non-zero values (default 99.99) / 255
//   entropy     TensorRT's: the clipping threshold whose 255-level quantised
//               histogram is closest (KL divergence) to the 2048-bin original
//               (of the non-zero values: zeros are exact at any scale)
#pragma once
#include <map>
#include <string>
#include <vector>

#include "engine/engine_plan.h"

namespace pointnet {

enum class CalibrationMethod { MinMax, Percentile, Entropy };
CalibrationMethod parse_calibration_method(const std::string& name);  // throws, listing the names
const char* calibration_method_name(CalibrationMethod m);

// Histogram of one activation over [0, max]; max is found in a first pass.
struct ActivationHistogram {
  static constexpr int kBins = 2048;
  double max = 0.0;
  std::vector<double> counts = std::vector<double>(kBins, 0.0);
  double total = 0.0;
};

// The threshold (in the activation's units) each method picks from a histogram.
double calibration_threshold(const ActivationHistogram& h, CalibrationMethod method, double percentile);

struct CalibrationResult {
  std::map<std::string, float> scales;        // activation -> scale
  std::map<std::string, double> max_seen;     // activation -> largest value (for the build record)
};

// clouds (count, N, C), normalised as in training. Runs in batches of `batch`.
CalibrationResult calibrate(const FoldedModel& model, const std::vector<float>& clouds, int count, int N,
                            CalibrationMethod method, double percentile = 99.99, int batch = 32);

}  // namespace pointnet
