// Builds ONNX ModelProto bytes (onnx/onnx.proto, IR version 7-10) with the
// protobuf wire-format writer: initializers, nodes with attributes, typed graph
// inputs/outputs with fixed or symbolic (dim_param) dimensions, metadata.
// Knows ONNX's field numbers and nothing about PointNet.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "export/protobuf_writer.h"

namespace pointnet::onnx {

// TensorProto.DataType values used here.
constexpr int kFloat = 1;
constexpr int kInt64 = 7;

struct Attribute {
  enum class Kind { Int, Float, Ints };
  std::string name;
  Kind kind = Kind::Int;
  int64_t i = 0;
  float f = 0.0f;
  std::vector<int64_t> ints;

  static Attribute integer(std::string name, int64_t v) { return {std::move(name), Kind::Int, v, 0.0f, {}}; }
  static Attribute real(std::string name, float v) { return {std::move(name), Kind::Float, 0, v, {}}; }
  static Attribute integers(std::string name, std::vector<int64_t> v) {
    return {std::move(name), Kind::Ints, 0, 0.0f, std::move(v)};
  }
};

// A dimension of a graph input/output: a fixed size, or a name (dim_param) for a symbolic one.
struct Dim {
  int64_t value = 0;
  std::string param;  // used when not empty
};

class GraphBuilder {
 public:
  // Initializers (constants). Return `name`, for chaining into node inputs.
  std::string add_float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<float>& values);
  std::string add_int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                               const std::vector<int64_t>& values);
  // One node; nodes must be added in an order where every input already exists.
  void add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                const std::vector<std::string>& outputs, const std::vector<Attribute>& attributes = {});
  // Graph inputs and outputs, float32 tensors.
  void add_input(const std::string& name, const std::vector<Dim>& dims);
  void add_output(const std::string& name, const std::vector<Dim>& dims);

  // GraphProto bytes.
  protobuf::Writer graph(const std::string& name) const;

 private:
  std::vector<protobuf::Writer> nodes_, initializers_, inputs_, outputs_;
  int node_count_ = 0;
};

struct ModelInfo {
  int opset = 17;
  std::string producer_name, producer_version, doc_string;
  std::vector<std::pair<std::string, std::string>> metadata;  // metadata_props, in order
};

// The lowest IR version that carries `opset` of the default domain (onnx/docs/Versioning.md).
int64_t ir_version_for_opset(int opset);

// Serialized ModelProto.
std::string model_bytes(const GraphBuilder& graph, const std::string& graph_name, const ModelInfo& info);

}  // namespace pointnet::onnx
