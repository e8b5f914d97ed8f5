#include "export/protobuf_writer.h"

#include <cstring>

#include "core/errors.h"

namespace pointnet::protobuf {

void Writer::append_varint(std::string& out, uint64_t value) {
  // 7 bits per byte, least significant group first; the high bit says "more follows".
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void Writer::append_fixed32(std::string& out, uint32_t bits) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((bits >> (8 * i)) & 0xff));  // little-endian
}

void Writer::tag(int field, WireType type) {
  // Field numbers are 1 .. 2^29 - 1 (protobuf's limit).
  PN_CHECK(field >= 1 && field < (1 << 29));
  append_varint(out_, (static_cast<uint64_t>(field) << 3) | static_cast<uint64_t>(type));
}

void Writer::varint_field(int field, int64_t value) {
  tag(field, WireType::Varint);
  append_varint(out_, static_cast<uint64_t>(value));  // two's complement, as protobuf's int64
}

namespace {
uint32_t float_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return bits;
}
}  // namespace

void Writer::float_field(int field, float value) {
  tag(field, WireType::Fixed32);
  append_fixed32(out_, float_bits(value));
}

void Writer::bytes_field(int field, std::string_view bytes) {
  tag(field, WireType::LengthDelimited);
  append_varint(out_, bytes.size());
  out_.append(bytes.data(), bytes.size());
}

void Writer::message_field(int field, const Writer& message) { bytes_field(field, message.bytes()); }

void Writer::packed_floats(int field, const float* values, size_t count) {
  tag(field, WireType::LengthDelimited);
  append_varint(out_, count * 4);
  out_.reserve(out_.size() + count * 4);
  for (size_t i = 0; i < count; ++i) append_fixed32(out_, float_bits(values[i]));
}

void Writer::packed_varints(int field, const std::vector<int64_t>& values) {
  std::string body;
  for (int64_t v : values) append_varint(body, static_cast<uint64_t>(v));
  bytes_field(field, body);
}

}  // namespace pointnet::protobuf
