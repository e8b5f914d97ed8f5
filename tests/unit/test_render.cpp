// The headless renderer: PNG bytes, projection, depth order, palette, font.
#include <cmath>
#include <filesystem>
#include <limits>

#include <gtest/gtest.h>

#include "../png_reader.h"
#include "../temp_dir.h"
#include "core/errors.h"
#include "core/rng.h"
#include "render/bitmap_font.h"
#include "render/chart.h"
#include "render/cloud_view.h"
#include "render/image.h"
#include "render/palette.h"
#include "render/png_writer.h"

namespace pointnet::render {
namespace {

using pointnet::testing::TempDir;

TEST(RenderPng, RoundTripKeepsEveryPixel) {
  TempDir tmp;
  Image image(37, 23, Rgb{0, 0, 0});
  Rng rng(5);
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x)
      image.set(x, y, Rgb{static_cast<uint8_t>(rng.below(256)), static_cast<uint8_t>(rng.below(256)),
                          static_cast<uint8_t>(rng.below(256))});
  const std::string path = (tmp / "noise.png").string();
  write_png(path, image);
  const auto decoded = pointnet::testing::decode_png_file(path);
  ASSERT_TRUE(decoded.ok) << decoded.message;
  ASSERT_EQ(decoded.width, 37);
  ASSERT_EQ(decoded.height, 23);
  for (int y = 0; y < 23; ++y)
    for (int x = 0; x < 37; ++x) {
      const uint8_t* p = decoded.at(x, y);
      ASSERT_EQ((Rgb{p[0], p[1], p[2]}), image.get(x, y)) << "pixel " << x << "," << y;
    }
}

TEST(RenderPng, UnwritablePathIsAnErrorNamingIt) {
  Image image(4, 4, kBackground);
  try {
    write_png("/nonexistent_folder_for_pointnet/out.png", image);
    FAIL() << "expected pointnet::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent_folder_for_pointnet/out.png"), std::string::npos) << e.what();
  }
}

TEST(RenderImage, AbsurdSizesAreRefused) {
  EXPECT_THROW(Image(0, 10, kBackground), Error);
  EXPECT_THROW(Image(10, -1, kBackground), Error);
  EXPECT_THROW(Image(100000, 10, kBackground), Error);
}

TEST(RenderImage, DiscCoversItsCentreNotFarAway) {
  Image image(40, 40, Rgb{255, 255, 255});
  image.fill_disc(20, 20, 5, Rgb{10, 20, 30});
  EXPECT_EQ(image.get(20, 20), (Rgb{10, 20, 30}));
  EXPECT_EQ(image.get(20, 27), (Rgb{255, 255, 255}));
  EXPECT_EQ(image.get(31, 20), (Rgb{255, 255, 255}));
}

// Front view, z up: u = x, v = z. Extents [-1, 1] on both axes in a 200x100
// rectangle less 10 pixels each side: scale = min(180, 80) / 2 = 40.
TEST(RenderProjection, KnownPointLandsOnKnownPixel) {
  const std::vector<float> xyz = {-1, 0, -1, 1, 0, 1, 0, 0, 0};
  const Projection p = fit_projection(xyz, ViewAngles{"front", 0, 0}, 2, 0, 0, 200, 100, 10);
  EXPECT_FLOAT_EQ(p.scale, 40.f);
  const ScreenPoint corner = p.project(&xyz[3]);
  EXPECT_NEAR(corner.x, 140.f, 1e-4);
  EXPECT_NEAR(corner.y, 10.f, 1e-4);
  const ScreenPoint centre = p.project(&xyz[6]);
  EXPECT_NEAR(centre.x, 100.f, 1e-4);
  EXPECT_NEAR(centre.y, 50.f, 1e-4);

  // Drawn: the point's colour sits on that pixel, the background elsewhere.
  Image image(200, 100, kBackground);
  draw_cloud(image, p, xyz, {kBackground, Rgb{200, 0, 0}, kBackground}, 3.f);
  const Rgb hit = image.get(140, 10);
  EXPECT_GT(hit.r, 100) << "the red point's splat";
  EXPECT_LT(hit.g, 60);
  EXPECT_EQ(image.get(150, 30), kBackground);
}

