#include "train/adam.h"

namespace pointnet {

template <typename T>
Adam<T>::Adam(Backend<T>& backend, size_t count, AdamConfig config)
    : be_(backend), count_(count), config_(config), m_(&backend), v_(&backend) {
  be_.fill(m_.reserve(count), T(0), count);
  be_.fill(v_.reserve(count), T(0), count);
}

template <typename T>
void Adam<T>::step(T* values, const T* grads, double lr, double grad_scale) {
  ++steps_;
  be_.adam_step(values, grads, m_.data(), v_.data(), count_, lr, config_.beta1, config_.beta2,
                config_.eps, steps_, grad_scale, config_.weight_decay);
}

template class Adam<float>;
template class Adam<double>;

}  // namespace pointnet
