// conv3 (128 -> C) reduced to its max over each cloud's points, as one
// weight-stationary wgmma kernel (sm90a/wide_max_wgmma.cu, compute
// capability 9.0 only). Unlike the fused trunk (engine_kernels.h,
// launch_trunk), its input rows come from memory: an earlier kernel wrote
// them in wgmma's core-matrix layout.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "cuda/engine_kernels.h"  // Math

namespace pointnet::cuda_engine {

struct WideMaxArgs {
  Math math = Math::F16;     // F16, BF16, I8 or TF32
  int B = 0;                 // clouds
  int tiles = 0;             // 64-row tiles per cloud (a cloud's last rows repeat a valid row)
  int C = 0;                 // output channels, a multiple of wide_max_columns(math)
  const void* x = nullptr;   // per cloud tiles * 64 rows of 128 inputs, core layout (core_byte, row_bytes 128 * elem)
  const void* w = nullptr;   // (C, 128) weights in core layout (DevLayer::w_core)
  const float* scale = nullptr;  // I8: (C) per-channel weight scales
  float x_scale = 1.f;           // I8: the input's scale
  float* out = nullptr;      // (B, C): epilogue_value(max over rows, bias 0) [+ bias] [ReLU]
  const float* bias = nullptr;  // (C): the layer's bias added to each max (out: the trunk's global features), or none
  bool relu = false;             // then max(., 0)
};

// Dynamic shared memory of one block (weights + row tiles + reduction).
size_t wide_max_smem_bytes(Math math);
// Output channels per block: 512 (fp16, bf16, int8), 256 (tf32).
int wide_max_columns(Math math);
// Blocks of a launch: persistent, one per SM, a multiple of C / wide_max_columns(math).
int wide_max_grid(Math math, int B, int C, int sms);
// Raises the kernels' shared-memory limit; once per process, before launching.
void prepare_wide_max_kernels();
void launch_wide_max(const WideMaxArgs& a, int grid, cudaStream_t stream);

// The trunk from the points to conv3's max in one kernel
// (sm90a/wide_max_fused_wgmma.cu; POINTNET_ENGINE_TRUNK=fused-wide): for a
// trunk args `a` that starts from the points (C = 3 or 6) with no 64 -> 64
// layer, conv2 and conv3 carrying core-layout weights (DevLayer::w_core).
// out (B, 1024): per cloud and channel the epilogue of conv3's max (no
// bias: a merge adds it), as launch_wide_max with bias = nullptr, relu =
// false. grid as wide_max_grid(F16, B, 1024, sms).
void prepare_wide_max_fused_kernels();
void launch_wide_max_fused(const TrunkArgs& a, float* out, int grid, cudaStream_t stream);

}  // namespace pointnet::cuda_engine
