// PointNet exactly as pointnet.pytorch: PointNetCls (classifier) and
// PointNetDenseCls (part segmenter), with or without the feature transform,
// with explicit forward and backward passes over a Backend.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "core/rng.h"
#include "model/config.h"
#include "model/tnet.h"
#include "model/wide_max.h"

namespace pointnet {

struct LossValue {
  double nll = 0.0;            // mean negative log-likelihood
  double regularizer = 0.0;    // mean ||T T^T - I||_F of the feature transform (0 without)
  double total = 0.0;          // nll + 0.001 * regularizer
  int64_t correct = 0;         // rows whose argmax is the target
  int64_t rows = 0;            // clouds (cls) or points (seg)
};

template <typename T>
class PointNet {
 public:
  PointNet(const ModelConfig& config, Backend<T>& backend);
  // Layers point at their siblings (Dense::input_layer): not copied or moved.
  PointNet(const PointNet&) = delete;
  PointNet& operator=(const PointNet&) = delete;

  const ModelConfig& config() const { return config_; }
  ParamStore<T>& params() { return store_; }
  const ParamStore<T>& params() const { return store_; }
  Backend<T>& backend() const { return be_; }
  int64_t& batches_tracked() { return batches_tracked_; }  // BatchNorm's num_batches_tracked
  int64_t batches_tracked() const { return batches_tracked_; }

  // PyTorch's default initialisation (uniform +-1/sqrt(fan_in) for weights and
  // biases, BN weight 1 / bias 0, running mean 0 / var 1), from `rng`.
  void initialize(Rng& rng);

  // points (B, N, C) in backend memory, C = config.input_channels (xyz, or
  // xyz + normals per point). Training uses batch statistics,
  // updates running statistics and applies dropout (mask from `dropout_rng`,
  // or the one given to set_dropout_mask()).
  void forward(const T* points, int B, int N, bool training, Rng* dropout_rng = nullptr);
  // (B, K) for cls, (B, N, K) for seg; log-probabilities.
  const T* log_probs() const { return log_probs_at_; }
  const T* input_transform() const { return stn_.transform(); }          // (B, 3, 3)
  const T* feature_transform() const { return fstn_.transform(); }       // (B, 64, 64)
  int batch() const { return batch_; }
  int points() const { return points_; }
  int output_rows() const { return config_.task == ModelTask::Classification ? batch_ : batch_ * points_; }

  // targets: (B) class labels or (B*N) part labels, in backend memory.
  LossValue loss(const int32_t* targets);
  // loss() in two halves (Backend's queue_* / *_result): queue_loss queues
  // the loss kernels and returns at once; loss_result waits and reads them.
  void queue_loss(const int32_t* targets);
  LossValue loss_result();

  // Draws the dropout mask of the next training forward now (from `rng`, or
  // the set_dropout_mask one) and uploads it, so that the forward itself
  // queues nothing from the host: a recorded step draws before each replay.
  void draw_dropout(int B, Rng& rng);
  // A replayed recording of a training forward of points (B, N, C) ran in
  // place of forward(): sets what forward() would have set on the host (the
  // shape loss_result() counts rows by, the batch count) and uses up the
  // drawn mask.
  void replayed_training_forward(const T* points, int B, int N);
  // Gradients of loss_scale * loss(targets) for every trainable parameter (=).
  // Needs a training forward first. fp16 training passes its loss scale S so
  // that small gradients stay above fp16's underflow; Adam divides it out.
  void backward(const int32_t* targets, double loss_scale = 1.0);

  // Tests: a fixed dropout mask (B, 256) of 0 or 1/(1-p) in host memory.
  void set_dropout_mask(const std::vector<T>& mask);
  // The classifier's dropout probability (default kDropoutP, pointnet.pytorch's 0.3).
  void set_dropout_probability(double p);

 private:
  void forward_head_cls(bool training);
  void forward_head_seg(bool training);
  void draw_dropout_mask(Rng& rng);

  ModelConfig config_;
  Backend<T>& be_;
  ParamStore<T> store_;
  int64_t batches_tracked_ = 0;

  // Feature extractor (PointNetfeat).
  TNet<T> stn_, fstn_;
  Dense<T> conv1_, conv2_;
  WideMax<T> conv3_;               // conv3 + bn3 + max over points -> (B, 1024) global feature
  Buffer<T> transformed_points_;   // (B, N, C) points . T3 (per triple)
  Buffer<T> transformed_features_; // (B, N, 64) conv1 . T64 (feature transform only)
  Buffer<T> transformed_features_narrow_;  // its 2-byte copy (Backend::narrow_activations)
  const T* pointfeat_ = nullptr;   // (B, N, 64) the per-point features kept for segmentation
  const void* transformed_narrow_ = nullptr;  // transformed_features_narrow_'s data, or null
  // pointfeat_'s 2-byte copy (Backend::narrow_activations): conv1's, or with
  // the feature transform the transform's; else null.
  const void* pointfeat_narrow() const {
    return config_.feature_transform ? transformed_narrow_ : conv1_.output_narrow();
  }

  // Heads: fc1..fc3 (cls) or conv1..conv4 over [global, pointfeat] (seg).
  Dense<T> head1_, head2_, head3_, head4_;
  Buffer<T> log_probs_;            // (B, K) the classifier's
  // (rows, K): log_probs_, or the segmenter's logits (head4's z, which
  // nothing reads after the log-softmax) overwritten in place: 16 MB fewer at
  // 32 x 2500 points.
  T* log_probs_at_ = nullptr;
  Buffer<T> dropout_mask_;         // (B, 256) cls only
  std::vector<T> fixed_dropout_mask_;
  double dropout_p_ = kDropoutP;
  bool dropout_drawn_ = false;     // draw_dropout() ran for the next forward

  // Backward scratch: two ping-pong buffers (see backward()) and dedicated gradients.
  Buffer<T> scratch_a_, scratch_b_, dglobal_, dpointfeat_, dconv1_, dtransform3_, dtransform64_;
  const T* input_points_ = nullptr;  // (B, N, C) the last forward's input
  int batch_ = 0, points_ = 0;
  bool trained_ = false;
};

}  // namespace pointnet
