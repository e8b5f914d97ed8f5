// PLY reader and writer. Format: http://paulbourke.net/dataformats/ply/
// The header declares elements (name, count) and their properties in file
// order; the body holds every instance of every element, in that order.
#include "io/ply.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <vector>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/quoted.h"
#include "core/mapped_file.h"
#include "core/rng.h"
#include "io/append_bytes.h"
#include "io/cloud_labels.h"
#include "io/off.h"
#include "io/scalar_types.h"
#include "io/text_tokens.h"

namespace pointnet {
namespace {

enum class Role { Skip, X, Y, Z, NX, NY, NZ, Label };
enum class Format { Ascii, LittleEndian, BigEndian };

struct Property {
  std::string name;
  ScalarType type = ScalarType::F32;  // the list items' type for lists
  bool is_list = false;
  ScalarType count_type = ScalarType::U8;
  Role role = Role::Skip;
  bool face_indices = false;
};

struct Element {
  std::string name;
  int64_t count = 0;
  std::vector<Property> props;
};

struct Header {
  Format format = Format::Ascii;
  std::vector<Element> elements;
  size_t body_offset = 0;  // byte offset of the body in the file
  size_t body_line = 0;    // line number the body starts on (ascii)
};

// At most this many vertices, faces, triangles: int32 indices, (n, 3) arrays.
constexpr int64_t kMaxCount = std::numeric_limits<int32_t>::max() / 3;

Role vertex_role(const std::string& name) {
  if (name == "x") return Role::X;
  if (name == "y") return Role::Y;
  if (name == "z") return Role::Z;
  if (name == "nx" || name == "normal_x") return Role::NX;
  if (name == "ny" || name == "normal_y") return Role::NY;
  if (name == "nz" || name == "normal_z") return Role::NZ;
  for (const char* l : {"label", "scalar_label", "class", "class_id", "category", "semantic", "segment"})
    if (name == l) return Role::Label;
  return Role::Skip;
}

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
    const size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
    if (i > start) words.emplace_back(line.substr(start, i - start));
  }
  return words;
}

Header parse_header(std::string_view bytes, const std::string& name) {
  Header h;
  size_t pos = 0, line = 0;
  bool have_format = false;
  for (;;) {
    ++line;
    const size_t end = bytes.find('\n', pos);
    if (end == std::string_view::npos)
      fail(name, ": line ", line, ": unexpected end of file in the PLY header: expected 'end_header'");
    const std::vector<std::string> w = split_words(bytes.substr(pos, end - pos));
    pos = end + 1;
    auto error = [&](const std::string& what) { fail(name, ": line ", line, ": ", what); };
    if (line == 1) {
      if (w.size() != 1 || w[0] != "ply") error("expected the PLY magic line 'ply'");
      continue;
    }
    if (w.empty()) continue;
    const std::string& key = w[0];
    if (key == "comment" || key == "obj_info") continue;
    if (key == "end_header") break;
    if (key == "format") {
      if (w.size() != 3) error("expected 'format ascii|binary_little_endian|binary_big_endian 1.0'");
      if (w[1] == "ascii") h.format = Format::Ascii;
      else if (w[1] == "binary_little_endian") h.format = Format::LittleEndian;
      else if (w[1] == "binary_big_endian") h.format = Format::BigEndian;
      else error("unknown PLY format '" + w[1] + "': expected ascii, binary_little_endian or binary_big_endian");
      have_format = true;
    } else if (key == "element") {
      double count = -1;
      if (w.size() != 3 || !parse_number(w[2], &count) || count != std::floor(count) || count < 0 ||
          count > kMaxCount)
        error("expected 'element <name> <count>' with a count in 0.." + std::to_string(kMaxCount));
      for (const Element& e : h.elements)
        if (e.name == w[1]) error("element '" + w[1] + "' declared twice");
      h.elements.push_back({w[1], static_cast<int64_t>(count), {}});
    } else if (key == "property") {
      if (h.elements.empty()) error("'property' before any 'element'");
      Element& e = h.elements.back();
      Property p;
      if (w.size() == 5 && w[1] == "list") {
        p.is_list = true;
        if (!ply_scalar_type(w[2], &p.count_type) || scalar_is_float(p.count_type))
          error("list count type '" + w[2] + "': expected an integer PLY type");
        if (!ply_scalar_type(w[3], &p.type)) error("unknown PLY type '" + w[3] + "'");
        p.name = w[4];
      } else if (w.size() == 3) {
        if (!ply_scalar_type(w[1], &p.type)) error("unknown PLY type '" + w[1] + "'");
        p.name = w[2];
      } else {
        error("expected 'property <type> <name>' or 'property list <count type> <item type> <name>'");
      }
      if (e.name == "vertex") {
        p.role = vertex_role(p.name);
        if (p.role != Role::Skip && p.is_list)
          error("vertex property '" + p.name + "' is a list: expected a scalar");
        for (const Property& q : e.props)
          if (q.role != Role::Skip && q.role == p.role) p.role = Role::Skip;  // first one wins
      } else if (e.name == "face" && p.is_list && (p.name == "vertex_indices" || p.name == "vertex_index")) {
        if (scalar_is_float(p.type)) error("face vertex indices of type '" + w[3] + "': expected an integer type");
        p.face_indices = true;
      }
      e.props.push_back(p);
    } else {
      error("unknown PLY header keyword '" + key + "'");
    }
  }
  if (!have_format) fail(name, ": PLY header has no 'format' line");
  h.body_offset = pos;
  h.body_line = line + 1;
  return h;
}

