#include "model/params.h"

#include "core/errors.h"

namespace pointnet {

template <typename T>
int ParamStore<T>::add(const std::string& name, std::vector<int64_t> shape, bool trainable,
                       int64_t fan_in) {
  PN_CHECK(find(name) < 0);
  ParamInfo info;
  info.name = name;
  info.count = 1;
  for (int64_t d : shape) info.count *= static_cast<size_t>(d);
  info.shape = std::move(shape);
  info.trainable = trainable;
  info.fan_in = fan_in;
  size_t& cursor = trainable ? trainable_count_ : buffer_count_;
  // 16-element alignment keeps each tensor on its own cache line.
  cursor = (cursor + 15) / 16 * 16;
  info.offset = cursor;
  cursor += info.count;
  infos_.push_back(std::move(info));
  return static_cast<int>(infos_.size()) - 1;
}

template <typename T>
void ParamStore<T>::allocate(Backend<T>* backend) {
  values_.bind(backend);
  grads_.bind(backend);
  buffers_.bind(backend);
  values_.reserve(trainable_count_);
  grads_.reserve(trainable_count_);
  buffers_.reserve(buffer_count_ > 0 ? buffer_count_ : 1);
  // Padding between tensors must hold finite numbers: the optimizer runs over it.
  backend->fill(values_.data(), T(0), trainable_count_);
  backend->fill(grads_.data(), T(0), trainable_count_);
  backend->fill(buffers_.data(), T(0), buffer_count_);
}

template <typename T>
int ParamStore<T>::find(const std::string& name) const {
  for (size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].name == name) return static_cast<int>(i);
  return -1;
}

template <typename T>
T* ParamStore<T>::value(int index) const {
  const ParamInfo& info = infos_.at(index);
  return (info.trainable ? values_.data() : buffers_.data()) + info.offset;
}

template <typename T>
T* ParamStore<T>::grad(int index) const {
  const ParamInfo& info = infos_.at(index);
  PN_CHECK(info.trainable);
  return grads_.data() + info.offset;
}

template class ParamStore<float>;
template class ParamStore<double>;

}  // namespace pointnet
