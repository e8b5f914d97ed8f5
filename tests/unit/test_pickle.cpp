// The restricted unpickler (io/pickle.h): plain values in protocols 2 and 4,
// globals that would run code refused by name, malformed and truncated input,
// and nesting deep enough to break a recursive implementation.
#include <gtest/gtest.h>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "expect_error.h"
#include "io/pickle.h"
#include "io/zip_archive.h"

namespace pointnet {
namespace {

using Kind = PickleValue::Kind;
using testing::expect_error_containing;

#define BYTES(literal) std::string(literal, sizeof(literal) - 1)

// pickle.dumps({'a': 1, 'b': 1.5, 'c': [True, False, None], 'd': -1, 'e': (1, 2),
//               'f': -2**40, 'g': 'héllo'}, protocol=2) and protocol=4 (FRAME, MEMOIZE, ...).
const std::string kValues2 = BYTES(
    "\x80\x02\x7d\x71\x00\x28\x58\x01\x00\x00\x00\x61\x71\x01\x4b\x01\x58\x01\x00\x00\x00\x62\x71\x02\x47\x3f\xf8"
    "\x00\x00\x00\x00\x00\x00\x58\x01\x00\x00\x00\x63\x71\x03\x5d\x71\x04\x28\x88\x89\x4e\x65\x58\x01\x00\x00\x00"
    "\x64\x71\x05\x4a\xff\xff\xff\xff\x58\x01\x00\x00\x00\x65\x71\x06\x4b\x01\x4b\x02\x86\x71\x07\x58\x01\x00\x00"
    "\x00\x66\x71\x08\x8a\x06\x00\x00\x00\x00\x00\xff\x58\x01\x00\x00\x00\x67\x71\x09\x58\x06\x00\x00\x00\x68\xc3"
    "\xa9\x6c\x6c\x6f\x71\x0a\x75\x2e");
const std::string kValues4 = BYTES(
    "\x80\x04\x95\x4f\x00\x00\x00\x00\x00\x00\x00\x7d\x94\x28\x8c\x01\x61\x94\x4b\x01\x8c\x01\x62\x94\x47\x3f\xf8"
    "\x00\x00\x00\x00\x00\x00\x8c\x01\x63\x94\x5d\x94\x28\x88\x89\x4e\x65\x8c\x01\x64\x94\x4a\xff\xff\xff\xff\x8c"
    "\x01\x65\x94\x4b\x01\x4b\x02\x86\x94\x8c\x01\x66\x94\x8a\x06\x00\x00\x00\x00\x00\xff\x8c\x01\x67\x94\x8c\x06"
    "\x68\xc3\xa9\x6c\x6c\x6f\x94\x75\x2e");

void check_values(const PickleValue& v) {
  ASSERT_EQ(v.kind, Kind::Dict);
  ASSERT_EQ(v.dict.size(), 7u);
  EXPECT_EQ(v.get("a")->integer, 1);
  EXPECT_EQ(v.get("b")->real, 1.5);
  const PickleValue* c = v.get("c");
  ASSERT_EQ(c->kind, Kind::List);
  ASSERT_EQ(c->items.size(), 3u);
  EXPECT_TRUE(c->items[0]->boolean);
  EXPECT_EQ(c->items[1]->kind, Kind::Bool);
  EXPECT_FALSE(c->items[1]->boolean);
  EXPECT_EQ(c->items[2]->kind, Kind::None);
  EXPECT_EQ(v.get("d")->integer, -1);
  const PickleValue* e = v.get("e");
  ASSERT_EQ(e->kind, Kind::Tuple);
  EXPECT_EQ(e->items.at(1)->integer, 2);
  EXPECT_EQ(v.get("f")->integer, -(int64_t{1} << 40));
  EXPECT_EQ(v.get("g")->text, "h\xc3\xa9llo");
  EXPECT_EQ(v.get("zzz"), nullptr);
}

TEST(Pickle, ReadsPlainValuesProtocol2) {
  const Unpickled u = unpickle(kValues2, "v2");
  check_values(*u.value);
  EXPECT_EQ(u.end, kValues2.size());
}

TEST(Pickle, ReadsPlainValuesProtocol4) { check_values(*unpickle(kValues4, "v4").value); }

TEST(Pickle, RefusesOsSystem) {
  // A pickle whose REDUCE would run os.system('ls').
  const std::string evil = BYTES("\x80\x02\x63os\nsystem\nq\x00X\x02\x00\x00\x00lsq\x01\x85q\x02Rq\x03.");
  expect_error_containing([&] { unpickle(evil, "evil.pkl"); }, {"evil.pkl", "byte 2", "'os.system'"});
}

TEST(Pickle, RefusesBuiltinsEvalThroughStackGlobal) {
  const std::string evil =
      BYTES("\x80\x04\x8c\x08\x62uiltins\x94\x8c\x04\x65val\x94\x93\x94\x8c\x04\x31+\x31\x31\x94\x85\x94R\x94.");
  expect_error_containing([&] { unpickle(evil, "eval.pkl"); }, {"eval.pkl", "byte 20", "'builtins.eval'"});
}

TEST(Pickle, RefusesReducingAStorageType) {
  // torch.FloatStorage is allowed as a name inside a persistent id, not as a call.
  const std::string p = BYTES("\x80\x02\x63torch\nFloatStorage\n)R.");
  expect_error_containing([&] { unpickle(p, "call.pkl"); }, {"call.pkl", "torch.FloatStorage", "cannot be called"});
}

TEST(Pickle, UnsupportedOpcodeIsNamed) {
  expect_error_containing([&] { unpickle(BYTES("\x80\x02\x82\x01."), "ext.pkl"); }, {"ext.pkl", "byte 2", "0x82"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x09N."), "proto.pkl"); }, {"proto.pkl", "protocol 9"});
}

TEST(Pickle, MalformedInput) {
  // A string claiming 4 GB: an error, not an allocation.
  expect_error_containing([&] { unpickle(BYTES("\x80\x02X\xff\xff\xff\xff" "abc."), "long.pkl"); }, {"long.pkl", "truncated"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x02h\x05."), "memo.pkl"); }, {"memo.pkl", "memo entry 5"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x02s."), "pop.pkl"); }, {"pop.pkl", "empty stack"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x02NN."), "two.pkl"); }, {"two.pkl", "STOP with 2 values"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x02]K\x01K\x02s."), "set.pkl"); }, {"set.pkl", "SETITEM on a list"});
  expect_error_containing([&] { unpickle(BYTES("\x80\x02]Nb."), "build.pkl"); }, {"build.pkl", "BUILD"});
}

