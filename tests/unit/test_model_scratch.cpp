// The backward's scratch buffers are sized from every gradient that passes
// through them, including the logits' (rows, classes): many classes and few
// points once overflowed them (found in review: a heap overflow with 1500
// classes and 4 points). Runs a full step and checks every gradient is finite.
#include <gtest/gtest.h>

#include <cmath>

#include "cpu/cpu_backend.h"
#include "model/pointnet.h"

namespace pointnet {
namespace {

void step_with(ModelTask task, int classes, int B, int N, bool feature_transform) {
  CpuBackend<float> be;
  ModelConfig config;
  config.task = task;
  config.num_classes = classes;
  config.feature_transform = feature_transform;
  PointNet<float> model(config, be);
  Rng rng(5);
  model.initialize(rng);
  std::vector<float> points(static_cast<size_t>(B) * N * 3);
  for (float& v : points) v = rng.uniform(-1.0f, 1.0f);
  const int rows = task == ModelTask::Classification ? B : B * N;
  std::vector<int32_t> targets(rows);
  for (int32_t& t : targets) t = static_cast<int32_t>(rng.below(static_cast<uint32_t>(classes)));
  model.forward(points.data(), B, N, true, &rng);
  const LossValue loss = model.loss(targets.data());
  EXPECT_TRUE(std::isfinite(loss.total));
  model.backward(targets.data());
  const float* grads = model.params().grads();
  for (size_t i = 0; i < model.params().trainable_count(); ++i) ASSERT_TRUE(std::isfinite(grads[i])) << i;
}

TEST(ModelScratch, ManyClassesFewPoints) {
  step_with(ModelTask::Classification, 1500, 4, 4, false);
  step_with(ModelTask::Classification, 3000, 2, 1, true);
  step_with(ModelTask::Segmentation, 1200, 2, 3, false);
}

}  // namespace
}  // namespace pointnet
