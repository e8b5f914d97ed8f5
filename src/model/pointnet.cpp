#include "model/pointnet.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet {

namespace {
constexpr int kGlobal = 1024;   // global feature width
constexpr int kPointFeat = 64;  // per-point feature width kept for segmentation
}  // namespace

template <typename T>
PointNet<T>::PointNet(const ModelConfig& config, Backend<T>& backend) : config_(config), be_(backend) {
  if (config.num_classes < 2) fail("a model needs at least 2 classes, got ", config.num_classes);
  const int C = config.input_channels;
  if (C != 3 && C != 6) fail("input channels must be 3 (xyz) or 6 (xyz + normals), got ", C);
  tnet_declare(stn_, "feat.stn", 3, C, store_);
  dense_declare(conv1_, {"feat.conv1", "feat.bn1", C, 64, true, true, false}, store_);
  dense_declare(conv2_, {"feat.conv2", "feat.bn2", 64, 128, true, true, false}, store_);
  wide_max_declare(conv3_, {"feat.conv3", "feat.bn3", 128, kGlobal, true, false, false}, store_);
  if (config.feature_transform) tnet_declare(fstn_, "feat.fstn", 64, 64, store_);
  // Without the feature transform conv1's output is read by conv2 (and the
  // segmenter's concat) alone, both able to take its copy; with it, the
  // transform's GEMMs take the copy too, but its checks and fp32/tf32 modes
  // read the fp32 output.
  conv1_.output_read_in_fp32 = config.feature_transform;
  // conv2 alone reads conv1's output in the classifier without the feature
  // transform (the segmenter's concat reads it too): its gradient may come in 2 bytes.
  if (config.task == ModelTask::Classification && !config.feature_transform) conv2_.input_layer = &conv1_;
  conv3_.input_layer = &conv2_;  // conv2's one reader, in every configuration
  const int k = config.num_classes;
  if (config.task == ModelTask::Classification) {
    dense_declare(head1_, {"fc1", "bn1", kGlobal, 512, false, true, false}, store_);
    dense_declare(head2_, {"fc2", "bn2", 512, 256, false, true, true}, store_);
    dense_declare(head3_, {"fc3", "", 256, k, false, false, false}, store_);
  } else {
    dense_declare(head1_, {"conv1", "bn1", kGlobal + kPointFeat, 512, true, true, false}, store_);
    dense_declare(head2_, {"conv2", "bn2", 512, 256, true, true, false}, store_);
    dense_declare(head3_, {"conv3", "bn3", 256, 128, true, true, false}, store_);
    dense_declare(head4_, {"conv4", "", 128, k, true, false, false}, store_);
    // Each read by the next conv alone (Dense::output_read_in_fp32).
    for (Dense<T>* layer : {&head1_, &head2_, &head3_}) layer->output_read_in_fp32 = false;
    head3_.input_layer = &head2_;
    head4_.input_layer = &head3_;
  }
  store_.allocate(&be_);
  for (Buffer<T>* b : {&transformed_points_, &transformed_features_, &transformed_features_narrow_, &log_probs_,
                       &dropout_mask_, &scratch_a_, &scratch_b_, &dglobal_, &dpointfeat_, &dconv1_,
                       &dtransform3_, &dtransform64_})
    b->bind(&be_);
}

template <typename T>
void PointNet<T>::initialize(Rng& rng) {
  std::vector<T> host;
  for (size_t i = 0; i < store_.infos().size(); ++i) {
    const ParamInfo& info = store_.infos()[i];
    host.assign(info.count, T(0));
    const std::string& n = info.name;
    auto ends_with = [&](const std::string& s) { return n.size() >= s.size() && n.compare(n.size() - s.size(), s.size(), s) == 0; };
    const bool is_bn = n.find(".bn") != std::string::npos || n.rfind("bn", 0) == 0;
    if (is_bn && ends_with(".weight")) host.assign(info.count, T(1));
    else if (ends_with(".running_var")) host.assign(info.count, T(1));
    else if (!is_bn) {
      // Conv1d/Linear: kaiming_uniform(a=sqrt(5)) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)); bias the same.
      const float bound = 1.0f / std::sqrt(static_cast<float>(info.fan_in));
      for (T& v : host) v = static_cast<T>(rng.uniform(-bound, bound));
    }
    be_.upload(store_.value(static_cast<int>(i)), host.data(), info.count);
  }
  batches_tracked_ = 0;
}

template <typename T>
void PointNet<T>::set_dropout_mask(const std::vector<T>& mask) { fixed_dropout_mask_ = mask; }

