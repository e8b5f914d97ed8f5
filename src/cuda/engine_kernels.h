// The CUDA inference engine's kernels, as launchers the runner
// (engine/cuda_runner.cpp) queues on its stream. Plain C++ plus the CUDA
// runtime's types: no device code here. Every launcher OVERWRITES its output.
//
// Activations between per-point layers live in the precision's element type:
//   F32  fp32 (FFMA kernels)            TF32 fp32 rounded to tf32 (mma k8)
//   F32X3 fp32 (3xTF32 split on the tensor cores, engine_mma.cuh F32x3Op;
//        fp32 engines use it unless POINTNET_ENGINE_FP32=ffma)
//   F16  fp16 (mma k16, fp32 acc.)      BF16 bf16 (mma k16, fp32 acc.)
//   I8   u8 quantised with the layer's calibrated scale (mma u8 x s8 k32, s32
//        acc.), the epilogue of cpu/int8_gemm.h bit for bit.
// Weights of a per-point layer: packed mma B fragments (engine_fragment.h) in
// the element type (int8: s8 + per-channel scales), or for F32 the transpose
// (in, out) in fp32 (F32X3: packed fragments of unrounded fp32). conv1 (3 or 6 inputs), the per-cloud layers and the
// segmenter's logits run in fp32 for every precision (the wide per-cloud
// layers with TF32 products outside fp32 engines: engine/cuda_runner.cpp).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

#include "cuda/engine_fragment.h"  // PN_HOST_DEVICE

