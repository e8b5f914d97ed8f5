#include "model/wide_max.h"

#include "core/errors.h"

namespace pointnet {

template <typename T>
void wide_max_declare(WideMax<T>& layer, const DenseSpec& spec, ParamStore<T>& store) {
  PN_CHECK(!spec.bn_name.empty() && !spec.dropout);  // the fusion relies on BatchNorm
  dense_declare(layer.params, spec, store);
}

template <typename T>
WideMaxSaved<T> saved_tensors(WideMax<T>& l) {
  return {l.input_mean.data(), l.input_cov.data(), l.mean.data(), l.invstd.data(), l.selected.data(),
          l.selected_row.data()};
}

template <typename T>
void wide_max_forward(WideMax<T>& layer, Backend<T>& be, const ParamStore<T>& store, const T* x, int B, int N,
                      bool training, double bn_momentum, const void* x_narrow) {
  const Dense<T>& p = layer.params;
  const int K = p.spec.in, C = p.spec.out;
  PN_CHECK(x || (training && x_narrow && be.wide_max_reads_narrow_input()));
  layer.input = x;
  layer.input_narrow = x_narrow;
  layer.batch = B;
  layer.points = N;
  layer.trained = training;
  for (auto* buffer : {&layer.y, &layer.input_mean, &layer.input_cov, &layer.mean, &layer.invstd, &layer.selected})
    buffer->bind(&be);
  layer.selected_row.bind(&be);
  T* y = layer.y.reserve(static_cast<size_t>(B) * C);
  if (!training) {
    be.wide_max_forward_eval(y, x, store.value(p.weight), store.value(p.bias), store.value(p.bn_weight),
                             store.value(p.bn_bias), store.value(p.bn_mean), store.value(p.bn_var), B, N, K, C,
                             p.spec.relu, kBatchNormEps);
    return;
  }
  layer.input_mean.reserve(K);
  layer.input_cov.reserve(static_cast<size_t>(K) * K);
  layer.mean.reserve(C);
  layer.invstd.reserve(C);
  layer.selected.reserve(static_cast<size_t>(B) * C);
  layer.selected_row.reserve(static_cast<size_t>(B) * C);
  be.wide_max_forward_train(y, saved_tensors(layer), store.value(p.bn_mean), store.value(p.bn_var), x,
                            store.value(p.weight), store.value(p.bias), store.value(p.bn_weight),
                            store.value(p.bn_bias), B, N, K, C, p.spec.relu, kBatchNormEps, bn_momentum, x_narrow);
}

template <typename T>
bool wide_max_dx_narrow(const WideMax<T>& layer, const Backend<T>& be) {
  return layer.trained && be.wide_max_writes_narrow_dx() && takes_narrow_gradient(layer.input_layer, layer.input_narrow);
}

template <typename T>
void wide_max_backward(WideMax<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dx, const T* dy) {
  PN_CHECK(layer.trained);  // backward needs batch statistics from a training forward
  const Dense<T>& p = layer.params;
  // dx in 2 bytes, in dx's own buffer: the producer's copy of y, where the
  // dense layers put it, is this backward's x.
  Dense<T>* producer = layer.input_layer;
  void* dx_narrow = dx && wide_max_dx_narrow(layer, be) ? dx : nullptr;
  be.wide_max_backward(dx_narrow ? nullptr : dx, store.grad(p.weight), store.grad(p.bias), store.grad(p.bn_weight),
                       store.grad(p.bn_bias), dy, layer.y.data(), saved_tensors(layer), layer.input,
                       store.value(p.weight), store.value(p.bn_weight), layer.batch, layer.points, p.spec.in,
                       p.spec.out, p.spec.relu, layer.input_narrow, dx_narrow);
  if (dx_narrow) {
    producer->narrow_holds_y = false;
    producer->dy_narrow_at = dx_narrow;
  }
  // The producer's copy now waits for its own gradient (dense_backward
  // writes it there): a second backward must not take it for x.
  layer.input_narrow = nullptr;
}

#define PN_WIDE_MAX_LAYER(T)                                                                                   \
  template void wide_max_declare<T>(WideMax<T>&, const DenseSpec&, ParamStore<T>&);                           \
  template void wide_max_forward<T>(WideMax<T>&, Backend<T>&, const ParamStore<T>&, const T*, int, int, bool, \
                                    double, const void*);                                                     \
  template bool wide_max_dx_narrow<T>(const WideMax<T>&, const Backend<T>&);                                  \
  template void wide_max_backward<T>(WideMax<T>&, Backend<T>&, const ParamStore<T>&, T*, const T*);
PN_WIDE_MAX_LAYER(float)
PN_WIDE_MAX_LAYER(double)

}  // namespace pointnet
