// Turns a shape into a fixed-size network input: pick N points, centre them,
// scale to the unit sphere, and at training time rotate about the up axis and
// jitter (pointnet.pytorch's ModelNetDataset/ShapeNetDataset __getitem__).
#pragma once
#include <cstdint>
#include <vector>

#include "core/rng.h"
#include "data/dataset.h"

namespace pointnet {

struct SampleOptions {
  int num_points = 1024;       // N; points are drawn with replacement as pointnet.pytorch does
  bool augment = false;        // rotation about the up axis + Gaussian jitter
  float jitter_sigma = 0.02f;
  int up_axis = 2;             // 1 = y, 2 = z
};

// Writes (N, 3) floats to `points_out` and, when the shape has part labels and
// `parts_out` is not null, (N) labels. Consumes random numbers from `rng`.
void sample_shape(const Shape& shape, const SampleOptions& options, Rng& rng, float* points_out,
                  int32_t* parts_out);

// Centres an (n, 3) cloud on its centroid and scales it to fit the unit sphere
// (in place). A cloud of one point, or all points equal, becomes the origin.
void normalize_cloud(float* points, int n);

}  // namespace pointnet
