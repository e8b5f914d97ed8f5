// The engine's weight-stationary conv3 + max kernel (src/cuda/sm90a/
// wide_max_wgmma.cu) against the CPU, exactly: inputs are small integers
// (scaled by powers of two for fp16/bf16/tf32), so every product and sum is exact
// in fp32 and int32 and the maxima must be equal. Shapes reach 1, 2, 3 and 5
// row tiles per cloud (the kernel's 4-tile bodies and single-tile tails) and
// more clouds than blocks. Runs on compute capability 9.0 only.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "../cuda_test_support.h"
#include "cuda/cuda_backend.h"  // cuda_device_available

#if defined(POINTNET_HAS_CUDA)
#include <cuda_runtime.h>

#include "cuda/engine_wide_max.h"
#include "engine/cuda_weights.h"
#endif

namespace pointnet {
namespace {

#if defined(POINTNET_HAS_CUDA)

constexpr int kK = 128, kC = 1024;

// (rows, 128) values in the kernel's core layout, through the engine's own packers.
std::vector<uint8_t> core_bytes(const std::vector<int>& v, int rows, cuda_engine::Math m, float unit) {
  if (m == cuda_engine::Math::I8) {
    Int8LayerWeights l;
    l.out = rows;
    l.in = kK;
    for (int x : v) l.q.push_back(static_cast<int8_t>(static_cast<uint8_t>(x)));  // u8 inputs keep their bits
    l.scale.assign(rows, 1.f);
    return cuda_core_weights(l).bytes;
  }
  FoldedLinear l;
  l.out = rows;
  l.in = kK;
  for (int x : v) l.weight.push_back(x * unit);
  const EnginePrecision p = m == cuda_engine::Math::F16    ? EnginePrecision::FP16
                            : m == cuda_engine::Math::BF16 ? EnginePrecision::BF16
                                                           : EnginePrecision::TF32;
  return cuda_core_weights(l, p).bytes;
}

template <typename T>
T* to_device(const std::vector<T>& v) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, v.size() * sizeof(T)), cudaSuccess);
  EXPECT_EQ(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  return static_cast<T*>(p);
}

struct WideMaxCase {
  cuda_engine::Math math;
  int B, tiles;
  bool bias = false;  // the layer's bias added to each max (the engine's split trunk)
  bool relu = false;  // then a ReLU (the T-Nets' trunks; the main trunk has none)
};

void expect_exact_maxima(const WideMaxCase& c) {
  const bool int8 = c.math == cuda_engine::Math::I8;
  const int rows = c.B * c.tiles * 64;
  const float xu = int8 ? 1.f : 1.f / 16, wu = int8 ? 1.f : 1.f / 64;
  Rng rng(11 + c.B * 7 + c.tiles);
  std::vector<int> x(static_cast<size_t>(rows) * kK), w(static_cast<size_t>(kC) * kK);
  for (int& v : x) v = static_cast<int>(rng.below(int8 ? 256 : 32));
  for (int& v : w) v = int8 ? static_cast<int>(rng.below(255)) - 127 : static_cast<int>(rng.below(65)) - 32;
  std::vector<float> scales(kC), bias(kC);
  for (int ch = 0; ch < kC; ++ch) scales[ch] = std::ldexp(1.f, ch % 5 - 2);
  // Not multiples of a power of two: the bias add rounds, as it must once,
  // after the max's own rounding (no fused multiply-add with int8's scale).
  // The float types' maxima here lie between about -8 and 19, so every third
  // channel's -8.3 sends a fifth or so of them below zero (int8's: a few
  // percent, being negative already), where the ReLU must clamp them.
  for (int ch = 0; ch < kC; ++ch) bias[ch] = ch % 3 == 0 ? -8.3f : 4.1f;

  uint8_t* x_d = to_device(core_bytes(x, rows, c.math, xu));
  uint8_t* w_d = to_device(core_bytes(w, kC, c.math, wu));
  float* scale_d = to_device(scales);
  float* bias_d = to_device(bias);
  float* out_d = to_device(std::vector<float>(static_cast<size_t>(c.B) * kC, NAN));
  int device = 0, sms = 0;
  cudaGetDevice(&device);
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  cuda_engine::WideMaxArgs a;
  a.math = c.math;
  a.B = c.B;
  a.tiles = c.tiles;
  a.C = kC;
  a.x = x_d;
  a.w = w_d;
  a.out = out_d;
  if (int8) {
    a.scale = scale_d;
    a.x_scale = 0.5f;
  }
  if (c.bias) a.bias = bias_d;
  a.relu = c.relu;
  cuda_engine::prepare_wide_max_kernels();
  cuda_engine::launch_wide_max(a, cuda_engine::wide_max_grid(c.math, c.B, kC, sms), nullptr);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<float> out(static_cast<size_t>(c.B) * kC);
  ASSERT_EQ(cudaMemcpy(out.data(), out_d, out.size() * sizeof(float), cudaMemcpyDeviceToHost), cudaSuccess);
  for (void* p : {static_cast<void*>(x_d), static_cast<void*>(w_d), static_cast<void*>(scale_d),
                  static_cast<void*>(bias_d), static_cast<void*>(out_d)})
    cudaFree(p);

  int wrong = 0, clamped = 0;
  for (int b = 0; b < c.B && wrong < 5; ++b)
    for (int ch = 0; ch < kC && wrong < 5; ++ch) {
      long best = 0;
      for (int r = 0; r < c.tiles * 64; ++r) {
        const int* xr = &x[(static_cast<size_t>(b) * c.tiles * 64 + r) * kK];
        const int* wr = &w[static_cast<size_t>(ch) * kK];
        long s = 0;
        for (int k = 0; k < kK; ++k) s += static_cast<long>(xr[k]) * wr[k];
        best = r == 0 ? s : std::max(best, s);
      }
      const double epilogue = int8 ? 0.5 * scales[ch] : static_cast<double>(xu) * wu;
      // The product is exact in double: one rounding to float, as the kernel's.
      float want = static_cast<float>(best * epilogue);
      if (c.bias) want += bias[ch];
      if (c.relu) {
        clamped += want < 0.f;
        want = std::max(want, 0.f);
      }
      const float got = out[static_cast<size_t>(b) * kC + ch];
      if (got != want) {
        ++wrong;
        ADD_FAILURE() << "cloud " << b << " channel " << ch << ": got " << got << ", want " << want;
      }
    }
  if (c.relu) {
    EXPECT_GT(clamped, 0) << "no max fell below zero: the ReLU went untested";
  }
}

