// The fused wide layer's sparse part of dx (src/cuda/wide_max.cu): each
// cloud's picks, sorted by (row, c) with row -1 (skipped) last, add
// float(term w_c) to dx[b, row, :].
//
// Max pooling concentrates the picks: a few rows of a cloud take hundreds of
// channels each. One warp per run of equal rows (session 14's kernel) was set
// by the longest runs: 37 us a call at the model's shape (CUPTI, H100,
// 2026-12-07), loads in flight no remedy (more ahead was no faster). Here the
// work is cut evenly instead: one warp per segment of `span` sorted picks
// (8, 16 or 32: POINTNET_PICK_SPAN, default 8), then a pass in which the warp
// of the segment where a crossing run starts adds up that run. At the model's
// shape (CUPTI, H100, 2026-12-07): span 32 took 22.6 us for the segments (a
// segment of mostly short runs reads and writes their dx rows one after
// another), span 16 14.6 + 4.4 us; span 8 (not profiled) gave the fastest
// steps, by a few us (cls bf16 1.244 / 1.251 / 1.259 ms at 8 / 16 / 32, one call).
//
// Order and determinism: a run inside one segment adds its terms onto dx's
// row in ascending c (the CPU's operations in its order). A crossing run's
// pieces (its picks within one segment) are each summed from 0 in ascending
// c, then added to dx's row in segment order: a fixed order, so the same bits
// on every run at a given span (another span groups those sums otherwise), though not the CPU's bits for those rows (fp32 sums of the
// same terms grouped differently). No atomics; one writer per dx element.
#include "cuda/wide_picks.h"

#include <string>

#include "core/env_choice.h"
#include "cuda/cuda_common.cuh"

namespace pointnet::cuda {
namespace {
constexpr int kPerLane = 4;   // dx columns per lane per pass (128 columns a pass)
constexpr int kAhead = 4;     // picks whose w rows are loaded before the first is added
constexpr int kWarpsPerBlock = 8;
constexpr int kMinSpan = 8;   // the shortest segment: pick_piece_floats' size

__host__ __device__ __forceinline__ int segments_per_cloud(int C, int span) { return (C + span - 1) / span; }

// dx's elements: fp32, or the mode's 2-byte type where the next layer reads
// its gradient so (Backend::wide_max_writes_narrow_dx); the sums are fp32.
__device__ __forceinline__ void store_dx(float* p, float v) { *p = v; }
__device__ __forceinline__ void store_dx(__nv_bfloat16* p, float v) { *p = to_narrow<__nv_bfloat16>(v); }

// The slots of a cloud's segment g: 0, the first piece of a run that starts
// in g and crosses its end; 1, the piece at g's start of a run from before.
template <typename F>  // float or const float
__device__ __forceinline__ F* piece_slot(F* pieces, int b, int g, int slot, int segments, int K) {
  return pieces + ((size_t(b) * segments + g) * 2 + slot) * K;
}

// The segment a warp of add_picks' kernels takes: cloud b, segment g (its
// picks [lo, lo + count) of the cloud's, at base in the (B, C) arrays).
struct Segment {
  int b, g, lo, count;
  size_t base;
};
// False for the warps past the last segment (the whole warp).
__device__ __forceinline__ bool segment_of_warp(Segment& seg, int B, int C, int span, int segments) {
  const size_t warp = (blockIdx.x * size_t(blockDim.x) + threadIdx.x) / 32;
  if (warp >= size_t(B) * segments) return false;
  seg.b = static_cast<int>(warp / segments);
  seg.g = static_cast<int>(warp % segments);
  seg.base = size_t(seg.b) * C;
  seg.lo = seg.g * span;
  seg.count = min(span, C - seg.lo);
  return true;
}

// acc (kPerLane columns k0 + lane + 32 j) += float(term_t w_{c_t}) for the
// picks t in [p, q) of the segment, t ascending; lane t holds pick t's
// channel and term.
__device__ __forceinline__ void add_terms(float (&acc)[kPerLane], const float* w, int p, int q, int channel,
                                          double term, int k0, int K, int lane) {
  for (int t0 = p; t0 < q; t0 += kAhead) {
    float wv[kAhead][kPerLane];
    double v[kAhead];
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      const int t = t0 + a;
      const int c = __shfl_sync(0xffffffffu, channel, t & 31);
      v[a] = __shfl_sync(0xffffffffu, term, t & 31);
      const float* wc = w + size_t(c) * K + k0 + lane;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) wv[a][j] = t < q && k0 + lane + 32 * j < K ? wc[32 * j] : 0.0f;
    }
#pragma unroll
    for (int a = 0; a < kAhead; ++a) {
      if (t0 + a >= q) break;
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) acc[j] += static_cast<float>(v[a] * wv[a][j]);
    }
  }
}

