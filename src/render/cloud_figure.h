// One picture of one cloud: a title, a grid of tiles (each panel's colouring
// from each view) and a legend of the colours used.
#pragma once
#include <string>
#include <vector>

#include "render/cloud_view.h"
#include "render/image.h"

namespace pointnet::render {

struct LegendEntry {
  Rgb color;
  std::string label;
};

// One colouring of the cloud (e.g. "truth", "prediction").
struct CloudPanel {
  std::string caption;      // may be empty
  std::vector<Rgb> colors;  // one per point
};

struct CloudFigure {
  std::string title;
  std::vector<CloudPanel> panels;  // 1 or 2
  std::vector<ViewAngles> views;   // 1 to 4
  std::vector<LegendEntry> legend;
  int up_axis = 2;
  int width = 0, height = 0;       // 0: a size that suits the grid
};

// The grid: panels x views tiles as (rows, columns).
struct Grid {
  int rows, cols;
};
Grid figure_grid(int panels, int views);

// Font scale for an image: 1 for small pictures, larger for big ones.
int font_scale_for(int width, int height);

// Renders `xyz` (n, 3), normalised to the unit sphere, as the figure describes.
Image render_figure(const std::vector<float>& xyz, const CloudFigure& figure);

}  // namespace pointnet::render
