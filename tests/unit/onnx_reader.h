// Test-only: a small protobuf wire-format reader and an ONNX ModelProto decoder
// (the subset `pointnet export-onnx` writes), so the tests can check the
// exported bytes without libprotobuf or onnxruntime. Field numbers are
// onnx/onnx.proto's, written here a second time on purpose.
#pragma once
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pointnet::testing {

struct WireField {
  int number = 0;
  int wire = 0;           // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
  uint64_t varint = 0;    // wire 0; fixed64 bits for wire 1; fixed32 bits for wire 5
  std::string_view bytes; // wire 2
};

inline uint64_t read_varint(std::string_view data, size_t& pos) {
  uint64_t value = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (pos >= data.size()) throw std::runtime_error("truncated varint at byte " + std::to_string(pos));
    const uint8_t b = static_cast<uint8_t>(data[pos++]);
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return value;
  }
  throw std::runtime_error("varint longer than 10 bytes at byte " + std::to_string(pos));
}

inline std::vector<WireField> parse_message(std::string_view data) {
  std::vector<WireField> fields;
  size_t pos = 0;
  while (pos < data.size()) {
    const uint64_t key = read_varint(data, pos);
    WireField f;
    f.number = static_cast<int>(key >> 3);
    f.wire = static_cast<int>(key & 7);
    if (f.number == 0) throw std::runtime_error("field number 0 at byte " + std::to_string(pos));
    if (f.wire == 0) {
      f.varint = read_varint(data, pos);
    } else if (f.wire == 1 || f.wire == 5) {
      const size_t n = f.wire == 1 ? 8 : 4;
      if (pos + n > data.size()) throw std::runtime_error("truncated fixed field");
      for (size_t i = 0; i < n; ++i) f.varint |= static_cast<uint64_t>(static_cast<uint8_t>(data[pos + i])) << (8 * i);
      pos += n;
    } else if (f.wire == 2) {
      const uint64_t len = read_varint(data, pos);
      if (len > data.size() - pos) throw std::runtime_error("length past the end at byte " + std::to_string(pos));
      f.bytes = data.substr(pos, len);
      pos += len;
    } else {
      throw std::runtime_error("unsupported wire type " + std::to_string(f.wire));
    }
    fields.push_back(f);
  }
  return fields;
}

