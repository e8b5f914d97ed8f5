#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/npy.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

// A fresh folder per test, removed when the test ends.
struct TempDir {
  fs::path path = fs::temp_directory_path() /
                  ("pointnet_npy_" + std::to_string(::getpid()) + "_" +
                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
  TempDir() {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

// A .npy file built by hand, per the spec: magic, version, header length,
// dict padded with spaces to a 64-byte boundary and ended by '\n', raw data.
std::string npy_bytes(const std::string& dict, const std::string& data, int major = 1) {
  int len_size = major == 1 ? 2 : 4;
  std::string header = dict;
  size_t total = 8 + len_size + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string out("\x93NUMPY", 6);
  out += static_cast<char>(major);
  out += '\0';
  for (int k = 0; k < len_size; ++k) out += static_cast<char>((header.size() >> (8 * k)) & 0xff);
  return out + header + data;
}

template <typename T>
std::string raw(const std::vector<T>& v, bool big_endian = false) {
  std::string s(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
  if (big_endian) {
    for (size_t i = 0; i < s.size(); i += sizeof(T)) std::reverse(s.begin() + i, s.begin() + i + sizeof(T));
  }
  return s;
}

// Expects parse_npy to throw pointnet::Error mentioning the name and `detail`.
void expect_error(const std::string& bytes, const std::string& detail) {
  try {
    parse_npy(bytes, "fixture.npy");
    FAIL() << "expected an error containing '" << detail << "'";
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("fixture.npy"), std::string::npos) << msg;
    EXPECT_NE(msg.find(detail), std::string::npos) << msg;
  }
}

TEST(Npy, RoundTripTwoDims) {
  TempDir tmp;
  fs::path path = tmp.path / "cloud.npy";
  std::vector<float> v = {0.5f, -1.25f, 3.0f, 1e-7f, 1e30f, -0.0f, 7, 8, 9, 10, 11, 12};
  write_npy(path.string(), {4, 3}, v.data());
  NpyArray a = read_npy(path.string());
  EXPECT_EQ(a.shape, (std::vector<int64_t>{4, 3}));
  ASSERT_EQ(a.values.size(), v.size());
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(a.values[i], v[i]);

  // Spec: header padded so the data starts on a 64-byte boundary, ending in '\n'.
  std::string bytes = read_file(path.string());
  size_t header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_EQ(bytes[10 + header_len - 1], '\n');
  EXPECT_EQ(bytes.size(), 10 + header_len + v.size() * 4);
  EXPECT_NE(bytes.find("'descr': '<f4'"), std::string::npos);
}

TEST(Npy, RoundTripOneAndZeroDims) {
  TempDir tmp;
  fs::path dir = tmp.path;
  std::vector<float> v = {1, 2, 3, 4, 5};
  write_npy((dir / "a.npy").string(), {5}, v.data());
  NpyArray a = read_npy((dir / "a.npy").string());
  EXPECT_EQ(a.shape, (std::vector<int64_t>{5}));
  EXPECT_EQ(a.values, v);
  EXPECT_NE(read_file((dir / "a.npy").string()).find("(5,)"), std::string::npos);

  write_npy((dir / "s.npy").string(), {}, v.data());
  NpyArray s = read_npy((dir / "s.npy").string());
  EXPECT_TRUE(s.shape.empty());
  EXPECT_EQ(s.values, std::vector<float>{1});

  write_npy((dir / "e.npy").string(), {0, 3}, v.data());
  NpyArray e = read_npy((dir / "e.npy").string());
  EXPECT_EQ(e.shape, (std::vector<int64_t>{0, 3}));
  EXPECT_TRUE(e.values.empty());
}

TEST(Npy, ReadsFloat64) {
  std::vector<double> d = {1.5, -2.25, 1e-3, 4.0};
  NpyArray a = parse_npy(npy_bytes("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", raw(d)), "x");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 2}));
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(a.values[i], static_cast<float>(d[i]));
}

TEST(Npy, ReadsFloat16IncludingSubnormalAndInf) {
  // 1.0, -2.0, 0.5, 65504 (max half), 2^-24 (smallest subnormal), +inf
  std::vector<uint16_t> h = {0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0x7c00};
  NpyArray a = parse_npy(npy_bytes("{'descr': '<f2', 'fortran_order': False, 'shape': (6,), }", raw(h)), "x");
  EXPECT_EQ(a.values[0], 1.0f);
  EXPECT_EQ(a.values[1], -2.0f);
  EXPECT_EQ(a.values[2], 0.5f);
  EXPECT_EQ(a.values[3], 65504.0f);
  EXPECT_EQ(a.values[4], std::ldexp(1.0f, -24));
  EXPECT_TRUE(std::isinf(a.values[5]));
}

