// A float array that either owns its values (a std::vector) or views values
// that something else owns: an f32 dataset pack's points, read straight from
// the memory mapping, so loading a pack copies nothing (data/pack.h). Reading
// is the same either way. A view keeps its owner alive (a shared_ptr: a Shape
// copied out of its Dataset stays valid), and is never written through: every
// change first copies it into an owned vector (copy on write).
#pragma once
#include <algorithm>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <utility>
#include <vector>

namespace pointnet {

class Floats {
 public:
  using value_type = float;
  using size_type = size_t;
  using const_iterator = const float*;
  using iterator = const float*;  // read-only: edits go through the members below

  Floats() = default;
  Floats(std::vector<float> values) : own_(std::move(values)) { sync(); }  // NOLINT: implicit, as a vector
  Floats(std::initializer_list<float> values) : own_(values) { sync(); }
  Floats(const Floats& o) : own_(o.own_), owner_(o.owner_) { is_view() ? view_of(o) : sync(); }
  Floats(Floats&& o) noexcept : own_(std::move(o.own_)), owner_(std::move(o.owner_)) {
    is_view() ? view_of(o) : sync();  // a moved vector keeps its buffer
    o.reset();
  }
  Floats& operator=(Floats o) noexcept {
    swap(o);
    return *this;
  }

  // `size` floats at `data`, valid while `owner` lives (without an owner: a copy).
  static Floats view(const float* data, size_t size, std::shared_ptr<const void> owner) {
    if (!owner) return Floats(std::vector<float>(data, data + size));
    Floats f;
    f.owner_ = std::move(owner);
    f.data_ = data;
    f.size_ = size;
    return f;
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const float* data() const { return data_; }
  const float& operator[](size_t i) const { return data_[i]; }
  const float* begin() const { return data_; }
  const float* end() const { return data_ + size_; }
  bool is_view() const { return owner_ != nullptr; }

  // The values as an owned vector, copied first if this is a view; call sync()
  // after changing its size.
  std::vector<float>& owned() {
    if (is_view()) {
      own_.assign(begin(), end());
      owner_.reset();
    }
    return own_;
  }
  void sync() {
    data_ = own_.data();
    size_ = own_.size();
  }

  // The vector edits the readers and tests use.
  void clear() { edit([](std::vector<float>& v) { v.clear(); }); }
  void resize(size_t n, float value = 0) { edit([&](std::vector<float>& v) { v.resize(n, value); }); }
  void push_back(float value) { edit([&](std::vector<float>& v) { v.push_back(value); }); }
  template <typename It>
  void assign(It first, It last) {
    std::vector<float> v(first, last);  // `first` may point into this array
    *this = Floats(std::move(v));
  }
  template <typename It>
  void insert(const float* at, It first, It last) {
    const std::vector<float> v(first, last);  // read before this array may move
    const size_t index = static_cast<size_t>(at - data_);
    edit([&](std::vector<float>& own) { own.insert(own.begin() + static_cast<std::ptrdiff_t>(index), v.begin(), v.end()); });
  }
  void insert(const float* at, std::initializer_list<float> values) { insert(at, values.begin(), values.end()); }

  void swap(Floats& o) noexcept {  // swapped vectors keep their buffers: data_ stays right
    std::swap(own_, o.own_);
    std::swap(owner_, o.owner_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }

  friend bool operator==(const Floats& a, const Floats& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end()); }
  friend bool operator!=(const Floats& a, const Floats& b) { return !(a == b); }

 private:
  template <typename Fn>
  void edit(Fn fn) {
    fn(owned());
    sync();
  }
  void view_of(const Floats& o) {
    data_ = o.data_;
    size_ = o.size_;
  }
  void reset() {
    own_.clear();
    owner_.reset();
    sync();
  }

  std::vector<float> own_;              // the values, unless a view
  std::shared_ptr<const void> owner_;   // a view's memory owner (null when owning)
  const float* data_ = nullptr;         // own_.data() or the viewed memory
  size_t size_ = 0;
};

}  // namespace pointnet