namespace pointnet::cuda_engine {

enum class Math { F32, TF32, F16, BF16, I8, F32X3 };

// Bytes of one activation or weight element.
PN_HOST_DEVICE inline int elem_bytes(Math m) {
  switch (m) {
    case Math::F16: case Math::BF16: return 2;
    case Math::I8: return 1;
    default: return 4;
  }
}

// A per-point layer on the device. Per-cloud weights (a transform folded in
// at run time) advance by the cloud strides; 0 means one set for all clouds.
struct DevLayer {
  const void* w = nullptr;        // packed fragments, or (in, out) fp32 for F32
  const float* scale = nullptr;   // I8: (out) per-channel weight scales
  const float* bias = nullptr;    // (out)
  size_t w_cloud_bytes = 0;       // bytes between clouds' weights
  int scale_cloud_stride = 0;     // floats between clouds' scales
  int bias_cloud_stride = 0;      // floats between clouds' biases
  const void* w_core = nullptr;   // conv2 and conv3 layers: the weights again in wgmma's core-matrix layout
  float x_scale = 1.f;            // I8: scale of the input activation
  float inv_y_scale = 1.f;        // I8: 1 / scale of the output activation (u8 outputs)
};

// The per-point trunk of a T-Net or the main network over tiles of points,
// fused: conv1 (fp32, optionally with a per-cloud 3x3 transform folded in) or
// conv1's stored output h1, then an optional 64 -> 64 layer (the feature
// T-Net's conv1), conv2 (64 -> 128, ReLU), and conv3 (128 -> 1024) reduced to
// its max over the tile's points: the (points, 1024) block is never stored.
struct TrunkArgs {
  Math math = Math::F32;
  int B = 0, N = 0, C = 3;
  const float* points = nullptr;     // (B, N, C); nullptr: read h1_in instead
  const void* h1_in = nullptr;       // (B, N, 64) activations
  void* h1_out = nullptr;            // if set, conv1's output is stored here (B, N, 64)
  const float* conv1_w = nullptr;    // (64, C) fp32
  const float* conv1_b = nullptr;    // (64)
  const float* transform3 = nullptr; // (B, 3, 3) or nullptr
  float h1_scale = 1.f;              // I8: conv1's output is quantised with it (x / scale)
  DevLayer pre;                      // 64 -> 64 with ReLU, if pre.w is set
  DevLayer conv2;                    // 64 -> 128 with ReLU; w == nullptr: stop after conv1
  DevLayer conv3;                    // 128 -> 1024, no bias (added by the merge; in the split trunk by wide_max's epilogue)
  float* partial = nullptr;          // (B, tiles, 1024): each tile's max (I8: dequantised)
  // The split trunk (POINTNET_ENGINE_TRUNK=split): conv2's output is stored
  // here instead, h2_rows rows per cloud (tiles x tile points; the last
  // tile's extra rows repeat a valid point) in wgmma's core-matrix layout,
  // for launch_wide_max (engine_wide_max.h); conv3 is not run.
  void* h2_out = nullptr;
  int h2_rows = 0;
};

// How a trunk launch is cut: points per block, tiles per cloud, and channel
// groups (small batches split conv3's 1024 channels over several blocks).
struct TrunkShape {
  int tile_points = 0, tiles = 0, groups = 1;
};
TrunkShape trunk_shape(Math math, bool from_points, bool has_pre, bool conv1_only, int B, int N, int C, int sms);
void launch_trunk(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream);
// The tensor-core variant in use (engine_trunk.cu: POINTNET_ENGINE_TRUNK).
const char* trunk_variant_name();
// Does a trunk over B clouds run split (POINTNET_ENGINE_TRUNK=split):
// launch_trunk_split, then launch_wide_max? Smaller batches keep the fused
// trunk: the wide_max kernel spreads clouds, not points, over the SMs.
constexpr int kSplitMinClouds = 64;
bool trunk_is_split(Math math, int B);
// Does this trunk run whole in the fused wide_max kernel
// (POINTNET_ENGINE_TRUNK=fused-wide; launch_wide_max_fused)?
bool trunk_fuses_wide(const TrunkArgs& a);
bool trunk_fuses_wide_at_all(Math math);  // the variant is fused-wide, and has a fused kernel for math
// The wgmma variant (sm90a/engine_trunk_wgmma.cu), for compute capability 9.0.
TrunkShape trunk_shape_wgmma(bool single_buffer, Math math, bool from_points, bool has_pre, bool conv1_only, int B,
                             int N, int C, int sms);
void launch_trunk_wgmma(bool single_buffer, const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream);
// The split trunk's first half (conv1, [64 -> 64], conv2 into a.h2_out), sm_90a.
TrunkShape trunk_shape_split(Math math, bool from_points, bool has_pre, int B, int N, int C);
void launch_trunk_split(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream);
// launch_trunk_split's streamed first kernel (sm90a/engine_first_layers.cu;
// the default, POINTNET_ENGINE_SPLIT_FIRST=tiles to compare): is it chosen for math, and does it
// take this trunk (from 3 or 6 channels of points, no 64 -> 64 layer, no
// stored conv1 output)? Otherwise the tile kernel runs.
bool first_layers_streamed(Math math);
bool first_layers_stream(const TrunkArgs& a);
void launch_first_layers(const TrunkArgs& a, const TrunkShape& s, cudaStream_t stream);
void prepare_trunk_wgmma_kernels();

// The segmenter's per-point head over tiles of points: h1 -> head.0's point
// part (per-cloud bias: head.0's global part) -> head.1 -> head.2 (ReLU each)
// -> head.3 (fp32 logits) -> log-softmax, written to out (B, N, K).
struct SegArgs {
  Math math = Math::F32;
  int B = 0, N = 0, K = 0;
  const void* h1 = nullptr;          // (B, N, 64)
  DevLayer head0, head1, head2;      // 64 -> 512 (bias per cloud), 512 -> 256, 256 -> 128 (fp32 out)
  const float* head3_w = nullptr;    // (K, 128) fp32
  const float* head3_b = nullptr;    // (K)
  float* out = nullptr;              // (B, N, K) log-probabilities
};
// Largest K the head's shared memory holds for this precision.
int seg_max_parts(Math math);
void launch_seg_head(const SegArgs& a, cudaStream_t stream);

// out(B, 1024) = max over tiles of partial(B, tiles, 1024) + bias, ReLU if relu.
void launch_merge_max(const float* partial, int B, int tiles, const float* bias, bool relu, float* out,
                      cudaStream_t stream);

// A per-cloud fp32 layer for few rows (kSmallRows a block; up to
// kMaxRowsLinear): y(rows, out) = x(rows, in) w^T + bias, ReLU if relu; w (out,
// in). One warp per output; each row's sums are the same at any row count.
// With merge.partial set (rows <= kSmallRows), x is instead the merge of a
// trunk's tile maxima (as launch_merge_max; in = 1024), computed by every
// block: for tiny batches, one launch fewer.
constexpr int kSmallRows = 8;
constexpr int kMaxRowsLinear = 65535 * kSmallRows;  // the grid's y limit
// Layers this narrow (a T-Net's 9 outputs, the logits) may take it at any
// batch (the runner's POINTNET_ENGINE_NARROW_FC).
constexpr int kNarrowOutputs = 64;
struct SmallMerge {
  const float* partial = nullptr;  // (rows, tiles, 1024)
  int tiles = 0;
  const float* bias = nullptr;
  bool relu = false;
};
void launch_small_linear(const float* x, int rows, int in, const float* w, const float* bias, int out, bool relu,
                         float* y, cudaStream_t stream, const SmallMerge& merge = {});
// The logits layer and its log-softmax in one launch, kSmallRows rows a block,
// when logits_by_rows_fit (a block's x and logits in 48 KiB of shared
// memory); small_logits_fit: that, and rows <= kSmallRows (one block).
bool small_logits_fit(int rows, int in, int out);
bool logits_by_rows_fit(int in, int out);
void launch_small_logits(const float* x, int rows, int in, const float* w, const float* bias, int out, float* y,
                         cudaStream_t stream);

// In place over rows of x(rows, K).
void launch_log_softmax(float* x, int rows, int K, cudaStream_t stream);

// Per cloud b: w'(out, 64) = w t_b^T (t_b: (64, 64) from transforms), the
// feature transform folded into a layer's weights, stored as that layer's
// weights for `math` at dst + b * fragment_bytes (I8: quantised per output
// channel like cpu::Int8Weights::quantize, scales at dst_scale + b * out).
void launch_fold_transform(Math math, const float* w, int out, const float* transforms, int B, void* dst,
                           float* dst_scale, cudaStream_t stream);

// Raises every engine kernel's dynamic shared-memory limit (once per process).
void prepare_engine_kernels();
void prepare_trunk_kernels();  // its parts, one per kernel file
void prepare_seg_kernels();

}  // namespace pointnet::cuda_engine
