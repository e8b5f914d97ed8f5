// The engine's few-row fp32 layers (src/cuda/engine_per_cloud.cu:
// launch_small_linear, launch_small_logits), which take 8 rows a block and so
// run at any row count (the runner's POINTNET_ENGINE_NARROW_FC=kernel): every
// row against a double-precision CPU reference, and each row's outputs the
// same bits whether it runs alone or among others (its sums are made alike).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "../cuda_test_support.h"
#include "core/rng.h"
#include "cuda/cuda_backend.h"  // cuda_device_available

#if defined(POINTNET_HAS_CUDA)
#include <cuda_runtime.h>

#include "cuda/engine_kernels.h"
#endif

namespace pointnet {
namespace {

#if defined(POINTNET_HAS_CUDA)

// A device copy of a float vector, freed with the object.
class DeviceFloats {
 public:
  explicit DeviceFloats(size_t n) : n_(n) { EXPECT_EQ(cudaMalloc(&p_, (n ? n : 1) * sizeof(float)), cudaSuccess); }
  explicit DeviceFloats(const std::vector<float>& v) : DeviceFloats(v.size()) {
    EXPECT_EQ(cudaMemcpy(p_, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), cudaSuccess);
  }
  DeviceFloats(const DeviceFloats&) = delete;
  DeviceFloats& operator=(const DeviceFloats&) = delete;
  ~DeviceFloats() { cudaFree(p_); }
  float* get() const { return p_; }
  std::vector<float> host() const {
    std::vector<float> h(n_);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, n_ * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }
  // NaN everywhere: an unwritten output shows.
  void poison() { EXPECT_EQ(cudaMemset(p_, 0xff, n_ * sizeof(float)), cudaSuccess); }

 private:
  size_t n_;
  float* p_ = nullptr;
};

std::vector<float> normals(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = rng.normal();
  return v;
}

// y = x w^T + b (ReLU if relu), then log-softmax per row if log_softmax; in double.
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                              int rows, int in, int out, bool relu, bool log_softmax) {
  std::vector<double> y(static_cast<size_t>(rows) * out);
  for (int r = 0; r < rows; ++r) {
    double* yr = &y[static_cast<size_t>(r) * out];
    for (int o = 0; o < out; ++o) {
      double s = b[o];
      for (int i = 0; i < in; ++i) s += double(x[size_t(r) * in + i]) * w[size_t(o) * in + i];
      yr[o] = relu ? std::max(s, 0.0) : s;
    }
    if (!log_softmax) continue;
    double top = yr[0], sum = 0.0;
    for (int o = 1; o < out; ++o) top = std::max(top, yr[o]);
    for (int o = 0; o < out; ++o) sum += std::exp(yr[o] - top);
    for (int o = 0; o < out; ++o) yr[o] -= top + std::log(sum);
  }
  return y;
}

// fp32 sums of `in` products of unit normals: |error| ~ sqrt(in) ulp of the
// terms' size; 1e-4 absolute on values of size ~sqrt(in) = 16 is ~20x that.
constexpr double kTolerance = 1e-4;

void expect_layer(int rows, int in, int out, bool relu, bool logits) {
  const std::string what = std::string(logits ? "logits " : relu ? "linear+relu " : "linear ") +
                           std::to_string(rows) + " x " + std::to_string(in) + " -> " + std::to_string(out);
  Rng rng(7 + rows);
  const std::vector<float> x = normals(rng, size_t(rows) * in), w = normals(rng, size_t(out) * in),
                           b = normals(rng, size_t(out));
  DeviceFloats dx(x), dw(w), db(b), dy(static_cast<size_t>(rows) * out), one(static_cast<size_t>(out));
  dy.poison();
  const auto launch = [&](const float* xp, int n, float* yp) {
    if (logits) cuda_engine::launch_small_logits(xp, n, in, dw.get(), db.get(), out, yp, nullptr);
    else cuda_engine::launch_small_linear(xp, n, in, dw.get(), db.get(), out, relu, yp, nullptr);
  };
  launch(dx.get(), rows, dy.get());
  const std::vector<float> got = dy.host();
  const std::vector<double> want = reference(x, w, b, rows, in, out, relu, logits);
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) bad += !(std::fabs(got[i] - want[i]) <= kTolerance);
  EXPECT_EQ(bad, 0u) << what << ": outputs off the reference (or unwritten)";
  // Rows 0, the last, and one in a middle block, alone: the same bits.
  for (int r : {0, rows - 1, rows / 2}) {
    one.poison();
    launch(dx.get() + size_t(r) * in, 1, one.get());
    const std::vector<float> alone = one.host();
    EXPECT_EQ(std::memcmp(alone.data(), got.data() + size_t(r) * out, out * sizeof(float)), 0)
        << what << ": row " << r << " alone differs";
  }
}

TEST(CudaEngineSmallLinear, AnyRowCountMatchesTheReferenceAndEachRowAlone) {
  PN_REQUIRE_CUDA();
  // 1 and 8: one block; 9 and 13: a ragged second; 150: 19 blocks, the last of 6 rows.
  for (int rows : {1, 8, 9, 13, 150}) {
    expect_layer(rows, 256, 9, false, false);    // a T-Net's last layer
    expect_layer(rows, 256, 40, true, false);    // out not a multiple of 8, ReLU
    expect_layer(rows, 100, 12, false, false);   // in not a multiple of 128: the one-by-one loads
    expect_layer(rows, 256, 40, false, true);    // the logits and their log-softmax
  }
}

#else

TEST(CudaEngineSmallLinear, AnyRowCountMatchesTheReferenceAndEachRowAlone) {
  GTEST_SKIP() << "no CUDA device: built without CUDA";
}

#endif  // POINTNET_HAS_CUDA

}  // namespace
}  // namespace pointnet
