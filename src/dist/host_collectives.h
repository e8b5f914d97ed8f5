// Collectives over a few host values (votes, epoch figures, start-up checks),
// through `scratch` in the backend's memory, where the communicator works.
// Grow-only scratch: a step that calls them allocates nothing. Every rank
// calls each one at the same point; a null communicator or one rank leaves
// the values as they are.
#pragma once
#include <cstdint>
#include <vector>

#include "dist/communicator.h"
#include "model/buffer.h"

namespace pointnet {

// The sum over ranks of every rank's values (in float: exact for whole
// numbers below 2^24).
std::vector<double> sum_over_ranks(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                                   const std::vector<double>& values);

// The same for whole counts, exactly (each count goes as two 20-bit halves:
// good to 2^40 and 16 ranks).
std::vector<int64_t> sum_counts_over_ranks(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                                           const std::vector<int64_t>& counts);

// True on every rank when `ok` is true on every rank.
bool all_ranks_agree(Communicator* comm, Backend<float>& be, Buffer<float>& scratch, bool ok);

// True on every rank when every rank's `values` equal rank 0's (rank 0's
// broadcast, then a vote).
bool ranks_agree_with_rank0(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                            const std::vector<float>& values);

}  // namespace pointnet
