// Anything that turns a batch of clouds into log-probabilities: the training
// model on a backend (ModelPredictor, here) or a built engine
// (engine/engine_predictor.h). eval, predict and bench take either.
#pragma once
#include <vector>

#include "model/device_batch.h"
#include "model/pointnet.h"

namespace pointnet {

class Predictor {
 public:
  virtual ~Predictor() = default;
  // points (B, N, C) in host memory, normalised as in training. Returns
  // host log-probabilities, (B, K) for cls or (B, N, K) for seg, valid until
  // the next call.
  virtual const std::vector<float>& predict(const float* points, int B, int N) = 0;
};

class ModelPredictor final : public Predictor {
 public:
  explicit ModelPredictor(PointNet<float>& model) : model_(model), batch_(model.backend()) {}
  const std::vector<float>& predict(const float* points, int B, int N) override {
    const size_t count = static_cast<size_t>(B) * N * model_.config().input_channels;
    model_.forward(batch_.points(points, count), B, N, false);
    out_ = to_host(model_.backend(), model_.log_probs(),
                   static_cast<size_t>(model_.output_rows()) * model_.config().num_classes);
    return out_;
  }

 private:
  PointNet<float>& model_;
  DeviceBatch<float> batch_;
  std::vector<float> out_;
};

}  // namespace pointnet