TEST(RenderProjection, NonFinitePointsAreSkipped) {
  const std::vector<float> xyz = {-1, 0, -1, 1, 0, 1, 0, 0, 0};
  const Projection p = fit_projection(xyz, ViewAngles{"front", 0, 0}, 2, 0, 0, 200, 100, 10);
  Image clean(200, 100, kBackground), with_bad(200, 100, kBackground);
  draw_cloud(clean, p, xyz, {Rgb{0, 0, 200}, Rgb{200, 0, 0}, Rgb{0, 200, 0}}, 3.f);
  std::vector<float> bad = xyz;
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  bad.insert(bad.begin() + 3, {nan, 0, 0});
  bad.insert(bad.end(), {0, inf, 0});
  draw_cloud(with_bad, p, bad, {Rgb{0, 0, 200}, Rgb{9, 9, 9}, Rgb{200, 0, 0}, Rgb{0, 200, 0}, Rgb{9, 9, 9}}, 3.f);
  for (int y = 0; y < 100; ++y)
    for (int x = 0; x < 200; ++x) ASSERT_EQ(with_bad.get(x, y), clean.get(x, y)) << x << ", " << y;
}

TEST(RenderProjection, UpAxisPointsUp) {
  // y-up data (ShapeNet): the +y point must be the highest on screen in every side view.
  const std::vector<float> xyz = {0, 1, 0, 0, -1, 0, 1, 0, 0.3f, -1, 0, -0.3f};
  for (const ViewAngles& v : standard_views(4)) {
    if (v.elevation_deg >= 90) continue;  // the top view looks down the up axis
    const Projection p = fit_projection(xyz, v, 1, 0, 0, 100, 100, 5);
    EXPECT_LT(p.project(&xyz[0]).y, p.project(&xyz[3]).y) << v.name;
  }
  // The top view looks down: the highest point is the nearest.
  const std::vector<float> z_up = {0, 0, 1, 0, 0, -1, 1, 0, 0};
  const Projection top = fit_projection(z_up, ViewAngles{"top", 0, 90}, 2, 0, 0, 100, 100, 5);
  EXPECT_LT(top.project(&z_up[0]).depth, top.project(&z_up[3]).depth);
}

TEST(RenderProjection, NearPointCoversFarOneWhateverTheOrder) {
  // Front view: the camera sits at -y, so y = -0.5 is near and y = +0.5 far;
  // both project to the centre. Two corner points fix the fit.
  const Rgb near{220, 0, 0}, far{0, 0, 220}, corner{120, 120, 120};
  for (const bool near_first : {true, false}) {
    std::vector<float> xyz = {-1, 0, -1, 1, 0, 1};
    std::vector<Rgb> colors = {corner, corner};
    const float a[3] = {0, -0.5f, 0}, b[3] = {0, 0.5f, 0};
    for (const float* q : near_first ? std::vector<const float*>{a, b} : std::vector<const float*>{b, a})
      xyz.insert(xyz.end(), q, q + 3);
    colors.push_back(near_first ? near : far);
    colors.push_back(near_first ? far : near);
    const Projection p = fit_projection(xyz, ViewAngles{"front", 0, 0}, 2, 0, 0, 100, 100, 10);
    Image image(100, 100, kBackground);
    draw_cloud(image, p, xyz, colors, 6.f);
    const Rgb c = image.get(50, 50);
    EXPECT_GT(c.r, 120) << (near_first ? "near listed first" : "near listed last");
    EXPECT_LT(c.b, 40) << (near_first ? "near listed first" : "near listed last");
  }
}

