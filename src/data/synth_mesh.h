// Triangle meshes for the procedural datasets (data/synth.h): a few builders
// (box, prism, loft, surface of revolution), affine placement, and area-weighted
// surface sampling, so every synthetic shape has uniform point density however
// it was scaled. Internal to the synth module.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace pointnet {
namespace synth {

struct Vec3 {
  float x = 0, y = 0, z = 0;
};

using Vec2 = std::array<float, 2>;  // (x, y) of an outline, or (radius, z) of a profile

// y = m x + t, m row-major 3x3.
struct Affine {
  std::array<float, 9> m{1, 0, 0, 0, 1, 0, 0, 0, 1};
  Vec3 t{};

  Vec3 apply(const Vec3& p) const;
  // (this * other)(p) = this(other(p)): `other` acts first.
  Affine then_after(const Affine& other) const;

  static Affine identity() { return Affine{}; }
  static Affine translate(float x, float y, float z);
  static Affine scale(float sx, float sy, float sz);
  static Affine rotate_x(float radians);
  static Affine rotate_y(float radians);
  static Affine rotate_z(float radians);
};

// Composes right to left: compose({A, B, C}) = A(B(C(p))).
Affine compose(std::initializer_list<Affine> chain);

struct Triangle {
  Vec3 a, b, c;
  int part = 0;  // 0-based part index
};

class Mesh {
 public:
  std::vector<Triangle> tris;

  void add_triangle(const Vec3& a, const Vec3& b, const Vec3& c, int part);
  // Quad a-b-c-d in order (two triangles a-b-c, a-c-d).
  void add_quad(const Vec3& a, const Vec3& b, const Vec3& c, const Vec3& d, int part);

  // Face bits for add_box: which of the six faces to emit (hidden faces can be left out).
  enum Face : unsigned { kXNeg = 1, kXPos = 2, kYNeg = 4, kYPos = 8, kZNeg = 16, kZPos = 32, kAll = 63 };
  // Axis-aligned box [lo, hi].
  void add_box(const Vec3& lo, const Vec3& hi, int part, unsigned faces = kAll);

  // A simple polygon in the xy-plane (either winding) extruded from z0 to z1:
  // side walls plus bottom/top caps (triangulated by ear clipping).
  void add_prism(const std::vector<Vec2>& outline, float z0, float z1, int part, bool bottom = true,
                 bool top = true);

  // Loft between two convex polygons with the same vertex count, `lower` at z0 and
  // `upper` at z1: sides plus caps. An upper polygon shrunk to a point gives a pyramid.
  void add_loft(const std::vector<Vec2>& lower, float z0, const std::vector<Vec2>& upper, float z1,
                int part, bool bottom = true, bool top = true);

  // Surface swept by a polyline of (radius, z) points rotated about the z axis from
  // angle a0 to a1 (radians) in `segments` steps. Points on the axis (radius 0)
  // give degenerate triangles of zero area, which are never sampled.
  void add_revolution(const std::vector<Vec2>& profile, int segments, int part, float a0 = 0.0f,
                      float a1 = 6.28318530717958647692f);

  // Appends `other` with every vertex mapped through `place`.
  void append(const Mesh& other, const Affine& place);
  void transform(const Affine& place);

  // Centre of the vertices' bounding box, and the largest vertex distance from it
  // (the bounding radius of the surface, since faces are convex hulls of vertices).
  Vec3 bbox_center() const;
  float radius_about(const Vec3& center) const;
  // Moves the bounding-box centre to the origin and scales the bounding radius to 1.
  void normalize_unit();

  int num_parts() const;  // 1 + largest part index
  double part_area(int part) const;
};

// Samples `n` points uniformly by area from the surface. Each part gets its share
// of the points in proportion to its area (largest remainders, and at least one
// point per part when n allows), then points are drawn within each part by area
// and the whole list is shuffled. Writes (n, 3) to `xyz` and (n) part indices to
// `parts` (may be null).
void sample_surface(const Mesh& mesh, int n, Rng& rng, float* xyz, int32_t* parts);

// Regular polygon (CCW) with `n` vertices on the circle of radius r, first vertex at angle `phase`.
std::vector<Vec2> regular_polygon(int n, float r, float phase = 0.0f);
// Rectangle [x0, x1] x [y0, y1], CCW.
std::vector<Vec2> rectangle(float x0, float y0, float x1, float y1);

}  // namespace synth
}  // namespace pointnet
