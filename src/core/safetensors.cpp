#include "core/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"
#include "core/errors.h"

// Tensor bytes are copied with memcpy: the format is little-endian, so is the host.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.cpp assumes a little-endian host"
#endif

namespace pointnet {
namespace {

using json = nlohmann::json;

// The reference implementation refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// A valid header nests 3 deep ({name: {shape: [...]}}); anything much deeper is hostile.
constexpr int kMaxJsonDepth = 16;

// 0 for a dtype we do not support.
uint64_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  return 0;
}

// a * b, or false on uint64 overflow.
bool mul_overflows(uint64_t a, uint64_t b, uint64_t* out) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) return true;
  *out = a * b;
  return false;
}

// numel * dtype size for a shape already checked to be non-negative; false on overflow.
bool byte_count(const std::vector<int64_t>& shape, uint64_t elem_size, uint64_t* bytes) {
  uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || mul_overflows(n, static_cast<uint64_t>(d), &n)) return false;
  }
  if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  return !mul_overflows(n, elem_size, bytes);
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Offset (in the header) of the first bracket nested deeper than kMaxJsonDepth, or -1.
// Runs before parsing so no JSON code ever sees pathological nesting.
int64_t too_deep_at(const char* text, size_t size) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return static_cast<int64_t>(i);
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return -1;
}

struct Entry {
  std::string name;
  TensorData tensor;  // bytes filled in last
  uint64_t begin = 0, end = 0;
};

// One header entry -> dtype, shape, offsets; every problem names the tensor.
Entry parse_entry(const std::string& path, const std::string& name, const json& value) {
  auto bad = [&](const auto&... parts) -> void { fail(path, ": header (byte 8): tensor '", name, "': ", parts...); };
  Entry e;
  e.name = name;
  if (!value.is_object()) bad("entry is not a JSON object");
  auto dtype = value.find("dtype");
  auto shape = value.find("shape");
  auto offsets = value.find("data_offsets");
  if (dtype == value.end()) bad("missing \"dtype\"");
  if (shape == value.end()) bad("missing \"shape\"");
  if (offsets == value.end()) bad("missing \"data_offsets\"");

  if (!dtype->is_string()) bad("\"dtype\" is not a string");
  e.tensor.dtype = dtype->get<std::string>();
  uint64_t elem = dtype_size(e.tensor.dtype);
  if (elem == 0) bad("unsupported dtype \"", e.tensor.dtype, "\" (expected F32, F64, I32 or I64)");

  if (!shape->is_array()) bad("\"shape\" is not an array");
  for (const json& d : *shape) {
    if (d.is_number_integer() && !d.is_number_unsigned()) bad("negative dimension ", d.dump(), " in shape");
    if (!d.is_number_unsigned()) bad("shape dimension ", d.dump(), " is not a non-negative integer");
    uint64_t v = d.get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) bad("shape dimension ", v, " is too large");
    e.tensor.shape.push_back(static_cast<int64_t>(v));
  }
  uint64_t expected = 0;
  if (!byte_count(e.tensor.shape, elem, &expected)) bad("shape ", shape->dump(), " overflows 64 bits");

  if (!offsets->is_array() || offsets->size() != 2 || !(*offsets)[0].is_number_unsigned() ||
      !(*offsets)[1].is_number_unsigned()) {
    bad("\"data_offsets\" ", offsets->dump(), " is not [begin, end] with non-negative integers");
  }
  e.begin = (*offsets)[0].get<uint64_t>();
  e.end = (*offsets)[1].get<uint64_t>();
  if (e.end < e.begin) bad("data_offsets [", e.begin, ", ", e.end, "] end before begin");
  if (e.end - e.begin != expected) {
    bad("data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin, " bytes but ", e.tensor.dtype, " ",
        shape_str(e.tensor.shape), " needs ", expected);
  }
  return e;
}

