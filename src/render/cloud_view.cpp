#include "render/cloud_view.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet::render {

namespace {

constexpr float kPi = 3.14159265358979f;

// y-up data in a z-up world: a rotation of -90 degrees about x, (x, y, z) -> (x, -z, y).
void to_z_up(const float* p, int up_axis, float out[3]) {
  if (up_axis == 1) {
    out[0] = p[0];
    out[1] = -p[2];
    out[2] = p[1];
  } else {
    out[0] = p[0];
    out[1] = p[1];
    out[2] = p[2];
  }
}

}  // namespace

std::vector<ViewAngles> standard_views(int count) {
  const ViewAngles three_quarter{"three-quarter", -35.f, 25.f}, front{"front", 0.f, 0.f},
      side{"side", 90.f, 0.f}, top{"top", 0.f, 90.f};
  switch (count) {
    case 1: return {three_quarter};
    case 2: return {three_quarter, front};
    case 3: return {front, side, top};
    case 4: return {front, side, top, three_quarter};
    default: fail("--views ", count, ": expected 1 to 4");
  }
}

Projection::Camera Projection::camera(const float* p) const {
  float w[3];
  to_z_up(p, up_axis, w);
  Camera c;
  c.u = rotation[0][0] * w[0] + rotation[0][1] * w[1] + rotation[0][2] * w[2];
  c.depth = rotation[1][0] * w[0] + rotation[1][1] * w[1] + rotation[1][2] * w[2];
  c.v = rotation[2][0] * w[0] + rotation[2][1] * w[1] + rotation[2][2] * w[2];
  return c;
}

ScreenPoint Projection::project(const float* p) const {
  const Camera c = camera(p);
  return {left + width / 2 + (c.u - centre_u) * scale, top + height / 2 - (c.v - centre_v) * scale, c.depth};
}

Projection fit_projection(const std::vector<float>& xyz, const ViewAngles& view, int up_axis, float left, float top,
                          float width, float height, float margin) {
  PN_CHECK(up_axis == 1 || up_axis == 2);
  Projection p;
  p.up_axis = up_axis;
  p.left = left;
  p.top = top;
  p.width = width;
  p.height = height;
  // Rotate by -azimuth about z, then tilt by the elevation about x: the
  // camera sits at -y (after the turn) raised by the elevation.
  const float a = -view.azimuth_deg * kPi / 180, e = view.elevation_deg * kPi / 180;
  const float ca = std::cos(a), sa = std::sin(a), ce = std::cos(e), se = std::sin(e);
  const float rz[3][3] = {{ca, -sa, 0}, {sa, ca, 0}, {0, 0, 1}};
  const float rx[3][3] = {{1, 0, 0}, {0, ce, -se}, {0, se, ce}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) {
      p.rotation[i][j] = 0;
      for (int k = 0; k < 3; ++k) p.rotation[i][j] += rx[i][k] * rz[k][j];
    }
  // The cloud's extent in the camera's plane.
  float umin = INFINITY, umax = -INFINITY, vmin = INFINITY, vmax = -INFINITY;
  for (size_t i = 0; i + 2 < xyz.size(); i += 3) {
    const Projection::Camera c = p.camera(&xyz[i]);
    umin = std::min(umin, c.u);
    umax = std::max(umax, c.u);
    vmin = std::min(vmin, c.v);
    vmax = std::max(vmax, c.v);
  }
  if (!(umin <= umax)) umin = umax = vmin = vmax = 0;  // no points
  const float room_w = std::max(width - 2 * margin, 1.f), room_h = std::max(height - 2 * margin, 1.f);
  const float extent_u = umax - umin, extent_v = vmax - vmin;
  float scale = std::min(extent_u > 0 ? room_w / extent_u : INFINITY, extent_v > 0 ? room_h / extent_v : INFINITY);
  if (!std::isfinite(scale)) scale = std::min(room_w, room_h) / 2;  // one point, or all in one spot
  p.scale = scale;
  p.centre_u = (umin + umax) / 2;
  p.centre_v = (vmin + vmax) / 2;
  return p;
}

float splat_radius(int n, float width, float height) {
  const float side = std::min(width, height);
  const float r = 0.3f * side / std::sqrt(static_cast<float>(std::max(n, 1)));
  return std::clamp(r, 1.2f, side / 30.f);
}

void draw_cloud(Image& image, const Projection& projection, const std::vector<float>& xyz,
                const std::vector<Rgb>& colors, float radius) {
  const size_t n = xyz.size() / 3;
  PN_CHECK(colors.size() == n);
  std::vector<ScreenPoint> screen(n);
  std::vector<size_t> order;  // the points that have a pixel: a non-finite one has none
  order.reserve(n);
  float dmin = INFINITY, dmax = -INFINITY;
  for (size_t i = 0; i < n; ++i) {
    screen[i] = projection.project(&xyz[3 * i]);
    const ScreenPoint& s = screen[i];
    if (!std::isfinite(s.x) || !std::isfinite(s.y) || !std::isfinite(s.depth)) continue;
    order.push_back(i);
    dmin = std::min(dmin, s.depth);
    dmax = std::max(dmax, s.depth);
  }
  // Painter's order: farthest first; ties keep file order so output is deterministic.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return screen[a].depth > screen[b].depth; });

  // Light from the upper left, towards the viewer (screen x right, y down, z to the viewer).
  const float lx = -0.45f, ly = -0.55f, lz = 0.70f;
  const float rim = std::max(0.5f, radius * 0.15f);  // the outline's width in pixels
  for (size_t i : order) {
    const ScreenPoint& s = screen[i];
    // Farther points a little darker: depth reads without fog washing the colours out.
    const float far = dmax > dmin ? (s.depth - dmin) / (dmax - dmin) : 0.f;
    const Rgb base = scaled(colors[i], 1.f - 0.28f * far);
    const Rgb outline = scaled(base, 0.62f);
    const int x0 = static_cast<int>(std::floor(s.x - radius - 1)), x1 = static_cast<int>(std::ceil(s.x + radius + 1));
    const int y0 = static_cast<int>(std::floor(s.y - radius - 1)), y1 = static_cast<int>(std::ceil(s.y + radius + 1));
    for (int y = y0; y <= y1; ++y)
      for (int x = x0; x <= x1; ++x) {
        const float dx = x + 0.5f - s.x, dy = y + 0.5f - s.y;
        const float d = std::sqrt(dx * dx + dy * dy);
        const float coverage = std::clamp(radius + 0.5f - d, 0.f, 1.f);
        if (coverage <= 0) continue;
        // A ball's normal under this pixel, lit Lambert-style with a small highlight.
        const float nx = dx / radius, ny = dy / radius, nz = std::sqrt(std::max(0.f, 1 - nx * nx - ny * ny));
        const float lambert = std::max(0.f, nx * lx + ny * ly + nz * lz);
        Rgb c = scaled(base, 0.62f + 0.5f * lambert);
        const float hz = lz + 1, hn = std::sqrt(lx * lx + ly * ly + hz * hz);  // half vector to the viewer
        const float spec = std::pow(std::max(0.f, (nx * lx + ny * ly + nz * hz) / hn), 24.f);
        c = mix(c, Rgb{255, 255, 255}, 0.35f * spec);
        if (d > radius - rim) c = outline;
        image.blend(x, y, c, coverage);
      }
  }
}

}  // namespace pointnet::render