// A value as a message shows it: "3", not std::to_string's "3.000000", and
// "4294967295", not the stream's "4.29497e+09".
std::string number_text(double v) {
  if (v == std::floor(v) && std::fabs(v) < 9e15) return std::to_string(static_cast<int64_t>(v));
  std::ostringstream os;
  os << v;
  return os.str();
}

// Names the value being read, for errors: "element vertex 3 property 'x'".
std::string where(const Element& e, int64_t i, const Property& p) {
  return "element " + e.name + " " + std::to_string(i) + " property '" + p.name + "'";
}

class BinaryReader {
 public:
  BinaryReader(std::string_view body, size_t base, bool big_endian, const std::string& name)
      : p_(reinterpret_cast<const unsigned char*>(body.data())), n_(body.size()), base_(base),
        big_(big_endian), name_(name) {}

  double read(ScalarType t, const Element& e, int64_t i, const Property& p) {
    need(scalar_size(t), e, i, p);
    const double v = load_scalar(p_ + pos_, t, big_);
    value_at_ = pos_;
    pos_ += scalar_size(t);
    return v;
  }
  void skip(ScalarType t, const Element& e, int64_t i, const Property& p) {
    need(scalar_size(t), e, i, p);
    pos_ += scalar_size(t);
  }
  // A list of `count` items must fit in what is left.
  void check_list(double count, const Element& e, int64_t i, const Property& p) {
    if (count > static_cast<double>((n_ - pos_) / scalar_size(p.type)))
      fail(name_, ": byte ", base_ + pos_, ": ", where(e, i, p), " declares ", count, " items of ",
           scalar_size(p.type), " bytes but only ", n_ - pos_, " bytes remain");
  }
  // An element's instances must fit (each needs at least its fixed bytes).
  void check_room(const Element& e) {
    size_t min_bytes = 0;
    for (const Property& p : e.props) min_bytes += scalar_size(p.is_list ? p.count_type : p.type);
    if (min_bytes && static_cast<uint64_t>(e.count) > (n_ - pos_) / min_bytes)
      fail(name_, ": byte ", base_ + pos_, ": element ", e.name, " declares ", e.count, " instances of at least ",
           min_bytes, " bytes but only ", n_ - pos_, " bytes remain");
  }
  // About the value read last: names the byte it starts at.
  [[noreturn]] void error(const std::string& what) const { fail(name_, ": byte ", base_ + value_at_, ": ", what); }
  void end_instance() {}  // binary rows have no line ends to check

 private:
  void need(size_t bytes, const Element& e, int64_t i, const Property& p) const {
    if (bytes > n_ - pos_)
      fail(name_, ": byte ", base_ + pos_, ": unexpected end of data: expected ", where(e, i, p));
  }
  const unsigned char* p_;
  size_t n_, pos_ = 0, value_at_ = 0, base_;
  bool big_;
  const std::string& name_;
};

class AsciiReader {
 public:
  AsciiReader(std::string_view body, size_t first_line, const std::string& name)
      : tokens_(body, first_line), size_(body.size()), name_(name) {}

