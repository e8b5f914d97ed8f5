// One optimisation step: forward, loss, backward, Adam, with dynamic loss
// scaling when the scaler is enabled (fp16). Its own file so that the trainer
// loop (batches, epochs, logs, checkpoints) and the tests share the same step.
//
// With an enabled scaler of scale S:
//   forward; loss (never scaled); if the loss is inf/NaN: skip.
//   backward seeded with S (gradients of S * loss); if any gradient is inf/NaN: skip.
//   else Adam on grads * (1/S), inside its one pass; the scaler counts a good step.
// A skip leaves the model as it was before the batch: parameters, Adam's moments
// and step count, and also BatchNorm's running statistics and batch count (the
// forward already changed them, and an overflowing forward leaves NaN there),
// so a skipped batch leaves no trace but the smaller S. PyTorch's GradScaler
// keeps the running statistics of skipped steps; we do not (docs/precision.md).
//
// With a disabled scaler (fp32, tf32, bf16) the step is today's: no gradient
// check, S = 1 (bit for bit), and a non-finite loss is fatal.
#pragma once
#include <cstdint>

#include "core/rng.h"
#include "model/buffer.h"
#include "model/pointnet.h"
#include "train/adam.h"
#include "train/loss_scaler.h"

namespace pointnet {

enum class StepOutcome {
  kTaken,     // Adam updated the parameters
  kSkipped,   // fp16 overflow (loss or gradients not finite): nothing changed, S backed off
  kDiverged,  // not finite with no scale left to lower (disabled scaler, or S at its floor):
              // Adam did not run and the scaler is unchanged; the caller stops the run
};

struct StepResult {
  StepOutcome outcome = StepOutcome::kTaken;
  LossValue loss;             // the unscaled loss; loss.total may be inf/NaN when not taken
  bool loss_finite = true;    // false: the forward overflowed (else the gradients did)
  double scale = 1.0;         // S this step used
};

class TrainStep {
 public:
  // Keeps references: all three must outlive this.
  TrainStep(PointNet<float>& model, Adam<float>& adam, LossScaler& scaler);

  // points (B, N, 3) and targets in the model's backend memory; dropout as
  // PointNet::forward.
  StepResult run(const float* points, const int32_t* targets, int B, int N, double lr, Rng* dropout);

 private:
  void save_running_stats();
  void restore_running_stats();

  PointNet<float>& model_;
  Adam<float>& adam_;
  LossScaler& scaler_;
  Buffer<float> saved_stats_;      // (buffer_count) BatchNorm running stats before the forward
  int64_t saved_batches_tracked_ = 0;
};

}  // namespace pointnet
