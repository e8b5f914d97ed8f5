#include "data/synth_classes.h"

#include <cmath>

#include "core/errors.h"

namespace pointnet {
namespace synth {
namespace {

constexpr float kPi = 3.14159265358979323846f;
constexpr int kRound = 48;  // segments around a circle: chord error 0.2% of the radius
constexpr int kArc = 16;    // segments along a quarter circle of a profile

// Appends to `profile` the arc of the circle centred (rc, zc) with radius r from
// angle t0 to t1 (angle 0 points along +radius, pi/2 along +z), excluding its start.
void arc(std::vector<Vec2>& profile, float rc, float zc, float r, float t0, float t1, int steps) {
  for (int i = 1; i <= steps; ++i) {
    float t = t0 + (t1 - t0) * static_cast<float>(i) / static_cast<float>(steps);
    profile.push_back({rc + r * std::cos(t), zc + r * std::sin(t)});
  }
}

// Closed solid of revolution: profile from the axis at the bottom to the axis at the top.
Mesh revolve(const std::vector<Vec2>& profile) {
  Mesh m;
  m.add_revolution(profile, kRound, 0);
  return m;
}

// A random choice with probability p.
bool chance(Rng& rng, float p) { return rng.uniform() < p; }

Mesh box(Rng& rng) {
  Mesh m;
  float a = rng.uniform(0.5f, 1.0f), b = rng.uniform(0.5f, 1.0f), c = rng.uniform(0.4f, 1.0f);
  m.add_box({-a, -b, -c}, {a, b, c}, 0);
  return m;
}

Mesh cylinder(Rng& rng) {
  float h = rng.uniform(0.4f, 1.2f);
  return revolve({{0, -h}, {1, -h}, {1, h}, {0, h}});
}

// Full or truncated cone.
Mesh cone(Rng& rng) {
  float h = rng.uniform(0.5f, 1.1f);
  float top = chance(rng, 0.5f) ? 0.0f : rng.uniform(0.15f, 0.4f);
  return revolve({{0, -h}, {1, -h}, {top, h}, {0, h}});
}

Mesh sphere(Rng&) {
  std::vector<Vec2> p{{0, -1}};
  arc(p, 0, 0, 1, -kPi / 2, kPi / 2, 2 * kArc);
  p.back()[0] = 0;  // exactly on the axis
  return revolve(p);
}

Mesh torus(Rng& rng) {
  float r = rng.uniform(0.2f, 0.45f);
  std::vector<Vec2> p{{1 + r, 0}};
  arc(p, 1, 0, r, 0, 2 * kPi, 4 * kArc);
  return revolve(p);
}

// Square pyramid, sometimes truncated, apex a little off centre.
Mesh pyramid(Rng& rng) {
  float h = rng.uniform(0.45f, 0.9f);
  float top = chance(rng, 0.5f) ? 0.0f : rng.uniform(0.1f, 0.3f);
  float dx = rng.uniform(-0.15f, 0.15f), dy = rng.uniform(-0.15f, 0.15f);
  std::vector<Vec2> lower = rectangle(-1, -1, 1, 1);
  std::vector<Vec2> upper = rectangle(dx - top, dy - top, dx + top, dy + top);
  Mesh m;
  m.add_loft(lower, -h, upper, h, 0, true, top > 0);
  return m;
}

// Cylinder with hemispherical ends, upright.
Mesh capsule(Rng& rng) {
  float h = rng.uniform(0.6f, 1.6f);  // half-length of the straight part, in radii
  std::vector<Vec2> p{{0, -h - 1}};
  arc(p, 0, -h, 1, -kPi / 2, 0, kArc);
  arc(p, 0, h, 1, 0, kPi / 2, kArc);
  p.back()[0] = 0;
  return revolve(p);
}

// Thick-walled open tube (a ring when short).
Mesh tube(Rng& rng) {
  float inner = rng.uniform(0.55f, 0.8f);
  float h = rng.uniform(0.4f, 1.2f);
  return revolve({{inner, -h}, {1, -h}, {1, h}, {inner, h}, {inner, -h}});
}

// Triangular prism lying on one rectangular face (a doorstop or a roof).
Mesh wedge(Rng& rng) {
  float apex = rng.uniform(-1.0f, 1.0f);
  float height = rng.uniform(0.8f, 1.8f);
  float w = rng.uniform(0.5f, 1.0f);
  Mesh m;
  m.add_prism({{-1, 0}, {1, 0}, {apex, height}}, -w, w, 0);
  m.transform(Affine::rotate_x(kPi / 2));  // the outline's y becomes z
  return m;
}

// Hemispherical bowl (a little shallower or deeper) with a thick wall, open at the top.
Mesh bowl(Rng& rng) {
  float depth = rng.uniform(65.0f, 100.0f) * kPi / 180.0f;  // polar angle of the rim
  float inner = 1.0f - rng.uniform(0.06f, 0.15f);
  std::vector<Vec2> p{{0, -1}};
  arc(p, 0, 0, 1, -kPi / 2, depth - kPi / 2, 2 * kArc);
  arc(p, 0, 0, inner, depth - kPi / 2, -kPi / 2, 2 * kArc);  // inner surface back down
  p.back()[0] = 0;
  return revolve(p);
}

// Flat plus sign.
Mesh cross(Rng& rng) {
  float t = rng.uniform(0.15f, 0.3f);
  float lx = rng.uniform(0.8f, 1.0f), ly = rng.uniform(0.8f, 1.0f);
  float h = rng.uniform(0.1f, 0.35f);
  std::vector<Vec2> outline{{t, -t},  {lx, -t},  {lx, t},  {t, t},    {t, ly},   {-t, ly},
                            {-t, t},  {-lx, t},  {-lx, -t}, {-t, -t}, {-t, -ly}, {t, -ly}};
  Mesh m;
  m.add_prism(outline, -h, h, 0);
  return m;
}

// Standing L: a foot along x and an upright along z.
Mesh lshape(Rng& rng) {
  float a = rng.uniform(1.2f, 2.0f), b = rng.uniform(1.2f, 2.0f);
  float t1 = rng.uniform(0.3f, 0.6f), t2 = rng.uniform(0.3f, 0.6f);
  float w = rng.uniform(0.4f, 1.0f);
  Mesh m;
  m.add_prism({{0, 0}, {a, 0}, {a, t1}, {t2, t1}, {t2, b}, {0, b}}, -w, w, 0);
  m.transform(Affine::rotate_x(kPi / 2));
  return m;
}

struct ClassDef {
  const char* name;
  Mesh (*build)(Rng&);
};

const std::vector<ClassDef>& class_defs() {
  // Alphabetical, so label order matches the folder order a ModelNet loader sees.
  static const std::vector<ClassDef> defs{
      {"bowl", bowl},       {"box", box},         {"capsule", capsule}, {"cone", cone},
      {"cross", cross},     {"cylinder", cylinder}, {"lshape", lshape}, {"pyramid", pyramid},
      {"sphere", sphere},   {"torus", torus},     {"tube", tube},       {"wedge", wedge},
  };
  return defs;
}

}  // namespace

const std::vector<std::string>& classification_classes() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> out;
    for (const ClassDef& d : class_defs()) out.push_back(d.name);
    return out;
  }();
  return names;
}

Mesh build_classification_shape(int cls, Rng& rng) {
  PN_CHECK(cls >= 0 && cls < static_cast<int>(class_defs().size()));
  return class_defs()[cls].build(rng);
}

}  // namespace synth
}  // namespace pointnet
