// PCD reader and writer. Format:
// https://pointclouds.org/documentation/tutorials/pcd_file_format.html
// binary_compressed (pcl/io/src/pcd_io.cpp): after the header, u32
// compressed size, u32 uncompressed size, then LZF data that decodes to each
// field's values for all points in turn (field-major), fields in FIELDS order.
#include "io/pcd.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/mapped_file.h"
#include "io/append_bytes.h"
#include "io/cloud_labels.h"
#include "io/lzf.h"
#include "io/quoted.h"
#include "io/scalar_types.h"
#include "io/text_tokens.h"

namespace pointnet {
namespace {

constexpr int64_t kMaxPoints = std::numeric_limits<int32_t>::max() / 3;
constexpr size_t kMaxPointBytes = size_t{1} << 24;

// What we take from a field; the order of the enum is the order of `Header::role`.
enum Role { X, Y, Z, NX, NY, NZ, Label, kRoles };

struct Field {
  std::string name;
  size_t size = 0;
  char type = 0;
  size_t count = 1;
  ScalarType scalar = ScalarType::F32;
  size_t offset = 0;  // byte offset of the field in a point record
};

enum class Data { Ascii, Binary, Compressed };

struct Header {
  std::vector<Field> fields;
  int role[kRoles];          // index into fields, or -1
  size_t point_size = 0;     // bytes per record
  size_t values_per_point = 0;
  int64_t points = 0;
  Data data = Data::Ascii;
  size_t body_offset = 0;
  size_t body_line = 0;
};

int role_of(const std::string& name) {
  static const char* kNames[kRoles] = {"x", "y", "z", "normal_x", "normal_y", "normal_z", "label"};
  for (int r = 0; r < kRoles; ++r)
    if (name == kNames[r]) return r;
  return -1;
}

Header parse_header(std::string_view bytes, const std::string& name) {
  Header h;
  for (int& r : h.role) r = -1;
  std::vector<std::string> sizes, types, counts;
  int64_t width = -1, height = -1, points = -1;
  bool have_fields = false, have_data = false;
  size_t pos = 0, line = 0;
  std::vector<std::string_view> w;
  while (!have_data) {
    ++line;
    const size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos)
      fail(name, ": line ", line, ": unexpected end of file in the PCD header: expected a 'DATA' line");
    TextTokens tokens(bytes.substr(pos, end - pos), line);
    pos = end + 1;
    tokens.next_line(&w);
    if (w.empty() || w[0][0] == '#') continue;
    auto error = [&](const std::string& what) { fail(name, ": line ", line, ": ", what); };
    auto count_value = [&](size_t i, const char* what) -> int64_t {
      double v = -1;
      if (w.size() <= i || !parse_number(w[i], &v) || v != std::floor(v) || v < 0 || v > kMaxPoints)
        error(std::string("expected ") + what + " (an integer in 0.." + std::to_string(kMaxPoints) + ")");
      return static_cast<int64_t>(v);
    };
    const std::string key(w[0]);
    std::vector<std::string> rest(w.begin() + 1, w.end());
    if (key == "VERSION" || key == "VIEWPOINT") {
      // Nothing we need: the viewpoint is a sensor pose, not a transform to apply.
    } else if (key == "FIELDS" || key == "COLUMNS") {
      if (rest.empty()) error("expected at least one field name after FIELDS");
      for (const std::string& f : rest) {
        Field field;
        field.name = f;
        h.fields.push_back(field);
        const int r = role_of(f);
        if (r >= 0 && h.role[r] >= 0) error("field '" + f + "' listed twice");
        if (r >= 0) h.role[r] = static_cast<int>(h.fields.size() - 1);
      }
      have_fields = true;
    } else if (key == "SIZE") {
      sizes = rest;
    } else if (key == "TYPE") {
      types = rest;
    } else if (key == "COUNT") {
      counts = rest;
    } else if (key == "WIDTH") {
      width = count_value(1, "WIDTH");
    } else if (key == "HEIGHT") {
      height = count_value(1, "HEIGHT");
    } else if (key == "POINTS") {
      points = count_value(1, "POINTS");
    } else if (key == "DATA") {
      if (w.size() != 2) error("expected 'DATA ascii|binary|binary_compressed'");
      if (w[1] == "ascii") h.data = Data::Ascii;
      else if (w[1] == "binary") h.data = Data::Binary;
      else if (w[1] == "binary_compressed") h.data = Data::Compressed;
      else error("unknown DATA '" + std::string(w[1]) + "': expected ascii, binary or binary_compressed");
      have_data = true;
    } else {
      error("unknown PCD header keyword " + quoted(key));
    }
    if (have_data) {
      // Per-field layout, now that every line before DATA has been seen.
      if (!have_fields) error("PCD header has no FIELDS line");
      const size_t nf = h.fields.size();
      if (sizes.size() != nf || types.size() != nf || (!counts.empty() && counts.size() != nf))
        error("FIELDS lists " + std::to_string(nf) + " fields but SIZE lists " + std::to_string(sizes.size()) +
              ", TYPE " + std::to_string(types.size()) + ", COUNT " + std::to_string(counts.size()));
      for (size_t f = 0; f < nf; ++f) {
        Field& field = h.fields[f];
        double size = 0, count = 1;
        if (!parse_number(sizes[f], &size) || (size != 1 && size != 2 && size != 4 && size != 8))
          error("field '" + field.name + "' SIZE '" + sizes[f] + "': expected 1, 2, 4 or 8");
        field.size = static_cast<size_t>(size);
        field.type = types[f].size() == 1 ? types[f][0] : '?';
        if (!pcd_scalar_type(field.type, field.size, &field.scalar))
          error("field '" + field.name + "' has TYPE '" + types[f] + "' with SIZE " + sizes[f] +
                ": expected F (4 or 8), I or U (1, 2, 4 or 8)");
        if (!counts.empty() && (!parse_number(counts[f], &count) || count != std::floor(count) || count < 1 ||
                                count > 1 << 20))
          error("field '" + field.name + "' COUNT '" + counts[f] + "': expected an integer in 1..1048576");
        field.count = static_cast<size_t>(count);
        if (role_of(field.name) >= 0 && field.count != 1)
          error("field '" + field.name + "' has COUNT " + counts[f] + ": expected 1");
        field.offset = h.point_size;
        h.point_size += field.size * field.count;
        h.values_per_point += field.count;
        if (h.point_size > kMaxPointBytes)  // keeps POINTS x record size far from overflow
          error("a point record of more than " + std::to_string(kMaxPointBytes) + " bytes");
      }
      if (h.role[X] < 0 || h.role[Y] < 0 || h.role[Z] < 0) error("PCD FIELDS lack x, y or z");
      if (width < 0 && points < 0) error("PCD header has neither WIDTH nor POINTS");
      if (height < 0) height = 1;
      if (width >= 0 && width * height > kMaxPoints) error("WIDTH x HEIGHT is beyond " + std::to_string(kMaxPoints));
      if (width >= 0 && points >= 0 && points != width * height)
        error("POINTS " + std::to_string(points) + " differs from WIDTH x HEIGHT = " +
              std::to_string(width) + " x " + std::to_string(height));
      h.points = points >= 0 ? points : width * height;
    }
  }
  h.body_offset = pos;
  h.body_line = line + 1;
  return h;
}

// One field's values for all points: point i's value is at base + i * stride.
struct Column {
  const unsigned char* base;
  size_t stride;
  ScalarType type;
};

// Collects the valid points, one at a time, so no format needs a second
// copy of the data. `v` holds a point's value for each role present.
class Assembler {
 public:
  Assembler(const Header& h, const std::string& name) : h_(h), name_(name) {
    normals_ = h.role[NX] >= 0 && h.role[NY] >= 0 && h.role[NZ] >= 0;
    labels_ = h.role[Label] >= 0;
    cloud_.xyz.reserve(3 * h.points);
    if (normals_) cloud_.normals.reserve(3 * h.points);
    if (labels_) cloud_.labels.reserve(h.points);
  }

