// safetensors (huggingface/safetensors): an 8-byte little-endian header length,
// a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes. Used for checkpoints and goldens.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace pointnet {

struct TensorData {
  std::string dtype;               // "F32", "F64", "I64", "I32" (others are refused on read)
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;      // shape product * dtype size bytes

  int64_t numel() const;
  std::vector<float> as_f32() const;      // converts F32/F64; throws otherwise
  std::vector<double> as_f64() const;     // converts F32/F64
  std::vector<int64_t> as_i64() const;    // converts I64/I32
};

TensorData make_f32(const std::vector<int64_t>& shape, const float* values);
TensorData make_f64(const std::vector<int64_t>& shape, const double* values);
TensorData make_i64(const std::vector<int64_t>& shape, const int64_t* values);

struct SafeTensors {
  std::map<std::string, std::string> metadata;   // "__metadata__"
  std::map<std::string, TensorData> tensors;

  bool has(const std::string& name) const { return tensors.count(name) != 0; }
  // Throws pointnet::Error "<path>: missing tensor '<name>'" when absent.
  const TensorData& get(const std::string& name) const;
  std::string source;  // the path it was read from, for messages
};

// Writes to "<path>.tmp-<pid>", fsyncs, then renames over `path`: a reader
// never sees a half-written file, and a crash leaves the old file intact.
void write_safetensors(const std::string& path, const SafeTensors& file);

// Validates everything (header length within file size, JSON well formed,
// known dtypes, offsets in range, contiguous and non-overlapping, shape product
// matches the byte count) and throws pointnet::Error naming the file and the
// byte offset of the problem. Never allocates from an unchecked size.
SafeTensors read_safetensors(const std::string& path);

}  // namespace pointnet
