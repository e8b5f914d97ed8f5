// Where a shape came from, for messages and `pointnet info`: a file path, or
// an index into a name table the shapes share (a pack's path table), made into
// text only when asked (building ~10k strings was ~6% of a pack load).
#pragma once
#include <cstddef>
#include <memory>
#include <ostream>
#include <string>
#include <utility>

namespace pointnet {

// Names by index (data/pack_read.cpp: a pack's path table).
class ShapeNames {
 public:
  virtual ~ShapeNames() = default;
  virtual std::string name(size_t index) const = 0;
};

class ShapePath {
 public:
  ShapePath() = default;
  ShapePath(std::string path) : text_(std::move(path)) {}  // NOLINT: implicit, as a string
  ShapePath(const char* path) : text_(path) {}             // NOLINT
  ShapePath(std::shared_ptr<const ShapeNames> names, size_t index) : names_(std::move(names)), index_(index) {}

  std::string str() const { return names_ ? names_->name(index_) : text_; }
  operator std::string() const { return str(); }  // NOLINT: where a path string is expected
  size_t find(const std::string& text, size_t pos = 0) const { return str().find(text, pos); }
  friend std::ostream& operator<<(std::ostream& os, const ShapePath& p) { return os << p.str(); }

 private:
  std::string text_;
  std::shared_ptr<const ShapeNames> names_;  // set: the name is names_->name(index_)
  size_t index_ = 0;
};

}  // namespace pointnet