template <typename T>
void PointNet<T>::set_dropout_probability(double p) {
  if (!(p >= 0.0 && p < 1.0)) fail("dropout probability ", p, ": expected a value in [0, 1)");
  dropout_p_ = p;
}

template <typename T>
void PointNet<T>::draw_dropout(int B, Rng& rng) {
  if (B < 1) fail("draw_dropout needs at least one cloud, got B=", B);
  if (config_.task != ModelTask::Classification) return;  // the segmenter has no dropout
  batch_ = B;
  draw_dropout_mask(rng);
  dropout_drawn_ = true;
}

template <typename T>
void PointNet<T>::replayed_training_forward(const T* points, int B, int N) {
  batch_ = B;
  points_ = N;
  trained_ = true;
  input_points_ = points;
  ++batches_tracked_;
  dropout_drawn_ = false;
}

template <typename T>
void PointNet<T>::draw_dropout_mask(Rng& rng) {
  const size_t count = static_cast<size_t>(batch_) * 256;
  std::vector<T> host(count);
  if (!fixed_dropout_mask_.empty()) {
    PN_CHECK(fixed_dropout_mask_.size() == count);
    host = fixed_dropout_mask_;
  } else {
    const T keep = static_cast<T>(1.0 / (1.0 - dropout_p_));
    const float p = static_cast<float>(dropout_p_);  // as before for the default: uniform() < 0.3f
    for (T& v : host) v = rng.uniform() < p ? T(0) : keep;
  }
  T* mask = dropout_mask_.reserve(count);
  be_.upload(mask, host.data(), count);
  head2_.dropout_mask = mask;
}

template <typename T>
void PointNet<T>::forward(const T* points, int B, int N, bool training, Rng* dropout_rng) {
  if (B < 1 || N < 1) fail("forward needs at least one cloud and one point, got B=", B, " N=", N);
  batch_ = B;
  points_ = N;
  trained_ = training;
  input_points_ = points;
  const int M = B * N;
  if (training) ++batches_tracked_;
  // Where GEMMs read 2-byte operands: every weight converted once for this
  // forward and its backward (the optimizer's step comes after both).
  be_.narrow_weights(store_.values(), store_.trainable_count());

  tnet_forward(stn_, be_, store_, points, B, N, training);
  // The 3x3 transform turns every xyz triple, and the normal triple beside it
  // when there is one: (N, 6) rows are (2N, 3) rows to the transform op.
  const int C = config_.input_channels;
  T* tp = transformed_points_.reserve(static_cast<size_t>(M) * C);
  be_.transform_forward(tp, points, stn_.transform(), B, N * C / 3, 3);
  dense_forward(conv1_, be_, store_, tp, M, training, kBatchNormMomentum);
  pointfeat_ = conv1_.output();
  if (config_.feature_transform) {
    tnet_forward(fstn_, be_, store_, conv1_.output(), B, N, training, conv1_.output_narrow());
    T* tf = transformed_features_.reserve(static_cast<size_t>(M) * kPointFeat);
    // Its 2-byte copy, in eval too: conv2 reads it, and the segmenter's head.0.
    void* tf_narrow = be_.narrow_activations() ? transformed_features_narrow_.reserve(
                                                     Backend<T>::narrow_count(static_cast<size_t>(M) * kPointFeat))
                                               : nullptr;
    be_.transform_forward(tf, conv1_.output(), fstn_.transform(), B, N, kPointFeat, conv1_.output_narrow(),
                          tf_narrow);
    pointfeat_ = tf;
    transformed_narrow_ = tf_narrow;
  }
  conv2_.output_read_in_fp32 = !be_.wide_max_reads_narrow_input();  // by conv3 alone
  dense_forward(conv2_, be_, store_, pointfeat_, M, training, kBatchNormMomentum, pointfeat_narrow());
  wide_max_forward(conv3_, be_, store_, conv2_.output(), B, N, training, kBatchNormMomentum, conv2_.output_narrow());

  if (config_.task == ModelTask::Classification) {
    if (training && !dropout_drawn_) {
      Rng fallback(0);
      draw_dropout_mask(dropout_rng ? *dropout_rng : fallback);
    }
    dropout_drawn_ = false;
    forward_head_cls(training);
  } else {
    forward_head_seg(training);
  }
}

template <typename T>
void PointNet<T>::forward_head_cls(bool training) {
  const int B = batch_;
  dense_forward(head1_, be_, store_, conv3_.output(), B, training, kBatchNormMomentum);
  dense_forward(head2_, be_, store_, head1_.output(), B, training, kBatchNormMomentum);
  dense_forward(head3_, be_, store_, head2_.output(), B, training, kBatchNormMomentum);
  const int k = config_.num_classes;
  log_probs_at_ = log_probs_.reserve(static_cast<size_t>(B) * k);
  be_.log_softmax_forward(log_probs_at_, head3_.output(), B, k);
}

