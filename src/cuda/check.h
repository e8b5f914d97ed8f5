// Error checks for CUDA runtime and cuBLAS calls (house rule 5): every call is
// wrapped, and a failure throws pointnet::Error naming the file, the line, the
// call and the library's own error string. Include from .cu files only.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/errors.h"

namespace pointnet::cuda {

[[noreturn]] inline void throw_cuda(cudaError_t error, const char* call, const char* file, int line) {
  fail(file, ":", line, ": CUDA error ", cudaGetErrorName(error), " (", cudaGetErrorString(error),
       ") in ", call);
}

[[noreturn]] inline void throw_cublas(cublasStatus_t status, const char* call, const char* file,
                                      int line) {
  fail(file, ":", line, ": cuBLAS error ", cublasGetStatusName(status), " (",
       cublasGetStatusString(status), ") in ", call);
}

}  // namespace pointnet::cuda

#define CUDA_CHECK(call)                                                            \
  do {                                                                              \
    const cudaError_t pn_cuda_error_ = (call);                                      \
    if (pn_cuda_error_ != cudaSuccess)                                              \
      ::pointnet::cuda::throw_cuda(pn_cuda_error_, #call, __FILE__, __LINE__);      \
  } while (0)

#define CUBLAS_CHECK(call)                                                          \
  do {                                                                              \
    const cublasStatus_t pn_cublas_status_ = (call);                                \
    if (pn_cublas_status_ != CUBLAS_STATUS_SUCCESS)                                 \
      ::pointnet::cuda::throw_cublas(pn_cublas_status_, #call, __FILE__, __LINE__); \
  } while (0)

// After a kernel launch: catches bad launch configurations at once (errors
// inside the kernel surface at the next synchronising call).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())