std::map<std::string, std::string> parse_metadata(const std::string& path, const json& value) {
  if (!value.is_object()) fail(path, ": header (byte 8): \"__metadata__\" is not a JSON object");
  std::map<std::string, std::string> out;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!it.value().is_string()) {
      fail(path, ": header (byte 8): \"__metadata__\" value for '", it.key(), "' is not a string");
    }
    out[it.key()] = it.value().get<std::string>();
  }
  return out;
}

}  // namespace

// ---- TensorData --------------------------------------------------------------

int64_t TensorData::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

namespace {
// Checks dtype and byte count before any conversion reads memory.
void check_bytes(const TensorData& t) {
  uint64_t expected = 0;
  uint64_t elem = dtype_size(t.dtype);
  if (elem == 0 || !byte_count(t.shape, elem, &expected) || expected != t.bytes.size()) {
    fail("tensor ", t.dtype, " ", shape_str(t.shape), " holds ", t.bytes.size(), " bytes, inconsistent with its shape");
  }
}

template <typename To, typename From>
std::vector<To> convert(const TensorData& t) {
  std::vector<To> out(t.bytes.size() / sizeof(From));
  for (size_t i = 0; i < out.size(); ++i) {
    From v;
    std::memcpy(&v, t.bytes.data() + i * sizeof(From), sizeof(From));
    out[i] = static_cast<To>(v);
  }
  return out;
}

template <typename T>
TensorData make(const char* dtype, const std::vector<int64_t>& shape, const T* values) {
  TensorData t;
  t.dtype = dtype;
  t.shape = shape;
  uint64_t bytes = 0;
  if (!byte_count(shape, sizeof(T), &bytes)) fail("make tensor: invalid shape ", shape_str(shape));
  t.bytes.resize(bytes);
  if (bytes > 0) std::memcpy(t.bytes.data(), values, bytes);
  return t;
}
}  // namespace

std::vector<float> TensorData::as_f32() const {
  check_bytes(*this);
  if (dtype == "F32") return convert<float, float>(*this);
  if (dtype == "F64") return convert<float, double>(*this);
  fail("tensor of dtype ", dtype, " cannot be read as floating point");
}

std::vector<double> TensorData::as_f64() const {
  check_bytes(*this);
  if (dtype == "F32") return convert<double, float>(*this);
  if (dtype == "F64") return convert<double, double>(*this);
  fail("tensor of dtype ", dtype, " cannot be read as floating point");
}

std::vector<int64_t> TensorData::as_i64() const {
  check_bytes(*this);
  if (dtype == "I64") return convert<int64_t, int64_t>(*this);
  if (dtype == "I32") return convert<int64_t, int32_t>(*this);
  fail("tensor of dtype ", dtype, " cannot be read as integer");
}

TensorData make_f32(const std::vector<int64_t>& shape, const float* values) { return make("F32", shape, values); }
TensorData make_f64(const std::vector<int64_t>& shape, const double* values) { return make("F64", shape, values); }
TensorData make_i64(const std::vector<int64_t>& shape, const int64_t* values) { return make("I64", shape, values); }

const TensorData& SafeTensors::get(const std::string& name) const {
  auto it = tensors.find(name);
  if (it == tensors.end()) fail(source, ": missing tensor '", name, "'");
  return it->second;
}

// ---- write -------------------------------------------------------------------

void write_safetensors(const std::string& path, const SafeTensors& file) {
  json header = json::object();
  if (!file.metadata.empty()) header["__metadata__"] = file.metadata;
  uint64_t offset = 0;
  // std::map iterates by name: tensors are laid out in name order, back to back.
  for (const auto& [name, t] : file.tensors) {
    if (name == "__metadata__") fail(path, ": cannot write a tensor named \"__metadata__\"");
    uint64_t elem = dtype_size(t.dtype);
    if (elem == 0) fail(path, ": tensor '", name, "': unsupported dtype \"", t.dtype, "\"");
    uint64_t expected = 0;
    if (!byte_count(t.shape, elem, &expected) || expected != t.bytes.size()) {
      fail(path, ": tensor '", name, "': ", t.bytes.size(), " bytes do not match ", t.dtype, " ", shape_str(t.shape));
    }
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + expected}}};
    offset += expected;
  }

  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // names or metadata that are not valid UTF-8
    fail(path, ": cannot encode header: ", e.what());
  }
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > kMaxHeaderBytes) fail(path, ": header of ", text.size(), " bytes exceeds the 100 MB limit");

  std::string out;
  out.reserve(8 + text.size() + offset);
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out += text;
  for (const auto& [name, t] : file.tensors) out.append(reinterpret_cast<const char*>(t.bytes.data()), t.bytes.size());
  write_file_atomic(path, out);
}

