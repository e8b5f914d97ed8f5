// Picks the backend a command runs on: --device cpu|cuda, --precision
// fp32|tf32|fp16|bf16. The CPU backend computes in fp32 only.
#pragma once
#include <memory>
#include <string>

#include "model/backend.h"

namespace pointnet {

// Throws pointnet::Error with the reason when the device is unknown, CUDA is
// not usable here (no GPU, no driver, or a build without CUDA), or the
// precision is not one the device offers. fp32_fc: the fully connected layers
// over clouds (classifier head, T-Net fc1-fc3) keep fp32 GEMMs under a reduced
// --precision; only the per-point layers, nearly all the FLOPs, run reduced.
std::unique_ptr<Backend<float>> make_backend(const std::string& device, const std::string& precision,
                                             bool fp32_fc = false);

}  // namespace pointnet
