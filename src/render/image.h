// An RGB canvas in memory: what the renderer and the chart draw on and the
// PNG writer saves. Drawing clips at the borders, so callers never check.
#pragma once
#include <cstdint>
#include <vector>

namespace pointnet::render {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  bool operator==(const Rgb& o) const { return r == o.r && g == o.g && b == o.b; }
  bool operator!=(const Rgb& o) const { return !(*this == o); }
};

// `a` scaled by `f` (0 = black, 1 = a), clamped.
Rgb scaled(Rgb a, float f);
// (1 - t) * a + t * b.
Rgb mix(Rgb a, Rgb b, float t);

class Image {
 public:
  // Throws pointnet::Error for a non-positive or absurd size (more than 16384 on a side).
  Image(int width, int height, Rgb background);

  int width() const { return width_; }
  int height() const { return height_; }
  const uint8_t* data() const { return pixels_.data(); }  // (height, width, 3), rows top to bottom
  uint8_t* data() { return pixels_.data(); }

  Rgb get(int x, int y) const;  // (x, y) must be inside
  void set(int x, int y, Rgb c);                  // ignored outside
  void blend(int x, int y, Rgb c, float alpha);   // alpha in [0, 1]; ignored outside

  void fill_rect(int x, int y, int w, int h, Rgb c);
  void stroke_rect(int x, int y, int w, int h, Rgb c);
  // A line `thickness` pixels wide, anti-aliased.
  void line(float x0, float y0, float x1, float y1, Rgb c, float thickness = 1.f);
  // A filled disc centred at (cx, cy), anti-aliased edge.
  void fill_disc(float cx, float cy, float radius, Rgb c);
  // Copies `src` with its top-left corner at (x, y), clipped.
  void paste(const Image& src, int x, int y);

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

}  // namespace pointnet::render
