// The fused wide layer's sparse part of dx, in two balanced passes
// (src/cuda/wide_picks.cu). Not a public header.
#pragma once
#include <cstddef>
#include <cstdint>

#include <cuda_runtime.h>

namespace pointnet::cuda {

// Floats of scratch add_picks needs for its pieces (B clouds, K columns, C picks per cloud).
size_t pick_piece_floats(int B, int K, int C);

// dx[b, row, :] += float(term w_c) over each cloud's picks (pick_row,
// pick_channel, pick_term: (B, C), sorted by (row, c) with row -1, skipped,
// last; rows < N), queued on `stream`. w (C, K); pieces: pick_piece_floats
// floats of scratch. Deterministic: a fixed order of additions. Dx: float,
// or __nv_bfloat16 (the sums in fp32, each touched element rounded once more).
template <typename Dx>
void add_picks(cudaStream_t stream, Dx* dx, float* pieces, const float* w, const int32_t* pick_row,
               const int32_t* pick_channel, const double* pick_term, int B, int N, int K, int C);

}  // namespace pointnet::cuda
