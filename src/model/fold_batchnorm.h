// BatchNorm in eval mode after a linear layer is an affine map per output
// channel, so it folds into the layer: shared by the ONNX export and the engine.
#pragma once
#include <vector>

namespace pointnet {

// BatchNorm folded into the layer before it, computed in double:
// s = gamma / sqrt(var + eps); W' = W * s (per output row); b' = (b - mean) * s + beta.
void fold_batchnorm(std::vector<float>& weight, std::vector<float>& bias, const std::vector<float>& gamma,
                    const std::vector<float>& beta, const std::vector<float>& mean, const std::vector<float>& var);

}  // namespace pointnet
