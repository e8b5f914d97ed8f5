#include "data/batch.h"

#include <algorithm>

#include "core/errors.h"
#include "core/parallel_for.h"
#include "core/rng.h"

namespace pointnet {

uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c) { return splitmix64(splitmix64(splitmix64(a) ^ b) ^ c); }

void assemble_batch(const Dataset& data, const std::vector<int>& shape_indices, const SampleOptions& options,
                    uint64_t seed, bool parts, float* points, int32_t* labels) {
  const int B = static_cast<int>(shape_indices.size()), N = options.num_points;
  parallel_for(static_cast<size_t>(B), [&](size_t index) {
    const int b = static_cast<int>(index);
    const Shape& shape = data.shapes[shape_indices[b]];
    const int C = options.channels();
    float* out = points + static_cast<size_t>(b) * N * C;
    int32_t* part_out = parts ? labels + static_cast<size_t>(b) * N : nullptr;
    if (!options.augment && shape.num_points() == N) {
      if (options.use_normals) interleave_normals(shape.points, shape.normals, shape.path, out);
      else std::copy(shape.points.begin(), shape.points.end(), out);
      normalize_cloud(out, N, C);
      if (part_out) std::copy(shape.parts.begin(), shape.parts.end(), part_out);
    } else {
      Rng rng(mix_seed(seed, static_cast<uint64_t>(shape_indices[b])));
      sample_shape(shape, options, rng, out, part_out);
    }
    if (!parts) labels[b] = shape.label;
  });
}

}  // namespace pointnet
