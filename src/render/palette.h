// Colours for part labels and classes: Okabe-Ito's colour-blind-safe set
// (without black) plus one brown, then the same hues darker, lighter, ...
#pragma once
#include "render/image.h"

namespace pointnet::render {

constexpr int kPaletteBase = 8;  // distinct hues before the shades repeat

// The colour of label `index` (>= 0); equal indices always give equal colours.
Rgb label_color(int index);

// The colour of a cloud drawn without labels.
Rgb neutral_color();

// Page colours shared by the renderer and the charts.
constexpr Rgb kBackground{250, 250, 247};
constexpr Rgb kInk{40, 40, 40};       // text, axes
constexpr Rgb kFaintInk{215, 215, 210};  // grid lines, tile borders

}  // namespace pointnet::render
