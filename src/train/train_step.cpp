#include "train/train_step.h"

#include <cmath>

namespace pointnet {

TrainStep::TrainStep(PointNet<float>& model, Adam<float>& adam, LossScaler& scaler)
    : model_(model), adam_(adam), scaler_(scaler), saved_stats_(&model.backend()) {}

void TrainStep::save_running_stats() {
  const ParamStore<float>& store = model_.params();
  const size_t count = store.buffer_count();
  model_.backend().copy(saved_stats_.reserve(count), store.buffers(), count);  // queued, no wait
  saved_batches_tracked_ = model_.batches_tracked();
}

void TrainStep::restore_running_stats() {
  ParamStore<float>& store = model_.params();
  model_.backend().copy(store.buffers(), saved_stats_.data(), store.buffer_count());
  model_.batches_tracked() = saved_batches_tracked_;
}

StepResult TrainStep::run(const float* points, const int32_t* targets, int B, int N, double lr, Rng* dropout) {
  StepResult r;
  r.scale = scaler_.scale();
  const bool scaling = scaler_.enabled();
  if (scaling) save_running_stats();

  model_.forward(points, B, N, true, dropout);
  r.loss = model_.loss(targets);
  r.loss_finite = std::isfinite(r.loss.total);
  bool finite = r.loss_finite;
  if (finite) {
    model_.backward(targets, r.scale);
    // Without scaling the gradients are not checked: no extra pass, and the
    // step stays exactly what it was before loss scaling existed.
    if (scaling) finite = model_.backend().all_finite(model_.params().grads(), model_.params().trainable_count());
  }
  if (finite) {
    adam_.step(model_.params().values(), model_.params().grads(), lr, 1.0 / r.scale);
    if (scaling) scaler_.update(true);
    r.outcome = StepOutcome::kTaken;
    return r;
  }
  if (scaling) restore_running_stats();
  // A lower S helps only while there is one to go to; at the floor (or without
  // scaling) the overflow is the model's own: the run is diverging.
  if (!scaling || scaler_.at_floor()) {
    r.outcome = StepOutcome::kDiverged;
    return r;
  }
  scaler_.update(false);
  r.outcome = StepOutcome::kSkipped;
  return r;
}

}  // namespace pointnet
