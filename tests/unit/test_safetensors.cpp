// safetensors reader/writer and atomic file writes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/safetensors.h"

namespace fs = std::filesystem;
using namespace pointnet;

namespace {

// A fresh directory per test, removed afterwards.
class SafeTensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pn_st_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (fs::path(dir_) / name).string(); }

  std::string dir_;
};

std::string u64le(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

template <typename T>
std::string raw(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

// Builds a file from a header string and data bytes, exactly as the spec lays it out.
std::string st_bytes(const std::string& header, const std::string& data) { return u64le(header.size()) + header + data; }

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

TEST_F(SafeTensorsTest, RoundTripSeveralDtypesAndMetadata) {
  SafeTensors in;
  in.metadata = {{"format", "pt"}, {"epoch", "3"}};
  float f[6] = {1.5f, -2.25f, 0.f, 3e38f, -1e-30f, 7.f};
  double d[4] = {1.0 / 3.0, -2.0, 1e300, 0.0};
  int64_t l[4] = {1, -2, INT64_MAX, INT64_MIN};
  in.tensors["b.weight"] = make_f32({2, 3}, f);
  in.tensors["a.scale"] = make_f64({4}, d);
  in.tensors["c.steps"] = make_i64({2, 2}, l);
  TensorData i32;
  i32.dtype = "I32";
  i32.shape = {3};
  std::string ib = raw<int32_t>({5, -6, 2147483647});
  i32.bytes.assign(ib.begin(), ib.end());
  in.tensors["d.labels"] = i32;
  float scalar = 42.f;
  in.tensors["e.scalar"] = make_f32({}, &scalar);
  in.tensors["f.empty"] = make_f32({0, 5}, nullptr);

  std::string path = file("ckpt.safetensors");
  write_safetensors(path, in);
  SafeTensors out = read_safetensors(path);

  EXPECT_EQ(out.source, path);
  EXPECT_EQ(out.metadata, in.metadata);
  ASSERT_EQ(out.tensors.size(), in.tensors.size());
  for (const auto& [name, t] : in.tensors) {
    ASSERT_TRUE(out.has(name)) << name;
    EXPECT_EQ(out.get(name).dtype, t.dtype) << name;
    EXPECT_EQ(out.get(name).shape, t.shape) << name;
    EXPECT_EQ(out.get(name).bytes, t.bytes) << name;
  }
  EXPECT_EQ(out.get("b.weight").as_f32(), std::vector<float>(f, f + 6));
  EXPECT_EQ(out.get("a.scale").as_f64(), std::vector<double>(d, d + 4));
  EXPECT_EQ(out.get("c.steps").as_i64(), std::vector<int64_t>(l, l + 4));
  EXPECT_EQ(out.get("d.labels").as_i64(), (std::vector<int64_t>{5, -6, 2147483647}));
  EXPECT_EQ(out.get("e.scalar").numel(), 1);
  EXPECT_EQ(out.get("f.empty").numel(), 0);
  EXPECT_EQ(out.get("a.scale").as_f32()[1], -2.0f);  // F64 -> F32 conversion
  EXPECT_THROW(out.get("b.weight").as_i64(), Error);
  EXPECT_THROW(out.get("c.steps").as_f32(), Error);
}

TEST_F(SafeTensorsTest, HeaderLayoutMatchesReferenceWriter) {
  SafeTensors in;
  float f[3] = {1, 2, 3};
  in.tensors["zeta"] = make_f32({3}, f);
  in.tensors["alpha"] = make_f32({1}, f);
  std::string path = file("x.safetensors");
  write_safetensors(path, in);
  std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u) << "header padded to a multiple of 8";
  std::string header = bytes.substr(8, n);
  EXPECT_EQ(header.find_last_not_of(' ') + 1 + (8 - (header.find_last_not_of(' ') + 1) % 8) % 8, header.size())
      << "padding is spaces only, and minimal";
  auto j = nlohmann::json::parse(header);
  EXPECT_FALSE(j.contains("__metadata__")) << "no metadata key when metadata is empty";
  EXPECT_EQ(j["alpha"]["data_offsets"], nlohmann::json({0, 4}));  // name order, contiguous
  EXPECT_EQ(j["zeta"]["data_offsets"], nlohmann::json({4, 16}));
  EXPECT_EQ(bytes.size(), 8 + n + 16);
}

// Written byte by byte from the huggingface spec, with data order differing
// from name order (the reference writer sorts by dtype alignment first).
TEST_F(SafeTensorsTest, ReadsHandWrittenSpecFile) {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"weight":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},)"
      R"("count":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string path = file("spec.safetensors");
  write_bytes(path, st_bytes(header, raw<int64_t>({7}) + raw<float>({1.5f, -2.f})));
  SafeTensors st = read_safetensors(path);
  EXPECT_EQ(st.metadata.at("format"), "pt");
  EXPECT_EQ(st.get("weight").dtype, "F32");
  EXPECT_EQ(st.get("weight").shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(st.get("weight").as_f32(), (std::vector<float>{1.5f, -2.f}));
  EXPECT_EQ(st.get("count").as_i64(), (std::vector<int64_t>{7}));
}

