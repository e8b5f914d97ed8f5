// The building block of PointNet: Linear (a 1x1 Conv1d over points, or a fully
// connected layer over clouds), then optional dropout, optional BatchNorm and
// optional ReLU. Every conv and fc of the network is one of these.
#pragma once
#include <string>

#include "model/buffer.h"
#include "model/params.h"

namespace pointnet {

struct DenseSpec {
  std::string linear_name;  // "feat.conv1" -> feat.conv1.weight / .bias
  std::string bn_name;      // "feat.bn1", or empty for no BatchNorm
  int in = 0, out = 0;
  bool conv = false;        // Conv1d weights are (out, in, 1) in the state_dict, Linear (out, in)
  bool relu = false;
  bool dropout = false;     // a mask applied between the linear and the BatchNorm
};

template <typename T>
struct Dense {
  DenseSpec spec;
  int weight = -1, bias = -1;                          // parameter indices
  int bn_weight = -1, bn_bias = -1, bn_mean = -1, bn_var = -1;

  // Saved by forward for backward. M = rows (points or clouds).
  const T* input = nullptr;  // (M, in), owned by the previous layer
  Buffer<T> z;               // (M, out) linear output (after dropout)
  // z holds the linear output in the mode's 2-byte type, narrow_count(M * out)
  // T's (Backend::narrow_linear_outputs; conv layers with BatchNorm and ReLU,
  // training): the BatchNorm reads that, and no fp32 z exists.
  bool z_narrow = false;
  // In eval a BatchNorm layer's linear output is written into y and
  // normalised there in place: z is not kept (nothing reads it after).
  bool z_in_y = false;
  Buffer<T> y;               // (M, out) layer output (after BN and ReLU); aliases z without BN/ReLU
  Buffer<T> mean, invstd;    // (out) batch statistics
  const T* dropout_mask = nullptr;  // (M, out), owned by the model
  int rows = 0;
  bool trained = false;      // whether the last forward used batch statistics

  // 2-byte copies (Backend::narrow_activations; conv layers with BatchNorm
  // and ReLU, training only), (M, out) values in the mode's fp16 / bf16 in
  // narrow_count(M * out) T's: y's after the forward, for the GEMMs that read
  // y; the backward then writes the linear output's gradient's copy there.
  // The model runs every reader's backward before this layer's (reverse
  // order), so y's copy is dead by then.
  Buffer<T> narrow;
  bool narrow_holds_y = false;
  // Backend::narrow_gradients: the next layer's backward wrote this layer's
  // output gradient into `narrow` (in place of y's copy, which it had read),
  // and this layer's backward reads it from there, not from its dy argument.
  bool narrow_holds_dy = false;
  // The same, except that the reader wrote the 2-byte gradient into the dy
  // buffer this layer's backward is given (the fused wide layer, which reads
  // y's copy while writing it): that buffer, until this layer's backward.
  const void* dy_narrow_at = nullptr;
  // Set by the model where this layer's output has one reader, `input_layer`
  // of that reader, and that reader's backward may hand the gradient on in 2 bytes.
  Dense<T>* input_layer = nullptr;
  const void* input_narrow = nullptr;  // x's copy (M, in), owned by the previous layer, or null
  // False (set by the model) where every reader of the output takes its copy
  // (dense layers only): then a forward that keeps the copy skips fp32 y, and
  // output() is null until a forward writes y again.
  bool output_read_in_fp32 = true;
  bool y_written = false;

  const T* output() const {
    if (spec.bn_name.empty() && !spec.relu) return z.data();
    return y_written ? y.data() : nullptr;
  }
  const void* output_narrow() const { return narrow_holds_y ? narrow.data() : nullptr; }
};

// Declares the layer's parameters in `store` (call before store.allocate()).
template <typename T>
void dense_declare(Dense<T>& layer, const DenseSpec& spec, ParamStore<T>& store);

// y = relu(bn(dropout(x w^T + b))). Stores what backward needs. x_narrow:
// x's 2-byte copy (the previous layer's output_narrow()), or null; it must
// stay as it is until this layer's backward.
template <typename T>
void dense_forward(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, const T* x, int M,
                   bool training, double bn_momentum, const void* x_narrow = nullptr);

// Whether a training forward keeps the layer's z only in 2 bytes
// (Backend::narrow_linear_outputs): conv layers with BatchNorm and ReLU and
// no dropout, where the BatchNorm is z's only reader. dense_forward asks it,
// and so does the segmenter's concat layer, whose z is written elsewhere.
template <typename T>
bool dense_keeps_z_narrow(const Dense<T>& layer, const Backend<T>& be, bool training, size_t count);

// The part of dense_forward after the linear: dropout, BatchNorm, ReLU applied
// to layer.z (already holding the linear output for M rows), into layer.y.
// For layers whose linear part is computed another way (concat_linear).
template <typename T>
void dense_activate(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, int M, bool training,
                    double bn_momentum);

// The part of dense_backward before the linear: dy (M, out) becomes the
// gradient of the linear output, in place.
template <typename T>
void dense_deactivate(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dy);
// dense_deactivate where the caller's GEMMs can read the gradient's 2-byte
// copy: where the forward kept y's copy, the gradient goes there (returned;
// dy is not written) and the bias gradient is taken; else as
// dense_deactivate, returning null.
template <typename T>
const void* dense_deactivate_narrow(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dy);

// Where dense_backward will write dx in the mode's 2-byte type, straight into
// the producer's copy (Backend::narrow_gradients; dx itself untouched), or
// null where it writes the fp32 dx: lets the model size its fp32 scratch
// before the backward.
template <typename T>
void* dense_dx_narrow(const Dense<T>& layer, const Backend<T>& be);

// Whether `producer`'s output gradient may be handed to it in 2 bytes by its
// one reader, whose x copy is `reader_input_narrow`: the producer still holds
// y's copy (read by that reader as x) and takes its gradient through a copy
// (BatchNorm+ReLU, no dropout).
template <typename T>
bool takes_narrow_gradient(const Dense<T>* producer, const void* reader_input_narrow);

// dx(M, in) = gradient wrt the input (skipped when null; with
// dense_dx_narrow, written there instead); parameter gradients are
// overwritten (=). `dy` (M, out) is used as scratch and clobbered.
// accumulate_dx: dx += the gradient (always in fp32).
template <typename T>
void dense_backward(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dx, T* dy,
                    bool accumulate_dx = false);

constexpr double kBatchNormEps = 1e-5;

}  // namespace pointnet
