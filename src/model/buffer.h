// A growable array in a backend's memory. Grows, never shrinks: after the
// first step of a given shape there are no allocations in steady state.
// Buffer<T> holds the model's scalars (T); IndexBuffer<T> holds int32 indices
// (argmax, targets) in the same backend.
#pragma once
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "model/backend.h"

namespace pointnet {

template <typename T, typename Element = T>
class BasicBuffer {
  static_assert(std::is_same_v<Element, T> || std::is_same_v<Element, int32_t>,
                "a backend stores its scalar type or int32 indices");

 public:
  BasicBuffer() = default;
  explicit BasicBuffer(Backend<T>* backend) : backend_(backend) {}
  BasicBuffer(const BasicBuffer&) = delete;
  BasicBuffer& operator=(const BasicBuffer&) = delete;
  BasicBuffer(BasicBuffer&& other) noexcept { *this = std::move(other); }
  BasicBuffer& operator=(BasicBuffer&& other) noexcept {
    std::swap(backend_, other.backend_);
    std::swap(data_, other.data_);
    std::swap(capacity_, other.capacity_);
    return *this;
  }
  ~BasicBuffer() { free(); }

  void bind(Backend<T>* backend) { backend_ = backend; }
  // Ensures room for `count` elements; contents are not preserved when it grows.
  Element* reserve(size_t count) {
    if (count > capacity_) {
      free();
      if constexpr (std::is_same_v<Element, T>) data_ = backend_->allocate(count);
      else data_ = backend_->allocate_index(count);
      capacity_ = count;
    }
    return data_;
  }
  Element* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  void free() {
    if (!data_) return;
    if constexpr (std::is_same_v<Element, T>) backend_->release(data_);
    else backend_->release_index(data_);
    data_ = nullptr;
    capacity_ = 0;
  }

  Backend<T>* backend_ = nullptr;
  Element* data_ = nullptr;
  size_t capacity_ = 0;
};

template <typename T>
using Buffer = BasicBuffer<T, T>;
template <typename T>
using IndexBuffer = BasicBuffer<T, int32_t>;

}  // namespace pointnet
