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
//
// Recorded steps: on a backend that can record (CUDA graphs), forward, loss,
// backward and the overflow check are recorded once per shape and replayed,
// one launch instead of a few hundred, with no wait in the middle; the step
// waits once, for the loss, and Adam runs after it as before. The dropout
// mask is drawn and uploaded before each replay. A recording is made once a
// step of a shape has run without allocating (the first grows the buffers, so
// usually on the third step), and made again when anything it points to may
// have moved (a new shape, an allocation, a new batch buffer or loss scale).
// The results are meant to be bit for bit those of the eager step (the same
// kernels in the same order; tests/unit/test_cuda_step_graph.cpp, passed on
// the H100 2026-12-06). The default; POINTNET_STEP_GRAPHS=0 runs every step
// op by op (recording gains 5-9%: docs/benchmarks.md). A recording that fails
// says why once on stderr and the steps run eagerly from then on.
#pragma once
#include <cstdint>

#include "core/rng.h"
#include "dist/communicator.h"
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
  ~TrainStep();
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // points (B, N, 3) and targets in the model's backend memory; dropout as
  // PointNet::forward.
  StepResult run(const float* points, const int32_t* targets, int B, int N, double lr, Rng* dropout);

  // Whether the last run() replayed a recording (tests, benchmarks).
  bool last_step_replayed() const { return last_replayed_; }

  // Data parallelism: each rank steps on its own shard of the global batch;
  // after the backward the gradients are summed over the ranks (in place) and
  // Adam divides by the rank count with the loss scale, in its one pass, so
  // every rank takes the same step on the mean gradient. The overflow check
  // then runs on the summed gradients whatever the precision, so every rank
  // decides alike (a NaN on one rank is a NaN on all). Keeps the pointer;
  // null or one rank: the single-process step.
  void set_communicator(Communicator* communicator) { communicator_ = communicator; }

 private:
  struct Shape {
    const float* points = nullptr;
    const int32_t* targets = nullptr;
    int B = 0, N = 0;
    double scale = 1.0;
    bool operator==(const Shape& o) const {
      return points == o.points && targets == o.targets && B == o.B && N == o.N && scale == o.scale;
    }
  };

  void save_running_stats();
  void restore_running_stats();
  // Queues forward, loss, backward (and the overflow check) for the step.
  void queue_step(const Shape& s, bool scaling, Rng* dropout);
  // Runs queue_step as a replayed recording when it can; false: run it eagerly.
  bool replay_step(const Shape& s, bool scaling, Rng* dropout);
  void forget_recording();
  int ranks() const;

  PointNet<float>& model_;
  Adam<float>& adam_;
  LossScaler& scaler_;
  Buffer<float> saved_stats_;      // (buffer_count) BatchNorm running stats before the forward
  int64_t saved_batches_tracked_ = 0;

  bool record_ = false;            // the backend records and POINTNET_STEP_GRAPHS is not 0
  int recording_ = -1;             // the backend's id for the recorded step, or -1
  Shape recorded_;                 // what the recording was made for
  size_t recorded_allocations_ = 0;
  Shape last_;                     // the previous step's shape (recording waits for a repeat)
  size_t last_allocations_ = 0;
  bool last_replayed_ = false;
  Communicator* communicator_ = nullptr;
  Buffer<float> vote_;             // (1) the ranks' vote on the step (dist/host_collectives.h)
};

}  // namespace pointnet
