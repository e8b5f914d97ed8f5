// The fused wide layer on the GPU (see model/backend.h and the derivation in
// src/cpu/wide_max.cpp). Not implemented yet: the model's GPU path fails
// clearly instead of computing something else.
#include "cuda/cuda_common.cuh"

namespace pointnet {

void CudaBackend::wide_max_forward_train(float*, const WideMaxSaved<float>&, float*, float*, const float*,
                                         const float*, const float*, const float*, const float*, int, int, int,
                                         int, bool, double, double) {
  fail("cuda: wide_max_forward_train is not implemented yet");
}

void CudaBackend::wide_max_forward_eval(float*, const float*, const float*, const float*, const float*,
                                        const float*, const float*, const float*, int, int, int, int, bool, double) {
  fail("cuda: wide_max_forward_eval is not implemented yet");
}

void CudaBackend::wide_max_backward(float*, float*, float*, float*, float*, const float*, const float*,
                                    const WideMaxSaved<float>&, const float*, const float*, const float*, int, int,
                                    int, int, bool) {
  fail("cuda: wide_max_backward is not implemented yet");
}

}  // namespace pointnet