  // `where` names the point's position for errors ("byte 120", "line 14").
  template <class Where>
  void add(const double (&v)[kRoles], int64_t i, Where where) {
    float p[6];
    bool finite = true;
    for (int k = 0; k < (normals_ ? 6 : 3); ++k) {
      p[k] = to_float(v[k]);
      finite = finite && std::isfinite(p[k]);
    }
    if (!finite) {
      ++dropped_;
      return;
    }
    cloud_.xyz.insert(cloud_.xyz.end(), p, p + 3);
    if (normals_) cloud_.normals.insert(cloud_.normals.end(), p + 3, p + 6);
    if (labels_) {
      // Labels are part numbers, as the text reader takes them: whole and non-negative.
      const double l = v[Label];
      if (!(l == std::floor(l)) || l < 0 || l > std::numeric_limits<int32_t>::max())
        fail(name_, ": ", where(), ": label ", l, " of point ", i, ": expected a non-negative integer in int32 range");
      cloud_.labels.push_back(static_cast<int32_t>(l));
    }
  }

  Cloud finish(size_t* dropped) {
    if (dropped) *dropped = dropped_;
    if (cloud_.xyz.empty())
      fail(name_, ": no valid points: ", h_.points, " points in the file, ", dropped_,
           " dropped for non-finite coordinates or normals");
    return std::move(cloud_);
  }

