#include "export/onnx_proto.h"

#include "core/errors.h"

namespace pointnet::onnx {

namespace {
// Field numbers from onnx/onnx.proto.
namespace model_field { constexpr int ir_version = 1, producer_name = 2, producer_version = 3, doc_string = 6,
                                      graph = 7, opset_import = 8, metadata_props = 14; }
namespace opset_field { constexpr int domain = 1, version = 2; }
namespace entry_field { constexpr int key = 1, value = 2; }
namespace graph_field { constexpr int node = 1, name = 2, initializer = 5, input = 11, output = 12; }
namespace node_field { constexpr int input = 1, output = 2, name = 3, op_type = 4, attribute = 5; }
namespace attr_field { constexpr int name = 1, f = 2, i = 3, ints = 8, type = 20; }
namespace attr_type { constexpr int FLOAT = 1, INT = 2, INTS = 7; }
namespace tensor_field { constexpr int dims = 1, data_type = 2, float_data = 4, int64_data = 7, name = 8; }
namespace value_info_field { constexpr int name = 1, type = 2; }
namespace type_field { constexpr int tensor_type = 1; }
namespace tensor_type_field { constexpr int elem_type = 1, shape = 2; }
namespace shape_field { constexpr int dim = 1; }
namespace dim_field { constexpr int dim_value = 1, dim_param = 2; }

protobuf::Writer tensor_header(const std::string& name, const std::vector<int64_t>& dims, int data_type,
                               size_t count) {
  int64_t expected = 1;
  for (int64_t d : dims) expected *= d;
  PN_CHECK(expected == static_cast<int64_t>(count));
  protobuf::Writer t;
  // `repeated int64 dims` is not declared packed: one field per dimension.
  for (int64_t d : dims) t.varint_field(tensor_field::dims, d);
  t.varint_field(tensor_field::data_type, data_type);
  t.bytes_field(tensor_field::name, name);
  return t;
}

protobuf::Writer value_info(const std::string& name, const std::vector<Dim>& dims) {
  protobuf::Writer shape;
  for (const Dim& d : dims) {
    protobuf::Writer dim;
    if (!d.param.empty()) dim.bytes_field(dim_field::dim_param, d.param);
    else dim.varint_field(dim_field::dim_value, d.value);
    shape.message_field(shape_field::dim, dim);
  }
  protobuf::Writer tensor_type;
  tensor_type.varint_field(tensor_type_field::elem_type, kFloat);
  tensor_type.message_field(tensor_type_field::shape, shape);
  protobuf::Writer type;
  type.message_field(type_field::tensor_type, tensor_type);
  protobuf::Writer info;
  info.bytes_field(value_info_field::name, name);
  info.message_field(value_info_field::type, type);
  return info;
}
}  // namespace

std::string GraphBuilder::add_float_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                           const std::vector<float>& values) {
  protobuf::Writer t = tensor_header(name, dims, kFloat, values.size());
  t.packed_floats(tensor_field::float_data, values.data(), values.size());
  initializers_.push_back(std::move(t));
  return name;
}

std::string GraphBuilder::add_int64_tensor(const std::string& name, const std::vector<int64_t>& dims,
                                           const std::vector<int64_t>& values) {
  protobuf::Writer t = tensor_header(name, dims, kInt64, values.size());
  t.packed_varints(tensor_field::int64_data, values);
  initializers_.push_back(std::move(t));
  return name;
}

void GraphBuilder::add_node(const std::string& op_type, const std::vector<std::string>& inputs,
                            const std::vector<std::string>& outputs, const std::vector<Attribute>& attributes) {
  protobuf::Writer node;
  for (const std::string& in : inputs) node.bytes_field(node_field::input, in);
  for (const std::string& out : outputs) node.bytes_field(node_field::output, out);
  node.bytes_field(node_field::name, op_type + "_" + std::to_string(node_count_++));
  node.bytes_field(node_field::op_type, op_type);
  for (const Attribute& a : attributes) {
    protobuf::Writer attr;
    attr.bytes_field(attr_field::name, a.name);
    switch (a.kind) {
      case Attribute::Kind::Int:
        attr.varint_field(attr_field::i, a.i);
        attr.varint_field(attr_field::type, attr_type::INT);
        break;
      case Attribute::Kind::Float:
        attr.float_field(attr_field::f, a.f);
        attr.varint_field(attr_field::type, attr_type::FLOAT);
        break;
      case Attribute::Kind::Ints:
        for (int64_t v : a.ints) attr.varint_field(attr_field::ints, v);  // not declared packed
        attr.varint_field(attr_field::type, attr_type::INTS);
        break;
    }
    node.message_field(node_field::attribute, attr);
  }
  nodes_.push_back(std::move(node));
}

void GraphBuilder::add_input(const std::string& name, const std::vector<Dim>& dims) {
  inputs_.push_back(value_info(name, dims));
}

void GraphBuilder::add_output(const std::string& name, const std::vector<Dim>& dims) {
  outputs_.push_back(value_info(name, dims));
}

protobuf::Writer GraphBuilder::graph(const std::string& name) const {
  protobuf::Writer g;
  for (const auto& n : nodes_) g.message_field(graph_field::node, n);
  g.bytes_field(graph_field::name, name);
  for (const auto& t : initializers_) g.message_field(graph_field::initializer, t);
  for (const auto& i : inputs_) g.message_field(graph_field::input, i);
  for (const auto& o : outputs_) g.message_field(graph_field::output, o);
  return g;
}

int64_t ir_version_for_opset(int opset) {
  // ONNX 1.8-1.9: IR 7, opsets 13-14; 1.10-1.13: IR 8, 15-18; 1.14-1.15: IR 9, 19-20; 1.16: IR 10, 21.
  if (opset < 13 || opset > 21) fail("ONNX opset ", opset, " is not supported (expected 13 to 21)");
  if (opset <= 14) return 7;
  if (opset <= 18) return 8;
  if (opset <= 20) return 9;
  return 10;
}

std::string model_bytes(const GraphBuilder& graph, const std::string& graph_name, const ModelInfo& info) {
  protobuf::Writer model;
  model.varint_field(model_field::ir_version, ir_version_for_opset(info.opset));
  model.bytes_field(model_field::producer_name, info.producer_name);
  model.bytes_field(model_field::producer_version, info.producer_version);
  if (!info.doc_string.empty()) model.bytes_field(model_field::doc_string, info.doc_string);
  model.message_field(model_field::graph, graph.graph(graph_name));
  protobuf::Writer opset;
  opset.bytes_field(opset_field::domain, "");  // the default ai.onnx domain
  opset.varint_field(opset_field::version, info.opset);
  model.message_field(model_field::opset_import, opset);
  for (const auto& [key, value] : info.metadata) {
    protobuf::Writer entry;
    entry.bytes_field(entry_field::key, key);
    entry.bytes_field(entry_field::value, value);
    model.message_field(model_field::metadata_props, entry);
  }
  return model.bytes();
}

}  // namespace pointnet::onnx
