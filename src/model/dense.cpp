#include "model/dense.h"

#include "core/errors.h"

namespace pointnet {

namespace {
// Backend::per_cloud_gemms for a scope: undone however the scope ends (a
// failed GEMM must not leave the backend's later GEMMs in the per-cloud type).
template <typename T>
class PerCloudGemms {
 public:
  PerCloudGemms(Backend<T>& be, bool per_cloud) : be_(be) { be_.per_cloud_gemms(per_cloud); }
  PerCloudGemms(const PerCloudGemms&) = delete;
  PerCloudGemms& operator=(const PerCloudGemms&) = delete;
  ~PerCloudGemms() { be_.per_cloud_gemms(false); }

 private:
  Backend<T>& be_;
};
}  // namespace

template <typename T>
void dense_declare(Dense<T>& layer, const DenseSpec& spec, ParamStore<T>& store) {
  layer.spec = spec;
  std::vector<int64_t> wshape = {spec.out, spec.in};
  if (spec.conv) wshape.push_back(1);
  layer.weight = store.add(spec.linear_name + ".weight", wshape, true, spec.in);
  layer.bias = store.add(spec.linear_name + ".bias", {spec.out}, true, spec.in);
  if (!spec.bn_name.empty()) {
    layer.bn_weight = store.add(spec.bn_name + ".weight", {spec.out}, true);
    layer.bn_bias = store.add(spec.bn_name + ".bias", {spec.out}, true);
    layer.bn_mean = store.add(spec.bn_name + ".running_mean", {spec.out}, false);
    layer.bn_var = store.add(spec.bn_name + ".running_var", {spec.out}, false);
  }
}

template <typename T>
bool dense_keeps_z_narrow(const Dense<T>& layer, const Backend<T>& be, bool training, size_t count) {
  const DenseSpec& s = layer.spec;
  return training && s.conv && s.relu && !s.bn_name.empty() && !s.dropout && count > 0 && be.narrow_activations() &&
         be.narrow_linear_outputs();
}

template <typename T>
void dense_forward(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, const T* x, int M,
                   bool training, double bn_momentum, const void* x_narrow) {
  const DenseSpec& s = layer.spec;
  const size_t count = static_cast<size_t>(M) * s.out;
  layer.z.bind(&be);
  layer.y.bind(&be);
  layer.input = x;
  layer.input_narrow = be.narrow_activations() ? x_narrow : nullptr;
  layer.rows = M;
  layer.trained = training;
  layer.z_narrow = dense_keeps_z_narrow(layer, be, training, count);
  layer.z_in_y = !training && !s.bn_name.empty();
  T* z = layer.z_in_y ? layer.y.reserve(count)
                      : layer.z.reserve(layer.z_narrow ? Backend<T>::narrow_count(count) : count);
  {
    const PerCloudGemms<T> scope(be, !s.conv);
    be.linear_forward(layer.z_narrow ? nullptr : z, x, store.value(layer.weight), store.value(layer.bias), M, s.in,
                      s.out, layer.input_narrow, layer.z_narrow ? z : nullptr);
  }
  dense_activate(layer, be, store, M, training, bn_momentum);
}

template <typename T>
void dense_activate(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, int M, bool training,
                    double bn_momentum) {
  const DenseSpec& s = layer.spec;
  const size_t count = static_cast<size_t>(M) * s.out;
  layer.y.bind(&be);
  layer.narrow.bind(&be);
  layer.rows = M;
  layer.trained = training;
  layer.narrow_holds_y = false;
  layer.narrow_holds_dy = false;  // a backward cut off mid-way left nothing behind
  layer.dy_narrow_at = nullptr;
  T* z = layer.z_in_y ? layer.y.data() : layer.z.data();
  PN_CHECK(!layer.z_narrow || (training && s.relu && !s.bn_name.empty() && !s.dropout));
  PN_CHECK(!layer.z_in_y || (!training && !s.bn_name.empty()));
  if (s.dropout && training) {
    PN_CHECK(layer.dropout_mask != nullptr);
    be.multiply(z, z, layer.dropout_mask, count);
  }
  if (s.bn_name.empty() && !s.relu) return;  // output is z
  // The 2-byte copy: conv layers (per-point GEMMs in the mode's type read
  // them) with BatchNorm and ReLU, in training. fp32 y only where read.
  const bool copy = training && s.relu && !s.bn_name.empty() && s.conv && count > 0 && be.narrow_activations();
  layer.y_written = !copy || layer.output_read_in_fp32;
  T* y = layer.y_written ? layer.y.reserve(count) : nullptr;
  if (s.bn_name.empty()) {
    be.relu_forward(y, z, count);
    return;
  }
  if (training) {
    layer.mean.bind(&be);
    layer.invstd.bind(&be);
    T* mean = layer.mean.reserve(s.out);
    T* invstd = layer.invstd.reserve(s.out);
    if (s.relu) {
      layer.narrow_holds_y = copy;
      void* y_narrow = copy ? layer.narrow.reserve(Backend<T>::narrow_count(count)) : nullptr;
      be.batchnorm_relu_forward_train(y, mean, invstd, store.value(layer.bn_mean), store.value(layer.bn_var),
                                      layer.z_narrow ? nullptr : z, store.value(layer.bn_weight),
                                      store.value(layer.bn_bias), M, s.out, kBatchNormEps, bn_momentum, y_narrow,
                                      layer.z_narrow ? z : nullptr);
    } else {
      be.batchnorm_forward_train(y, mean, invstd, store.value(layer.bn_mean), store.value(layer.bn_var), z,
                                 store.value(layer.bn_weight), store.value(layer.bn_bias), M, s.out, kBatchNormEps,
                                 bn_momentum);
    }
  } else {
    auto eval = s.relu ? &Backend<T>::batchnorm_relu_forward_eval : &Backend<T>::batchnorm_forward_eval;
    (be.*eval)(y, z, store.value(layer.bn_weight), store.value(layer.bn_bias), store.value(layer.bn_mean),
               store.value(layer.bn_var), M, s.out, kBatchNormEps);
  }
}

namespace {
// dense_deactivate. Leaves the gradient in fp32 (dy, in place) and returns
// null, or, where `copy` asks and the forward kept y's 2-byte copy, returns
// that gradient's copy (in layer.narrow) with the bias gradient already taken.
// bias_taken (dense_backward's): set where the bias gradient was taken here,
// with the copy or, where the backend sums dx in its BatchNorm pass
// (Backend::batchnorm_sums_dx), beside the fp32 gradient.
template <typename T>
const void* deactivate(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dy, bool copy,
                       bool* bias_taken = nullptr) {
  const DenseSpec& s = layer.spec;
  PN_CHECK(layer.trained);  // backward needs batch statistics from a training forward
  const int M = layer.rows;
  const size_t count = static_cast<size_t>(M) * s.out;
  // y's copy was read by the next layer's backward, already run; the copy of
  // the gradient takes its place. Not with dropout: the mask comes after.
  // Where that backward left dy itself there (narrow_holds_dy), dy is read
  // from the copy and the copy of the gradient overwrites it in place.
  // Or the reader left it in dy's own buffer (dy_narrow_at): the copy of the
  // gradient then goes into `narrow`, free by now.
  const bool dy_in_narrow = layer.narrow_holds_dy || layer.dy_narrow_at;
  const void* dy_narrow = layer.dy_narrow_at ? layer.dy_narrow_at : layer.narrow.data();
  PN_CHECK(!layer.dy_narrow_at || layer.dy_narrow_at == static_cast<const void*>(dy));  // the model's buffers
  const bool narrow = copy && (layer.narrow_holds_y || dy_in_narrow) && !s.dropout;
  PN_CHECK(!dy_in_narrow || (narrow && s.relu && !s.bn_name.empty()));  // the reader's choice
  layer.narrow_holds_y = false;
  layer.narrow_holds_dy = false;
  layer.dy_narrow_at = nullptr;
  const T* y = layer.y_written ? layer.y.data() : nullptr;  // the CUDA backend never reads it here
  if (bias_taken) *bias_taken = false;
  if (s.relu && !s.bn_name.empty()) {
    // In place (the kernels read dy[i] and z[i] before writing dx[i]), or,
    // with the copy, only the copy and its column sums (the bias gradient).
    // Dropout's mask comes after this pass: its layers sum in linear_backward.
    const T* z = layer.z.data();
    const bool sums = narrow || (bias_taken && !s.dropout && be.batchnorm_sums_dx());
    be.batchnorm_relu_backward(narrow ? nullptr : dy, store.grad(layer.bn_weight), store.grad(layer.bn_bias),
                               dy_in_narrow ? nullptr : dy, layer.z_narrow ? nullptr : z, y,
                               store.value(layer.bn_weight), store.value(layer.bn_bias), layer.mean.data(),
                               layer.invstd.data(), M, s.out, narrow ? layer.narrow.data() : nullptr,
                               sums ? store.grad(layer.bias) : nullptr, layer.z_narrow ? z : nullptr,
                               dy_in_narrow ? dy_narrow : nullptr);
    if (bias_taken) *bias_taken = sums;
    if (narrow) return layer.narrow.data();
  } else if (s.relu) {
    be.relu_backward(dy, dy, y, count);
  } else if (!s.bn_name.empty()) {
    be.batchnorm_backward(dy, store.grad(layer.bn_weight), store.grad(layer.bn_bias), dy,
                          layer.z.data(), store.value(layer.bn_weight), layer.mean.data(),
                          layer.invstd.data(), M, s.out);
  }
  if (s.dropout) be.multiply(dy, dy, layer.dropout_mask, count);
  return nullptr;
}
}  // namespace

template <typename T>
bool takes_narrow_gradient(const Dense<T>* producer, const void* reader_input_narrow) {
  return producer && producer->narrow_holds_y && reader_input_narrow == producer->narrow.data() &&
         producer->spec.relu && !producer->spec.bn_name.empty() && !producer->spec.dropout;
}

template <typename T>
void* dense_dx_narrow(const Dense<T>& layer, const Backend<T>& be) {
  // dx goes into the producer's copy of y, read by this layer's dW before.
  Dense<T>* producer = layer.input_layer;
  if (layer.spec.conv && be.narrow_gradients() && takes_narrow_gradient(producer, layer.input_narrow))
    return producer->narrow.data();
  return nullptr;
}

template <typename T>
void dense_backward(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dx, T* dy, bool accumulate_dx) {
  bool bias_taken = false;
  const void* dy_narrow = deactivate(layer, be, store, dy, true, &bias_taken);
  const DenseSpec& s = layer.spec;
  Dense<T>* producer = layer.input_layer;
  void* dx_narrow = dx && !accumulate_dx ? dense_dx_narrow(layer, be) : nullptr;
  {
    const PerCloudGemms<T> scope(be, !s.conv);
    // With the copy, the fp32 dy was never written (null, so nothing can read
    // it) and the bias gradient is already taken (bias_taken, also without it
    // where the backend sums dx in the BatchNorm pass).
    be.linear_backward(dx_narrow ? nullptr : dx, store.grad(layer.weight),
                       bias_taken ? nullptr : store.grad(layer.bias), dy_narrow ? nullptr : dy, layer.input,
                       store.value(layer.weight), layer.rows, s.in, s.out, dy_narrow, layer.input_narrow, dx_narrow,
                       accumulate_dx);
  }
  if (dx_narrow) {
    producer->narrow_holds_y = false;
    producer->narrow_holds_dy = true;
  }
  // The producer's buffer now waits for its own gradient's copy: a second
  // backward must not take it for x.
  layer.input_narrow = nullptr;
}

template <typename T>
void dense_deactivate(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dy) {
  deactivate(layer, be, store, dy, false);  // the caller's GEMMs read dy in fp32
}

template <typename T>
const void* dense_deactivate_narrow(Dense<T>& layer, Backend<T>& be, const ParamStore<T>& store, T* dy) {
  return deactivate(layer, be, store, dy, true);
}

#define PN_DENSE(T)                                                                         \
  template void dense_declare<T>(Dense<T>&, const DenseSpec&, ParamStore<T>&);              \
  template bool dense_keeps_z_narrow<T>(const Dense<T>&, const Backend<T>&, bool, size_t);     \
  template void dense_forward<T>(Dense<T>&, Backend<T>&, const ParamStore<T>&, const T*, int, \
                                 bool, double, const void*);                                \
  template void* dense_dx_narrow<T>(const Dense<T>&, const Backend<T>&);                                \
  template bool takes_narrow_gradient<T>(const Dense<T>*, const void*);                                   \
  template void dense_backward<T>(Dense<T>&, Backend<T>&, const ParamStore<T>&, T*, T*, bool);          \
  template void dense_activate<T>(Dense<T>&, Backend<T>&, const ParamStore<T>&, int, bool, double);     \
  template void dense_deactivate<T>(Dense<T>&, Backend<T>&, const ParamStore<T>&, T*);                  \
  template const void* dense_deactivate_narrow<T>(Dense<T>&, Backend<T>&, const ParamStore<T>&, T*);
PN_DENSE(float)
PN_DENSE(double)

}  // namespace pointnet