  double read(ScalarType t, const Element& e, int64_t i, const Property& p) {
    std::string_view tok;
    if (!tokens_.next(&tok))
      fail(name_, ": line ", tokens_.line(), ": unexpected end of data: expected ", where(e, i, p));
    // One instance per line: a value on the previous instance's line is one too
    // many there; one on a later line means this instance's line was short.
    if (row_line_ == 0) {
      if (tokens_.line() == last_row_line_)
        fail(name_, ": line ", tokens_.line(), ": more values than the header declares for one ", e.name,
             " (expected one ", e.name, " per line)");
      row_line_ = tokens_.line();
    } else if (tokens_.line() != row_line_) {
      fail(name_, ": line ", row_line_, ": fewer values than the header declares: ", where(e, i, p),
           " is missing (expected one ", e.name, " per line)");
    }
    double v = 0;
    if (!parse_number(tok, &v, t == ScalarType::F32) || (!scalar_is_float(t) && v != std::floor(v)))
      fail(name_, ": line ", tokens_.line(), ": expected ", scalar_is_float(t) ? "a number" : "an integer",
           " for ", where(e, i, p), ", found ", quoted(tok));
    return v;
  }
  void skip(ScalarType t, const Element& e, int64_t i, const Property& p) { read(t, e, i, p); }
  void check_list(double, const Element&, int64_t, const Property&) {}  // tokens run out first
  // Each value takes at least one character and one separator.
  void check_room(const Element& e) {
    if (!e.props.empty() && static_cast<uint64_t>(e.count) > size_ / 2 / e.props.size() + 1)
      fail(name_, ": line ", tokens_.line(), ": element ", e.name, " declares ", e.count,
           " instances but the file is too short to hold them");
  }
  [[noreturn]] void error(const std::string& what) const { fail(name_, ": line ", tokens_.line(), ": ", what); }
  void end_instance() {
    if (row_line_) last_row_line_ = row_line_;
    row_line_ = 0;
  }
  // After the last element: nothing but blank lines may follow.
  void finish() {
    std::string_view tok;
    if (tokens_.next(&tok))
      fail(name_, ": line ", tokens_.line(), ": unexpected data after the last element: ", quoted(tok));
  }

 private:
  size_t row_line_ = 0, last_row_line_ = 0;  // line of the instance being read / of the last one read
  TextTokens tokens_;
  size_t size_;
  const std::string& name_;
};

struct PlyData {
  std::vector<float> xyz, normals;
  std::vector<int32_t> labels;
  std::vector<int32_t> triangles;
  bool has_normals = false, has_labels = false, has_faces = false;
};

// A coordinate or normal as float, refused where it stands (line or byte) when
// it is NaN, infinite, or beyond float range.
template <class Reader>
float finite_float(const Reader& r, double v, const Element& e, int64_t i, const Property& p) {
  const float f = to_float(v);
  if (!std::isfinite(f))
    r.error(where(e, i, p) + " is " + number_text(v) + ": expected a finite number" +
            (std::isfinite(v) ? " within float range" : ""));
  return f;
}

template <class Reader>
void read_body(const Header& h, Reader& r, PlyData& out) {
  const Element* vertex = nullptr;
  for (const Element& e : h.elements)
    if (e.name == "vertex") vertex = &e;
  const int64_t nv = vertex->count;
  std::vector<int64_t> face;
  for (const Element& e : h.elements) {
    if (e.props.empty() || e.count == 0) continue;
    r.check_room(e);
    const bool is_vertex = &e == vertex;
    if (is_vertex) {
      out.xyz.assign(3 * nv, 0.0f);
      if (out.has_normals) out.normals.assign(3 * nv, 0.0f);
      if (out.has_labels) out.labels.assign(nv, 0);
    }
    for (int64_t i = 0; i < e.count; ++i) {
      for (const Property& p : e.props) {
        if (p.is_list) {
          const double count = r.read(p.count_type, e, i, p);
          if (count < 0 || count > kMaxCount)
            r.error(where(e, i, p) + ": list count " + number_text(count) + ": expected 0.." +
                    std::to_string(kMaxCount));
          r.check_list(count, e, i, p);
          const int64_t c = static_cast<int64_t>(count);
          if (!p.face_indices) {
            for (int64_t k = 0; k < c; ++k) r.skip(p.type, e, i, p);
            continue;
          }
          if (c < 3) r.error("face " + std::to_string(i) + " has " + std::to_string(c) + " vertices: expected at least 3");
          face.clear();  // grown as indices are read: an ascii count is not checked against the data up front
          for (int64_t k = 0; k < c; ++k) {
            const double v = r.read(p.type, e, i, p);
            if (v < 0 || v >= nv)
              r.error("face " + std::to_string(i) + " vertex index " + number_text(v) +
                      " out of range: the file has " + std::to_string(nv) + " vertices");
            face.push_back(static_cast<int64_t>(v));
          }
          if (out.triangles.size() / 3 + (c - 2) > static_cast<uint64_t>(kMaxCount))
            r.error("more than " + std::to_string(kMaxCount) + " triangles");
          for (int64_t k = 1; k + 1 < c; ++k) {  // fan around the first vertex, as for .off
            out.triangles.push_back(static_cast<int32_t>(face[0]));
            out.triangles.push_back(static_cast<int32_t>(face[k]));
            out.triangles.push_back(static_cast<int32_t>(face[k + 1]));
          }
          out.has_faces = true;
        } else if (!is_vertex || p.role == Role::Skip) {
          r.skip(p.type, e, i, p);
        } else {
          const double v = r.read(p.type, e, i, p);
          switch (p.role) {
            case Role::X: case Role::Y: case Role::Z:
              out.xyz[3 * i + (static_cast<int>(p.role) - static_cast<int>(Role::X))] = finite_float(r, v, e, i, p);
              break;
            case Role::NX: case Role::NY: case Role::NZ:
              if (out.has_normals)
                out.normals[3 * i + (static_cast<int>(p.role) - static_cast<int>(Role::NX))] =
                    finite_float(r, v, e, i, p);
              break;
            case Role::Label:
              // Labels are part numbers, as the text reader takes them: whole and non-negative.
              if (v != std::floor(v) || v < 0 || v > std::numeric_limits<int32_t>::max())
                r.error(where(e, i, p) + " is " + number_text(v) + ": expected a non-negative integer label");
              out.labels[i] = static_cast<int32_t>(v);
              break;
            case Role::Skip: break;
          }
        }
      }
      r.end_instance();
    }
  }
}

}  // namespace

