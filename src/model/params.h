// All parameters of a model, named as pointnet.pytorch's state_dict.
// Trainable values live in one flat array (and their gradients in another of
// the same layout) so the optimizer is one fused pass over everything;
// BatchNorm running statistics live in a second flat array.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/buffer.h"

namespace pointnet {

struct ParamInfo {
  std::string name;             // e.g. "feat.stn.conv1.weight"
  std::vector<int64_t> shape;   // PyTorch's shape, e.g. (64, 3, 1) for a Conv1d weight
  size_t offset = 0;            // into values/grads (trainable) or buffers (running stats)
  size_t count = 0;
  bool trainable = true;
  int64_t fan_in = 1;           // input features, for initialisation
};

template <typename T>
class ParamStore {
 public:
  // Declares a tensor; returns its index. Call before allocate().
  int add(const std::string& name, std::vector<int64_t> shape, bool trainable, int64_t fan_in = 1);
  // Allocates memory for everything declared.
  void allocate(Backend<T>* backend);

  const std::vector<ParamInfo>& infos() const { return infos_; }
  int find(const std::string& name) const;  // -1 when absent
  T* value(int index) const;                // trainable: into values(); else into buffers()
  T* grad(int index) const;                 // trainable only
  T* values() const { return values_.data(); }
  T* grads() const { return grads_.data(); }
  T* buffers() const { return buffers_.data(); }
  size_t trainable_count() const { return trainable_count_; }
  size_t buffer_count() const { return buffer_count_; }

 private:
  std::vector<ParamInfo> infos_;
  size_t trainable_count_ = 0;
  size_t buffer_count_ = 0;
  Buffer<T> values_, grads_, buffers_;
};

}  // namespace pointnet
