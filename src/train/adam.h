// Adam over a model's flat parameter array (torch.optim.Adam, optional L2 weight decay),
// with the moments in the backend's memory and the step count for the bias
// corrections. Its state goes into checkpoints so --resume continues exactly.
#pragma once
#include <cstdint>

#include "model/buffer.h"

namespace pointnet {

struct AdamConfig {  // the learning rate is given to each step() (it follows the schedule)
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // L2, added to the gradient as torch.optim.Adam's weight_decay
};

template <typename T>
class Adam {
 public:
  Adam(Backend<T>& backend, size_t count, AdamConfig config = {});

  // One update of `values` from `grads` * grad_scale (both `count` long) at
  // learning rate `lr`. grad_scale = 1/S unscales loss-scaled gradients inside
  // the update; a skipped (overflowed) step simply never calls this, so the
  // step count, moments and values stay as they were.
  void step(T* values, const T* grads, double lr, double grad_scale = 1.0);

  const AdamConfig& config() const { return config_; }
  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  T* first_moment() const { return m_.data(); }
  T* second_moment() const { return v_.data(); }
  size_t count() const { return count_; }

 private:
  Backend<T>& be_;
  size_t count_;
  AdamConfig config_;
  int64_t steps_ = 0;
  Buffer<T> m_, v_;
};

}  // namespace pointnet
