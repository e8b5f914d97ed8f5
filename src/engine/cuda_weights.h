// Host side of the CUDA engine's weight layouts (src/cuda/engine_kernels.h):
// what a per-point layer's weights become before upload, and which precision
// every layer runs in on the GPU (the build record). No CUDA needed: the
// layouts are tested on any machine.
#pragma once
#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine_plan.h"

namespace pointnet {

// A per-point layer's weights as the kernels read them: packed mma B
// fragments of fp16 / bf16 / tf32 (rounded to nearest, ties away, as the
// device's cvt.rna) or int8 elements, or for fp32 the transpose (in, out).
struct CudaLayerWeights {
  std::vector<uint8_t> bytes;
  std::vector<float> scale;  // int8: (out) per-channel weight scales
};
CudaLayerWeights cuda_layer_weights(const FoldedLinear& layer, EnginePrecision precision);
CudaLayerWeights cuda_layer_weights(const Int8LayerWeights& layer);
// fp32 weights as packed mma fragments, unrounded: the 3xTF32 kernels split
// each one into two tf32 parts in registers (engine_mma.cuh, F32x3Op).
CudaLayerWeights cuda_3xtf32_weights(const FoldedLinear& layer);

// conv2's and conv3's weights for the wgmma kernels: the same elements in
// wgmma's core-matrix layout (engine_fragment.h, core_byte).
CudaLayerWeights cuda_core_weights(const FoldedLinear& layer, EnginePrecision precision);  // tf32, fp16, bf16
CudaLayerWeights cuda_core_weights(const Int8LayerWeights& layer);

uint16_t float_to_bf16(float f);  // round to nearest, ties to even; NaN stays NaN
float round_to_tf32(float f);     // 10 mantissa bits, ties away from zero

// The layers' precisions on the CUDA runner, by named_layers() name: conv1
// (3 or 6 inputs), the per-cloud layers (T-Net and classifier fc, the
// segmenter's head.0 global part) and the segmenter's logits run in fp32,
// the wide per-cloud ones (fc1, fc2, head.0's global part) with TF32
// products outside fp32 engines; every other per-point layer in `precision`.
nlohmann::json cuda_layer_precisions(const FoldedModel& model, EnginePrecision precision);

}  // namespace pointnet
