// pointnet::Engine, the application API: loads an engine file, normalises
// each cloud as training did, and gives the same answers as the runner.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "../engine_fixtures.h"
#include "data/sampler.h"
#include "engine/builder.h"
#include "engine/cpu_runner.h"
#include "engine/engine_file.h"
#include "pointnet/engine.h"

namespace pointnet {
namespace {

std::string write_fp32_engine(const ModelConfig& config, const testing::TempDir& dir) {
  const Checkpoint ckpt = testing::make_random_checkpoint(config, 12, dir);
  EnginePlan plan = build_plan(fold_model(ckpt), BuildOptions{}, {}, 0, 0);
  describe_plan(plan, ckpt.info);
  const std::string path = (dir.path / "model.engine").string();
  write_engine(path, plan);
  return path;
}

TEST(EngineApi, ClassifiesAsTheRunnerOnNormalisedClouds) {
  testing::TempDir dir;
  const std::string path = write_fp32_engine(testing::engine_config(ModelTask::Classification, 4, false), dir);
  Engine engine(path);
  EXPECT_FALSE(engine.is_segmenter());
  EXPECT_EQ(engine.input_channels(), 3);
  EXPECT_EQ(engine.num_outputs(), 4);
  EXPECT_EQ(engine.class_names().at(2), "class2");
  EXPECT_EQ(engine.precision(), "fp32");
  const int B = 2, N = 100;
  std::vector<float> raw = testing::random_clouds(B, N, 3, 5);
  for (float& v : raw) v = 40.0f * v + 7.0f;  // any units and position
  const auto got = engine.classify(raw.data(), B, N);
  ASSERT_EQ(got.size(), 2u);
  std::vector<float> norm = raw, want(static_cast<size_t>(B) * 4);
  for (int b = 0; b < B; ++b) normalize_cloud(&norm[static_cast<size_t>(b) * N * 3], N);
  CpuRunner(read_engine(path)).run(norm.data(), B, N, want.data());
  for (int b = 0; b < B; ++b) {
    ASSERT_EQ(got[b].log_probs.size(), 4u);
    for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(got[b].log_probs[k], want[static_cast<size_t>(b) * 4 + k]);
    EXPECT_EQ(got[b].class_name, "class" + std::to_string(got[b].label));
    EXPECT_FLOAT_EQ(got[b].probability, std::exp(got[b].log_probs[got[b].label]));
  }
  EXPECT_THROW(engine.segment(raw.data(), B, N), std::runtime_error);
}

TEST(EngineApi, SegmentsEveryPoint) {
  testing::TempDir dir;
  Engine engine(write_fp32_engine(testing::engine_config(ModelTask::Segmentation, 5, true), dir));
  EXPECT_TRUE(engine.is_segmenter());
  const std::vector<float> cloud = testing::random_clouds(1, 70, 3, 9);
  const auto labels = engine.segment(cloud.data(), 1, 70);
  ASSERT_EQ(labels.size(), 1u);
  ASSERT_EQ(labels[0].size(), 70u);
  for (int l : labels[0]) EXPECT_TRUE(l >= 0 && l < 5);
  EXPECT_THROW(engine.classify(cloud.data(), 1, 70), std::runtime_error);
}

TEST(EngineApi, MissingOrForeignFilesThrowNamingThem) {
  testing::TempDir dir;
  const std::string missing = (dir.path / "none.engine").string();
  try {
    Engine engine(missing);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace pointnet
