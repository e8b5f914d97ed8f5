// Dynamic loss scaling for fp16 training (as PyTorch's GradScaler). fp16 GEMM
// operands underflow below 2^-24, where many gradients live: the backward is
// seeded with S times the loss gradient so they stay representable, and Adam
// multiplies by 1/S. Too large an S overflows instead; then the step is skipped
// and S halved. After a run of good steps S doubles again, to find the largest
// S that does not overflow. Only fp16 needs this: fp32, tf32 and bf16 have
// fp32's exponent range, so they use a disabled scaler (S = 1, no check).
//
// This class is the state machine alone; train_step.h drives it.
#pragma once
#include <cstdint>

#include <nlohmann/json.hpp>

namespace pointnet {

struct LossScalerConfig {            // defaults: torch.cuda.amp.GradScaler's
  double init_scale = 65536.0;       // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;    // consecutive good steps before S grows
  // The range S is kept in. Below 1, scaling would shrink gradients towards
  // fp16's underflow, the opposite of its purpose: a step that overflows even at
  // S = 1 means the run is diverging, and the trainer stops. Above 2^24, S would
  // only rescue gradients below 2^-48 (fp16's smallest subnormal is 2^-24),
  // which move a parameter by ~lr * g / eps (Adam's eps 1e-8): nothing.
  double min_scale = 1.0;
  double max_scale = 16777216.0;     // 2^24
};

class LossScaler {
 public:
  // Enabled (fp16). Throws pointnet::Error for a config that is not sane
  // (scales not positive and finite, init outside [min, max], growth <= 1,
  // backoff not in (0, 1), interval < 1).
  explicit LossScaler(const LossScalerConfig& config);
  // Disabled (fp32, tf32, bf16): scale() is 1 and update() is never needed.
  static LossScaler disabled();

  bool enabled() const { return enabled_; }
  double scale() const { return scale_; }                     // S: 1 when disabled
  bool at_floor() const { return scale_ <= config_.min_scale; }
  int64_t good_steps() const { return good_steps_; }          // since the last change of S
  int64_t skipped_steps() const { return skipped_steps_; }    // over the whole run
  const LossScalerConfig& config() const { return config_; }

  // After each step's overflow check (enabled only). finite: the step was
  // taken; after growth_interval of them in a row S grows (up to max_scale).
  // Not finite: the step was skipped; S backs off (down to min_scale) and the
  // run of good steps restarts.
  void update(bool finite);

  // The state a --resume needs to continue exactly: scale, good_steps,
  // skipped_steps (the config is the trainer's, not saved).
  nlohmann::json to_json() const;
  // Restores to_json()'s state into an enabled scaler. Throws pointnet::Error
  // naming the field when it is missing, of the wrong type or out of range.
  void restore(const nlohmann::json& state);

 private:
  LossScaler() = default;

  bool enabled_ = false;
  LossScalerConfig config_;
  double scale_ = 1.0;
  int64_t good_steps_ = 0;
  int64_t skipped_steps_ = 0;
};

}  // namespace pointnet
