// A batch's inputs in the backend's memory. Data are assembled on the host;
// this moves them to wherever the model runs (a copy on the CPU backend, a
// host-to-device transfer on CUDA). Grow-only: no allocation in steady state.
#pragma once
#include <cstdint>
#include <vector>

#include "model/buffer.h"

namespace pointnet {

template <typename T>
class DeviceBatch {
 public:
  explicit DeviceBatch(Backend<T>& backend) : be_(backend) {
    points_.bind(&backend);
    labels_.bind(&backend);
  }
  // (count) floats, e.g. (B, N, 3) points.
  const T* points(const T* host, size_t count) {
    T* p = points_.reserve(count);
    be_.upload(p, host, count);
    return p;
  }
  // (count) labels: (B) classes or (B*N) parts.
  const int32_t* labels(const int32_t* host, size_t count) {
    int32_t* p = labels_.reserve(count);
    be_.upload_index(p, host, count);
    return p;
  }

 private:
  Backend<T>& be_;
  Buffer<T> points_;
  IndexBuffer<T> labels_;
};

// Copies `count` values from backend memory to a host vector.
template <typename T>
std::vector<T> to_host(Backend<T>& backend, const T* data, size_t count) {
  std::vector<T> out(count);
  backend.download(out.data(), data, count);
  return out;
}

}  // namespace pointnet