class CudaEngineWideMax : public ::testing::TestWithParam<cuda_engine::Math> {};

TEST_P(CudaEngineWideMax, MaximaEqualTheCpuForExactInputs) {
  std::string why;
  if (!testing::hopper_available(&why)) GTEST_SKIP() << why;
  // 1, 2, 3 and 5 row tiles per cloud; 70 clouds: more than a launch's blocks
  // per channel group (one per two SMs; tf32: four), so some blocks take two
  // or three clouds, with 5 tiles each: the four-tile body and the one-tile
  // tail across cloud boundaries.
  for (const auto& [B, tiles] : std::vector<std::pair<int, int>>{{3, 1}, {2, 2}, {5, 3}, {1, 5}, {70, 1}, {70, 5}}) {
    SCOPED_TRACE("B " + std::to_string(B) + ", " + std::to_string(tiles) + " tiles");
    expect_exact_maxima({GetParam(), B, tiles});
  }
}

// With the layer's bias (and a ReLU) in the kernel's epilogue, as the
// engine's split trunk runs it: each max plus its bias, clamped at zero
// where asked; each of the two on its own too.
TEST_P(CudaEngineWideMax, BiasAndReluFollowTheMax) {
  std::string why;
  if (!testing::hopper_available(&why)) GTEST_SKIP() << why;
  for (const auto& [B, tiles] : std::vector<std::pair<int, int>>{{5, 3}, {70, 5}})
    for (const auto& [bias, relu] : std::vector<std::pair<bool, bool>>{{true, true}, {true, false}, {false, true}}) {
      SCOPED_TRACE("B " + std::to_string(B) + ", " + std::to_string(tiles) + " tiles" + (bias ? ", bias" : "") +
                   (relu ? ", relu" : ""));
      expect_exact_maxima({GetParam(), B, tiles, bias, relu});
    }
}

INSTANTIATE_TEST_SUITE_P(CudaEngine, CudaEngineWideMax,
                         ::testing::Values(cuda_engine::Math::F16, cuda_engine::Math::BF16, cuda_engine::Math::I8,
                                           cuda_engine::Math::TF32),
                         [](const ::testing::TestParamInfo<cuda_engine::Math>& info) {
                           return std::string(info.param == cuda_engine::Math::F16    ? "fp16"
                                              : info.param == cuda_engine::Math::BF16 ? "bf16"
                                              : info.param == cuda_engine::Math::TF32 ? "tf32"
                                                                                       : "int8");
                         });

#else

TEST(CudaEngineWideMax, MaximaEqualTheCpuForExactInputs) { GTEST_SKIP() << "no CUDA device: built without CUDA"; }

#endif

}  // namespace
}  // namespace pointnet
