// pointnet::Engine (include/pointnet/engine.h) over the engine internals.
#include "pointnet/engine.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "data/sampler.h"
#include "engine/engine_file.h"
#include "engine/engine_predictor.h"

namespace pointnet {

struct Engine::Impl {
  EnginePlan plan;
  std::unique_ptr<Predictor> predictor;
  std::vector<float> normalised;

  const std::vector<float>& run(const float* points, int clouds, int n, bool want_seg) {
    if (want_seg != (plan.model.config.task == ModelTask::Segmentation))
      fail("this engine is a ", plan.model.config.task_name(), " model: call ", want_seg ? "classify" : "segment");
    if (clouds < 1 || n < 1) fail("need at least one cloud of at least one point, got ", clouds, " x ", n);
    const int C = plan.model.config.input_channels;
    normalised.assign(points, points + static_cast<size_t>(clouds) * n * C);
    for (int b = 0; b < clouds; ++b) normalize_cloud(&normalised[static_cast<size_t>(b) * n * C], n, C);
    return predictor->predict(normalised.data(), clouds, n);
  }
};

Engine::Engine(const std::string& path) : impl_(std::make_unique<Impl>()) {
  impl_->plan = read_engine(path);
  impl_->predictor = make_engine_predictor(impl_->plan, path);
}

Engine::~Engine() = default;
Engine::Engine(Engine&&) noexcept = default;
Engine& Engine::operator=(Engine&&) noexcept = default;

std::vector<Engine::Classification> Engine::classify(const float* points, int clouds, int points_per_cloud) {
  const std::vector<float>& lp = impl_->run(points, clouds, points_per_cloud, false);
  const int K = num_outputs();
  std::vector<Classification> out(clouds);
  for (int b = 0; b < clouds; ++b) {
    const float* row = &lp[static_cast<size_t>(b) * K];
    Classification& c = out[b];
    c.label = static_cast<int>(std::max_element(row, row + K) - row);
    c.class_name = impl_->plan.class_names.at(c.label);
    c.probability = std::exp(row[c.label]);
    c.log_probs.assign(row, row + K);
  }
  return out;
}

std::vector<std::vector<int>> Engine::segment(const float* points, int clouds, int points_per_cloud) {
  const std::vector<float>& lp = impl_->run(points, clouds, points_per_cloud, true);
  const int K = num_outputs();
  std::vector<std::vector<int>> out(clouds, std::vector<int>(points_per_cloud));
  for (int b = 0; b < clouds; ++b)
    for (int i = 0; i < points_per_cloud; ++i) {
      const float* row = &lp[(static_cast<size_t>(b) * points_per_cloud + i) * K];
      out[b][i] = static_cast<int>(std::max_element(row, row + K) - row);
    }
  return out;
}

bool Engine::is_segmenter() const { return impl_->plan.model.config.task == ModelTask::Segmentation; }
int Engine::input_channels() const { return impl_->plan.model.config.input_channels; }
int Engine::num_outputs() const { return impl_->plan.model.config.num_classes; }
const std::vector<std::string>& Engine::class_names() const { return impl_->plan.class_names; }
std::string Engine::precision() const { return precision_name(impl_->plan.precision); }
std::string Engine::device() const { return impl_->plan.device; }

}  // namespace pointnet
