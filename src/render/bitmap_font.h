// A small bitmap font for titles, legends and axis labels: printable ASCII,
// 5x7 pixel glyphs drawn for this project (public domain), scaled up by an
// integer factor for larger images.
#pragma once
#include <string>

#include "render/image.h"

namespace pointnet::render {

constexpr int kGlyphWidth = 5, kGlyphHeight = 7;
constexpr int kGlyphAdvance = 6;  // glyph + one column of spacing

// Pixel size of `text` at `scale` (characters outside printable ASCII draw as '?').
int text_width(const std::string& text, int scale);
inline int text_height(int scale) { return kGlyphHeight * scale; }

// Draws `text` with its top-left corner at (x, y).
void draw_text(Image& image, int x, int y, const std::string& text, Rgb color, int scale);

// Draws `text` turned 90 degrees anticlockwise (reading upwards), its bounding
// box's top-left at (x, y): text_height(scale) wide, text_width(...) tall.
void draw_text_up(Image& image, int x, int y, const std::string& text, Rgb color, int scale);

// `text` made to fit `max_width` pixels: lowers `*scale` (not below 1) and,
// if that is not enough, cuts the end off behind "...".
std::string fit_text(const std::string& text, int max_width, int* scale);

// Whether glyph pixel (col, row) of character `c` is set (for tests).
bool glyph_pixel(char c, int col, int row);

}  // namespace pointnet::render
