#include "engine/calibration.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "engine/cpu_runner.h"

namespace pointnet {

CalibrationMethod parse_calibration_method(const std::string& name) {
  if (name == "minmax") return CalibrationMethod::MinMax;
  if (name == "percentile") return CalibrationMethod::Percentile;
  if (name == "entropy") return CalibrationMethod::Entropy;
  fail("unknown calibration method '", name, "': expected minmax, percentile or entropy");
}

const char* calibration_method_name(CalibrationMethod m) {
  switch (m) {
    case CalibrationMethod::MinMax: return "minmax";
    case CalibrationMethod::Percentile: return "percentile";
    case CalibrationMethod::Entropy: return "entropy";
  }
  return "?";
}

namespace {

constexpr int kLevels = 255;  // u8 steps above zero

// KL(P || Q) of two unnormalised histograms; bins where P is 0 add nothing.
double kl_divergence(const std::vector<double>& p, const std::vector<double>& q) {
  double ps = 0.0, qs = 0.0;
  for (size_t i = 0; i < p.size(); ++i) ps += p[i], qs += q[i];
  double kl = 0.0;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == 0.0) continue;
    if (q[i] == 0.0) return INFINITY;
    kl += (p[i] / ps) * std::log((p[i] / ps) / (q[i] / qs));
  }
  return kl;
}

// TensorRT's entropy calibration, for unsigned values: for each candidate
// threshold bin i, P is the histogram up to i with everything beyond folded
// into its last bin; Q is P's first i bins merged into 255 levels and spread
// back evenly over the bins that were non-zero. The i with the least KL wins.
double entropy_threshold(const ActivationHistogram& h) {
  const int bins = ActivationHistogram::kBins;
  const double width = h.max / bins;
  double best_kl = INFINITY;
  int best = bins;
  std::vector<double> p, q;
  double beyond = 0.0;
  for (int i = bins; i >= kLevels; --i) {
    if (i < bins) beyond += h.counts[i];
    p.assign(h.counts.begin(), h.counts.begin() + i);
    p[i - 1] += beyond;
    q.assign(i, 0.0);
    for (int level = 0; level < kLevels; ++level) {
      const int lo = static_cast<int>(static_cast<long long>(level) * i / kLevels);
      const int hi = static_cast<int>(static_cast<long long>(level + 1) * i / kLevels);
      double sum = 0.0;
      int nonzero = 0;
      for (int b = lo; b < hi; ++b) sum += h.counts[b], nonzero += h.counts[b] != 0.0;
      for (int b = lo; b < hi; ++b)
        if (h.counts[b] != 0.0) q[b] = sum / nonzero;
    }
    const double kl = kl_divergence(p, q);
    if (kl < best_kl) best_kl = kl, best = i;
  }
  return best * width;
}

}  // namespace

double calibration_threshold(const ActivationHistogram& h, CalibrationMethod method, double percentile) {
  if (h.max <= 0.0 || h.total <= 0.0) return 0.0;
  if (method == CalibrationMethod::MinMax) return h.max;
  if (method == CalibrationMethod::Entropy) return entropy_threshold(h);
  const double want = h.total * percentile / 100.0;
  double seen = 0.0;
  for (int b = 0; b < ActivationHistogram::kBins; ++b) {
    seen += h.counts[b];
    if (seen >= want) return (b + 1) * (h.max / ActivationHistogram::kBins);
  }
  return h.max;
}

CalibrationResult calibrate(const FoldedModel& model, const std::vector<float>& clouds, int count, int N,
                            CalibrationMethod method, double percentile, int batch) {
  if (count < 1) fail("calibration needs at least one cloud");
  if (!(percentile > 0.0 && percentile <= 100.0)) fail("calibration percentile ", percentile, ": expected (0, 100]");
  EnginePlan plan;
  plan.model = model;
  CpuRunner runner(plan);
  const int C = model.config.input_channels;
  const bool seg = model.config.task == ModelTask::Segmentation;
  std::vector<float> out(static_cast<size_t>(batch) * (seg ? N : 1) * model.config.num_classes);
  std::map<std::string, ActivationHistogram> hist;
  for (const std::string& name : int8_activation_names(model)) hist[name];
  const auto sweep = [&] {
    for (int start = 0; start < count; start += batch) {
      const int B = std::min(batch, count - start);
      runner.run(clouds.data() + static_cast<size_t>(start) * N * C, B, N, out.data());
    }
  };
  // Pass 1: the range of each activation. Pass 2 (histogram methods): counts over [0, max].
  runner.set_observer([&](const std::string& name, const float* x, size_t n) {
    ActivationHistogram& h = hist.at(name);
    for (size_t i = 0; i < n; ++i) h.max = std::max(h.max, static_cast<double>(x[i]));
  });
  sweep();
  if (method != CalibrationMethod::MinMax) {
    runner.set_observer([&](const std::string& name, const float* x, size_t n) {
      ActivationHistogram& h = hist.at(name);
      if (h.max <= 0.0) return;
      // Exact zeros (ReLU's, often half the values) are exact at any scale:
      // counted, they would make bin 0 outweigh everything the threshold decides.
      const double to_bin = ActivationHistogram::kBins / h.max;
      for (size_t i = 0; i < n; ++i) {
        if (x[i] == 0.0f) continue;
        h.counts[std::min(ActivationHistogram::kBins - 1, static_cast<int>(x[i] * to_bin))] += 1.0;
        h.total += 1.0;
      }
    });
    sweep();
  } else {
    for (auto& [name, h] : hist) h.total = 1.0;
  }
  CalibrationResult result;
  for (const auto& [name, h] : hist) {
    const double threshold = calibration_threshold(h, method, percentile);
    // An activation that is zero on every calibration cloud still needs a valid scale.
    result.scales[name] = static_cast<float>(threshold > 0.0 ? threshold / kLevels : 1.0 / kLevels);
    result.max_seen[name] = h.max;
  }
  return result;
}

}  // namespace pointnet