// One warp per (cloud, segment of span sorted picks; lanes below span hold
// them, every lane takes columns). Each piece (a maximal stretch of equal
// rows in the segment): a run wholly inside goes onto dx's row; a crossing
// run's piece into its slot.
template <typename Dx>  // float or __nv_bfloat16
__global__ void segment_picks_kernel(Dx* dx, float* pieces, const float* w, const int32_t* pick_row,
                                     const int32_t* pick_channel, const double* pick_term, int B, int N, int K,
                                     int C, int span) {
  const int segments = segments_per_cloud(C, span);
  Segment seg;
  if (!segment_of_warp(seg, B, C, span, segments)) return;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int b = seg.b, g = seg.g, lo = seg.lo, count = seg.count;
  const size_t base = seg.base;
  const bool valid = lane < count;
  const int row = valid ? pick_row[base + lo + lane] : -1;
  const int channel = valid ? pick_channel[base + lo + lane] : 0;
  const double term = valid ? pick_term[base + lo + lane] : 0.0;
  const int before = lo > 0 ? pick_row[base + lo - 1] : -1;      // the previous segment's last row
  const int after = lo + count < C ? pick_row[base + lo + count] : -1;  // the next segment's first
  const int left = __shfl_up_sync(0xffffffffu, row, 1);
  const int right = __shfl_down_sync(0xffffffffu, row, 1);
  const unsigned starts = __ballot_sync(0xffffffffu, valid && row >= 0 && (lane == 0 || left != row));
  const unsigned ends = __ballot_sync(0xffffffffu, valid && row >= 0 && (lane == count - 1 || right != row));
  for (unsigned s = starts; s != 0; s &= s - 1) {
    const int p = __ffs(s) - 1;
    const int q = __ffs(ends & ~((1u << p) - 1u));  // one past the piece's last pick
    const int r = __shfl_sync(0xffffffffu, row, p);
    const bool from_before = p == 0 && before == r;
    const bool to_after = q == count && after == r;
    const bool onto_dx = !from_before && !to_after;
    float* piece = onto_dx ? nullptr : piece_slot(pieces, b, g, from_before ? 1 : 0, segments, K);
    Dx* dx_row = dx + (size_t(b) * N + r) * K;
    for (int k0 = 0; k0 < K; k0 += 32 * kPerLane) {
      float acc[kPerLane];
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int k = k0 + lane + 32 * j;
        acc[j] = onto_dx && k < K ? widen(dx_row[k]) : 0.0f;
      }
      add_terms(acc, w, p, q, channel, term, k0, K, lane);
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int k = k0 + lane + 32 * j;
        if (k >= K) continue;
        if (onto_dx) store_dx(dx_row + k, acc[j]);
        else piece[k] = acc[j];
      }
    }
  }
}

