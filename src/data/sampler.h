// Turns a shape into a fixed-size network input: pick N points, centre them,
// scale to the unit sphere, and at training time rotate about the up axis and
// jitter (pointnet.pytorch's ModelNetDataset/ShapeNetDataset __getitem__).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "data/dataset.h"

namespace pointnet {

struct SampleOptions {
  int num_points = 1024;       // N; points are drawn with replacement as pointnet.pytorch does
  bool augment = false;        // rotation about the up axis + Gaussian jitter
  float jitter_sigma = 0.02f;
  int up_axis = 2;             // 1 = y, 2 = z
  bool use_normals = false;    // 6 channels per point: x y z nx ny nz (the shape must have normals)
  int channels() const { return use_normals ? 6 : 3; }
};

// Writes (N, C) floats to `points_out` (C = options.channels(): xyz, then the
// normal when use_normals) and, when the shape has part labels and `parts_out`
// is not null, (N) labels. Consumes random numbers from `rng`. Normals turn
// with the rotation and are not jittered.
void sample_shape(const Shape& shape, const SampleOptions& options, Rng& rng, float* points_out,
                  int32_t* parts_out);

// Centres an (n, 3) cloud on its centroid and scales it to fit the unit sphere
// (in place). A cloud of one point, or all points equal, becomes the origin.
// With stride > 3 only each row's first three values (xyz) change.
void normalize_cloud(float* points, int n, int stride = 3);

// Interleaves (n, 3) xyz and (n, 3) normals into (n, 6) rows; throws naming
// `path` when the normals are missing or their count differs.
void interleave_normals(const std::vector<float>& xyz, const std::vector<float>& normals, const std::string& path,
                        float* out);

}  // namespace pointnet
