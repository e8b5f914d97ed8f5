// INT8 calibration thresholds on known histograms, and calibrate() end to end.
#include <gtest/gtest.h>

#include <cmath>

#include "../engine_fixtures.h"
#include "engine/calibration.h"
#include "expect_error.h"

namespace pointnet {
namespace {

ActivationHistogram histogram(double max, const std::function<double(double)>& density) {
  ActivationHistogram h;
  h.max = max;
  for (int b = 0; b < ActivationHistogram::kBins; ++b) {
    h.counts[b] = density((b + 0.5) * max / ActivationHistogram::kBins);
    h.total += h.counts[b];
  }
  return h;
}

TEST(Calibration, MinMaxIsTheLargestValue) {
  const ActivationHistogram h = histogram(6.0, [](double) { return 1.0; });
  EXPECT_DOUBLE_EQ(calibration_threshold(h, CalibrationMethod::MinMax, 99.99), 6.0);
}

TEST(Calibration, PercentileOfAUniformRange) {
  const ActivationHistogram h = histogram(10.0, [](double) { return 100.0; });
  const double bin = 10.0 / ActivationHistogram::kBins;
  EXPECT_NEAR(calibration_threshold(h, CalibrationMethod::Percentile, 50.0), 5.0, bin);
  EXPECT_NEAR(calibration_threshold(h, CalibrationMethod::Percentile, 99.0), 9.9, bin);
  EXPECT_DOUBLE_EQ(calibration_threshold(h, CalibrationMethod::Percentile, 100.0), 10.0);
}

TEST(Calibration, EntropyClipsALongSparseTailButNotAUniformRange) {
  // Most mass below 1, a thin tail out to 20: clipping the tail loses little.
  const ActivationHistogram tail = histogram(20.0, [](double x) { return 1e6 * std::exp(-4.0 * x); });
  const double t = calibration_threshold(tail, CalibrationMethod::Entropy, 99.99);
  EXPECT_GT(t, 0.5);
  EXPECT_LT(t, 10.0);
  // Every value equally likely: any clipping piles mass into the last bin.
  const ActivationHistogram flat = histogram(4.0, [](double) { return 50.0; });
  EXPECT_GT(calibration_threshold(flat, CalibrationMethod::Entropy, 99.99), 3.8);
}

TEST(Calibration, EmptyHistogramGivesZero) {
  ActivationHistogram h;
  EXPECT_EQ(calibration_threshold(h, CalibrationMethod::Entropy, 99.99), 0.0);
}

TEST(Calibration, ScalesForEveryQuantisedActivation) {
  testing::TempDir dir;
  const Checkpoint ckpt =
      testing::make_random_checkpoint(testing::engine_config(ModelTask::Segmentation, 4, true), 6, dir);
  const FoldedModel model = fold_model(ckpt);
  const int count = 5, N = 80;
  const std::vector<float> clouds = testing::random_clouds(count, N, 3, 2);
  const CalibrationResult mm = calibrate(model, clouds, count, N, CalibrationMethod::MinMax, 99.99, 2);
  const CalibrationResult pc = calibrate(model, clouds, count, N, CalibrationMethod::Percentile, 99.0, 3);
  for (const std::string& name : int8_activation_names(model)) {
    ASSERT_TRUE(mm.scales.count(name)) << name;
    EXPECT_GT(mm.max_seen.at(name), 0.0) << name;
    EXPECT_FLOAT_EQ(mm.scales.at(name), static_cast<float>(mm.max_seen.at(name) / 255.0)) << name;
    // Batching changes only GEMM rounding; a percentile clips at or below the max.
    EXPECT_NEAR(pc.max_seen.at(name), mm.max_seen.at(name), 1e-5 * mm.max_seen.at(name)) << name;
    EXPECT_LE(pc.scales.at(name), mm.scales.at(name) * 1.0001f) << name;
    EXPECT_GT(pc.scales.at(name), 0.0f) << name;
  }
  EXPECT_EQ(mm.scales.size(), int8_activation_names(model).size());
  testing::expect_error_containing([&] { calibrate(model, clouds, 0, N, CalibrationMethod::MinMax); },
                                   {"at least one cloud"});
  testing::expect_error_containing([] { parse_calibration_method("kl"); }, {"'kl'", "minmax, percentile or entropy"});
}

}  // namespace
}  // namespace pointnet
