#include "data/synth_mesh.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet {
namespace synth {
namespace {

Vec3 sub(const Vec3& a, const Vec3& b) { return {a.x - b.x, a.y - b.y, a.z - b.z}; }

double triangle_area(const Triangle& t) {
  double ux = double(t.b.x) - t.a.x, uy = double(t.b.y) - t.a.y, uz = double(t.b.z) - t.a.z;
  double vx = double(t.c.x) - t.a.x, vy = double(t.c.y) - t.a.y, vz = double(t.c.z) - t.a.z;
  double cx = uy * vz - uz * vy, cy = uz * vx - ux * vz, cz = ux * vy - uy * vx;
  return 0.5 * std::sqrt(cx * cx + cy * cy + cz * cz);
}

double signed_area(const std::vector<Vec2>& poly) {
  double s = 0;
  for (size_t i = 0; i < poly.size(); ++i) {
    const Vec2& p = poly[i];
    const Vec2& q = poly[(i + 1) % poly.size()];
    s += double(p[0]) * q[1] - double(q[0]) * p[1];
  }
  return 0.5 * s;
}

double cross2(const Vec2& o, const Vec2& a, const Vec2& b) {
  return (double(a[0]) - o[0]) * (double(b[1]) - o[1]) - (double(a[1]) - o[1]) * (double(b[0]) - o[0]);
}

bool inside_or_on(const Vec2& p, const Vec2& a, const Vec2& b, const Vec2& c) {
  return cross2(a, b, p) >= 0 && cross2(b, c, p) >= 0 && cross2(c, a, p) >= 0;
}

// Ear clipping of a simple CCW polygon; returns index triples.
std::vector<std::array<int, 3>> triangulate(const std::vector<Vec2>& poly) {
  std::vector<int> idx(poly.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
  std::vector<std::array<int, 3>> out;
  while (idx.size() > 3) {
    bool clipped = false;
    for (size_t i = 0; i < idx.size() && !clipped; ++i) {
      int ia = idx[(i + idx.size() - 1) % idx.size()], ib = idx[i], ic = idx[(i + 1) % idx.size()];
      const Vec2 &a = poly[ia], &b = poly[ib], &c = poly[ic];
      if (cross2(a, b, c) <= 0) continue;  // reflex or collinear corner
      bool empty = true;
      for (int j : idx) {
        if (j == ia || j == ib || j == ic) continue;
        if (inside_or_on(poly[j], a, b, c)) {
          empty = false;
          break;
        }
      }
      if (!empty) continue;
      out.push_back({ia, ib, ic});
      idx.erase(idx.begin() + static_cast<long>(i));
      clipped = true;
    }
    PN_CHECK(clipped);  // a simple polygon always has an ear
  }
  out.push_back({idx[0], idx[1], idx[2]});
  return out;
}

std::vector<Vec2> ccw(std::vector<Vec2> poly) {
  if (signed_area(poly) < 0) std::reverse(poly.begin(), poly.end());
  return poly;
}

}  // namespace

Vec3 Affine::apply(const Vec3& p) const {
  return {m[0] * p.x + m[1] * p.y + m[2] * p.z + t.x, m[3] * p.x + m[4] * p.y + m[5] * p.z + t.y,
          m[6] * p.x + m[7] * p.y + m[8] * p.z + t.z};
}

Affine Affine::then_after(const Affine& o) const {
  Affine r;
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      r.m[i * 3 + j] = m[i * 3 + 0] * o.m[0 * 3 + j] + m[i * 3 + 1] * o.m[1 * 3 + j] + m[i * 3 + 2] * o.m[2 * 3 + j];
  r.t = apply(o.t);
  return r;
}

Affine Affine::translate(float x, float y, float z) {
  Affine a;
  a.t = {x, y, z};
  return a;
}

Affine Affine::scale(float sx, float sy, float sz) {
  Affine a;
  a.m = {sx, 0, 0, 0, sy, 0, 0, 0, sz};
  return a;
}

Affine Affine::rotate_x(float r) {
  float c = std::cos(r), s = std::sin(r);
  Affine a;
  a.m = {1, 0, 0, 0, c, -s, 0, s, c};
  return a;
}

Affine Affine::rotate_y(float r) {
  float c = std::cos(r), s = std::sin(r);
  Affine a;
  a.m = {c, 0, s, 0, 1, 0, -s, 0, c};
  return a;
}

Affine Affine::rotate_z(float r) {
  float c = std::cos(r), s = std::sin(r);
  Affine a;
  a.m = {c, -s, 0, s, c, 0, 0, 0, 1};
  return a;
}

Affine compose(std::initializer_list<Affine> chain) {
  Affine r;
  for (const Affine& a : chain) r = r.then_after(a);
  return r;
}

void Mesh::add_triangle(const Vec3& a, const Vec3& b, const Vec3& c, int part) {
  tris.push_back({a, b, c, part});
}

void Mesh::add_quad(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d, int part) {
  add_triangle(a, b, c, part);
  add_triangle(a, c, d, part);
}

void Mesh::add_box(const Vec3& lo, const Vec3& hi, int part, unsigned faces) {
  Vec3 p000{lo.x, lo.y, lo.z}, p100{hi.x, lo.y, lo.z}, p010{lo.x, hi.y, lo.z}, p110{hi.x, hi.y, lo.z};
  Vec3 p001{lo.x, lo.y, hi.z}, p101{hi.x, lo.y, hi.z}, p011{lo.x, hi.y, hi.z}, p111{hi.x, hi.y, hi.z};
  if (faces & kXNeg) add_quad(p000, p010, p011, p001, part);
  if (faces & kXPos) add_quad(p100, p110, p111, p101, part);
  if (faces & kYNeg) add_quad(p000, p100, p101, p001, part);
  if (faces & kYPos) add_quad(p010, p110, p111, p011, part);
  if (faces & kZNeg) add_quad(p000, p100, p110, p010, part);
  if (faces & kZPos) add_quad(p001, p101, p111, p011, part);
}

void Mesh::add_prism(const std::vector<Vec2>& outline_in, float z0, float z1, int part, bool bottom,
                     bool top) {
  PN_CHECK(outline_in.size() >= 3);
  std::vector<Vec2> outline = ccw(outline_in);
  size_t n = outline.size();
  for (size_t i = 0; i < n; ++i) {
    const Vec2& p = outline[i];
    const Vec2& q = outline[(i + 1) % n];
    add_quad({p[0], p[1], z0}, {q[0], q[1], z0}, {q[0], q[1], z1}, {p[0], p[1], z1}, part);
  }
  if (bottom || top) {
    for (const auto& t : triangulate(outline)) {
      const Vec2 &a = outline[t[0]], &b = outline[t[1]], &c = outline[t[2]];
      if (bottom) add_triangle({a[0], a[1], z0}, {b[0], b[1], z0}, {c[0], c[1], z0}, part);
      if (top) add_triangle({a[0], a[1], z1}, {b[0], b[1], z1}, {c[0], c[1], z1}, part);
    }
  }
}

void Mesh::add_loft(const std::vector<Vec2>& lower, float z0, const std::vector<Vec2>& upper, float z1,
                    int part, bool bottom, bool top) {
  PN_CHECK(lower.size() == upper.size() && lower.size() >= 3);
  size_t n = lower.size();
  for (size_t i = 0; i < n; ++i) {
    size_t j = (i + 1) % n;
    add_quad({lower[i][0], lower[i][1], z0}, {lower[j][0], lower[j][1], z0},
             {upper[j][0], upper[j][1], z1}, {upper[i][0], upper[i][1], z1}, part);
  }
  // Convex caps: fans from the first vertex.
  for (size_t i = 1; i + 1 < n; ++i) {
    if (bottom)
      add_triangle({lower[0][0], lower[0][1], z0}, {lower[i][0], lower[i][1], z0},
                   {lower[i + 1][0], lower[i + 1][1], z0}, part);
    if (top)
      add_triangle({upper[0][0], upper[0][1], z1}, {upper[i][0], upper[i][1], z1},
                   {upper[i + 1][0], upper[i + 1][1], z1}, part);
  }
}

void Mesh::add_revolution(const std::vector<Vec2>& profile, int segments, int part, float a0, float a1) {
  PN_CHECK(profile.size() >= 2 && segments >= 3);
  std::vector<float> c(segments + 1), s(segments + 1);
  for (int k = 0; k <= segments; ++k) {
    float a = a0 + (a1 - a0) * static_cast<float>(k) / static_cast<float>(segments);
    c[k] = std::cos(a);
    s[k] = std::sin(a);
  }
  for (size_t i = 0; i + 1 < profile.size(); ++i) {
    float r0 = profile[i][0], z0 = profile[i][1], r1 = profile[i + 1][0], z1 = profile[i + 1][1];
    for (int k = 0; k < segments; ++k) {
      add_quad({r0 * c[k], r0 * s[k], z0}, {r0 * c[k + 1], r0 * s[k + 1], z0},
               {r1 * c[k + 1], r1 * s[k + 1], z1}, {r1 * c[k], r1 * s[k], z1}, part);
    }
  }
}

void Mesh::append(const Mesh& other, const Affine& place) {
  tris.reserve(tris.size() + other.tris.size());
  for (const Triangle& t : other.tris) tris.push_back({place.apply(t.a), place.apply(t.b), place.apply(t.c), t.part});
}

void Mesh::transform(const Affine& place) {
  for (Triangle& t : tris) {
    t.a = place.apply(t.a);
    t.b = place.apply(t.b);
    t.c = place.apply(t.c);
  }
}

Vec3 Mesh::bbox_center() const {
  PN_CHECK(!tris.empty());
  Vec3 lo = tris[0].a, hi = tris[0].a;
  for (const Triangle& t : tris) {
    for (const Vec3* p : {&t.a, &t.b, &t.c}) {
      lo = {std::min(lo.x, p->x), std::min(lo.y, p->y), std::min(lo.z, p->z)};
      hi = {std::max(hi.x, p->x), std::max(hi.y, p->y), std::max(hi.z, p->z)};
    }
  }
  return {0.5f * (lo.x + hi.x), 0.5f * (lo.y + hi.y), 0.5f * (lo.z + hi.z)};
}

float Mesh::radius_about(const Vec3& center) const {
  float r2 = 0;
  for (const Triangle& t : tris) {
    for (const Vec3* p : {&t.a, &t.b, &t.c}) {
      Vec3 d = sub(*p, center);
      r2 = std::max(r2, d.x * d.x + d.y * d.y + d.z * d.z);
    }
  }
  return std::sqrt(r2);
}

void Mesh::normalize_unit() {
  Vec3 c = bbox_center();
  float r = radius_about(c);
  PN_CHECK(r > 0);
  float k = 1.0f / r;
  transform(compose({Affine::scale(k, k, k), Affine::translate(-c.x, -c.y, -c.z)}));
}

int Mesh::num_parts() const {
  int n = 0;
  for (const Triangle& t : tris) n = std::max(n, t.part + 1);
  return n;
}

double Mesh::part_area(int part) const {
  double a = 0;
  for (const Triangle& t : tris)
    if (t.part == part) a += triangle_area(t);
  return a;
}

void sample_surface(const Mesh& mesh, int n, Rng& rng, float* xyz, int32_t* parts) {
  PN_CHECK(n >= 0);
  const int num_parts = mesh.num_parts();
  PN_CHECK(num_parts >= 1);
  // Per part: its triangles and their cumulative areas.
  std::vector<std::vector<int>> tri_of(num_parts);
  std::vector<std::vector<double>> cdf(num_parts);
  for (size_t i = 0; i < mesh.tris.size(); ++i) {
    const Triangle& t = mesh.tris[i];
    PN_CHECK(t.part >= 0);
    double a = triangle_area(t);
    if (!(a > 0)) continue;  // degenerate (e.g. at a pole): never sampled
    double prev = cdf[t.part].empty() ? 0.0 : cdf[t.part].back();
    tri_of[t.part].push_back(static_cast<int>(i));
    cdf[t.part].push_back(prev + a);
  }
  std::vector<double> area(num_parts, 0.0);
  double total = 0;
  for (int p = 0; p < num_parts; ++p) {
    area[p] = cdf[p].empty() ? 0.0 : cdf[p].back();
    total += area[p];
  }
  PN_CHECK(total > 0);

  // Points per part: proportional to area, largest remainders first (ties: lower part).
  std::vector<int> count(num_parts, 0);
  std::vector<std::pair<double, int>> remainder;
  int given = 0;
  for (int p = 0; p < num_parts; ++p) {
    double quota = static_cast<double>(n) * area[p] / total;
    count[p] = static_cast<int>(std::floor(quota));
    given += count[p];
    remainder.push_back({quota - count[p], p});
  }
  std::stable_sort(remainder.begin(), remainder.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (int k = 0; given < n; ++k, ++given) count[remainder[k % num_parts].second] += 1;
  // Every part with a surface gets a point when there are enough points to go round.
  int nonempty = 0;
  for (int p = 0; p < num_parts; ++p) nonempty += area[p] > 0;
  if (n >= nonempty) {
    for (int p = 0; p < num_parts; ++p) {
      if (area[p] > 0 && count[p] == 0) {
        int richest = static_cast<int>(std::max_element(count.begin(), count.end()) - count.begin());
        count[richest] -= 1;
        count[p] += 1;
      }
    }
  }

  int k = 0;
  for (int p = 0; p < num_parts; ++p) {
    for (int j = 0; j < count[p]; ++j, ++k) {
      double u = static_cast<double>(rng.uniform()) * area[p];
      size_t i = static_cast<size_t>(std::upper_bound(cdf[p].begin(), cdf[p].end(), u) - cdf[p].begin());
      if (i >= cdf[p].size()) i = cdf[p].size() - 1;
      const Triangle& t = mesh.tris[tri_of[p][i]];
      float r1 = std::sqrt(rng.uniform());
      float r2 = rng.uniform();
      float wa = 1.0f - r1, wb = r1 * (1.0f - r2), wc = r1 * r2;
      xyz[3 * k + 0] = wa * t.a.x + wb * t.b.x + wc * t.c.x;
      xyz[3 * k + 1] = wa * t.a.y + wb * t.b.y + wc * t.c.y;
      xyz[3 * k + 2] = wa * t.a.z + wb * t.b.z + wc * t.c.z;
      if (parts) parts[k] = p;
    }
  }
  PN_CHECK(k == n);
  // Shuffle so that the file order says nothing about the parts.
  for (int i = n - 1; i > 0; --i) {
    int j = static_cast<int>(rng.below(static_cast<uint32_t>(i + 1)));
    for (int d = 0; d < 3; ++d) std::swap(xyz[3 * i + d], xyz[3 * j + d]);
    if (parts) std::swap(parts[i], parts[j]);
  }
}

std::vector<Vec2> regular_polygon(int n, float r, float phase) {
  std::vector<Vec2> out(n);
  for (int i = 0; i < n; ++i) {
    float a = phase + 6.28318530717958647692f * static_cast<float>(i) / static_cast<float>(n);
    out[i] = {r * std::cos(a), r * std::sin(a)};
  }
  return out;
}

std::vector<Vec2> rectangle(float x0, float y0, float x1, float y1) {
  return {{x0, y0}, {x1, y0}, {x1, y1}, {x0, y1}};
}

}  // namespace synth
}  // namespace pointnet
