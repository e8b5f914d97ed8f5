// The widest layer of PointNet and its pooling as one fused step: the 1x1 conv
// 128 -> 1024 with BatchNorm (and ReLU in the T-Nets), then the max over each
// cloud's points. Backends compute it without keeping the (B*N, 1024)
// activation (Backend::wide_max_*), which removes most of a training step's
// memory traffic and the layer's backward GEMMs. Same parameters (and
// state_dict names) as the Dense layer it replaces.
#pragma once
#include "model/dense.h"

namespace pointnet {

template <typename T>
struct WideMax {
  Dense<T> params;            // parameter indices and spec only; its buffers stay empty
  const T* input = nullptr;   // (B*N, in), owned by the previous layer; null where only its copy is kept
  const void* input_narrow = nullptr;  // its 2-byte copy (Backend::narrow_activations), or null
  // Set by the model where the layer feeding x has this one as its only
  // reader: its gradient may then go back in 2 bytes (wide_max_backward).
  Dense<T>* input_layer = nullptr;
  int batch = 0, points = 0;
  bool trained = false;
  Buffer<T> y;                // (B, out) pooled output
  Buffer<T> input_mean, input_cov, mean, invstd, selected;  // saved for backward
  IndexBuffer<T> selected_row;

  const T* output() const { return y.data(); }
};

template <typename T>
void wide_max_declare(WideMax<T>& layer, const DenseSpec& spec, ParamStore<T>& store);

// x (B, N, in) -> output() (B, out). x_narrow: x's 2-byte copy
// (dense_forward), or null; it must stay as it is until this layer's
// backward. x may be null where Backend::wide_max_reads_narrow_input() and
// x_narrow is given (the producer then kept only the copy).
template <typename T>
void wide_max_forward(WideMax<T>& layer, Backend<T>& be, const ParamStore<T>& store, const T* x, int B, int N,
                      bool training, double bn_momentum, const void* x_narrow = nullptr);

// Whether wide_max_backward will write dx in 2 bytes (in dx's buffer, half
// its room): lets the model size its fp32 scratch before the backward.
template <typename T>
bool wide_max_dx_narrow(const WideMax<T>& layer, const Backend<T>& be);

// dy (B, out) -> dx (B*N, in) (=, skipped when null); parameter gradients (=).
// Where the backend writes dx in 2 bytes (Backend::wide_max_writes_narrow_dx)
// and input_layer takes its gradient so, dx's buffer holds that instead (its
// first half), and input_layer's backward must be given dx as its dy.
template <typename T>
void wide_max_backward(WideMax<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dx, const T* dy);

}  // namespace pointnet
