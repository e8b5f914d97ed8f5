// NumPy .npy reader and writer. Format spec:
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
// The header is a Python dict literal; we parse exactly the subset numpy writes
// ({'descr': ..., 'fortran_order': ..., 'shape': (...), }) and refuse anything else.
#include "io/npy.h"

#include <cstring>
#include <limits>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/half.h"
#include "io/scalar_types.h"

namespace pointnet {
namespace {

const char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;

// Cursor over the header text; `base` is the header's byte offset in the file,
// so every error can name the absolute offset.
struct HeaderParser {
  const std::string& text;
  size_t base;
  const std::string& name;
  size_t pos = 0;

  [[noreturn]] void error(const std::string& expected) const {
    std::string found = pos < text.size() ? std::string("'") + text[pos] + "'" : "end of header";
    fail(name, ": byte ", base + pos, ": bad .npy header: expected ", expected, ", found ", found);
  }
  void skip_space() {
    while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  }
  bool peek(char c) {
    skip_space();
    return pos < text.size() && text[pos] == c;
  }
  void expect(char c) {
    if (!peek(c)) error(std::string("'") + c + "'");
    ++pos;
  }
  std::string quoted() {
    skip_space();
    if (pos >= text.size() || (text[pos] != '\'' && text[pos] != '"')) error("a quoted string");
    char q = text[pos++];
    size_t start = pos;
    while (pos < text.size() && text[pos] != q) ++pos;
    if (pos >= text.size()) error("closing quote");
    return text.substr(start, pos++ - start);
  }
  bool boolean() {
    skip_space();
    if (text.compare(pos, 4, "True") == 0) { pos += 4; return true; }
    if (text.compare(pos, 5, "False") == 0) { pos += 5; return false; }
    error("True or False");
  }
  int64_t integer() {
    skip_space();
    if (pos >= text.size() || text[pos] < '0' || text[pos] > '9') error("a non-negative integer");
    int64_t v = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      int d = text[pos] - '0';
      if (v > (std::numeric_limits<int64_t>::max() - d) / 10) error("an integer that fits in 64 bits");
      v = v * 10 + d;
      ++pos;
    }
    if (pos < text.size() && (text[pos] == 'L' || text[pos] == 'l')) ++pos;  // Python 2 longs
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> dims;
    while (!peek(')')) {
      dims.push_back(integer());
      if (peek(',')) { ++pos; continue; }
      if (!peek(')')) error("',' or ')' in shape");
    }
    ++pos;
    return dims;
  }
};

struct Header {
  std::string descr;
  bool fortran = false;
  std::vector<int64_t> shape;
};

Header parse_header(const std::string& text, size_t base, const std::string& name) {
  HeaderParser p{text, base, name};
  Header h;
  bool seen_descr = false, seen_order = false, seen_shape = false;
  p.expect('{');
  while (!p.peek('}')) {
    size_t key_pos = p.pos;
    std::string key = p.quoted();
    p.expect(':');
    if (key == "descr" && !seen_descr) {
      h.descr = p.quoted();
      seen_descr = true;
    } else if (key == "fortran_order" && !seen_order) {
      h.fortran = p.boolean();
      seen_order = true;
    } else if (key == "shape" && !seen_shape) {
      h.shape = p.tuple();
      seen_shape = true;
    } else {
      p.pos = key_pos;
      p.error("one each of the keys 'descr', 'fortran_order', 'shape' (got '" + key + "')");
    }
    if (p.peek(',')) { ++p.pos; continue; }
    if (!p.peek('}')) p.error("',' or '}'");
  }
  ++p.pos;
  // Only padding may follow: spaces and the final newline.
  while (p.pos < text.size() && (text[p.pos] == ' ' || text[p.pos] == '\n' || text[p.pos] == '\0')) ++p.pos;
  if (p.pos != text.size()) p.error("only padding after '}'");
  if (!seen_descr || !seen_order || !seen_shape) {
    p.pos = 0;
    p.error("all of the keys 'descr', 'fortran_order' and 'shape'");
  }
  return h;
}

// Reads element `i` of the raw data as float, honouring size and byte order.
// Assumes a little-endian host (checked in parse_npy).
float load_element(const unsigned char* data, size_t i, int size, bool big) {
  unsigned char b[8];
  const unsigned char* src = data + i * size;
  for (int k = 0; k < size; ++k) b[k] = big ? src[size - 1 - k] : src[k];
  if (size == 4) { float f; std::memcpy(&f, b, 4); return f; }
  if (size == 8) { double d; std::memcpy(&d, b, 8); return to_float(d); }  // beyond float range: inf
  uint16_t h; std::memcpy(&h, b, 2);
  return half_to_float(h);
}

uint32_t read_le(const std::string& bytes, size_t at, int n) {
  uint32_t v = 0;
  for (int k = n - 1; k >= 0; --k) v = (v << 8) | static_cast<unsigned char>(bytes[at + k]);
  return v;
}

}  // namespace

