// The part-segmentation categories of the synthetic dataset (data/synth.h):
// objects assembled from primitives, every triangle tagged with its part.
// Built z up in the object's own frame. Internal to the synth module.
#pragma once
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/synth_mesh.h"

namespace pointnet {
namespace synth {

struct Category {
  std::string name;                 // as in synsetoffset2category.txt
  std::string synset;               // 8-digit ShapeNet synset id
  std::vector<std::string> parts;   // part names; part p is label p + 1 in .seg files
};

// Categories in label order.
const std::vector<Category>& segmentation_categories();

// One object of category `cat` with parts 0..parts-1, proportions jittered from `rng`.
Mesh build_segmentation_shape(int cat, Rng& rng);

}  // namespace synth
}  // namespace pointnet
