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

namespace pointnet {
namespace {

// Counts the values the model allocates (activations, statistics, scratch).
class CountingBackend : public CpuBackend<float> {
 public:
  float* allocate(size_t count) override {
    allocated += count;
    return CpuBackend<float>::allocate(count);
  }
  size_t allocated = 0;
};

// In eval a BatchNorm layer normalises its linear output in place: an eval
// forward holds one (M, C) activation per such layer, not two, and gives the
// same outputs as before (the eval goldens check those).
TEST(ModelScratch, EvalKeepsNoLinearOutputBesideTheActivation) {
  const int B = 4, N = 256;
  CountingBackend be;
  ModelConfig config;
  config.task = ModelTask::Segmentation;
  config.num_classes = 4;
  PointNet<float> model(config, be);
  Rng rng(9);
  model.initialize(rng);
  std::vector<float> points(static_cast<size_t>(B) * N * 3);
  for (float& v : points) v = rng.uniform(-1.0f, 1.0f);
  const size_t before = be.allocated;
  model.forward(points.data(), B, N, false);
  const size_t eval = be.allocated - before;
  // The per-point BatchNorm layers' widths: the trunk's conv1, conv2 (conv3
  // is fused with the max) and the T-Net's conv1, conv2, the head's three.
  const size_t M = static_cast<size_t>(B) * N;
  const size_t bn_widths = 64 + 128 + 64 + 128 + 256 + 128 + 512;
  // One activation each (plus the logits, the concat layer's z and small
  // per-cloud tensors) stays well under two each.
  EXPECT_LT(eval, (2 * bn_widths - 512) * M) << "eval kept z beside y";
  EXPECT_GT(eval, bn_widths * M);
  const std::vector<float> first(model.log_probs(), model.log_probs() + M * 4);
  model.forward(points.data(), B, N, false);
  EXPECT_EQ(std::vector<float>(model.log_probs(), model.log_probs() + M * 4), first);
}

}  // namespace
}  // namespace pointnet