NpyArray parse_npy(const std::string& bytes, const std::string& name) {
  {
    uint16_t probe = 1;
    unsigned char first;
    std::memcpy(&first, &probe, 1);
    PN_CHECK(first == 1);  // the element loader assumes a little-endian host
  }
  if (bytes.size() < kMagicSize || bytes.compare(0, kMagicSize, kMagic, kMagicSize) != 0)
    fail(name, ": byte 0: not a .npy file: expected magic \"\\x93NUMPY\"");
  if (bytes.size() < kMagicSize + 2) fail(name, ": byte ", bytes.size(), ": truncated: expected version bytes");
  int major = static_cast<unsigned char>(bytes[6]);
  int minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(name, ": byte 6: unsupported .npy version ", major, ".", minor, ": expected 1.0, 2.0 or 3.0");
  int len_size = major == 1 ? 2 : 4;
  size_t header_start = 8 + len_size;
  if (bytes.size() < header_start)
    fail(name, ": byte ", bytes.size(), ": truncated: expected the header length at byte 8");
  size_t header_len = read_le(bytes, 8, len_size);
  if (header_len > bytes.size() - header_start)
    fail(name, ": byte 8: truncated: header length ", header_len, " but only ",
         bytes.size() - header_start, " bytes follow");
  Header h = parse_header(bytes.substr(header_start, header_len), header_start, name);

  const std::string& d = h.descr;
  bool known = d.size() == 3 && (d[0] == '<' || d[0] == '>') && d[1] == 'f' &&
               (d[2] == '2' || d[2] == '4' || d[2] == '8');
  if (!known)
    fail(name, ": byte ", header_start, ": unsupported dtype '", d,
         "': expected one of <f4 <f8 <f2 >f4 >f8 >f2");
  int size = d[2] - '0';
  bool big = d[0] == '>';

  // Bound the element count by the bytes actually present before allocating.
  size_t data_start = header_start + header_len;
  size_t available = bytes.size() - data_start;
  size_t max_elems = available / size;
  size_t count = 1;
  bool empty = false;
  for (int64_t dim : h.shape) empty = empty || dim == 0;
  if (!empty) {
    for (int64_t dim : h.shape) {
      if (static_cast<uint64_t>(dim) > max_elems / count)
        fail(name, ": byte ", data_start, ": truncated data: shape needs more than the ", available,
             " bytes present");
      count *= static_cast<size_t>(dim);
    }
  } else {
    count = 0;
  }
  size_t need = count * size;
  if (available != need)
    fail(name, ": byte ", data_start + std::min(need, available), ": ",
         available < need ? "truncated data" : "trailing bytes after data", ": expected ", need,
         " data bytes, found ", available);

  NpyArray out;
  out.shape = h.shape;
  out.data_offset = data_start;
  out.item_size = size;
  out.fortran = h.fortran;
  out.values.resize(count);
  const unsigned char* data = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
  if (!h.fortran || h.shape.size() < 2) {
    for (size_t i = 0; i < count; ++i) out.values[i] = load_element(data, i, size, big);
    return out;
  }
  // Fortran order: walk the file's elements in order (first index fastest) and
  // scatter each to its C-order position.
  size_t ndim = h.shape.size();
  std::vector<size_t> c_stride(ndim, 1);
  for (size_t k = ndim - 1; k > 0; --k) c_stride[k - 1] = c_stride[k] * h.shape[k];
  std::vector<int64_t> index(ndim, 0);
  size_t c_pos = 0;
  for (size_t i = 0; i < count; ++i) {
    out.values[c_pos] = load_element(data, i, size, big);
    for (size_t k = 0; k < ndim; ++k) {
      if (++index[k] < h.shape[k]) { c_pos += c_stride[k]; break; }
      c_pos -= c_stride[k] * (h.shape[k] - 1);
      index[k] = 0;
    }
  }
  return out;
}

NpyArray read_npy(const std::string& path) { return parse_npy(read_file(path), path); }

uint64_t NpyArray::byte_of(size_t c_index) const {
  size_t file_index = c_index;
  if (fortran && shape.size() >= 2) {  // C index -> multi-index (last fastest) -> Fortran index (first fastest)
    size_t rest = c_index, stride = 1;
    file_index = 0;
    std::vector<size_t> index(shape.size());
    for (size_t k = shape.size(); k-- > 0;) {
      index[k] = rest % static_cast<size_t>(shape[k]);
      rest /= static_cast<size_t>(shape[k]);
    }
    for (size_t k = 0; k < shape.size(); ++k) {
      file_index += index[k] * stride;
      stride *= static_cast<size_t>(shape[k]);
    }
  }
  return data_offset + file_index * static_cast<uint64_t>(item_size);
}

void write_npy(const std::string& path, const std::vector<int64_t>& shape, const float* values) {
  size_t count = 1;
  std::string dims;
  for (int64_t d : shape) {
    if (d < 0) fail(path, ": write_npy: negative dimension ", d);
    count *= static_cast<size_t>(d);
    dims += std::to_string(d) + ", ";
  }
  if (shape.size() == 1) dims.pop_back();            // "(n,)"
  else if (!dims.empty()) dims.resize(dims.size() - 2);  // "(a, b)"
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  // Pad with spaces so the data starts on a 64-byte boundary; the header ends in '\n'.
  size_t total = kMagicSize + 4 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 65535) fail(path, ": write_npy: shape too long for a version 1.0 header");

  std::string bytes(kMagic, kMagicSize);
  bytes += '\x01';
  bytes += '\x00';
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values), count * sizeof(float));  // little-endian host
  write_file_atomic(path, bytes);
}

}  // namespace pointnet