TEST_F(SafeTensorsTest, EmptyFileWithNoTensorsIsValid) {
  std::string path = file("empty.safetensors");
  write_safetensors(path, SafeTensors{});
  SafeTensors st = read_safetensors(path);
  EXPECT_TRUE(st.tensors.empty());
  EXPECT_TRUE(st.metadata.empty());
}

TEST_F(SafeTensorsTest, MissingTensorNamesFileAndTensor) {
  std::string path = file("m.safetensors");
  write_safetensors(path, SafeTensors{});
  SafeTensors st = read_safetensors(path);
  try {
    st.get("fc3.bias");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("fc3.bias"), std::string::npos);
  }
}

TEST_F(SafeTensorsTest, WriterRejectsInconsistentTensors) {
  SafeTensors st;
  st.tensors["a"] = make_f32({2}, std::vector<float>{1, 2}.data());
  st.tensors["a"].shape = {3};
  EXPECT_THROW(write_safetensors(file("w.safetensors"), st), Error);
  st.tensors["a"].shape = {2};
  st.tensors["a"].dtype = "F16";
  EXPECT_THROW(write_safetensors(file("w.safetensors"), st), Error);
  EXPECT_FALSE(fs::exists(file("w.safetensors")));
}

// ---- malformed files: each is a pointnet::Error naming the path --------------------

namespace {
struct Malformed {
  const char* name;
  std::string bytes;
  const char* expect;  // a piece of the message
};

std::string with_header(const std::string& header, const std::string& data) { return st_bytes(header, data); }
std::string f32_entry(const char* name, const char* shape, const char* offsets) {
  return std::string("\"") + name + R"(":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}
}  // namespace

