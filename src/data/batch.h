// Assembles a batch: B shapes -> (B, N, 3) points and their labels. Each
// shape's randomness comes from its own generator, seeded from (seed, shape),
// so a batch is the same whatever the thread count and wherever a run resumes.
#pragma once
#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"

namespace pointnet {

// Mixes integers into one well-spread seed (splitmix64 steps).
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

// points: (B, N, C), C = options.channels(). labels: (B) class per cloud when `parts` is false, else
// (B, N) part labels. A shape with exactly N points and no augmentation is used
// as is (all points, in order) instead of being resampled.
void assemble_batch(const Dataset& data, const std::vector<int>& shape_indices, const SampleOptions& options,
                    uint64_t seed, bool parts, float* points, int32_t* labels);

}  // namespace pointnet
