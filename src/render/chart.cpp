#include "render/chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/errors.h"
#include "render/bitmap_font.h"
#include "render/palette.h"

namespace pointnet::render {

namespace {

std::string tick_label(double v, double step) {
  char buf[32];
  const int decimals = step >= 1 ? 0 : std::min(6, static_cast<int>(std::ceil(-std::log10(step) - 1e-9)));
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(v) < step * 1e-6 ? 0.0 : v);
  return buf;
}

double nice_step(double span, int target) {
  const double raw = span / std::max(target, 1);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// How much of the data a box would hide: samples along every segment (and
// every dot) that fall inside it, grown by `margin` pixels.
int covered_samples(const PlotArea& a, const std::vector<Series>& series, int bx, int by, int bw, int bh, int margin) {
  auto inside = [&](float x, float y) {
    return x >= bx - margin && x <= bx + bw + margin && y >= by - margin && y <= by + bh + margin;
  };
  int count = 0;
  for (const Series& s : series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      count += inside(a.px(s.x[i]), a.py(s.y[i])) ? 4 : 0;  // a dot weighs more than a stretch of line
      if (i == 0) continue;
      for (int k = 1; k < 32; ++k) {
        const float t = k / 32.f;
        count += inside(a.px(s.x[i - 1]) * (1 - t) + a.px(s.x[i]) * t, a.py(s.y[i - 1]) * (1 - t) + a.py(s.y[i]) * t);
      }
    }
  return count;
}

}  // namespace

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) hi = lo + 1;
  const double step = nice_step(hi - lo, target);
  std::vector<double> ticks;
  // k * step rather than a running sum, so 0.6 does not drift to 0.6000000000000001.
  for (long k = static_cast<long>(std::ceil(lo / step - 1e-9)); k * step <= hi + step * 1e-9; ++k)
    ticks.push_back(k * step);
  return ticks;
}