template <typename T>
void PointNet<T>::forward_head_seg(bool training) {
  const int B = batch_, N = points_, M = B * N;
  // head1 over [global, pointfeat] without building the (M, 1088) concat: the
  // global part once per cloud (Backend::concat_linear_forward).
  head1_.z.bind(&be_);
  head1_.input = nullptr;
  const int width = head1_.spec.out;
  const size_t count = static_cast<size_t>(M) * width;
  head1_.z_narrow = dense_keeps_z_narrow(head1_, be_, training, count);
  head1_.z_in_y = false;  // z is written here, not by dense_forward
  T* z = head1_.z.reserve(head1_.z_narrow ? Backend<T>::narrow_count(count) : count);
  be_.concat_linear_forward(head1_.z_narrow ? nullptr : z, conv3_.output(), pointfeat_, store_.value(head1_.weight),
                            store_.value(head1_.bias), B, N, kGlobal, kPointFeat, width, pointfeat_narrow(),
                            head1_.z_narrow ? z : nullptr);
  dense_activate(head1_, be_, store_, M, training, kBatchNormMomentum);
  dense_forward(head2_, be_, store_, head1_.output(), M, training, kBatchNormMomentum, head1_.output_narrow());
  dense_forward(head3_, be_, store_, head2_.output(), M, training, kBatchNormMomentum, head2_.output_narrow());
  dense_forward(head4_, be_, store_, head3_.output(), M, training, kBatchNormMomentum, head3_.output_narrow());
  const int k = config_.num_classes;
  log_probs_at_ = head4_.z.data();  // in place (head4 has no BatchNorm or ReLU: its output is z)
  PN_CHECK(head4_.output() == log_probs_at_);
  be_.log_softmax_forward(log_probs_at_, log_probs_at_, M, k);
}

template <typename T>
LossValue PointNet<T>::loss(const int32_t* targets) {
  queue_loss(targets);
  return loss_result();
}

template <typename T>
void PointNet<T>::queue_loss(const int32_t* targets) {
  be_.queue_nll_loss(log_probs_at_, targets, output_rows(), config_.num_classes);
  if (config_.feature_transform) be_.queue_transform_regularizer(fstn_.transform(), batch_, kPointFeat);
}

template <typename T>
LossValue PointNet<T>::loss_result() {
  LossValue loss;
  loss.rows = output_rows();
  loss.nll = be_.nll_loss_result(&loss.correct);
  if (config_.feature_transform) loss.regularizer = be_.transform_regularizer_result();
  loss.total = loss.nll + kFeatureTransformWeight * loss.regularizer;
  return loss;
}

