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

// What augmentation does, when on. RotateJitter: pointnet.pytorch's (a
// random rotation about the up axis, then Gaussian jitter). ScaleShift:
// PointNet++'s provider.py as its popular PyTorch port trains ModelNet40 with
// (random point dropout, one random scale in [0.8, 1.25], a random shift in
// [-0.1, 0.1] per axis; no rotation: ModelNet40's shapes are aligned).
enum class Augmentation { RotateJitter, ScaleShift };

struct SampleOptions {
  int num_points = 1024;       // N; points are drawn with replacement as pointnet.pytorch does
  bool augment = false;        // see `augmentation`
  Augmentation augmentation = Augmentation::RotateJitter;
  float jitter_sigma = 0.02f;
  int up_axis = 2;             // 1 = y, 2 = z
  bool use_normals = false;    // 6 channels per point: x y z nx ny nz (the shape must have normals)
  // A shape of exactly num_points points is used whole, in order, with no index
  // draws (--sampling fps: the farthest points were already picked).
  bool whole_when_exact = false;
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

// "rotate-jitter" / "scale-shift" <-> Augmentation; parse throws naming the text.
Augmentation parse_augmentation(const std::string& name);
const char* augmentation_name(Augmentation a);

// Interleaves (n, 3) xyz and (n, 3) normals into (n, 6) rows; throws naming
// `path` when the normals are missing or their count differs.
void interleave_normals(const Floats& xyz, const Floats& normals, const std::string& path,
                        float* out);

}  // namespace pointnet