TEST(Npy, ReadsBigEndian) {
  std::vector<float> f = {1.0f, -3.5f, 1e10f};
  std::vector<double> d = {0.25, -8.0, 3.0};
  std::vector<uint16_t> h = {0x3c00, 0xc000, 0x3800};
  auto dict = [](const char* descr) {
    return std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (3,), }";
  };
  EXPECT_EQ(parse_npy(npy_bytes(dict(">f4"), raw(f, true)), "x").values, f);
  EXPECT_EQ(parse_npy(npy_bytes(dict(">f8"), raw(d, true)), "x").values, (std::vector<float>{0.25f, -8, 3}));
  EXPECT_EQ(parse_npy(npy_bytes(dict(">f2"), raw(h, true)), "x").values, (std::vector<float>{1, -2, 0.5f}));
}

TEST(Npy, FortranOrderIsReturnedInCOrder) {
  // C-order matrix [[1,2,3],[4,5,6]] stored column by column.
  std::vector<float> f = {1, 4, 2, 5, 3, 6};
  NpyArray a = parse_npy(npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", raw(f)), "x");
  EXPECT_EQ(a.values, (std::vector<float>{1, 2, 3, 4, 5, 6}));

  // 3-D: value = 100 i + 10 j + k at C index (i, j, k); Fortran stores i fastest.
  std::vector<float> g;
  for (int k = 0; k < 4; ++k)
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) g.push_back(100.0f * i + 10.0f * j + k);
  NpyArray b = parse_npy(npy_bytes("{'shape': (2, 3, 4), 'fortran_order': True, 'descr': '<f4'}", raw(g)), "x");
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) EXPECT_EQ(b.values[(i * 3 + j) * 4 + k], 100.0f * i + 10.0f * j + k);
}

TEST(Npy, ReadsVersions2And3) {
  std::vector<float> f = {1, 2, 3};
  std::string dict = "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (3,)}";
  EXPECT_EQ(parse_npy(npy_bytes(dict, raw(f), 2), "x").values, f);
  EXPECT_EQ(parse_npy(npy_bytes(dict, raw(f), 3), "x").values, f);
}

TEST(Npy, RejectsMalformedInputs) {
  std::string good_dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  std::string data = raw(std::vector<float>(6, 1.0f));
  expect_error("PK\x03\x04 not numpy at all", "magic");
  expect_error(npy_bytes(good_dict, data.substr(0, 20)), "truncated");
  expect_error(npy_bytes(good_dict, data + "xx"), "trailing");
  expect_error(npy_bytes("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }", data), "dtype '<i4'");
  expect_error(npy_bytes("{'descr': '<f4', 'shape': (2, 3), }", data), "fortran_order");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", data), "True or False");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, -3), }", data), "byte");
  expect_error(npy_bytes(good_dict, data, 4), "version 4.0");
  // Header length pointing past the end of the file.
  std::string bytes = npy_bytes(good_dict, data);
  bytes[8] = '\xff';
  bytes[9] = '\xff';
  expect_error(bytes, "truncated");
}

TEST(Npy, RejectsAbsurdShapesBeforeAllocating) {
  std::string data = raw(std::vector<float>(6, 1.0f));
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000000, 3), }", data),
               "truncated");
  // Product overflows 64 bits.
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': "
                         "(4294967296, 4294967296, 4294967296), }", data),
               "truncated");
  expect_error(npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", data),
               "64 bits");
}

TEST(Npy, ErrorsNameTheFileOnDisk) {
  TempDir tmp;
  fs::path path = tmp.path / "broken_cloud.npy";
  std::ofstream(path, std::ios::binary) << "\x93NUMPY\x01";
  try {
    read_npy(path.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_npy((path.parent_path() / "missing.npy").string()), Error);
}

TEST(Npy, EveryTruncationAndByteFlipFailsCleanly) {
  std::vector<float> v(12, 2.0f);
  std::string good = npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 3), }", raw(v));
  for (size_t n = 0; n < good.size(); ++n) EXPECT_THROW(parse_npy(good.substr(0, n), "x"), Error) << n;
  // Corrupt each header byte: the result must be a clean parse or an Error, never a crash.
  for (size_t i = 0; i < 128; ++i) {
    for (char c : {'\0', '9', ')', '\'', '{', ','}) {
      std::string bad = good;
      bad[i] = c;
      try {
        NpyArray a = parse_npy(bad, "x");
        size_t count = 1;
        for (int64_t d : a.shape) count *= static_cast<size_t>(d);
        EXPECT_EQ(count, a.values.size());
      } catch (const Error&) {
      }
    }
  }
}

}  // namespace
}  // namespace pointnet
