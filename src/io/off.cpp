#include "io/off.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/quoted.h"

namespace pointnet {
namespace {

// Yields the meaningful lines of an OFF file: comments stripped, blank lines
// skipped, each split into whitespace-separated tokens, with its line number.
class LineReader {
 public:
  LineReader(const std::string& text, const std::string& name) : text_(text), name_(name) {}

  // Returns false at end of file.
  bool next(std::vector<std::string>& tokens) {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string::npos) end = text_.size();
      std::string line = text_.substr(pos_, end - pos_);
      pos_ = end + 1;
      ++line_;
      size_t hash = line.find('#');
      if (hash != std::string::npos) line.resize(hash);
      tokens.clear();
      size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        size_t start = i;
        while (i < line.size() && !std::isspace(static_cast<unsigned char>(line[i]))) ++i;
        if (i > start) tokens.push_back(line.substr(start, i - start));
      }
      if (!tokens.empty()) return true;
    }
    return false;
  }

  void next_or_fail(std::vector<std::string>& tokens, const std::string& expected) {
    if (!next(tokens)) fail(name_, ": line ", line_, ": unexpected end of file: expected ", expected);
  }

  [[noreturn]] void error(const std::string& what) const { fail(name_, ": line ", line_, ": ", what); }

  int64_t integer(const std::string& token, const std::string& what, int64_t max) const {
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(token.c_str(), &end, 10);
    if (token.empty() || *end != '\0' || errno == ERANGE || v < 0 || v > max)
      error("expected " + what + " (an integer in 0.." + std::to_string(max) + "), found " + quoted(token));
    return v;
  }

  float number(const std::string& token, const std::string& what) const {
    errno = 0;
    char* end = nullptr;
    float v = std::strtof(token.c_str(), &end);
    if (token.empty() || *end != '\0') error("expected " + what + " (a number), found " + quoted(token));
    if (!std::isfinite(v)) error("expected a finite " + what + ", found " + quoted(token));
    return v;
  }

 private:
  const std::string& text_;
  const std::string& name_;
  size_t pos_ = 0;
  int line_ = 0;
};

}  // namespace

Mesh parse_off(const std::string& text, const std::string& name) {
  LineReader in(text, name);
  std::vector<std::string> tok;
  in.next_or_fail(tok, "an OFF header");

  // Header keyword, possibly with the counts after it on the same line (or glued to it).
  std::string first = tok[0];
  std::string keyword;
  for (const char* k : {"CNOFF", "COFF", "NOFF", "OFF"}) {
    if (first.compare(0, std::string(k).size(), k) == 0) { keyword = k; break; }
  }
  if (keyword.empty()) in.error("expected an OFF header (OFF, COFF, NOFF or CNOFF), found " + quoted(first));
  std::vector<std::string> counts;
  if (first.size() > keyword.size()) counts.push_back(first.substr(keyword.size()));
  counts.insert(counts.end(), tok.begin() + 1, tok.end());
  if (counts.empty()) {
    in.next_or_fail(tok, "the counts line 'vertices faces edges'");
    counts = tok;
  }
  if (counts.size() < 2 || counts.size() > 3)
    in.error("expected counts 'vertices faces [edges]', found " + std::to_string(counts.size()) + " values");
  const int64_t kMaxCount = std::numeric_limits<int32_t>::max() / 3;
  int64_t nv = in.integer(counts[0], "vertex count", kMaxCount);
  int64_t nf = in.integer(counts[1], "face count", kMaxCount);

  // No reserve from the header's counts: a lying header must not allocate.
  Mesh mesh;
  mesh.path = name;
  for (int64_t v = 0; v < nv; ++v) {
    in.next_or_fail(tok, "vertex " + std::to_string(v) + " of " + std::to_string(nv));
    if (tok.size() < 3) in.error("expected 'x y z' for vertex " + std::to_string(v) + ", found " +
                                 std::to_string(tok.size()) + " values");
    for (int k = 0; k < 3; ++k) mesh.vertices.push_back(in.number(tok[k], "coordinate"));
  }
  for (int64_t f = 0; f < nf; ++f) {
    in.next_or_fail(tok, "face " + std::to_string(f) + " of " + std::to_string(nf));
    int64_t n = in.integer(tok[0], "face vertex count", kMaxCount);
    if (n < 3) in.error("expected a face with at least 3 vertices, found " + std::to_string(n));
    if (static_cast<int64_t>(tok.size()) < 1 + n)
      in.error("face declares " + std::to_string(n) + " vertices but lists " + std::to_string(tok.size() - 1));
    std::vector<int32_t> idx(n);
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = in.integer(tok[1 + k], "vertex index", kMaxCount);
      if (i >= nv) in.error("vertex index " + std::to_string(i) + " out of range: the mesh has " +
                            std::to_string(nv) + " vertices");
      idx[k] = static_cast<int32_t>(i);
    }
    for (int64_t k = 1; k + 1 < n; ++k) {  // fan around the first vertex
      mesh.triangles.push_back(idx[0]);
      mesh.triangles.push_back(idx[k]);
      mesh.triangles.push_back(idx[k + 1]);
    }
  }
  return mesh;
}

