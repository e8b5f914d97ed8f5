// What the CUDA tests share: the skip where there is no GPU, and a float
// array in a CudaBackend's memory (in builds with the CUDA backend).
#pragma once
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"

// Skips the test, with the reason, where no CUDA device can be used.
#define PN_REQUIRE_CUDA()                                                                \
  do {                                                                                   \
    std::string pn_why_;                                                                 \
    if (!cuda_device_available(&pn_why_)) GTEST_SKIP() << "no CUDA device: " << pn_why_; \
  } while (0)

#ifdef POINTNET_HAS_CUDA
#include <cuda_runtime.h>

namespace pointnet {
namespace testing {

// Is the device one the sm_90a (wgmma) kernels run on? If not, why (for the skip).
inline bool hopper_available(std::string* why) {
  if (!cuda_device_available(why)) return false;
  int device = 0, major = 0, minor = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return false;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
  *why = "compute capability " + std::to_string(major) + "." + std::to_string(minor) + ", the kernel needs 9.0";
  return major == 9 && minor == 0;
}

// A float array in the CUDA backend's memory.
class Dev {
 public:
  Dev(CudaBackend& be, size_t n) : be_(&be), n_(n), p_(be.allocate(n)) {}
  Dev(CudaBackend& be, const std::vector<float>& host) : Dev(be, host.size()) {
    be.upload(p_, host.data(), n_);
  }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  ~Dev() { be_->release(p_); }
  float* get() const { return p_; }
  operator float*() const { return p_; }
  std::vector<float> host() const {
    std::vector<float> h(n_);
    be_->download(h.data(), p_, n_);
    return h;
  }
  // NaN everywhere: an element the op under test does not write stays NaN.
  void poison() { be_->fill(p_, std::numeric_limits<float>::quiet_NaN(), n_); }

 private:
  CudaBackend* be_;
  size_t n_;
  float* p_;
};

}  // namespace testing
}  // namespace pointnet
#endif  // POINTNET_HAS_CUDA
