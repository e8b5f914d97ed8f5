#include "model/make_backend.h"

#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "cuda/cuda_backend.h"

namespace pointnet {

std::unique_ptr<Backend<float>> make_backend(const std::string& device, const std::string& precision, bool fp32_fc) {
  Precision p;
  if (!parse_precision(precision, &p))
    fail("unknown precision '", precision, "': expected fp32, tf32, fp16 or bf16");
  if (device == "cpu") {
    if (p != Precision::FP32)
      fail("--precision ", precision, " needs --device cuda; the CPU backend computes in fp32");
    return std::make_unique<CpuBackend<float>>();
  }
  if (device == "cuda") {
    std::string why;
    if (!cuda_device_available(&why)) fail("--device cuda: ", why);
    return make_cuda_backend(p, fp32_fc);
  }
  fail("unknown device '", device, "': expected cpu or cuda");
}

}  // namespace pointnet