inline float bits_to_float(uint32_t bits) {
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Repeated scalars, packed (one length-delimited field) or not.
inline void append_varints(const WireField& f, std::vector<int64_t>& out) {
  if (f.wire == 0) { out.push_back(static_cast<int64_t>(f.varint)); return; }
  size_t pos = 0;
  while (pos < f.bytes.size()) out.push_back(static_cast<int64_t>(read_varint(f.bytes, pos)));
}
inline void append_floats(const WireField& f, std::vector<float>& out) {
  if (f.wire == 5) { out.push_back(bits_to_float(static_cast<uint32_t>(f.varint))); return; }
  if (f.bytes.size() % 4) throw std::runtime_error("packed floats not a multiple of 4 bytes");
  for (size_t i = 0; i < f.bytes.size(); i += 4) {
    uint32_t bits = 0;
    for (int b = 0; b < 4; ++b) bits |= static_cast<uint32_t>(static_cast<uint8_t>(f.bytes[i + b])) << (8 * b);
    out.push_back(bits_to_float(bits));
  }
}

struct OnnxAttribute {
  int type = 0;
  int64_t i = 0;
  float f = 0;
  std::vector<int64_t> ints;
};
struct OnnxNode {
  std::string op_type, name;
  std::vector<std::string> inputs, outputs;
  std::map<std::string, OnnxAttribute> attributes;
};
struct OnnxTensor {
  std::string name;
  int data_type = 0;
  std::vector<int64_t> dims;
  std::vector<float> floats;
  std::vector<int64_t> ints;
};
struct OnnxDim {
  int64_t value = -1;   // -1 when symbolic
  std::string param;
};
struct OnnxValueInfo {
  std::string name;
  int elem_type = 0;
  std::vector<OnnxDim> dims;
};
struct OnnxModel {
  int64_t ir_version = 0;
  std::string producer_name, producer_version;
  std::map<std::string, int64_t> opsets;  // domain -> version
  std::map<std::string, std::string> metadata;
  std::vector<OnnxNode> nodes;
  std::vector<OnnxTensor> initializers;
  std::vector<OnnxValueInfo> inputs, outputs;
};

inline OnnxValueInfo decode_value_info(std::string_view data) {
  OnnxValueInfo v;
  for (const WireField& f : parse_message(data)) {
    if (f.number == 1) v.name = std::string(f.bytes);
    if (f.number != 2) continue;
    for (const WireField& t : parse_message(f.bytes)) {     // TypeProto
      if (t.number != 1) continue;                            // tensor_type
      for (const WireField& tt : parse_message(t.bytes)) {
        if (tt.number == 1) v.elem_type = static_cast<int>(tt.varint);
        if (tt.number != 2) continue;                         // TensorShapeProto
        for (const WireField& d : parse_message(tt.bytes)) {
          OnnxDim dim;
          for (const WireField& dv : parse_message(d.bytes)) {
            if (dv.number == 1) dim.value = static_cast<int64_t>(dv.varint);
            if (dv.number == 2) dim.param = std::string(dv.bytes);
          }
          v.dims.push_back(dim);
        }
      }
    }
  }
  return v;
}

inline OnnxTensor decode_tensor(std::string_view data) {
  OnnxTensor t;
  for (const WireField& f : parse_message(data)) {
    if (f.number == 1) append_varints(f, t.dims);
    if (f.number == 2) t.data_type = static_cast<int>(f.varint);
    if (f.number == 4) append_floats(f, t.floats);
    if (f.number == 7) append_varints(f, t.ints);
    if (f.number == 8) t.name = std::string(f.bytes);
    if (f.number == 9) throw std::runtime_error("raw_data is not expected from our writer");
  }
  return t;
}

inline OnnxNode decode_node(std::string_view data) {
  OnnxNode n;
  for (const WireField& f : parse_message(data)) {
    if (f.number == 1) n.inputs.emplace_back(f.bytes);
    if (f.number == 2) n.outputs.emplace_back(f.bytes);
    if (f.number == 3) n.name = std::string(f.bytes);
    if (f.number == 4) n.op_type = std::string(f.bytes);
    if (f.number != 5) continue;
    std::string name;
    OnnxAttribute a;
    for (const WireField& af : parse_message(f.bytes)) {
      if (af.number == 1) name = std::string(af.bytes);
      if (af.number == 2) a.f = bits_to_float(static_cast<uint32_t>(af.varint));
      if (af.number == 3) a.i = static_cast<int64_t>(af.varint);
      if (af.number == 8) append_varints(af, a.ints);
      if (af.number == 20) a.type = static_cast<int>(af.varint);
    }
    n.attributes[name] = a;
  }
  return n;
}

inline OnnxModel decode_model(std::string_view data) {
  OnnxModel m;
  for (const WireField& f : parse_message(data)) {
    if (f.number == 1) m.ir_version = static_cast<int64_t>(f.varint);
    if (f.number == 2) m.producer_name = std::string(f.bytes);
    if (f.number == 3) m.producer_version = std::string(f.bytes);
    if (f.number == 8) {
      std::string domain;
      int64_t version = 0;
      for (const WireField& o : parse_message(f.bytes)) {
        if (o.number == 1) domain = std::string(o.bytes);
        if (o.number == 2) version = static_cast<int64_t>(o.varint);
      }
      m.opsets[domain] = version;
    }
    if (f.number == 14) {
      std::string key, value;
      for (const WireField& e : parse_message(f.bytes)) {
        if (e.number == 1) key = std::string(e.bytes);
        if (e.number == 2) value = std::string(e.bytes);
      }
      m.metadata[key] = value;
    }
    if (f.number != 7) continue;
    for (const WireField& g : parse_message(f.bytes)) {
      if (g.number == 1) m.nodes.push_back(decode_node(g.bytes));
      if (g.number == 5) m.initializers.push_back(decode_tensor(g.bytes));
      if (g.number == 11) m.inputs.push_back(decode_value_info(g.bytes));
      if (g.number == 12) m.outputs.push_back(decode_value_info(g.bytes));
    }
  }
  return m;
}

}  // namespace pointnet::testing
