// The CUDA entry points for a build without the CUDA backend (no toolkit found
// at configure time, or -DPOINTNET_CUDA=OFF): the same API, answering "no".
// With the backend, src/cuda/cuda_backend.cu defines them instead.
#ifndef POINTNET_HAS_CUDA
#include "core/errors.h"
#include "cuda/cuda_backend.h"

namespace pointnet {

namespace {
constexpr const char* kNoCuda =
    "this build has no CUDA backend (configure with a CUDA toolkit and -DPOINTNET_CUDA=ON)";
}

bool cuda_device_available(std::string* why) {
  if (why) *why = kNoCuda;
  return false;
}

std::unique_ptr<Backend<float>> make_cuda_backend(Precision, bool) {
  fail("the CUDA backend needs a CUDA GPU: ", kNoCuda);
}

}  // namespace pointnet
#endif
