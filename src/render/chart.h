// Line charts with axes, ticks, labels and a legend, for training curves.
#pragma once
#include <string>
#include <vector>

#include "render/image.h"

namespace pointnet::render {

struct Series {
  std::string name;
  std::vector<double> x, y;  // same length; drawn as a polyline with a dot at each point
  Rgb color;
};

struct ChartSpec {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  bool integer_x = false;           // ticks at whole numbers only (epochs)
  double y_floor = -1e300, y_ceiling = 1e300;  // the y range never leaves these (e.g. 0..100 %)
  bool legend_at_top = true;        // preferred corner: top-right; false: bottom-right (the corner
                                    // hiding the least data wins; this one on a tie)
};

// "Nice" tick positions (steps of 1, 2 or 5 x 10^k) covering [lo, hi], about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target);

// Where the data went: the plotting rectangle and its data ranges.
struct PlotArea {
  float left, top, width, height;  // pixels
  double x0, x1, y0, y1;           // data range shown
  float px(double x) const { return left + static_cast<float>((x - x0) / (x1 - x0)) * width; }
  float py(double y) const { return top + height - static_cast<float>((y - y0) / (y1 - y0)) * height; }
};

// Draws the chart inside (left, top, width, height) of `image`; returns where the data went.
PlotArea draw_chart(Image& image, int left, int top, int width, int height, const ChartSpec& spec, int font_scale);

}  // namespace pointnet::render