// ---- read --------------------------------------------------------------------

SafeTensors read_safetensors(const std::string& path) {
  const std::string bytes = read_file(path);
  const uint64_t size = bytes.size();
  if (size < 8) fail(path, ": byte 0: file is ", size, " bytes, too short for the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  // A nonsense length with no JSON object after it: some other kind of file,
  // and saying so beats quoting the length.
  if ((n > kMaxHeaderBytes || n > size - 8) && size > 8 && bytes[8] != '{')
    fail(path, ": not a safetensors file (expected an 8-byte header length, then a JSON header starting with '{' at byte 8)");
  if (n > kMaxHeaderBytes) fail(path, ": byte 0: header length ", n, " exceeds the 100 MB limit");
  if (n > size - 8) fail(path, ": byte 0: header length ", n, " runs past the end of the file (", size, " bytes)");

  const char* text = bytes.data() + 8;
  int64_t deep = too_deep_at(text, n);
  if (deep >= 0) fail(path, ": byte ", 8 + deep, ": header JSON nested deeper than ", kMaxJsonDepth, " levels");
  json header;
  try {
    header = json::parse(text, text + n);
  } catch (const json::parse_error& e) {
    // e.byte counts from 1 within the header.
    uint64_t at = 8 + (e.byte > 0 ? e.byte - 1 : 0);
    std::string why = e.what();  // drop nlohmann's "[json.exception.parse_error.101] " tag
    size_t tag = why.find("] ");
    if (tag != std::string::npos) why = why.substr(tag + 2);
    fail(path, ": byte ", at, ": header is not valid JSON: ", why);
  } catch (const json::exception& e) {  // not only parse_error: 1e999 is out_of_range (406)
    fail(path, ": byte 8: header is not valid JSON: ", e.what());
  }
  if (!header.is_object()) fail(path, ": byte 8: header is not a JSON object");

  SafeTensors result;
  result.source = path;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (it.value().is_null()) continue;  // the reference reader treats null as absent
      result.metadata = parse_metadata(path, it.value());
    } else {
      entries.push_back(parse_entry(path, it.key(), it.value()));
    }
  }

  // The data must be covered exactly: sorted by offset, no gaps, no overlaps, no slack.
  const uint64_t data_start = 8 + n;
  const uint64_t data_size = size - data_start;
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t expected_begin = 0;
  std::string previous;
  for (const Entry& e : entries) {
    if (e.end > data_size) {
      fail(path, ": tensor '", e.name, "': data_offsets [", e.begin, ", ", e.end, "] run past the end of the file (byte ",
           data_start + e.end, " of ", size, ")");
    }
    if (e.begin != expected_begin) {
      fail(path, ": byte ", data_start + e.begin, ": tensor '", e.name, "' starts at data offset ", e.begin,
           " but the previous tensor", previous.empty() ? "" : " '" + previous + "'", " ends at ", expected_begin,
           e.begin < expected_begin ? " (overlap)" : " (gap)");
    }
    expected_begin = e.end;
    previous = e.name;
  }
  if (expected_begin != data_size) {
    fail(path, ": byte ", data_start + expected_begin, ": ", data_size - expected_begin,
         " bytes after the last tensor are not described by the header");
  }

  for (Entry& e : entries) {
    const auto* p = reinterpret_cast<const uint8_t*>(bytes.data() + data_start);
    e.tensor.bytes.assign(p + e.begin, p + e.end);
    result.tensors.emplace(e.name, std::move(e.tensor));
  }
  return result;
}

}  // namespace pointnet
