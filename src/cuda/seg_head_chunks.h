// How the segmenter's GEMM head (engine_seg_head_lt.cu) walks a slice of B
// clouds of N points: chunks of g whole clouds (g * N <= chunk_rows) where a
// cloud fits, else one cloud in pieces of at most chunk_rows points. Plain
// C++ so the CPU tests check the walk: every point once, no chunk larger
// than the scratch it writes.
#pragma once
#include <algorithm>
#include <cstddef>

namespace pointnet::cuda_engine {

struct SegChunk {
  int b0 = 0;      // first cloud
  int clouds = 0;  // g clouds, each contributing `rows` points from r0
  int r0 = 0, rows = 0;
};

// Calls f(chunk) for each chunk, in order.
template <class F>
void for_each_seg_chunk(int B, int N, int chunk_rows, F&& f) {
  const bool whole = N <= chunk_rows;
  const int clouds = whole ? std::min(B, chunk_rows / N) : 1;
  const int piece = whole ? N : chunk_rows;
  for (int b0 = 0; b0 < B; b0 += clouds)
    for (int r0 = 0; r0 < N; r0 += piece) f(SegChunk{b0, std::min(clouds, B - b0), r0, std::min(piece, N - r0)});
}

// The most points any chunk of a run with at most B clouds of N points holds.
inline size_t seg_chunk_rows_bound(int B, int N, int chunk_rows) {
  return std::min<size_t>(chunk_rows, static_cast<size_t>(B) * N);
}

}  // namespace pointnet::cuda_engine
