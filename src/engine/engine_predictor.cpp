#include "engine/engine_predictor.h"

#include "core/errors.h"
#include "cuda/cuda_backend.h"  // cuda_device_available
#include "engine/cpu_runner.h"
#include "engine/cuda_runner.h"

namespace pointnet {

namespace {

// Runner: CpuRunner or CudaRunner (the same run() contract).
template <class Runner>
class EnginePredictor final : public Predictor {
 public:
  EnginePredictor(const EnginePlan& plan, const std::string& source)
      : runner_(plan), plan_limits_{plan.max_batch, plan.max_points}, source_(source),
        per_point_(plan.model.config.task == ModelTask::Segmentation), classes_(plan.model.config.num_classes) {}

  const std::vector<float>& predict(const float* points, int B, int N) override {
    if (B > plan_limits_[0])
      fail(source_, ": engine built for batches of at most ", plan_limits_[0], ", given ", B,
           " (rebuild with `pointnet build --max-batch`)");
    if (N > plan_limits_[1])
      fail(source_, ": engine built for clouds of at most ", plan_limits_[1], " points, given ", N,
           " (rebuild with `pointnet build --max-points`)");
    out_.resize(static_cast<size_t>(B) * (per_point_ ? N : 1) * classes_);
    runner_.run(points, B, N, out_.data());
    return out_;
  }

 private:
  Runner runner_;
  int plan_limits_[2];
  std::string source_;
  bool per_point_;
  int classes_;
  std::vector<float> out_;
};

}  // namespace

std::unique_ptr<Predictor> make_engine_predictor(const EnginePlan& plan, const std::string& source) {
  if (plan.device == "cpu") return std::make_unique<EnginePredictor<CpuRunner>>(plan, source);
  if (plan.device != "cuda") fail(source, ": engine built for device '", plan.device, "': expected cpu or cuda");
  std::string why;
  if (!cuda_device_available(&why)) fail(source, ": a CUDA engine needs a CUDA GPU: ", why);
  return std::make_unique<EnginePredictor<CudaRunner>>(plan, source);
}

CheckpointInfo engine_checkpoint_info(const EnginePlan& plan) {
  CheckpointInfo info;
  info.config = plan.model.config;
  info.class_names = plan.class_names;
  info.part_offset = plan.part_offset;
  info.part_count = plan.part_count;
  info.class_choice = plan.class_choice;
  info.up_axis = plan.up_axis;
  info.trainer = {{"recipe", {{"points", plan.trained_points}}}};
  if (plan.build.contains("sampling")) info.trainer["recipe"]["sampling"] = plan.build["sampling"];
  return info;
}

}  // namespace pointnet
