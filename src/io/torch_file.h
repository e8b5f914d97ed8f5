// Files written by torch.save, without Python: the zip format (PyTorch >= 1.6:
// <name>/data.pkl plus one stored entry per storage under <name>/data/) and the
// legacy format (before 1.6: magic number, protocol, sys_info, the object
// pickle, the storage key list, then each storage's bytes after an int64
// element count). The object is unpickled with the restricted unpickler
// (io/pickle.h); tensors are copied out of their storages on request.
#pragma once
#include <map>
#include <string>
#include <string_view>

#include "core/safetensors.h"
#include "io/pickle.h"

namespace pointnet {

struct TorchFile {
  struct Span {
    size_t offset = 0, size = 0;  // into `bytes`
  };
  std::string path;
  std::string bytes;                  // the whole file
  PickleRef root;                     // the saved object
  bool legacy = false;
  std::map<std::string, Span> storages;  // key -> its raw little-endian bytes
};

// "PK\x03\x04" (zip) or a pickle that starts with protocol 2 and the legacy magic number.
bool looks_like_torch_file(std::string_view bytes);

// Throws pointnet::Error naming the file and byte offset for anything malformed.
TorchFile read_torch_file(const std::string& path);
TorchFile parse_torch_file(std::string bytes, const std::string& path);

// The tensor's elements in C order, honouring storage offset, sizes and
// strides (views may overlap or share a storage). Floating types become F32
// (double, half and bfloat16 converted), integer types I64. `name` is for messages.
// What materialize() returns for a tensor of this storage: "F32" or "I64".
std::string materialized_dtype(const PickledStorage& storage);
TensorData materialize(const TorchFile& file, const PickledTensor& tensor, const std::string& name);

}  // namespace pointnet
