// Draws a point cloud as depth-sorted, shaded round splats seen from one
// direction (orthographic), fitted to a rectangle of an image.
#pragma once
#include <string>
#include <vector>

#include "render/image.h"

namespace pointnet::render {

// A camera direction in a z-up world: azimuth about z, then elevation above
// the horizon. Azimuth 0, elevation 0 looks along +y: x to the right, z up.
struct ViewAngles {
  std::string name;
  float azimuth_deg = 0, elevation_deg = 0;
};

// The views for `count` = 1..4 tiles: three-quarter; + front; front, side, top; + three-quarter.
std::vector<ViewAngles> standard_views(int count);

// Where a point lands: pixel coordinates (x right, y down) and depth (larger = farther).
struct ScreenPoint {
  float x, y, depth;
};

// World (after up-axis mapping) -> screen, fitted to a w x h rectangle at (left, top).
struct Projection {
  float rotation[3][3];  // rows: screen right, depth, screen up
  int up_axis = 2;       // 1 = y up (ShapeNet), 2 = z up (ModelNet)
  float scale = 1, centre_u = 0, centre_v = 0;
  float left = 0, top = 0, width = 1, height = 1;
  ScreenPoint project(const float* p) const;
  // Camera-plane coordinates before fitting: u right, v up, depth away from the viewer.
  struct Camera {
    float u, v, depth;
  };
  Camera camera(const float* p) const;
};

// Fits the projected cloud's bounding box inside the rectangle, less `margin` pixels each side.
Projection fit_projection(const std::vector<float>& xyz, const ViewAngles& view, int up_axis, float left, float top,
                          float width, float height, float margin);

// Splat radius in pixels for n points in a w x h rectangle: larger for bigger
// images, smaller for denser clouds.
float splat_radius(int n, float width, float height);

// Draws `xyz` (n, 3) with per-point `colors` (n) far to near, so near points
// cover far ones. Each splat is shaded as a small lit ball with a thin darker rim.
void draw_cloud(Image& image, const Projection& projection, const std::vector<float>& xyz,
                const std::vector<Rgb>& colors, float radius);

}  // namespace pointnet::render