 private:
  const Header& h_;
  const std::string& name_;
  bool normals_ = false, labels_ = false;
  Cloud cloud_;
  size_t dropped_ = 0;
};

// Fields stored as columns (binary: interleaved records; compressed: one block per field).
void read_columns(const Header& h, const std::vector<Column>& cols, Assembler& out,
                  const char* where_prefix, size_t base, size_t point_stride) {
  double v[kRoles] = {};
  for (int64_t i = 0; i < h.points; ++i) {
    for (int r = 0; r < kRoles; ++r) {
      if (h.role[r] < 0) continue;
      const Column& c = cols[h.role[r]];
      v[r] = load_scalar(c.base + i * c.stride, c.type, false);
    }
    out.add(v, i, [&] { return where_prefix + std::to_string(base + i * point_stride); });
  }
}

Cloud read_binary(const Header& h, std::string_view body, const std::string& name, size_t* dropped) {
  const uint64_t need = static_cast<uint64_t>(h.points) * h.point_size;  // < 2^31 * 2^24: no overflow
  if (body.size() < need)
    fail(name, ": byte ", h.body_offset + body.size(), ": unexpected end of data: POINTS ", h.points, " x ",
         h.point_size, " bytes = ", need, " bytes expected after the header, found ", body.size());
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  std::vector<Column> cols;
  for (const Field& f : h.fields) cols.push_back({p + f.offset, h.point_size, f.scalar});
  Assembler out(h, name);
  read_columns(h, cols, out, "byte ", h.body_offset, h.point_size);
  return out.finish(dropped);
}

Cloud read_compressed(const Header& h, std::string_view body, const std::string& name, size_t* dropped) {
  if (body.size() < 8)
    fail(name, ": byte ", h.body_offset, ": unexpected end of data: expected the compressed and uncompressed sizes");
  const auto* p = reinterpret_cast<const unsigned char*>(body.data());
  const uint32_t csize = static_cast<uint32_t>(load_scalar(p, ScalarType::U32, false));
  const uint32_t usize = static_cast<uint32_t>(load_scalar(p + 4, ScalarType::U32, false));
  // PCL leaves '_' padding fields out of the compressed data.
  size_t packed_point_size = 0;
  for (const Field& f : h.fields)
    if (f.name != "_") packed_point_size += f.size * f.count;
  const uint64_t need = static_cast<uint64_t>(h.points) * packed_point_size;
  if (usize != need)
    fail(name, ": byte ", h.body_offset + 4, ": uncompressed size ", usize, ": expected POINTS ", h.points, " x ",
         packed_point_size, " bytes = ", need);
  if (csize > body.size() - 8)
    fail(name, ": byte ", h.body_offset, ": compressed size ", csize, " but only ", body.size() - 8,
         " bytes follow");
  // One LZF token of 3 bytes yields at most 264: a larger claim is a lie, not worth allocating for.
  if (usize / 88 > csize)
    fail(name, ": byte ", h.body_offset + 4, ": uncompressed size ", usize, " cannot come from ", csize,
         " bytes of LZF data");
  std::vector<unsigned char> raw(usize);
  lzf_decompress(p + 8, csize, raw.data(), raw.size(), name, h.body_offset + 8);
  std::vector<Column> cols;
  size_t block = 0;  // start of the field's values for all points
  for (const Field& f : h.fields) {
    cols.push_back({raw.data() + block, f.size * f.count, f.scalar});
    if (f.name != "_") block += h.points * f.size * f.count;
  }
  // Positions in the decoded data: point i's first field.
  Assembler out(h, name);
  read_columns(h, cols, out, "decompressed byte ", 0, h.points ? h.fields[0].size * h.fields[0].count : 0);
  return out.finish(dropped);
}

Cloud read_ascii(const Header& h, std::string_view body, const std::string& name, size_t* dropped) {
  // Only the fields we use are parsed; the others are checked by count.
  std::vector<size_t> column(kRoles, 0);  // token index of each role's value
  for (int r = 0; r < kRoles; ++r) {
    if (h.role[r] < 0) continue;
    for (int f = 0; f < h.role[r]; ++f) column[r] += h.fields[f].count;
  }
  if (static_cast<uint64_t>(h.points) > body.size() / 2 + 1)
    fail(name, ": line ", h.body_line, ": POINTS ", h.points, " but the data is too short to hold them");
  Assembler out(h, name);
  TextTokens lines(body, h.body_line);
  std::vector<std::string_view> tok;
  double v[kRoles] = {};
  for (int64_t i = 0; i < h.points; ++i) {
    if (!lines.next_line(&tok))
      fail(name, ": line ", lines.line(), ": unexpected end of data: expected point ", i, " of POINTS ", h.points);
    if (tok.size() != h.values_per_point)
      fail(name, ": line ", lines.line(), ": point ", i, " has ", tok.size(), " values: expected ",
           h.values_per_point);
    for (int r = 0; r < kRoles; ++r) {
      if (h.role[r] < 0) continue;
      // PCL writes "nan" for missing points, which parse_number accepts.
      if (!parse_number(tok[column[r]], &v[r], h.fields[h.role[r]].scalar == ScalarType::F32))
        fail(name, ": line ", lines.line(), ": field '", h.fields[h.role[r]].name, "' of point ", i,
             ": expected a number, found ", quoted(tok[column[r]]));
    }
    out.add(v, i, [&] { return "line " + std::to_string(lines.line()); });
  }
  return out.finish(dropped);
}

}  // namespace

