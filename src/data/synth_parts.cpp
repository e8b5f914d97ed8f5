#include "data/synth_parts.h"

#include <cmath>

#include "core/errors.h"

namespace pointnet {
namespace synth {
namespace {

constexpr float kPi = 3.14159265358979323846f;
constexpr int kRound = 32;  // segments around the small round parts

bool chance(Rng& rng, float p) { return rng.uniform() < p; }

// Closed cylinder along z from z0 to z1 (caps optional), centred on (x, y).
void add_cylinder(Mesh& m, float x, float y, float r, float z0, float z1, int part, bool bottom = true,
                  bool top = true) {
  std::vector<Vec2> profile;
  if (bottom) profile.push_back({0, z0});
  profile.push_back({r, z0});
  profile.push_back({r, z1});
  if (top) profile.push_back({0, z1});
  Mesh c;
  c.add_revolution(profile, kRound, part);
  m.append(c, Affine::translate(x, y, 0));
}

// A leg from the floor to `top` at (x, y): a square post or a round one, its top face hidden.
void add_leg(Mesh& m, float x, float y, float size, bool round, float top, int part) {
  if (round) {
    add_cylinder(m, x, y, 0.5f * size, 0, top, part, true, false);
  } else {
    float h = 0.5f * size;
    m.add_box({x - h, y - h, 0}, {x + h, y + h, top}, part, Mesh::kAll & ~Mesh::kZPos);
  }
}

// Thin lifting surface: trapezoid in the xy-plane (root at y = y0, tip at y = y0 + span
// with sign), leading edge at x = x_le, swept back by `sweep`, thickness `t` about z = zc.
void add_wing(Mesh& m, float x_le, float y0, float span, float root, float tip, float sweep, float zc,
              float t, int part) {
  float y1 = y0 + span;
  std::vector<Vec2> outline{{x_le, y0}, {x_le - root, y0}, {x_le - sweep - tip, y1}, {x_le - sweep, y1}};
  m.add_prism(outline, zc - 0.5f * t, zc + 0.5f * t, part);
}

// --- Airplane: body, wing, tail, engine. The fuselage lies along x, nose at +x.
Mesh airplane(Rng& rng) {
  enum { kBody, kWing, kTail, kEngine };
  Mesh m;
  const float rf = rng.uniform(0.08f, 0.13f);       // fuselage radius (length 2)
  const float nose = rng.uniform(0.2f, 0.35f);
  const float tail_len = rng.uniform(0.4f, 0.6f);
  const float rt = rf * rng.uniform(0.2f, 0.4f);    // radius at the tail end
  {
    std::vector<Vec2> p{{0, -1}, {rt, -1}, {rf, -1 + tail_len}, {rf, 1 - nose}};
    for (int i = 1; i <= 8; ++i) {
      float a = 0.5f * kPi * static_cast<float>(i) / 8.0f;
      p.push_back({rf * std::cos(a), 1 - nose + nose * std::sin(a)});
    }
    p.back()[0] = 0;
    Mesh body;
    body.add_revolution(p, kRound, kBody);
    m.append(body, Affine::rotate_y(kPi / 2));  // axis z -> x
  }
  // Wings, mirrored.
  const float span = rng.uniform(0.75f, 1.1f);
  const float root = rng.uniform(0.35f, 0.55f);
  const float tip = root * rng.uniform(0.3f, 0.6f);
  const float sweep = rng.uniform(0.05f, 0.5f);
  const float x_le = rng.uniform(-0.05f, 0.25f);
  const float zw = rf * rng.uniform(-0.6f, 0.3f);
  const float tw = rng.uniform(0.02f, 0.035f);
  for (float side : {1.0f, -1.0f}) {
    Mesh w;
    add_wing(w, x_le, 0.8f * rf, span, root, tip, sweep, zw, tw, kWing);
    m.append(w, Affine::scale(1, side, 1));
  }
  // Engines under the wings.
  const float re = rng.uniform(0.045f, 0.075f);
  const float le = rng.uniform(0.25f, 0.4f);
  const float ye = rng.uniform(0.3f, 0.45f) * span + 0.8f * rf;
  const float frac = (ye - 0.8f * rf) / span;  // where along the span the engine hangs
  const float x_wing_le = x_le - sweep * frac;
  for (float side : {1.0f, -1.0f}) {
    Mesh e;
    e.add_revolution({{0, -0.5f * le}, {0.8f * re, -0.5f * le}, {re, 0.2f * le}, {re, 0.5f * le}, {0, 0.5f * le}},
                     kRound, kEngine);
    m.append(e, compose({Affine::translate(x_wing_le - 0.15f * le, side * ye, zw - 0.5f * tw - re),
                         Affine::rotate_y(kPi / 2)}));
  }
  // Tail: vertical fin and two horizontal stabilisers at the rear.
  const float fin_root = rng.uniform(0.25f, 0.4f);
  const float fin_tip = fin_root * rng.uniform(0.4f, 0.7f);
  const float fin_h = rng.uniform(0.25f, 0.45f);
  const float fin_sweep = rng.uniform(0.1f, 0.25f);
  {
    float x_te = -0.98f;
    float z0 = 0.5f * rt;
    std::vector<Vec2> outline{{x_te, z0}, {x_te + fin_root, z0}, {x_te + fin_root - fin_sweep, z0 + fin_h},
                              {x_te + fin_root - fin_sweep - fin_tip, z0 + fin_h}};
    Mesh fin;
    fin.add_prism(outline, -0.015f, 0.015f, kTail);
    m.append(fin, Affine::rotate_x(kPi / 2));  // outline y -> z
  }
  const float stab_span = span * rng.uniform(0.3f, 0.4f);
  const float stab_root = rng.uniform(0.18f, 0.28f);
  for (float side : {1.0f, -1.0f}) {
    Mesh s;
    add_wing(s, -0.98f + stab_root, 0.8f * rt, stab_span, stab_root, 0.5f * stab_root, 0.08f, 0, 0.02f, kTail);
    m.append(s, Affine::scale(1, side, 1));
  }
  return m;
}

// --- Chair: back, seat, leg.
Mesh chair(Rng& rng) {
  enum { kBack, kSeat, kLeg };
  Mesh m;
  const float w = rng.uniform(0.9f, 1.2f), d = rng.uniform(0.85f, 1.15f);
  const float ts = rng.uniform(0.06f, 0.12f), hs = rng.uniform(0.8f, 1.1f);
  m.add_box({-0.5f * w, -0.5f * d, hs}, {0.5f * w, 0.5f * d, hs + ts}, kSeat);
  const float leg = rng.uniform(0.06f, 0.11f), inset = rng.uniform(0.0f, 0.06f);
  const bool round = chance(rng, 0.4f);
  for (float sx : {-1.0f, 1.0f})
    for (float sy : {-1.0f, 1.0f})
      add_leg(m, sx * (0.5f * w - inset - 0.5f * leg), sy * (0.5f * d - inset - 0.5f * leg), leg, round, hs, kLeg);
  const float hb = rng.uniform(0.8f, 1.3f), tb = rng.uniform(0.06f, 0.1f);
  const float wb = w * rng.uniform(0.85f, 1.0f);
  const float tilt = rng.uniform(0.0f, 15.0f) * kPi / 180.0f;
  Mesh back;
  back.add_box({-0.5f * wb, -tb, 0}, {0.5f * wb, 0, hb}, kBack, Mesh::kAll & ~Mesh::kZNeg);
  m.append(back, compose({Affine::translate(0, 0.5f * d, hs + ts), Affine::rotate_x(-tilt)}));
  return m;
}

// --- Lamp: base, shade, tube (the pole).
Mesh lamp(Rng& rng) {
  enum { kBase, kShade, kTube };
  Mesh m;
  const float hb = rng.uniform(0.05f, 0.12f);
  if (chance(rng, 0.6f)) {
    add_cylinder(m, 0, 0, rng.uniform(0.35f, 0.55f), 0, hb, kBase);
  } else {
    float a = rng.uniform(0.3f, 0.45f), b = rng.uniform(0.3f, 0.45f);
    m.add_box({-a, -b, 0}, {a, b, hb}, kBase);
  }
  const float rp = rng.uniform(0.025f, 0.045f), hp = rng.uniform(1.0f, 1.6f);
  add_cylinder(m, 0, 0, rp, hb, hb + hp, kTube, false, true);
  const float r0 = rng.uniform(0.35f, 0.6f), r1 = r0 * rng.uniform(0.4f, 0.8f);
  const float hsh = rng.uniform(0.35f, 0.6f);
  const float z0 = hb + hp - hsh * rng.uniform(0.5f, 0.8f);
  Mesh shade;  // open lampshade: no caps
  shade.add_revolution({{r0, z0}, {r1, z0 + hsh}}, 48, kShade);
  m.append(shade, Affine::identity());
  return m;
}

// --- Mug: body, handle.
Mesh mug(Rng& rng) {
  enum { kBody, kHandle };
  Mesh m;
  const float r = rng.uniform(0.45f, 0.65f), h = rng.uniform(0.9f, 1.3f), t = rng.uniform(0.03f, 0.06f);
  m.add_revolution({{0, 0}, {r, 0}, {r, h}, {r - t, h}, {r - t, t}, {0, t}}, 48, kBody);
  const float rh = rng.uniform(0.05f, 0.09f);           // handle bar radius
  const float ah = h * rng.uniform(0.25f, 0.35f);       // half the handle's height
  const float reach = rng.uniform(0.2f, 0.35f);         // how far it stands out
  const float zc = h * rng.uniform(0.45f, 0.55f);
  std::vector<Vec2> ring;
  for (int i = 0; i <= 16; ++i) {
    float a = 2 * kPi * static_cast<float>(i) / 16.0f;
    ring.push_back({ah + rh * std::cos(a), rh * std::sin(a)});
  }
  Mesh handle;  // half torus in the xy-plane, x >= 0
  handle.add_revolution(ring, 24, kHandle, -kPi / 2, kPi / 2);
  // Stretched to stand `reach` out; the ends sit in the wall, flush with its inside.
  const float k = reach / ah;
  m.append(handle, compose({Affine::translate(r - t + k * rh, 0, zc), Affine::scale(k, 1, 1),
                            Affine::rotate_x(kPi / 2)}));
  return m;
}

// --- Table: top, leg.
Mesh table(Rng& rng) {
  enum { kTop, kLeg };
  Mesh m;
  const float ht = rng.uniform(0.7f, 1.0f), tt = rng.uniform(0.05f, 0.1f);
  const float leg = rng.uniform(0.06f, 0.12f), inset = rng.uniform(0.02f, 0.12f);
  const bool round_legs = chance(rng, 0.4f);
  if (chance(rng, 0.3f)) {  // round top, legs at the diagonals
    float rt = rng.uniform(0.6f, 0.9f);
    add_cylinder(m, 0, 0, rt, ht, ht + tt, kTop);
    float q = (rt - inset - 0.5f * leg) / std::sqrt(2.0f);
    for (float sx : {-1.0f, 1.0f})
      for (float sy : {-1.0f, 1.0f}) add_leg(m, sx * q, sy * q, leg, round_legs, ht, kLeg);
  } else {
    float w = rng.uniform(1.4f, 2.2f), d = rng.uniform(0.8f, 1.3f);
    m.add_box({-0.5f * w, -0.5f * d, ht}, {0.5f * w, 0.5f * d, ht + tt}, kTop);
    for (float sx : {-1.0f, 1.0f})
      for (float sy : {-1.0f, 1.0f})
        add_leg(m, sx * (0.5f * w - inset - 0.5f * leg), sy * (0.5f * d - inset - 0.5f * leg), leg, round_legs,
                ht, kLeg);
  }
  return m;
}

struct CategoryDef {
  Category category;
  Mesh (*build)(Rng&);
};

const std::vector<CategoryDef>& category_defs() {
  static const std::vector<CategoryDef> defs{
      {{"Airplane", "02691156", {"body", "wing", "tail", "engine"}}, airplane},
      {{"Chair", "03001627", {"back", "seat", "leg"}}, chair},
      {{"Lamp", "03636649", {"base", "shade", "tube"}}, lamp},
      {{"Mug", "03797390", {"body", "handle"}}, mug},
      {{"Table", "04379243", {"top", "leg"}}, table},
  };
  return defs;
}

}  // namespace

const std::vector<Category>& segmentation_categories() {
  static const std::vector<Category> cats = [] {
    std::vector<Category> out;
    for (const CategoryDef& d : category_defs()) out.push_back(d.category);
    return out;
  }();
  return cats;
}

Mesh build_segmentation_shape(int cat, Rng& rng) {
  PN_CHECK(cat >= 0 && cat < static_cast<int>(category_defs().size()));
  Mesh m = category_defs()[cat].build(rng);
  PN_CHECK(m.num_parts() == static_cast<int>(category_defs()[cat].category.parts.size()));
  return m;
}

}  // namespace synth
}  // namespace pointnet
