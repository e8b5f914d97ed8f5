// The int8 CPU engine, for every architecture: against a plain-loop emulation
// of the int8 contract (the exact check: every int8 layer fed its own scale
// and weights), and, loosely, against the fp32 engine (predictions mostly
// agree). Also: thread-count and kernel independence, refusing an observer.
#include <gtest/gtest.h>

#include <omp.h>

#include <cmath>

#include "../engine_fixtures.h"
#include "cpu/int8_gemm.h"
#include "engine/builder.h"
#include "engine/cpu_runner.h"
#include "expect_error.h"
#include "int8_reference.h"

namespace pointnet {
namespace {

using testing::engine_config;

struct Plans {
  EnginePlan fp32, int8;
};

Plans make_plans(const ModelConfig& config, const testing::TempDir& dir) {
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 21, dir));
  const int count = 24, N = 200;
  const std::vector<float> calib = testing::random_clouds(count, N, config.input_channels, 77);
  BuildOptions options;
  Plans p;
  p.fp32 = build_plan(model, options, {}, 0, 0);
  options.precision = EnginePrecision::INT8;
  options.calibration = CalibrationMethod::MinMax;  // nothing clips on clouds like the calibration's
  p.int8 = build_plan(model, options, calib, count, N);
  return p;
}

class CpuRunnerInt8Test : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(CpuRunnerInt8Test, AgreesWithFp32) {
  const ModelConfig config = GetParam();
  testing::TempDir dir;
  const Plans plans = make_plans(config, dir);
  CpuRunner fp32(plans.fp32), int8(plans.int8);
  const bool seg = config.task == ModelTask::Segmentation;
  const int K = config.num_classes;
  for (auto [B, N] : {std::pair{6, 300}, std::pair{1, 129}}) {
    const std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 500 + N);
    const size_t rows = static_cast<size_t>(B) * (seg ? N : 1);
    std::vector<float> a(rows * K), b(rows * K);
    fp32.run(points.data(), B, N, a.data());
    int8.run(points.data(), B, N, b.data());
    // Each int8 layer adds at most half a step of its input's scale per value
    // (and the weights half a step of theirs); through 4-6 int8 layers of
    // random weights that moves log-probs by a few hundredths on average.
    double sum = 0.0;
    size_t agree = 0;
    for (size_t r = 0; r < rows; ++r) {
      const float* x = &a[r * K];
      const float* y = &b[r * K];
      agree += std::max_element(x, x + K) - x == std::max_element(y, y + K) - y;
      for (int k = 0; k < K; ++k) sum += std::abs(static_cast<double>(x[k]) - y[k]);
    }
    EXPECT_LT(sum / (rows * K), 0.05) << B << " x " << N;
    EXPECT_GE(static_cast<double>(agree) / rows, 0.9) << B << " x " << N;
  }
}

TEST_P(CpuRunnerInt8Test, MatchesThePlainInt8Emulation) {
  const ModelConfig config = GetParam();
  testing::TempDir dir;
  const Plans plans = make_plans(config, dir);
  CpuRunner runner(plans.int8);
  const testing::Int8Reference reference(plans.int8);
  const bool seg = config.task == ModelTask::Segmentation;
  const int B = 3, N = 150;
  const std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 31);
  std::vector<float> got(static_cast<size_t>(B) * (seg ? N : 1) * config.num_classes);
  runner.run(points.data(), B, N, got.data());
  const std::vector<float> want = reference.run(points.data(), B, N);
  double sum = 0.0, worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = std::abs(static_cast<double>(got[i]) - want[i]);
    sum += d;
    worst = std::max(worst, d);
  }
  // Rare one-step flips where an fp32 layer's rounding lands a value on the
  // other side of a quantisation boundary: tiny on average, bounded at worst.
  EXPECT_LT(sum / got.size(), 2e-4);
  EXPECT_LT(worst, 2e-2);
}

INSTANTIATE_TEST_SUITE_P(Architectures, CpuRunnerInt8Test,
                         ::testing::Values(engine_config(ModelTask::Classification, 5, false),
                                           engine_config(ModelTask::Classification, 7, true),
                                           engine_config(ModelTask::Classification, 4, false, 6),
                                           engine_config(ModelTask::Segmentation, 6, false),
                                           engine_config(ModelTask::Segmentation, 4, true, 6)));

TEST(CpuRunnerInt8, ThreadCountAndKernelDoNotChangeResults) {
  testing::TempDir dir;
  const Plans plans = make_plans(engine_config(ModelTask::Segmentation, 5, true), dir);
  CpuRunner runner(plans.int8);
  const int B = 3, N = 260;
  const std::vector<float> points = testing::random_clouds(B, N, 3, 4);
  std::vector<float> one(static_cast<size_t>(B) * N * 5), two(one.size()), portable(one.size());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  runner.run(points.data(), B, N, one.data());
  omp_set_num_threads(std::max(2, threads));
  runner.run(points.data(), B, N, two.data());
  EXPECT_EQ(one, two);
  // The portable kernel computes the same integers and the same epilogue.
  cpu::set_int8_kernel_for_testing(cpu::Int8Kernel::portable);
  runner.run(points.data(), B, N, portable.data());
  cpu::set_int8_kernel_for_testing(cpu::Int8Kernel::automatic);
  omp_set_num_threads(threads);
  double worst = 0.0;
  for (size_t i = 0; i < one.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(one[i]) - portable[i]));
  EXPECT_LT(worst, 1e-5);
}

TEST(CpuRunnerInt8, CalibrationNeedsAnFp32Engine) {
  testing::TempDir dir;
  const Plans plans = make_plans(engine_config(ModelTask::Classification, 3, false), dir);
  CpuRunner runner(plans.int8);
  EXPECT_STRNE(runner.int8_kernel(), "-");
  testing::expect_error_containing([&] { runner.set_observer([](const std::string&, const float*, size_t) {}); },
                                   {"fp32"});
}

}  // namespace
}  // namespace pointnet
