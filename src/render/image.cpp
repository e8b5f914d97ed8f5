#include "render/image.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet::render {

namespace {
uint8_t clamp_byte(float v) { return static_cast<uint8_t>(std::lround(std::clamp(v, 0.f, 255.f))); }
}  // namespace

Rgb scaled(Rgb a, float f) { return {clamp_byte(a.r * f), clamp_byte(a.g * f), clamp_byte(a.b * f)}; }

Rgb mix(Rgb a, Rgb b, float t) {
  return {clamp_byte(a.r + (b.r - a.r) * t), clamp_byte(a.g + (b.g - a.g) * t), clamp_byte(a.b + (b.b - a.b) * t)};
}

Image::Image(int width, int height, Rgb background) : width_(width), height_(height) {
  constexpr int kMaxSide = 16384;
  if (width < 1 || height < 1 || width > kMaxSide || height > kMaxSide)
    fail("image size ", width, "x", height, ": expected 1 to ", kMaxSide, " pixels on each side");
  pixels_.resize(static_cast<size_t>(width) * height * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb Image::get(int x, int y) const {
  PN_CHECK(x >= 0 && y >= 0 && x < width_ && y < height_);
  const uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Image::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Image::blend(int x, int y, Rgb c, float alpha) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_ || alpha <= 0.f) return;
  if (alpha >= 1.f) return set(x, y, c);
  set(x, y, mix(get(x, y), c, alpha));
}

void Image::fill_rect(int x, int y, int w, int h, Rgb c) {
  const int x0 = std::max(x, 0), y0 = std::max(y, 0);
  const int x1 = std::min(x + w, width_), y1 = std::min(y + h, height_);
  for (int yy = y0; yy < y1; ++yy)
    for (int xx = x0; xx < x1; ++xx) set(xx, yy, c);
}

void Image::stroke_rect(int x, int y, int w, int h, Rgb c) {
  fill_rect(x, y, w, 1, c);
  fill_rect(x, y + h - 1, w, 1, c);
  fill_rect(x, y, 1, h, c);
  fill_rect(x + w - 1, y, 1, h, c);
}

void Image::line(float x0, float y0, float x1, float y1, Rgb c, float thickness) {
  // Coverage from each pixel centre's distance to the segment: simple and
  // anti-aliased, fine for the few hundred lines of a chart.
  const float half = std::max(thickness, 0.5f) / 2.f;
  const int bx0 = static_cast<int>(std::floor(std::min(x0, x1) - half - 1));
  const int bx1 = static_cast<int>(std::ceil(std::max(x0, x1) + half + 1));
  const int by0 = static_cast<int>(std::floor(std::min(y0, y1) - half - 1));
  const int by1 = static_cast<int>(std::ceil(std::max(y0, y1) + half + 1));
  const float dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
  for (int y = std::max(by0, 0); y <= std::min(by1, height_ - 1); ++y)
    for (int x = std::max(bx0, 0); x <= std::min(bx1, width_ - 1); ++x) {
      const float px = x + 0.5f - x0, py = y + 0.5f - y0;
      const float t = len2 > 0 ? std::clamp((px * dx + py * dy) / len2, 0.f, 1.f) : 0.f;
      const float ex = px - t * dx, ey = py - t * dy;
      const float d = std::sqrt(ex * ex + ey * ey);
      blend(x, y, c, std::clamp(half + 0.5f - d, 0.f, 1.f));
    }
}

void Image::fill_disc(float cx, float cy, float radius, Rgb c) {
  const int x0 = static_cast<int>(std::floor(cx - radius - 1)), x1 = static_cast<int>(std::ceil(cx + radius + 1));
  const int y0 = static_cast<int>(std::floor(cy - radius - 1)), y1 = static_cast<int>(std::ceil(cy + radius + 1));
  for (int y = std::max(y0, 0); y <= std::min(y1, height_ - 1); ++y)
    for (int x = std::max(x0, 0); x <= std::min(x1, width_ - 1); ++x) {
      const float d = std::hypot(x + 0.5f - cx, y + 0.5f - cy);
      blend(x, y, c, std::clamp(radius + 0.5f - d, 0.f, 1.f));
    }
}

void Image::paste(const Image& src, int x, int y) {
  for (int sy = 0; sy < src.height(); ++sy)
    for (int sx = 0; sx < src.width(); ++sx) set(x + sx, y + sy, src.get(sx, sy));
}

}  // namespace pointnet::render
