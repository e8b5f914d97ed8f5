// The classification classes of the synthetic dataset (data/synth.h): one
// procedural solid per class, built as a triangle mesh in its own frame, z up,
// with per-shape jitter of its parameters. Internal to the synth module.
#pragma once
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/synth_mesh.h"

namespace pointnet {
namespace synth {

// Class names in label order.
const std::vector<std::string>& classification_classes();

// One shape of class `cls` (index into classification_classes()), with its own
// parameter jitter drawn from `rng`; not yet scaled, rotated or normalised.
Mesh build_classification_shape(int cls, Rng& rng);

}  // namespace synth
}  // namespace pointnet
