#include "train/train_step.h"

#include <cmath>
#include <iostream>
#include <string>

#include "core/env_choice.h"
#include "core/errors.h"
#include "dist/host_collectives.h"

namespace pointnet {

TrainStep::TrainStep(PointNet<float>& model, Adam<float>& adam, LossScaler& scaler)
    : model_(model), adam_(adam), scaler_(scaler), saved_stats_(&model.backend()), vote_(&model.backend()) {
  record_ = model.backend().can_record() && env_choice("POINTNET_STEP_GRAPHS", {"1", "0"}) == "1";
}

TrainStep::~TrainStep() {
  try {
    forget_recording();
  } catch (...) {  // no throwing from a destructor
  }
}

int TrainStep::ranks() const { return communicator_ ? communicator_->size() : 1; }

void TrainStep::forget_recording() {
  if (recording_ >= 0) model_.backend().forget_recording(recording_);
  recording_ = -1;
}

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

void TrainStep::queue_step(const Shape& s, bool scaling, Rng* dropout) {
  model_.forward(s.points, s.B, s.N, true, dropout);
  model_.queue_loss(s.targets);
  model_.backward(s.targets, s.scale);
  ParamStore<float>& p = model_.params();
  if (ranks() > 1) communicator_->all_reduce_sum(p.grads(), p.trainable_count());
  // Without scaling (and alone) the gradients are not checked: no extra pass,
  // and the step stays exactly what it was before loss scaling existed.
  if (scaling || ranks() > 1) model_.backend().queue_all_finite(p.grads(), p.trainable_count());
}

bool TrainStep::replay_step(const Shape& s, bool scaling, Rng* dropout) {
  if (!record_) return false;
  Backend<float>& be = model_.backend();
  const bool repeat = s == last_ && be.allocation_count() == last_allocations_;
  last_ = s;
  last_allocations_ = be.allocation_count();
  const bool current = recording_ >= 0 && s == recorded_ && be.allocation_count() == recorded_allocations_;
  if (!current) {
    forget_recording();
    // The first step of a shape runs eagerly: it grows every buffer, which a
    // recording must not do.
    if (!repeat) return false;
  }
  // The mask is the forward's only upload: drawn now, it is in place for the replay.
  Rng fallback(0);
  Rng& rng = dropout ? *dropout : fallback;
  const Rng rng_before = rng;
  model_.draw_dropout(s.B, rng);
  if (!current) {
    const int64_t tracked = model_.batches_tracked();
    std::string failure;
    bool started = false;
    try {
      be.begin_recording();
      started = true;
      queue_step(s, scaling, nullptr);
    } catch (const Error& e) {
      failure = e.what();
    }
    if (started) {
      try {
        const int id = be.end_recording();
        if (failure.empty()) recording_ = id;
        else be.forget_recording(id);
      } catch (const Error& e) {
        if (failure.empty()) failure = e.what();
      }
    }
    model_.batches_tracked() = tracked;  // the recorded forward counted a batch that did not run
    if (!failure.empty()) {
      // Nothing ran: the eager step starts from the same state. The recorded
      // forward may have used up the drawn mask: draw the same one again.
      record_ = false;
      Rng again = rng_before;
      model_.draw_dropout(s.B, again);
      std::cerr << "train: recording the step as a CUDA graph failed (" << failure
                << "); running it op by op from now on\n";
      return false;
    }
    recorded_ = s;
    recorded_allocations_ = be.allocation_count();
  }
  be.replay(recording_);  // a failure here is the GPU's: it propagates and ends the run
  model_.replayed_training_forward(s.points, s.B, s.N);
  return true;
}

StepResult TrainStep::run(const float* points, const int32_t* targets, int B, int N, double lr, Rng* dropout) {
  StepResult r;
  r.scale = scaler_.scale();
  const bool scaling = scaler_.enabled();
  if (scaling) save_running_stats();

  const Shape shape{points, targets, B, N, r.scale};
  last_replayed_ = replay_step(shape, scaling, dropout);
  if (!last_replayed_) queue_step(shape, scaling, dropout);
  // One wait: the loss (and the overflow flag, queued after it) are in.
  r.loss = model_.loss_result();
  r.loss_finite = std::isfinite(r.loss.total);
  // Over several ranks every rank must decide alike: the summed gradients
  // (the same everywhere) and every rank's own loss, by a vote.
  bool finite = ranks() > 1 ? all_ranks_agree(communicator_, model_.backend(), vote_, model_.backend().all_finite_result() && r.loss_finite) : r.loss_finite;
  if (finite && scaling && ranks() == 1) finite = model_.backend().all_finite_result();
  if (finite) {
    adam_.step(model_.params().values(), model_.params().grads(), lr, 1.0 / (r.scale * ranks()));
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
