// The walk of the segmenter's GEMM head over a slice (src/cuda/seg_head_chunks.h):
// on any machine, since a wrong walk writes past the head's scratch on the GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "cuda/seg_head_chunks.h"

namespace pointnet::cuda_engine {
namespace {

// Every point of every cloud exactly once; chunks of whole clouds start at
// point 0; no chunk above the bound of the largest shape the scratch was
// sized for (capB, capN), which may be another shape than the run's.
void expect_walk(int B, int N, int R, int capB, int capN) {
  std::vector<int> seen(static_cast<size_t>(B) * N, 0);
  const size_t bound = seg_chunk_rows_bound(capB, capN, R);
  for_each_seg_chunk(B, N, R, [&](const SegChunk& c) {
    ASSERT_GE(c.clouds, 1);
    ASSERT_GE(c.rows, 1);
    ASSERT_LE(c.b0 + c.clouds, B);
    ASSERT_LE(c.r0 + c.rows, N);
    EXPECT_LE(static_cast<size_t>(c.clouds) * c.rows, bound) << B << "x" << N << " R " << R;
    if (c.clouds > 1) {
      EXPECT_EQ(c.rows, N);
    }
    if (N <= R) {
      EXPECT_EQ(c.r0, 0);
    }
    for (int b = c.b0; b < c.b0 + c.clouds; ++b)
      for (int r = c.r0; r < c.r0 + c.rows; ++r) ++seen[static_cast<size_t>(b) * N + r];
  });
  for (size_t i = 0; i < seen.size(); ++i) ASSERT_EQ(seen[i], 1) << B << "x" << N << " R " << R << " point " << i;
}

TEST(SegHeadChunks, EveryPointOnceWithinTheScratch) {
  for (int R : {1, 7, 256, 1000, 32768})
    for (int B : {1, 2, 3, 13, 64, 130})
      for (int N : {1, 64, 129, 200, 300, 480, 700, 2500, 40000}) {
        if (R < 256 && N > 2500) continue;  // millions of one-point chunks: no new case
        expect_walk(B, N, R, B, N);
        expect_walk(B, N, R, B + 5, N + 100);  // scratch sized for a larger shape
      }
}

// The shapes of the review's overflow: scratch sized after (16, 2500) and
// (16, 2000), then (16, 2040) must still fit in chunk_rows points.
TEST(SegHeadChunks, AShapeAfterLargerOnesFits) {
  expect_walk(16, 2040, 32768, 16, 2500);
  expect_walk(3, 480, 1000, 3, 700);
  size_t largest = 0;
  for_each_seg_chunk(16, 2040, 32768, [&](const SegChunk& c) {
    largest = std::max<size_t>(largest, static_cast<size_t>(c.clouds) * c.rows);
  });
  EXPECT_EQ(largest, 16u * 2040);  // all 16 clouds in one chunk: 32,640 points
}

TEST(SegHeadChunks, LargeCloudsGoInPieces) {
  std::vector<SegChunk> chunks;
  for_each_seg_chunk(2, 700, 256, [&](const SegChunk& c) { chunks.push_back(c); });
  ASSERT_EQ(chunks.size(), 6u);  // 256 + 256 + 188 per cloud
  EXPECT_EQ(chunks[2].r0, 512);
  EXPECT_EQ(chunks[2].rows, 188);
  EXPECT_EQ(chunks[3].b0, 1);
  EXPECT_EQ(chunks[3].r0, 0);
}

}  // namespace
}  // namespace pointnet::cuda_engine
