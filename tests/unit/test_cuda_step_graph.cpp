// Recorded training steps (TrainStep over CUDA graphs) against the same steps
// run op by op: the graph replays the very kernels the eager step queues, in
// the same order, so every parameter, Adam moment, BatchNorm statistic and
// loss must be equal bit for bit (no tolerance: any difference means the
// replay read a stale pointer, a stale mask or a stale scalar). Covers the
// classifier with dropout and the feature transform (fp32, and fp16 with loss
// scaling from its largest scale, so skipped steps change the scale), the
// segmenter (bf16), and changes of batch shape (the recording is dropped and
// made again).
//
// Skips cleanly where there is no GPU and in builds without the CUDA backend.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "cuda/cuda_backend.h"

#ifdef POINTNET_HAS_CUDA
#include "model/buffer.h"
#include "model/pointnet.h"
#include "train/adam.h"
#include "train/loss_scaler.h"
#include "train/train_step.h"
#include "../scoped_env.h"

namespace pointnet {
namespace {

struct GraphCase {
  ModelTask task;
  bool feature_transform;
  Precision precision;
  const char* name;
};

// One model with its own backend, optimiser and step; recording on or off.
struct Trainee {
  Trainee(const GraphCase& c, bool record)
      : gpu(c.precision), model(config_of(c), gpu), adam(gpu, model.params().trainable_count()) {
    Rng init(5);
    model.initialize(init);
    // fp16 from the largest scale: the first steps overflow and halve it, so
    // the recording is dropped and made again for each new scale.
    LossScalerConfig from_the_top;
    from_the_top.init_scale = from_the_top.max_scale;
    scaler = c.precision == Precision::FP16 ? LossScaler(from_the_top) : LossScaler::disabled();
    testing::ScopedEnv env;  // restored however this ends
    env.set("POINTNET_STEP_GRAPHS", record ? "1" : "0");
    step = std::make_unique<TrainStep>(model, adam, scaler);
  }
  static ModelConfig config_of(const GraphCase& c) {
    ModelConfig config;
    config.task = c.task;
    config.num_classes = c.task == ModelTask::Classification ? 5 : 4;
    config.feature_transform = c.feature_transform;
    return config;
  }
  std::vector<float> all_state() {
    const ParamStore<float>& p = model.params();
    std::vector<float> values(p.trainable_count()), buffers(p.buffer_count());
    gpu.download(values.data(), p.values(), values.size());
    gpu.download(buffers.data(), p.buffers(), buffers.size());
    values.insert(values.end(), buffers.begin(), buffers.end());
    return values;
  }

  CudaBackend gpu;
  PointNet<float> model;
  Adam<float> adam;
  LossScaler scaler = LossScaler::disabled();
  std::unique_ptr<TrainStep> step;
};

class CudaStepGraph : public ::testing::TestWithParam<GraphCase> {};

TEST_P(CudaStepGraph, ReplayedStepsEqualEagerStepsBitForBit) {
  std::string why;
  if (!cuda_device_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  const GraphCase& c = GetParam();
  Trainee recorded(c, true), eager(c, false);
  const bool seg = c.task == ModelTask::Segmentation;
  // Shapes per step: each change drops the recording; it is made again.
  std::vector<int> batches;
  for (int B : {6, 4, 6}) batches.insert(batches.end(), 8, B);
  const int N = 96, max_B = 6;
  Buffer<float> points_r(&recorded.gpu), points_e(&eager.gpu);
  IndexBuffer<float> targets_r(&recorded.gpu), targets_e(&eager.gpu);
  float* pr = points_r.reserve(size_t(max_B) * N * 3);
  float* pe = points_e.reserve(size_t(max_B) * N * 3);
  int32_t* tr = targets_r.reserve(size_t(max_B) * N);
  int32_t* te = targets_e.reserve(size_t(max_B) * N);
  int replayed = 0;
  for (size_t i = 0; i < batches.size(); ++i) {
    const int B = batches[i];
    Rng data(100 + i);
    std::vector<float> points(size_t(B) * N * 3);
    for (float& v : points) v = data.normal();
    std::vector<int32_t> targets(size_t(B) * (seg ? N : 1));
    for (int32_t& t : targets) t = static_cast<int32_t>(data.below(recorded.model.config().num_classes));
    recorded.gpu.upload(pr, points.data(), points.size());
    eager.gpu.upload(pe, points.data(), points.size());
    recorded.gpu.upload_index(tr, targets.data(), targets.size());
    eager.gpu.upload_index(te, targets.data(), targets.size());
    Rng dropout_r(7 * i + 1), dropout_e(7 * i + 1);
    const StepResult a = recorded.step->run(pr, tr, B, N, 1e-3, &dropout_r);
    const StepResult b = eager.step->run(pe, te, B, N, 1e-3, &dropout_e);
    EXPECT_FALSE(eager.step->last_step_replayed());
    replayed += recorded.step->last_step_replayed();
    ASSERT_EQ(a.outcome, b.outcome) << "step " << i;
    ASSERT_EQ(std::memcmp(&a.loss.total, &b.loss.total, sizeof(double)), 0)
        << "step " << i << ": loss " << a.loss.total << " vs " << b.loss.total;
    ASSERT_EQ(a.loss.correct, b.loss.correct) << "step " << i;
    ASSERT_EQ(recorded.model.batches_tracked(), eager.model.batches_tracked()) << "step " << i;
    const std::vector<float> sa = recorded.all_state(), sb = eager.all_state();
    ASSERT_EQ(sa.size(), sb.size());
    ASSERT_EQ(std::memcmp(sa.data(), sb.data(), sa.size() * sizeof(float)), 0)
        << "step " << i << ": parameters or running statistics differ";
  }
  // A shape's first steps run eagerly until one allocates nothing (usually two); the rest replay.
  EXPECT_GE(replayed, 5) << "the recorded step was replayed too rarely";
  EXPECT_EQ(recorded.adam.steps(), eager.adam.steps());
  if (c.precision == Precision::FP16) EXPECT_GT(recorded.scaler.skipped_steps(), 0) << "the scale never changed";
}

INSTANTIATE_TEST_SUITE_P(
    Cuda, CudaStepGraph,
    ::testing::Values(GraphCase{ModelTask::Classification, false, Precision::FP32, "cls_fp32"},
                      GraphCase{ModelTask::Classification, true, Precision::FP16, "cls_feature_transform_fp16"},
                      GraphCase{ModelTask::Segmentation, false, Precision::BF16, "seg_bf16"}),
    [](const ::testing::TestParamInfo<GraphCase>& info) { return info.param.name; });

}  // namespace
}  // namespace pointnet

#else

TEST(CudaStepGraph, ReplayedStepsEqualEagerStepsBitForBit) { GTEST_SKIP() << "no CUDA device: built without CUDA"; }

#endif  // POINTNET_HAS_CUDA
