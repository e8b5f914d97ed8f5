// A restricted unpickler for the files torch.save writes (pickle protocol 2;
// the protocol 3-5 opcodes a state_dict can use are accepted too). It builds a
// small tree of values and never runs code: the only globals it accepts are
// collections.OrderedDict, torch's tensor rebuild functions and storage types;
// any other (os.system, builtins.eval, ...) is an Error naming it and the byte
// offset.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pointnet {

// One storage a tensor points into: torch.save's persistent id
// ('storage', torch.FloatStorage, key, location, numel[, view_metadata]).
struct PickledStorage {
  std::string type;         // "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage"
  std::string key;          // entry name under data/ (zip) or in the storage list (legacy)
  int64_t numel = 0;        // elements, as the file states
  int64_t view_offset = 0;  // legacy view_metadata: elements into the root storage
};

// A tensor as torch._utils._rebuild_tensor_v2 describes it: a strided view.
struct PickledTensor {
  PickledStorage storage;
  int64_t offset = 0;              // elements into the storage
  std::vector<int64_t> sizes, strides;
};

struct PickleValue;
using PickleRef = std::shared_ptr<PickleValue>;

struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;                                // Int; one wider than 64 bits keeps its
                                                      // little-endian bytes in `text` instead
  double real = 0.0;
  std::string text;                                   // String, Bytes; Global: "module.name"
  std::vector<PickleRef> items;                       // Tuple, List
  std::vector<std::pair<PickleRef, PickleRef>> dict;  // Dict (insertion order)
  PickledStorage storage;                             // Storage
  PickledTensor tensor;                               // Tensor

  PickleValue() = default;
  PickleValue(const PickleValue&) = delete;
  PickleValue& operator=(const PickleValue&) = delete;
  // Frees children iteratively: a hostile file's deeply nested lists must not
  // overflow the stack through recursive destructors.
  ~PickleValue();

  const PickleValue* get(const std::string& key) const;  // Dict with a string key; null when absent
};

const char* kind_name(PickleValue::Kind kind);

struct Unpickled {
  PickleRef value;  // owns every value of the pickle: children are valid while it lives
  size_t end = 0;  // offset just past STOP (legacy files hold several pickles back to back)
};

// Unpickles the one pickle starting at `start` in `bytes`. `where` names the
// file (and entry) in messages; offsets in them are relative to `bytes`.
Unpickled unpickle(std::string_view bytes, const std::string& where, size_t start = 0);

}  // namespace pointnet