TEST(Pickle, TruncatedAnywhereIsAnError) {
  for (const std::string* p : {&kValues2, &kValues4})
    for (size_t cut = 0; cut < p->size(); ++cut)
      expect_error_containing([&] { unpickle(std::string_view(*p).substr(0, cut), "cut.pkl"); }, {"cut.pkl"});
  // The real data.pkl of a torch.save file.
  const std::string real = read_file(std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/cls.pth");
  const ZipArchive zip(real, "cls.pth");
  const std::string_view pkl = zip.read(*zip.find("cls/data.pkl"));
  EXPECT_EQ(unpickle(pkl, "cls.pkl").value->kind, Kind::Dict);
  for (size_t cut = 0; cut < pkl.size(); cut += 7)
    expect_error_containing([&] { unpickle(pkl.substr(0, cut), "cut.pkl"); }, {"cut.pkl"});
}

TEST(Pickle, DeepNestingNeitherRecursesNorLeaks) {
  // [[[[...]]]] a million deep: building and freeing it must not overflow the stack.
  const int depth = 1000000;
  std::string p = BYTES("\x80\x02");
  p += std::string(depth, ']');
  p += std::string(depth - 1, 'a');
  p += '.';
  const Unpickled u = unpickle(p, "deep.pkl");
  const PickleValue* v = u.value.get();
  int seen = 1;
  while (!v->items.empty()) {
    v = v->items[0].get();
    ++seen;
  }
  EXPECT_EQ(seen, depth);
}

TEST(Pickle, WideLongKeepsItsBytes) {
  // torch's legacy magic number 0x1950a86a20f9469cfc6c does not fit in 64 bits.
  const Unpickled u = unpickle(BYTES("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."), "magic");
  EXPECT_EQ(u.value->kind, Kind::Int);
  EXPECT_EQ(u.value->text, BYTES("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"));
}

}  // namespace
}  // namespace pointnet