TEST_F(SafeTensorsTest, MalformedFilesNameThePathAndProblem) {
  const std::string d8(8, '\0'), d12(12, '\0'), d20(20, '\0');
  std::vector<Malformed> cases = {
      {"short", std::string("\x01\x02\x03", 3), "too short"},
      {"header_past_end", u64le(100) + "{}", "byte 0: header length 100 runs past the end"},
      {"header_too_big", u64le(200'000'000) + "{}", "100 MB"},
      {"empty_header", u64le(0), "not valid JSON"},
      {"bad_json", with_header("{\"a\": [1,", ""), "not valid JSON"},
      {"number_overflow", with_header("{\"a\": 1e999}", ""), "not valid JSON"},  // out_of_range, not parse_error
      {"not_object", with_header("[1, 2]  ", ""), "not a JSON object"},
      {"entry_not_object", with_header(R"({"a": 3})", ""), "tensor 'a': entry is not a JSON object"},
      {"missing_dtype", with_header(R"({"a":{"shape":[2],"data_offsets":[0,8]}})", d8), "tensor 'a': missing \"dtype\""},
      {"missing_shape", with_header(R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", d8), "missing \"shape\""},
      {"missing_offsets", with_header(R"({"a":{"dtype":"F32","shape":[2]}})", d8), "missing \"data_offsets\""},
      {"unknown_dtype", with_header(R"({"a":{"dtype":"F16","shape":[4],"data_offsets":[0,8]}})", d8),
       "unsupported dtype \"F16\""},
      {"negative_dim", with_header("{" + f32_entry("a", "[-2]", "[0,8]") + "}", d8), "negative dimension -2"},
      {"float_dim", with_header("{" + f32_entry("a", "[2.5]", "[0,8]") + "}", d8), "not a non-negative integer"},
      {"shape_overflow", with_header("{" + f32_entry("a", "[4294967296,4294967296]", "[0,8]") + "}", d8), "overflows"},
      {"offsets_mismatch", with_header("{" + f32_entry("a", "[4]", "[0,8]") + "}", d8), "needs 16"},
      {"offsets_reversed", with_header("{" + f32_entry("a", "[0]", "[8,0]") + "}", d8), "end before begin"},
      {"offsets_malformed", with_header("{" + f32_entry("a", "[2]", "[0]") + "}", d8), "is not [begin, end]"},
      {"offsets_out_of_range", with_header("{" + f32_entry("a", "[4]", "[0,16]") + "}", d8), "run past the end"},
      {"overlap", with_header("{" + f32_entry("a", "[2]", "[0,8]") + "," + f32_entry("b", "[2]", "[4,12]") + "}", d12),
       "(overlap)"},
      {"gap", with_header("{" + f32_entry("a", "[2]", "[0,8]") + "," + f32_entry("b", "[2]", "[12,20]") + "}", d20),
       "(gap)"},
      {"leading_gap", with_header("{" + f32_entry("a", "[2]", "[4,12]") + "}", d12), "(gap)"},
      {"trailing_bytes", with_header("{" + f32_entry("a", "[2]", "[0,8]") + "}", d12), "not described by the header"},
      {"metadata_not_string", with_header(R"({"__metadata__":{"epoch":3}})", ""), "__metadata__"},
      {"metadata_not_object", with_header(R"({"__metadata__":[]})", ""), "__metadata__"},
      {"too_deep", with_header(std::string(1000, '[') + std::string(1000, ']'), ""), "nested deeper"},
  };
  for (const Malformed& c : cases) {
    std::string path = file(std::string(c.name) + ".safetensors");
    write_bytes(path, c.bytes);
    try {
      read_safetensors(path);
      ADD_FAILURE() << c.name << ": expected pointnet::Error";
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    }
  }
}

TEST_F(SafeTensorsTest, MissingFileIsAnError) {
  EXPECT_THROW(read_safetensors(file("nope.safetensors")), Error);
}

// No input may crash the reader: every truncation and many byte flips of a valid
// file either load or throw pointnet::Error.
TEST_F(SafeTensorsTest, CorruptedFilesNeverCrash) {
  SafeTensors in;
  in.metadata = {{"k", "v"}};
  in.tensors["w"] = make_f32({2, 2}, std::vector<float>{1, 2, 3, 4}.data());
  in.tensors["n"] = make_i64({1}, std::vector<int64_t>{9}.data());
  std::string good_path = file("good.safetensors");
  write_safetensors(good_path, in);
  const std::string good = read_file(good_path);
  std::string path = file("bad.safetensors");
  auto try_read = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    try {
      read_safetensors(path);
    } catch (const Error&) {
    }
  };
  for (size_t len = 0; len < good.size(); ++len) try_read(good.substr(0, len));
  for (size_t i = 0; i < good.size(); ++i) {
    for (unsigned char x : {0x01, 0x20, 0x80, 0xff}) {
      std::string bytes = good;
      bytes[i] = static_cast<char>(bytes[i] ^ x);
      try_read(bytes);
    }
  }
}

TEST_F(SafeTensorsTest, AtomicWriteReplacesAndLeavesNoTemporaries) {
  std::string path = file("out.bin");
  write_file_atomic(path, "first version");
  write_file_atomic(path, "second");
  EXPECT_EQ(read_file(path), "second");
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"out.bin"});

  SafeTensors st;
  st.tensors["x"] = make_f32({1}, std::vector<float>{1}.data());
  write_safetensors(path, st);  // over a non-safetensors file
  EXPECT_EQ(read_safetensors(path).get("x").as_f32(), std::vector<float>{1});
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"out.bin"});
}

TEST_F(SafeTensorsTest, AtomicWriteFailureNamesPathAndCleansUp) {
  std::string missing_dir = file("no/such/dir/out.bin");
  try {
    write_file_atomic(missing_dir, "x");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(missing_dir), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  // Target is a directory: rename fails after the temporary was written; it must be removed.
  fs::create_directory(file("target"));
  fs::create_directory(file("target/child"));
  EXPECT_THROW(write_file_atomic(file("target"), "x"), Error);
  EXPECT_EQ(names_in(dir_), std::vector<std::string>{"target"});
}
