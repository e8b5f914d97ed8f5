#include "render/palette.h"

#include <algorithm>

#include "core/errors.h"

namespace pointnet::render {

namespace {
// Okabe & Ito (2008), "Color Universal Design", ordered so neighbours differ
// most; Tableau's brown completes eight.
constexpr Rgb kBase[kPaletteBase] = {
    {0, 114, 178},    // blue
    {230, 159, 0},    // orange
    {0, 158, 115},    // bluish green
    {213, 94, 0},     // vermillion
    {86, 180, 233},   // sky blue
    {204, 121, 167},  // reddish purple
    {240, 228, 66},   // yellow
    {156, 117, 95},   // brown
};
}  // namespace

Rgb label_color(int index) {
  PN_CHECK(index >= 0);
  const Rgb base = kBase[index % kPaletteBase];
  // Beyond the base set: darker, then lighter, a step further every two rounds.
  const int round = index / kPaletteBase;
  if (round == 0) return base;
  const float amount = std::min(0.3f * ((round + 1) / 2), 0.75f);
  return round % 2 == 1 ? scaled(base, 1.f - amount) : mix(base, Rgb{255, 255, 255}, amount);
}

Rgb neutral_color() { return {84, 130, 186}; }

}  // namespace pointnet::render