Cloud parse_pcd(std::string_view bytes, const std::string& name, size_t* dropped) {
  const Header h = parse_header(bytes, name);
  const std::string_view body = bytes.substr(h.body_offset);
  if (h.data == Data::Ascii) return read_ascii(h, body, name, dropped);
  if (h.data == Data::Binary) return read_binary(h, body, name, dropped);
  return read_compressed(h, body, name, dropped);
}

Cloud read_pcd(const std::string& path, size_t* dropped) {
  MappedFile file(path);
  return parse_pcd(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()), path, dropped);
}

void write_pcd(const std::string& path, const Cloud& cloud, PcdEncoding encoding) {
  const size_t n = cloud.xyz.size() / 3;
  const bool normals = !cloud.normals.empty(), labels = !cloud.labels.empty();
  PN_CHECK(cloud.xyz.size() == 3 * n && (!normals || cloud.normals.size() == 3 * n) &&
           (!labels || cloud.labels.size() == n));
  check_labels(path, cloud.labels);
  // Columns: xyz, then normals, then the label (stored as its 4 bytes).
  std::vector<const float*> float_cols;
  for (int k = 0; k < 3; ++k) float_cols.push_back(cloud.xyz.data() + k);
  for (int k = 0; normals && k < 3; ++k) float_cols.push_back(cloud.normals.data() + k);

  std::string out = "# .PCD v0.7 - Point Cloud Data file format (written by pointnet)\nVERSION 0.7\nFIELDS x y z";
  std::string size = "SIZE 4 4 4", type = "TYPE F F F", count = "COUNT 1 1 1";
  if (normals) {
    out += " normal_x normal_y normal_z";
    size += " 4 4 4", type += " F F F", count += " 1 1 1";
  }
  if (labels) {
    out += " label";
    size += " 4", type += " U", count += " 1";
  }
  const char* data = encoding == PcdEncoding::Ascii    ? "ascii"
                     : encoding == PcdEncoding::Binary ? "binary"
                                                       : "binary_compressed";
  out += "\n" + size + "\n" + type + "\n" + count + "\nWIDTH " + std::to_string(n) +
         "\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS " + std::to_string(n) + "\nDATA " + data + "\n";
  if (encoding == PcdEncoding::Ascii) {
    for (size_t i = 0; i < n; ++i) {
      for (size_t c = 0; c < float_cols.size(); ++c) {
        if (c) out.push_back(' ');
        append_text(out, float_cols[c][3 * i]);
      }
      if (labels) {
        out.push_back(' ');
        append_text(out, cloud.labels[i]);
      }
      out.push_back('\n');
    }
  } else if (encoding == PcdEncoding::Binary) {
    for (size_t i = 0; i < n; ++i) {
      for (const float* col : float_cols) append_f32_le(out, col[3 * i]);
      if (labels) append_u32_le(out, static_cast<uint32_t>(cloud.labels[i]));
    }
  } else {
    std::string raw;
    raw.reserve(n * 4 * (float_cols.size() + labels));
    for (const float* col : float_cols)
      for (size_t i = 0; i < n; ++i) append_f32_le(raw, col[3 * i]);
    for (size_t i = 0; labels && i < n; ++i) append_u32_le(raw, static_cast<uint32_t>(cloud.labels[i]));
    if (raw.size() > UINT32_MAX) fail(path, ": cloud too large for binary_compressed (", raw.size(), " bytes)");
    const std::string packed = lzf_compress(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
    append_u32_le(out, static_cast<uint32_t>(packed.size()));
    append_u32_le(out, static_cast<uint32_t>(raw.size()));
    out += packed;
  }
  write_file_atomic(path, out);
}

}  // namespace pointnet