Cloud parse_ply(std::string_view bytes, const std::string& name, const CloudReadOptions& options) {
  const Header h = parse_header(bytes, name);
  const Element* vertex = nullptr;
  for (const Element& e : h.elements)
    if (e.name == "vertex") vertex = &e;
  if (!vertex) fail(name, ": PLY header declares no 'vertex' element");
  bool roles[8] = {};
  for (const Property& p : vertex->props) roles[static_cast<int>(p.role)] = true;
  if (!roles[int(Role::X)] || !roles[int(Role::Y)] || !roles[int(Role::Z)])
    fail(name, ": PLY vertex element lacks x, y or z");
  PlyData data;
  data.has_normals = roles[int(Role::NX)] && roles[int(Role::NY)] && roles[int(Role::NZ)];
  data.has_labels = roles[int(Role::Label)];
  for (const Element& e : h.elements) {
    bool indexed = false;
    for (const Property& p : e.props) indexed = indexed || p.face_indices;
    if (e.name == "face" && e.count > 0 && !indexed)
      fail(name, ": PLY face element has no 'vertex_indices' (or 'vertex_index') list property");
  }

  const std::string_view body = bytes.substr(h.body_offset);
  if (h.format == Format::Ascii) {
    AsciiReader r(body, h.body_line, name);
    read_body(h, r, data);
    r.finish();
  } else {
    BinaryReader r(body, h.body_offset, h.format == Format::BigEndian, name);
    read_body(h, r, data);
  }

  Cloud cloud;
  if (data.has_faces) {
    Mesh mesh;
    mesh.path = name;
    mesh.vertices = std::move(data.xyz);
    mesh.triangles = std::move(data.triangles);
    Rng rng(options.seed);
    cloud.xyz = sample_mesh_surface(mesh, options.mesh_points, rng, &cloud.normals);
    return cloud;
  }
  cloud.xyz = std::move(data.xyz);
  cloud.normals = std::move(data.normals);
  cloud.labels = std::move(data.labels);
  return cloud;
}

Cloud read_ply(const std::string& path, const CloudReadOptions& options) {
  MappedFile file(path);
  return parse_ply(std::string_view(reinterpret_cast<const char*>(file.data()), file.size()), path, options);
}

void write_ply(const std::string& path, const Cloud& cloud, PlyEncoding encoding) {
  const size_t n = cloud.xyz.size() / 3;
  const bool normals = !cloud.normals.empty(), labels = !cloud.labels.empty();
  PN_CHECK(cloud.xyz.size() == 3 * n && (!normals || cloud.normals.size() == 3 * n) &&
           (!labels || cloud.labels.size() == n));
  check_labels(path, cloud.labels);
  const bool binary = encoding == PlyEncoding::BinaryLittleEndian;
  std::string out = std::string("ply\nformat ") + (binary ? "binary_little_endian" : "ascii") +
                    " 1.0\ncomment written by pointnet\nelement vertex " + std::to_string(n) +
                    "\nproperty float x\nproperty float y\nproperty float z\n";
  if (normals) out += "property float nx\nproperty float ny\nproperty float nz\n";
  if (labels) out += "property int label\n";
  out += "end_header\n";
  out.reserve(out.size() + n * (binary ? 28 : 80));
  for (size_t i = 0; i < n; ++i) {
    for (int pass = 0; pass < (normals ? 2 : 1); ++pass) {
      const float* v = (pass == 0 ? cloud.xyz.data() : cloud.normals.data()) + 3 * i;
      for (int k = 0; k < 3; ++k) {
        if (binary) {
          append_f32_le(out, v[k]);
        } else {
          if (pass || k) out.push_back(' ');
          append_text(out, v[k]);
        }
      }
    }
    if (labels) {
      if (binary) {
        append_u32_le(out, static_cast<uint32_t>(cloud.labels[i]));
      } else {
        out.push_back(' ');
        append_text(out, cloud.labels[i]);
      }
    }
    if (!binary) out.push_back('\n');
  }
  write_file_atomic(path, out);
}

}  // namespace pointnet
