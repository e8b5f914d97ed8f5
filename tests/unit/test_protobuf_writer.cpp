// The protobuf wire-format writer against bytes computed by hand from the
// encoding spec (developers.google.com/protocol-buffers/docs/encoding; the
// 150 / "testing" / packed 3, 270, 86942 examples are the spec's own).
#include <gtest/gtest.h>

#include "export/protobuf_writer.h"
#include "onnx_reader.h"

namespace pointnet {
namespace {

using protobuf::Writer;

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

TEST(ProtobufWriter, VarintsUseSevenBitGroupsLeastSignificantFirst) {
  auto enc = [](uint64_t v) { std::string s; Writer::append_varint(s, v); return s; };
  EXPECT_EQ(enc(0), bytes({0x00}));
  EXPECT_EQ(enc(1), bytes({0x01}));
  EXPECT_EQ(enc(127), bytes({0x7f}));
  EXPECT_EQ(enc(128), bytes({0x80, 0x01}));
  EXPECT_EQ(enc(300), bytes({0xac, 0x02}));
  EXPECT_EQ(enc(UINT64_MAX), bytes({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
}

TEST(ProtobufWriter, VarintFieldHasTagThenValue) {
  Writer w;
  w.varint_field(1, 150);
  EXPECT_EQ(w.bytes(), bytes({0x08, 0x96, 0x01}));
  Writer neg;  // int64 -1: two's complement, ten bytes
  neg.varint_field(2, -1);
  EXPECT_EQ(neg.bytes(), bytes({0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}));
  Writer big;  // field 16: the tag (16 << 3 | 0) = 128 itself takes two bytes
  big.varint_field(16, 3);
  EXPECT_EQ(big.bytes(), bytes({0x80, 0x01, 0x03}));
}

TEST(ProtobufWriter, StringsAndMessagesAreLengthDelimited) {
  Writer w;
  w.bytes_field(2, "testing");
  EXPECT_EQ(w.bytes(), bytes({0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'}));
  Writer inner;
  inner.varint_field(1, 150);
  Writer outer;
  outer.message_field(3, inner);
  EXPECT_EQ(outer.bytes(), bytes({0x1a, 0x03, 0x08, 0x96, 0x01}));
  Writer empty;
  empty.bytes_field(1, "");
  EXPECT_EQ(empty.bytes(), bytes({0x0a, 0x00}));
}

TEST(ProtobufWriter, FloatsAreFixed32LittleEndian) {
  Writer w;
  w.float_field(2, 1.0f);  // 0x3f800000
  EXPECT_EQ(w.bytes(), bytes({0x15, 0x00, 0x00, 0x80, 0x3f}));
  Writer p;
  const float values[] = {1.0f, -2.0f};  // 0x3f800000, 0xc0000000
  p.packed_floats(4, values, 2);
  EXPECT_EQ(p.bytes(), bytes({0x22, 0x08, 0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0}));
}

TEST(ProtobufWriter, PackedVarintsShareOneLengthPrefix) {
  Writer w;
  w.packed_varints(4, {3, 270, 86942});
  EXPECT_EQ(w.bytes(), bytes({0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05}));
}

TEST(ProtobufWriter, LongPayloadsRoundTripThroughTheTestReader) {
  // A length over 127 needs a two-byte prefix; the reader must land on the next field.
  std::vector<float> values(1000);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 7.0f;
  Writer w;
  w.packed_floats(4, values.data(), values.size());
  w.varint_field(5, 42);
  const auto fields = testing::parse_message(w.bytes());
  ASSERT_EQ(fields.size(), 2u);
  std::vector<float> back;
  testing::append_floats(fields[0], back);
  EXPECT_EQ(back, values);
  EXPECT_EQ(fields[1].number, 5);
  EXPECT_EQ(fields[1].varint, 42u);
}

}  // namespace
}  // namespace pointnet