// CIE L*a*b* distance (CIE76) between two sRGB colours.
double delta_e(Rgb a, Rgb b) {
  auto lab = [](Rgb c, double out[3]) {
    auto lin = [](uint8_t v) {
      const double s = v / 255.0;
      return s <= 0.04045 ? s / 12.92 : std::pow((s + 0.055) / 1.055, 2.4);
    };
    const double r = lin(c.r), g = lin(c.g), bl = lin(c.b);
    const double X = (0.4124 * r + 0.3576 * g + 0.1805 * bl) / 0.95047, Y = 0.2126 * r + 0.7152 * g + 0.0722 * bl,
                 Z = (0.0193 * r + 0.1192 * g + 0.9505 * bl) / 1.08883;
    auto f = [](double t) { return t > 0.008856 ? std::cbrt(t) : 7.787 * t + 16.0 / 116; };
    out[0] = 116 * f(Y) - 16;
    out[1] = 500 * (f(X) - f(Y));
    out[2] = 200 * (f(Y) - f(Z));
  };
  double la[3], lb[3];
  lab(a, la);
  lab(b, lb);
  return std::sqrt((la[0] - lb[0]) * (la[0] - lb[0]) + (la[1] - lb[1]) * (la[1] - lb[1]) +
                   (la[2] - lb[2]) * (la[2] - lb[2]));
}

TEST(RenderPalette, ColoursAreDistinct) {
  // The base hues differ clearly (deltaE 25+); with the shaded rounds, any two
  // of the first 24 labels still differ visibly (deltaE 9+), and none
  // vanishes into the page.
  for (int i = 0; i < 24; ++i) {
    EXPECT_GT(delta_e(label_color(i), kBackground), 12) << "label " << i;
    for (int j = i + 1; j < 24; ++j) {
      const double d = delta_e(label_color(i), label_color(j));
      EXPECT_GT(d, i < kPaletteBase && j < kPaletteBase ? 25 : 9) << "labels " << i << " and " << j;
    }
  }
  EXPECT_EQ(label_color(3), label_color(3));
}

TEST(RenderFont, GlyphsAndMetrics) {
  for (int col = 0; col < kGlyphWidth; ++col) EXPECT_TRUE(glyph_pixel('A', col, 3)) << "A's bar";
  EXPECT_FALSE(glyph_pixel(' ', 2, 3));
  EXPECT_EQ(text_width("ab", 2), (2 * kGlyphAdvance - 1) * 2);
  EXPECT_EQ(text_height(3), 21);

  // Ink stays inside the text's box; a '|' drawn upright is a vertical bar,
  // turned up it is a horizontal one.
  Image image(40, 40, Rgb{255, 255, 255});
  draw_text(image, 10, 5, "|", Rgb{0, 0, 0}, 2);
  EXPECT_EQ(image.get(10 + 2 * 2, 5), (Rgb{0, 0, 0}));
  EXPECT_EQ(image.get(10 + 2 * 2, 5 + 13), (Rgb{0, 0, 0}));
  EXPECT_EQ(image.get(9, 5), (Rgb{255, 255, 255}));
  Image up(40, 40, Rgb{255, 255, 255});
  draw_text_up(up, 10, 5, "|", Rgb{0, 0, 0}, 2);
  // Glyph column 2 becomes row (width - 1 - 2 * 2 .. ) of the box; its rows run right.
  const int y = 5 + text_width("|", 2) - 1 - 2 * 2;
  EXPECT_EQ(up.get(10, y), (Rgb{0, 0, 0}));
  EXPECT_EQ(up.get(10 + 13, y), (Rgb{0, 0, 0}));
}

TEST(RenderFont, LongTextIsFittedNotClipped) {
  int scale = 3;
  EXPECT_EQ(fit_text("short", 200, &scale), "short");
  EXPECT_EQ(scale, 3);
  const std::string long_title(20, 'x');  // 119 pixels wide at scale 1, 238 at 2
  EXPECT_EQ(fit_text(long_title, 130, &scale), long_title);
  EXPECT_EQ(scale, 1);
  scale = 2;
  const std::string cut = fit_text(long_title, 60, &scale);
  EXPECT_EQ(scale, 1);
  EXPECT_LE(text_width(cut, 1), 60);
  EXPECT_EQ(cut.substr(cut.size() - 3), "...");
}

TEST(RenderChart, NiceTicks) {
  const auto unit = nice_ticks(0, 1, 5);
  ASSERT_EQ(unit.size(), 6u);
  for (int k = 0; k < 6; ++k) EXPECT_NEAR(unit[k], 0.2 * k, 1e-12);
  const auto t = nice_ticks(3, 47, 5);
  ASSERT_FALSE(t.empty());
  EXPECT_EQ(t.front(), 10);
  EXPECT_EQ(t.back(), 40);
}

}  // namespace
}  // namespace pointnet::render
