// A minimal writer of the protobuf wire format (developers.google.com/protocol-buffers/docs/encoding),
// enough to emit ONNX models without libprotobuf: varints, 32-bit floats, length-delimited
// fields (strings, bytes, nested messages) and packed repeated scalars. Generic: it knows
// field numbers only as the caller passes them.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pointnet::protobuf {

enum class WireType : uint8_t { Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5 };

// Appends fields to a byte string. Nested messages are built in their own
// Writer and appended with message(): the length prefix needs their size first.
class Writer {
 public:
  // int32/int64/uint64/enum/bool fields (negative int64 take 10 bytes, as protobuf's int64).
  void varint_field(int field, int64_t value);
  // `float` fields: fixed 32-bit little-endian IEEE 754.
  void float_field(int field, float value);
  // `string` and `bytes` fields.
  void bytes_field(int field, std::string_view bytes);
  // Embedded message fields.
  void message_field(int field, const Writer& message);
  // `repeated float ... [packed = true]`: one length-delimited field holding the values.
  void packed_floats(int field, const float* values, size_t count);
  // `repeated int64 ... [packed = true]`.
  void packed_varints(int field, const std::vector<int64_t>& values);

  const std::string& bytes() const { return out_; }
  size_t size() const { return out_.size(); }

  // The raw encodings, for the above and for tests.
  static void append_varint(std::string& out, uint64_t value);
  static void append_fixed32(std::string& out, uint32_t bits);

 private:
  void tag(int field, WireType type);
  std::string out_;
};

}  // namespace pointnet::protobuf
