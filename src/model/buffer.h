// A growable array in a backend's memory. Grows, never shrinks: after the
// first step of a given shape there are no allocations in steady state.
#pragma once
#include <cstddef>
#include <cstdint>
#include <utility>

#include "model/backend.h"

namespace pointnet {

template <typename T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(Backend<T>* backend) : backend_(backend) {}
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& other) noexcept { *this = std::move(other); }
  Buffer& operator=(Buffer&& other) noexcept {
    std::swap(backend_, other.backend_);
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  ~Buffer() {
    if (data_) backend_->release(data_);
  }

  void bind(Backend<T>* backend) { backend_ = backend; }
  // Ensures room for `count` elements; contents are not preserved when it grows.
  T* reserve(size_t count) {
    if (count > capacity_) {
      if (data_) backend_->release(data_);
      data_ = backend_->allocate(count);
      capacity_ = count;
    }
    return data_;
  }
  T* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  Backend<T>* backend_ = nullptr;
  T* data_ = nullptr;
  size_t capacity_ = 0;
};

// The same for int32 indices (argmax, targets).
template <typename T>
class IndexBuffer {
 public:
  IndexBuffer() = default;
  IndexBuffer(const IndexBuffer&) = delete;
  IndexBuffer& operator=(const IndexBuffer&) = delete;
  ~IndexBuffer() {
    if (data_) backend_->release_index(data_);
  }
  void bind(Backend<T>* backend) { backend_ = backend; }
  int32_t* reserve(size_t count) {
    if (count > capacity_) {
      if (data_) backend_->release_index(data_);
      data_ = backend_->allocate_index(count);
      capacity_ = count;
    }
    return data_;
  }
  int32_t* data() const { return data_; }

 private:
  Backend<T>* backend_ = nullptr;
  int32_t* data_ = nullptr;
  size_t capacity_ = 0;
};

}  // namespace pointnet
