// The CPU engine runner against the plain folded reference: same log-probs
// within fp32 rounding for every architecture, ragged tiles, one cloud or
// many, and repeated runs of different shapes on one runner (grow-only buffers).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>

#include "../engine_fixtures.h"
#include "engine/cpu_runner.h"
#include "../scoped_env.h"

#include <omp.h>

#include <map>

namespace pointnet {
namespace {

using testing::engine_config;

double worst_relative(const std::vector<float>& got, const std::vector<float>& want) {
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - want[i]) / (1.0 + std::abs(want[i])));
  return worst;
}

EnginePlan fp32_plan(const Checkpoint& ckpt) {
  EnginePlan plan;
  plan.model = fold_model(ckpt);
  plan.precision = EnginePrecision::FP32;
  return plan;
}

class CpuRunnerTest : public ::testing::TestWithParam<ModelConfig> {};

// Both ways of running the 128 -> 1024 layers and their max: the fused
// AVX-512 kernel where the CPU has it (the default) and OpenBLAS + max.
TEST_P(CpuRunnerTest, MatchesTheReferenceOverShapes) {
  testing::TempDir dir;
  const ModelConfig config = GetParam();
  const EnginePlan plan = fp32_plan(testing::make_random_checkpoint(config, 5, dir));
  for (const char* max_kernel : {"fused", "blas"}) {
    testing::ScopedEnv env;  // restored however the iteration ends
    env.set("POINTNET_CPU_FP32_MAX", max_kernel);
    CpuRunner runner(plan);
    SCOPED_TRACE(max_kernel);
    const bool seg = config.task == ModelTask::Segmentation;
    // 300 points: two full tiles and a ragged one; 1 point; then back to a larger batch.
    for (auto [B, N] : {std::pair{3, 300}, std::pair{1, 1}, std::pair{2, 128}, std::pair{4, 257}}) {
      const std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 100 + B * N);
      const std::vector<float> want = folded_forward_reference(plan.model, points.data(), B, N);
      std::vector<float> got(static_cast<size_t>(B) * (seg ? N : 1) * config.num_classes, NAN);
      runner.run(points.data(), B, N, got.data());
      EXPECT_LT(worst_relative(got, want), 1e-4) << B << " x " << N;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Architectures, CpuRunnerTest,
                         ::testing::Values(engine_config(ModelTask::Classification, 5, false),
                                           engine_config(ModelTask::Classification, 7, true),
                                           engine_config(ModelTask::Classification, 4, false, 6),
                                           engine_config(ModelTask::Segmentation, 6, false),
                                           engine_config(ModelTask::Segmentation, 4, true, 6)));

TEST(CpuRunner, ResultsDoNotDependOnTheThreadCount) {
  testing::TempDir dir;
  const EnginePlan plan = fp32_plan(testing::make_random_checkpoint(engine_config(ModelTask::Segmentation, 5, true), 9, dir));
  CpuRunner runner(plan);
  const int B = 2, N = 700;
  const std::vector<float> points = testing::random_clouds(B, N, 3, 4);
  std::vector<float> one(static_cast<size_t>(B) * N * 5), two(one.size());
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  runner.run(points.data(), B, N, one.data());
  omp_set_num_threads(std::max(2, threads));
  runner.run(points.data(), B, N, two.data());
  omp_set_num_threads(threads);
  EXPECT_EQ(one, two);
}

TEST(CpuRunner, ObserverSeesEveryQuantisableActivation) {
  testing::TempDir dir;
  const EnginePlan plan = fp32_plan(testing::make_random_checkpoint(engine_config(ModelTask::Segmentation, 3, true), 2, dir));
  CpuRunner runner(plan);
  std::map<std::string, size_t> seen;
  runner.set_observer([&](const std::string& name, const float* x, size_t count) {
    for (size_t i = 0; i < count; ++i) ASSERT_GE(x[i], 0.0f) << name;  // ReLU outputs: zero point 0 holds
    seen[name] += count;
  });
  const int B = 2, N = 200;
  const std::vector<float> points = testing::random_clouds(B, N, 3, 8);
  std::vector<float> out(static_cast<size_t>(B) * N * 3);
  runner.run(points.data(), B, N, out.data());
  const std::map<std::string, size_t> widths = {{"stn.h1", 64}, {"stn.h2", 128}, {"h1", 64}, {"h2", 128},
                                                {"fstn.h1", 64}, {"fstn.h2", 128}, {"head.a", 512}, {"head.c", 256}};
  for (const std::string& name : int8_activation_names(plan.model))
    EXPECT_EQ(seen[name], static_cast<size_t>(B) * N * widths.at(name)) << name;
  EXPECT_EQ(seen.size(), widths.size());
}

}  // namespace
}  // namespace pointnet
