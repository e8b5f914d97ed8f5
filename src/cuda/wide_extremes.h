// Per-segment extremes of the fused wide layer's z = x w^T (src/cuda/wide_max.cu):
// the layout both extremes kernels write, and the tensor-core kernel's entry
// (src/cuda/wide_extremes_mma.cu). Not a public header.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "cuda/cuda_backend.h"

namespace pointnet::cuda {

constexpr int kSegment = 256;  // points of one cloud per extremes block

// Per-segment partial extremes (device arrays, (B, S, C); segment g = b S + s
// holds points [s kSegment, min(N, (s + 1) kSegment)) of cloud b).
struct Extreme {
  float *max = nullptr, *min = nullptr;
  int32_t *argmax = nullptr, *argmin = nullptr;  // the point n (in the cloud) of each
  double* sq = nullptr;                          // sum of (z - mu)^2 (train only)
};

// The tensor-core path: z in registers (mma.sync, fp16 or bf16 operands, fp32
// accumulation), never written to memory. Takes the work and returns true when
// `precision` is FP16 or BF16, K % 8 == 0, K <= 128 and B S <= 65535 (S =
// segments per cloud: the grid's y); returns false (nothing queued) otherwise,
// and the caller takes the GEMM + extremes path. x (B N, K) and w (C, K) are
// the GEMM operands in that half type. Writes the extremes only (never
// seg.sq): the caller takes z's variance from x's covariance.
bool tensor_core_extremes(cudaStream_t stream, Precision precision, const Extreme& seg, const void* x,
                          const void* w, int B, int N, int K, int C);

// The same through Hopper's warpgroup MMA (sm90a/wide_extremes_wgmma.cu), one
// segment per cloud, and only the extreme the layer picks: seg's arrays hold
// (B, 1, C) when it returns true, max and argmax where gamma >= 0, min and
// argmin elsewhere, the other side NaN and -1. Returns true for FP16 or BF16,
// K = 128, 16-byte aligned operands, on compute capability 9.0 (the sm_90a
// image runs there only); false (nothing queued) otherwise, and on builds
// without sm_90a kernels. gamma: the BatchNorm's (C) scales, on the device.
// registers_a: the variant with the weights as the register A operand (the
// default; POINTNET_WIDE_EXTREMES=wgmma takes the other).
bool warpgroup_extremes(cudaStream_t stream, Precision precision, const Extreme& seg, const void* x,
                        const void* w, const float* gamma, int B, int N, int K, int C, bool registers_a = false);
// Whether warpgroup_extremes can run on the current device (for tests).
bool warpgroup_extremes_available();

}  // namespace pointnet::cuda