PlotArea draw_chart(Image& image, int left, int top, int width, int height, const ChartSpec& spec, int scale) {
  // Data ranges: x spans the data; y spans it with a little air, widened to whole ticks.
  double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
  for (const Series& s : spec.series) {
    PN_CHECK(s.x.size() == s.y.size());
    for (size_t i = 0; i < s.x.size(); ++i) {
      x0 = std::min(x0, s.x[i]);
      x1 = std::max(x1, s.x[i]);
      y0 = std::min(y0, s.y[i]);
      y1 = std::max(y1, s.y[i]);
    }
  }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // no data: empty axes
  if (x1 - x0 < (spec.integer_x ? 1 : 1e-12)) x1 = x0 + 1;
  if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
  const double air = 0.05 * (y1 - y0);
  y0 = std::max(y0 - air, spec.y_floor);
  y1 = std::min(y1 + air, spec.y_ceiling);
  const double y_step = nice_step(y1 - y0, 5);
  y0 = std::max(std::floor(y0 / y_step) * y_step, spec.y_floor);
  y1 = std::min(std::ceil(y1 / y_step) * y_step, spec.y_ceiling);
  std::vector<double> y_ticks = nice_ticks(y0, y1, 5);
  std::vector<double> x_ticks = nice_ticks(x0, x1, 6);
  if (spec.integer_x) {
    x_ticks.erase(std::remove_if(x_ticks.begin(), x_ticks.end(), [](double t) { return t != std::floor(t); }),
                  x_ticks.end());
  }

  // Margins: title above, tick labels and the y label on the left, x label below.
  const int pad = 4 * scale, th = text_height(scale);
  int widest = 0;
  for (double t : y_ticks) widest = std::max(widest, text_width(tick_label(t, y_step), scale));
  PlotArea a;
  a.left = static_cast<float>(left + pad + th + pad + widest + pad);
  a.top = static_cast<float>(top + (spec.title.empty() ? pad : th + 3 * pad));
  a.width = static_cast<float>(left + width - pad * 3) - a.left;
  a.height = static_cast<float>(top + height - (th + pad) * 2 - pad) - a.top;
  if (a.width < 20 || a.height < 20) fail("chart '", spec.title, "': ", width, "x", height, " pixels is too small");
  a.x0 = x0;
  a.x1 = x1;
  a.y0 = y0;
  a.y1 = y1;

  if (!spec.title.empty())
    draw_text(image, static_cast<int>(a.left + (a.width - text_width(spec.title, scale)) / 2), top + pad,
              spec.title, kInk, scale);
  // Grid and ticks.
  const Rgb grid{228, 228, 224};
  for (double t : y_ticks) {
    const float y = a.py(t);
    image.line(a.left, y, a.left + a.width, y, grid, 1.f);
    image.line(a.left - 2 * scale, y, a.left, y, kInk, 1.f);
    const std::string label = tick_label(t, y_step);
    draw_text(image, static_cast<int>(a.left) - pad - text_width(label, scale), static_cast<int>(y) - th / 2, label,
              kInk, scale);
  }
  const double x_step = x_ticks.size() > 1 ? x_ticks[1] - x_ticks[0] : 1;
  for (double t : x_ticks) {
    const float x = a.px(t);
    image.line(x, a.top, x, a.top + a.height, grid, 1.f);
    image.line(x, a.top + a.height, x, a.top + a.height + 2 * scale, kInk, 1.f);
    const std::string label = tick_label(t, x_step);
    draw_text(image, static_cast<int>(x) - text_width(label, scale) / 2, static_cast<int>(a.top + a.height) + pad,
              label, kInk, scale);
  }
  image.line(a.left, a.top, a.left, a.top + a.height, kInk, 1.f);
  image.line(a.left, a.top + a.height, a.left + a.width, a.top + a.height, kInk, 1.f);
  draw_text(image, static_cast<int>(a.left + (a.width - text_width(spec.x_label, scale)) / 2),
            top + height - th - pad, spec.x_label, kInk, scale);
  draw_text_up(image, left + pad, static_cast<int>(a.top + (a.height - text_width(spec.y_label, scale)) / 2),
               spec.y_label, kInk, scale);

  // The curves, thicker than the grid; a dot per value when there are few.
  const float thickness = 1.5f * scale;
  for (const Series& s : spec.series) {
    for (size_t i = 1; i < s.x.size(); ++i)
      image.line(a.px(s.x[i - 1]), a.py(s.y[i - 1]), a.px(s.x[i]), a.py(s.y[i]), s.color, thickness);
    if (s.x.size() <= 60 || s.x.size() == 1)
      for (size_t i = 0; i < s.x.size(); ++i) image.fill_disc(a.px(s.x[i]), a.py(s.y[i]), 2.f * scale, s.color);
  }

  // Legend: a short line and the name per series, in a boxed corner.
  if (!spec.series.empty()) {
    int name_w = 0;
    for (const Series& s : spec.series) name_w = std::max(name_w, text_width(s.name, scale));
    const int swatch = 6 * scale * 2, row_h = th + pad;
    const int box_w = pad + swatch + pad + name_w + pad, box_h = pad + row_h * static_cast<int>(spec.series.size());
    // The corner that hides the least data, the preferred one on a tie.
    const int right = static_cast<int>(a.left + a.width) - box_w - pad, left_x = static_cast<int>(a.left) + pad;
    const int top_y = static_cast<int>(a.top) + pad, bottom = static_cast<int>(a.top + a.height) - box_h - pad;
    const int first_y = spec.legend_at_top ? top_y : bottom, other_y = spec.legend_at_top ? bottom : top_y;
    int bx = right, by = first_y, least = -1;
    for (const auto& [x, y] : {std::pair{right, first_y}, {left_x, first_y}, {right, other_y}, {left_x, other_y}}) {
      const int hidden = covered_samples(a, spec.series, x, y, box_w, box_h, static_cast<int>(thickness) + 2 * scale);
      if (least < 0 || hidden < least) bx = x, by = y, least = hidden;
    }
    image.fill_rect(bx, by, box_w, box_h, kBackground);
    image.stroke_rect(bx, by, box_w, box_h, kFaintInk);
    for (size_t i = 0; i < spec.series.size(); ++i) {
      const int y = by + pad + row_h * static_cast<int>(i);
      image.line(static_cast<float>(bx + pad), y + th / 2.f, static_cast<float>(bx + pad + swatch), y + th / 2.f,
                 spec.series[i].color, thickness);
      draw_text(image, bx + pad + swatch + pad, y, spec.series[i].name, kInk, scale);
    }
  }
  return a;
}

}  // namespace pointnet::render