// One warp per (cloud, segment); the warp whose segment holds the start of a
// crossing run (its last piece, starting there and going on into the next)
// adds that run's pieces onto dx's row in segment order.
template <typename Dx>
__global__ void crossing_runs_kernel(Dx* dx, const float* pieces, const int32_t* pick_row, int B, int N, int K,
                                     int C, int span) {
  const int segments = segments_per_cloud(C, span);
  Segment seg;
  if (!segment_of_warp(seg, B, C, span, segments)) return;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int b = seg.b, g = seg.g, lo = seg.lo, count = seg.count;
  const size_t base = seg.base;
  if (lo + count >= C) return;  // the cloud's last segment: nothing after it
  const int r = pick_row[base + lo + count - 1];  // the segment's last pick
  if (r < 0 || pick_row[base + lo + count] != r) return;  // its run does not cross the end
  // It starts in this segment unless the whole segment continues a run from before.
  if (pick_row[base + lo] == r && lo > 0 && pick_row[base + lo - 1] == r) return;
  // The following segments that continue the run (their first pick's row
  // is r), counted 32 at a time, so that the pieces' loads below are independent.
  int more = 0;
  for (int h0 = g + 1; h0 < segments; h0 += 32) {
    const int h = h0 + lane;
    const unsigned goes_on = __ballot_sync(0xffffffffu, h < segments && pick_row[base + size_t(h) * span] == r);
    const int n = goes_on == 0xffffffffu ? 32 : __ffs(~goes_on) - 1;
    more += n;
    if (n < 32) break;
  }
  Dx* out = dx + (size_t(b) * N + r) * K;
  for (int k0 = 0; k0 < K; k0 += 32 * kPerLane) {
    float acc[kPerLane];
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int k = k0 + lane + 32 * j;
      acc[j] = k < K ? widen(out[k]) : 0.0f;
    }
    const auto add = [&](const float* piece) {
#pragma unroll
      for (int j = 0; j < kPerLane; ++j) {
        const int k = k0 + lane + 32 * j;
        if (k < K) acc[j] += piece[k];
      }
    };
    add(piece_slot(pieces, b, g, 0, segments, K));
    // The later pieces: at each following segment's start, in order.
#pragma unroll 4
    for (int i = 1; i <= more; ++i) add(piece_slot(pieces, b, g + i, 1, segments, K));
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int k = k0 + lane + 32 * j;
      if (k < K) store_dx(out + k, acc[j]);
    }
  }
}
}  // namespace

size_t pick_piece_floats(int B, int K, int C) { return size_t(B) * segments_per_cloud(C, kMinSpan) * 2 * K; }

template <typename Dx>
void add_picks(cudaStream_t stream, Dx* dx, float* pieces, const float* w, const int32_t* pick_row,
               const int32_t* pick_channel, const double* pick_term, int B, int N, int K, int C) {
  const int span = std::stoi(env_choice("POINTNET_PICK_SPAN", {"8", "16", "32"}));
  PN_CHECK(span >= kMinSpan && span <= 32);  // the scratch's size; a lane per pick
  const size_t warps = size_t(B) * segments_per_cloud(C, span);
  if (warps == 0) return;
  const unsigned blocks = static_cast<unsigned>((warps + kWarpsPerBlock - 1) / kWarpsPerBlock);
  segment_picks_kernel<<<blocks, kWarpsPerBlock * 32, 0, stream>>>(dx, pieces, w, pick_row, pick_channel,
                                                                   pick_term, B, N, K, C, span);
  CUDA_CHECK_LAUNCH();
  crossing_runs_kernel<<<blocks, kWarpsPerBlock * 32, 0, stream>>>(dx, pieces, pick_row, B, N, K, C, span);
  CUDA_CHECK_LAUNCH();
}

template void add_picks<float>(cudaStream_t, float*, float*, const float*, const int32_t*, const int32_t*,
                               const double*, int, int, int, int);
template void add_picks<__nv_bfloat16>(cudaStream_t, __nv_bfloat16*, float*, const float*, const int32_t*,
                                       const int32_t*, const double*, int, int, int, int);

}  // namespace pointnet::cuda