template <typename T>
void PointNet<T>::backward(const int32_t* targets, double loss_scale) {
  if (!trained_) fail("backward needs a training forward pass first");
  const int B = batch_, N = points_, M = B * N, rows = output_rows(), k = config_.num_classes;
  // Widest gradient through the ping-pong buffers: conv2's (M, 128) from the
  // wide layers (the fused conv3 and concat_linear never materialise wider
  // ones), half that room where each of them writes it in 2 bytes
  // (wide_max_dx_narrow), conv2's dx (M, 64), a (B, 1024) head gradient, the
  // logits' (rows, k), and the segmenter head's (M, 128), (M, 256), (M, 512)
  // where they are written in fp32, not handed on in 2 bytes
  // (dense_dx_narrow; head1 takes its gradient through its copy only with z
  // in 2 bytes).
  const bool seg = config_.task == ModelTask::Segmentation;
  const bool wide_dx_narrow = wide_max_dx_narrow(conv3_, be_) && wide_max_dx_narrow(stn_.conv3, be_) &&
                              (!config_.feature_transform || wide_max_dx_narrow(fstn_.conv3, be_));
  const size_t wide_dx = wide_dx_narrow ? Backend<T>::narrow_count(static_cast<size_t>(M) * 128)
                                       : static_cast<size_t>(M) * 128;
  size_t scratch = std::max({wide_dx, static_cast<size_t>(M) * kPointFeat, static_cast<size_t>(B) * kGlobal,
                             static_cast<size_t>(rows) * k});
  if (seg) {
    head2_.input_layer = head1_.z_narrow ? &head1_ : nullptr;
    for (const Dense<T>* reader : {&head4_, &head3_, &head2_})
      if (!dense_dx_narrow(*reader, be_)) scratch = std::max(scratch, static_cast<size_t>(M) * reader->spec.in);
  }
  T* sa = scratch_a_.reserve(scratch);
  T* sb = scratch_b_.reserve(scratch);
  T* dglobal = dglobal_.reserve(static_cast<size_t>(B) * kGlobal);

  // d(S * mean nll)/d(logits), then the head. S = 1 gives the same bits as no scale.
  be_.log_softmax_nll_backward(sa, log_probs_at_, targets, rows, k, static_cast<T>(loss_scale / rows));
  T* dpointfeat = nullptr;
  if (config_.task == ModelTask::Classification) {
    dense_backward(head3_, be_, store_, sb, sa);        // -> (B, 256)
    dense_backward(head2_, be_, store_, sa, sb);        // -> (B, 512)
    dense_backward(head1_, be_, store_, dglobal, sa);   // -> (B, 1024)
  } else {
    dense_backward(head4_, be_, store_, sb, sa);        // -> (M, 128)
    dense_backward(head3_, be_, store_, sa, sb);        // -> (M, 256)
    dense_backward(head2_, be_, store_, sb, sa);        // -> (M, 512)
    // (M, 512): in place, or, with z in 2 bytes (the mode that rounds more
    // than the GEMMs' own conversions), into its 2-byte copy with the bias
    // gradient taken: the per-cloud sums then add the rounded values.
    const void* dz_narrow = nullptr;
    if (head1_.z_narrow) dz_narrow = dense_deactivate_narrow(head1_, be_, store_, sb);
    else dense_deactivate(head1_, be_, store_, sb);
    dpointfeat = dpointfeat_.reserve(static_cast<size_t>(M) * kPointFeat);
    be_.concat_linear_backward(dglobal, dpointfeat, store_.grad(head1_.weight),
                               dz_narrow ? nullptr : store_.grad(head1_.bias), dz_narrow ? nullptr : sb,
                               conv3_.output(), pointfeat_, store_.value(head1_.weight), B, N, kGlobal, kPointFeat,
                               head1_.spec.out, pointfeat_narrow(), dz_narrow);
  }

  // Feature extractor: max, conv3, conv2.
  // conv2's dx: added onto the segmenter's dpointfeat by its GEMM, else
  // into sa, free by then (with the feature transform, transform_backward
  // reads it before the T-Net takes sa and sb as scratch).
  wide_max_backward(conv3_, be_, store_, sb, dglobal);   // -> (M, 128)
  PN_CHECK(!wide_dx_narrow || conv2_.dy_narrow_at == sb);  // sa and sb were sized for its 2-byte dx
  if (dpointfeat) {
    dense_backward(conv2_, be_, store_, dpointfeat, sb, true);  // += (M, 64)
  } else {
    dense_backward(conv2_, be_, store_, sa, sb);                // -> (M, 64)
    dpointfeat = sa;
  }

  // Feature transform: pointfeat = conv1 . T64, and T64 = fstn(conv1).
  T* dconv1 = dpointfeat;
  if (config_.feature_transform) {
    dconv1 = dconv1_.reserve(static_cast<size_t>(M) * kPointFeat);
    T* dt64 = dtransform64_.reserve(static_cast<size_t>(B) * kPointFeat * kPointFeat);
    be_.transform_backward(dconv1, dt64, dpointfeat, conv1_.output(), fstn_.transform(), B, N, kPointFeat,
                           conv1_.output_narrow());
    be_.transform_regularizer_backward_accumulate(dt64, fstn_.transform(), B, kPointFeat,
                                                  static_cast<T>(kFeatureTransformWeight * loss_scale));
    // The T-Net's conv1 adds its dx onto the transform's by its GEMM (beta 1):
    // the same sums as a separate add, without a pass over (M, 64) floats.
    tnet_backward(fstn_, be_, store_, dconv1, dt64, sa, sb, true);
  }

  // conv1, then the input transform: transformed = points . T3, T3 = stn(points).
  // (dconv1 may be sa; sb is free.)
  dense_backward(conv1_, be_, store_, sb, dconv1);      // -> (M, C)
  T* dt3 = dtransform3_.reserve(static_cast<size_t>(B) * 9);
  be_.transform_backward(nullptr, dt3, sb, input_points_, stn_.transform(), B, N * config_.input_channels / 3, 3);
  tnet_backward<T>(stn_, be_, store_, nullptr, dt3, sa, sb);
  // The weights' copy served this forward and backward; whatever changes the
  // weights next (the optimizer, a broadcast, a load) need not know of it.
  be_.narrow_weights(nullptr, 0);
}

template class PointNet<float>;
template class PointNet<double>;

}  // namespace pointnet
