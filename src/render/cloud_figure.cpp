#include "render/cloud_figure.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "render/bitmap_font.h"
#include "render/palette.h"

namespace pointnet::render {

namespace {

constexpr int kDefaultTile = 480;  // pixels per tile side when no size is given

// Legend entries flowed left to right in lines `width` wide; returns the
// height used. Draws only when `image` is not null (the first pass measures).
int lay_out_legend(Image* image, const std::vector<LegendEntry>& legend, int left, int top, int width, int scale) {
  if (legend.empty()) return 0;
  const int pad = 4 * scale, th = text_height(scale), line_h = th + 2 * pad, swatch = th + 2 * scale;
  int x = left + pad, y = top + pad, lines = 1;
  for (const LegendEntry& e : legend) {
    const int w = swatch + pad + text_width(e.label, scale) + 3 * pad;
    if (x + w > left + width && x > left + pad) {
      x = left + pad;
      y += line_h;
      ++lines;
    }
    if (image) {
      const float cx = x + swatch / 2.f, cy = y + th / 2.f;
      image->fill_disc(cx, cy, swatch / 2.f, scaled(e.color, 0.55f));
      image->fill_disc(cx, cy, swatch / 2.f - std::max(1, scale), e.color);
      draw_text(*image, x + swatch + pad, y, e.label, kInk, scale);
    }
    x += w;
  }
  return lines * line_h + pad;
}

}  // namespace

Grid figure_grid(int panels, int views) {
  PN_CHECK(panels >= 1 && panels <= 2 && views >= 1 && views <= 4);
  if (panels == 2) return views == 1 ? Grid{1, 2} : Grid{2, views};
  return views == 4 ? Grid{2, 2} : Grid{1, views};
}

int font_scale_for(int width, int height) {
  // By area, so a wide strip of tiles gets the same text as a square of them.
  return std::clamp(static_cast<int>(std::lround(std::sqrt(static_cast<double>(width) * height) / 330)), 1, 8);
}

Image render_figure(const std::vector<float>& xyz, const CloudFigure& figure) {
  const int n = static_cast<int>(xyz.size() / 3);
  const Grid grid = figure_grid(static_cast<int>(figure.panels.size()), static_cast<int>(figure.views.size()));
  int width = figure.width, height = figure.height;
  if (width <= 0 || height <= 0) {
    width = grid.cols * kDefaultTile;
    height = grid.rows * kDefaultTile + kDefaultTile / 5;  // room for the title and the legend
  }
  Image image(width, height, kBackground);
  const int scale = font_scale_for(width, height);
  const int small = scale >= 3 ? scale - 1 : scale;  // tile captions: a little smaller on big images
  const int pad = 4 * scale;

  int top = 0;
  if (!figure.title.empty()) {
    int title_scale = scale;
    const std::string title = fit_text(figure.title, width - 2 * pad, &title_scale);
    draw_text(image, (width - text_width(title, title_scale)) / 2, pad, title, kInk, title_scale);
    top = text_height(scale) + 2 * pad;
  }
  const int legend_h = lay_out_legend(nullptr, figure.legend, 0, 0, width, scale);
  const int bottom = height - legend_h;
  lay_out_legend(&image, figure.legend, 0, bottom, width, scale);
  if (bottom - top < 16 * grid.rows || width < 16 * grid.cols)
    fail("image size ", width, "x", height, ": too small for ", grid.rows, "x", grid.cols,
         " tiles with the title and legend");

  const float tile_w = static_cast<float>(width) / grid.cols, tile_h = static_cast<float>(bottom - top) / grid.rows;
  for (size_t p = 0; p < figure.panels.size(); ++p)
    for (size_t v = 0; v < figure.views.size(); ++v) {
      const size_t k = p * figure.views.size() + v;
      const int row = static_cast<int>(k) / grid.cols, col = static_cast<int>(k) % grid.cols;
      const int x0 = static_cast<int>(col * tile_w), y0 = top + static_cast<int>(row * tile_h);
      const int x1 = static_cast<int>((col + 1) * tile_w), y1 = top + static_cast<int>((row + 1) * tile_h);
      image.stroke_rect(x0 + 1, y0, x1 - x0 - 2, y1 - y0, kFaintInk);
      std::string caption = figure.panels[p].caption;
      if (figure.views.size() > 1) caption += (caption.empty() ? "" : ", ") + figure.views[v].name;
      int caption_h = 0;
      if (!caption.empty()) {
        int caption_scale = small;
        draw_text(image, x0 + pad, y0 + pad, fit_text(caption, x1 - x0 - 2 * pad, &caption_scale), kInk,
                  caption_scale);
        caption_h = text_height(small) + pad;
      }
      const float cw = static_cast<float>(x1 - x0), ch = static_cast<float>(y1 - y0 - caption_h);
      const float radius = splat_radius(n, cw, ch);
      const Projection proj =
          fit_projection(xyz, figure.views[v], figure.up_axis, x0, y0 + caption_h, cw, ch, radius + 2.f * pad);
      draw_cloud(image, proj, xyz, figure.panels[p].colors, radius);
    }
  return image;
}

}  // namespace pointnet::render