Mesh read_off(const std::string& path) { return parse_off(read_file(path), path); }

std::vector<float> sample_mesh_surface(const Mesh& mesh, int num_points, Rng& rng, std::vector<float>* normals) {
  if (num_points <= 0) fail(mesh.path, ": cannot sample ", num_points, " points: expected a positive count");
  int nt = mesh.num_triangles();
  const float* v = mesh.vertices.data();
  const int32_t* t = mesh.triangles.data();
  std::vector<double> cumulative(nt);
  std::vector<float> unit_normal(normals ? 3 * static_cast<size_t>(nt) : 0);  // (nt, 3)
  double total = 0;
  for (int i = 0; i < nt; ++i) {
    for (int k = 0; k < 3; ++k) {
      if (t[3 * i + k] < 0 || t[3 * i + k] >= mesh.num_vertices())
        fail(mesh.path, ": triangle ", i, " has vertex index ", t[3 * i + k], ": expected 0..",
             mesh.num_vertices() - 1);
    }
    const float* a = v + 3 * t[3 * i];
    const float* b = v + 3 * t[3 * i + 1];
    const float* c = v + 3 * t[3 * i + 2];
    double e1[3], e2[3];
    for (int k = 0; k < 3; ++k) { e1[k] = double(b[k]) - a[k]; e2[k] = double(c[k]) - a[k]; }
    double cx = e1[1] * e2[2] - e1[2] * e2[1];
    double cy = e1[2] * e2[0] - e1[0] * e2[2];
    double cz = e1[0] * e2[1] - e1[1] * e2[0];
    const double twice_area = std::sqrt(cx * cx + cy * cy + cz * cz);
    total += 0.5 * twice_area;
    cumulative[i] = total;
    if (normals && twice_area > 0) {  // zero-area triangles are never picked
      unit_normal[3 * i] = static_cast<float>(cx / twice_area);
      unit_normal[3 * i + 1] = static_cast<float>(cy / twice_area);
      unit_normal[3 * i + 2] = static_cast<float>(cz / twice_area);
    }
  }
  if (!(total > 0) || !std::isfinite(total))
    fail(mesh.path, ": cannot sample the surface: total area is ", total, " (", nt,
         " triangles): expected a positive finite area");

  std::vector<float> out(static_cast<size_t>(num_points) * 3);
  if (normals) normals->assign(out.size(), 0.0f);
  for (int p = 0; p < num_points; ++p) {
    // upper_bound never picks a zero-area triangle: its cumulative equals its predecessor's.
    double r = rng.uniform() * total;
    int i = static_cast<int>(std::upper_bound(cumulative.begin(), cumulative.end(), r) - cumulative.begin());
    i = std::min(i, nt - 1);
    float s = std::sqrt(rng.uniform());
    float r2 = rng.uniform();
    float wa = 1.0f - s, wb = s * (1.0f - r2), wc = s * r2;
    const float* a = v + 3 * t[3 * i];
    const float* b = v + 3 * t[3 * i + 1];
    const float* c = v + 3 * t[3 * i + 2];
    for (int k = 0; k < 3; ++k) out[3 * p + k] = wa * a[k] + wb * b[k] + wc * c[k];
    if (normals)
      for (int k = 0; k < 3; ++k) (*normals)[3 * p + k] = unit_normal[3 * i + k];
  }
  return out;
}

}  // namespace pointnet
