// PointNet as a standard ONNX graph (eval mode), the way pointnet.pytorch's
// forward computes it: input "points" (B, 3, N) float32; outputs "log_probs"
// (B, K) for the classifier or (B, N, K) for the segmenter, "trans" (B, 3, 3)
// and, with the feature transform, "trans_feat" (B, 64, 64).
//
// Ops: Conv (kernel 1) for the per-point layers, Gemm for the fully connected
// ones, BatchNormalization folded into the preceding weights (or kept as a
// node), Relu, ReduceMax over points, Add (the T-Net's identity), Reshape,
// Transpose + MatMul for the transforms, Unsqueeze/Shape/Gather/Concat/Expand
// for the segmenter's global feature repeated over points, LogSoftmax.
#pragma once
#include <cstdint>
#include <string>

#include "model/pointnet.h"
#include "train/checkpoint.h"

namespace pointnet {

struct OnnxExportOptions {
  int opset = 17;
  int64_t batch = 0;               // fixed batch size, or 0 for a symbolic "batch" dimension
  int64_t points = 0;              // fixed point count, or 0 for a symbolic "points" dimension
  bool fold_batchnorm = true;      // BN into the Conv/Gemm weights; false keeps BatchNormalization nodes
  // Centre each cloud and scale it to the unit sphere inside the graph (as
  // `pointnet predict` does before its forward), so raw clouds can be fed.
  bool include_normalization = false;
};


// The serialized ModelProto of `model` (whose parameters are read through its
// backend), with `info`'s class names and part layout in metadata_props.
std::string export_onnx(const PointNet<float>& model, const CheckpointInfo& info,
                        const OnnxExportOptions& options);

}  // namespace pointnet
