// The split trunk's first kernel, streamed (src/cuda/sm90a/engine_first_layers.cu,
// POINTNET_ENGINE_SPLIT_FIRST=stream), against the tile kernel it replaces:
// every byte of conv2's stored output h2, padding rows included, must be the
// same (the two make the same operations in the same order). Through
// launch_trunk_split itself, so the engine's shape choice (tiles of 64, 128
// or 256 points by precision) and dispatch are what is tested. Inputs:
// random points, a per-cloud 3x3 transform folded into conv1 (or none),
// random packed conv2 weights (int8: per-channel scales and quantised
// activations). Runs on compute capability 9.0 only.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <tuple>
#include <vector>

#include "../scoped_env.h"
#include "core/rng.h"
#include "../cuda_test_support.h"
#include "cuda/cuda_backend.h"  // cuda_device_available

#if defined(POINTNET_HAS_CUDA)
#include <cuda_runtime.h>

#include "cuda/engine_kernels.h"
#include "engine/cuda_weights.h"
#endif

namespace pointnet {
namespace {

#if defined(POINTNET_HAS_CUDA)

// A device copy of v, freed with the object.
class DeviceBytes {
 public:
  explicit DeviceBytes(size_t bytes) : bytes_(bytes) { EXPECT_EQ(cudaMalloc(&p_, bytes ? bytes : 1), cudaSuccess); }
  template <typename T>
  explicit DeviceBytes(const std::vector<T>& v) : DeviceBytes(v.size() * sizeof(T)) {
    EXPECT_EQ(cudaMemcpy(p_, v.data(), bytes_, cudaMemcpyHostToDevice), cudaSuccess);
  }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
  ~DeviceBytes() { cudaFree(p_); }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p_);
  }
  std::vector<uint8_t> host() const {
    std::vector<uint8_t> h(bytes_);
    EXPECT_EQ(cudaMemcpy(h.data(), p_, bytes_, cudaMemcpyDeviceToHost), cudaSuccess);
    return h;
  }

 private:
  size_t bytes_;
  void* p_ = nullptr;
};

std::vector<float> normals(Rng& rng, size_t n, float scale, float shift = 0.f) {
  std::vector<float> v(n);
  for (float& x : v) x = shift + scale * rng.normal();
  return v;
}

struct FirstLayersCase {
  cuda_engine::Math math;
  int B, N, C;
  bool transform;
};

std::string name_of(const FirstLayersCase& c) {
  const char* m = c.math == cuda_engine::Math::F16    ? "fp16"
                  : c.math == cuda_engine::Math::BF16 ? "bf16"
                  : c.math == cuda_engine::Math::TF32 ? "tf32"
                                                      : "int8";
  return std::string(m) + " " + std::to_string(c.B) + " x " + std::to_string(c.N) + " x " + std::to_string(c.C) +
         (c.transform ? " with a transform" : "");
}

void expect_same_h2(const FirstLayersCase& c) {
  SCOPED_TRACE(name_of(c));
  using cuda_engine::Math;
  const bool int8 = c.math == Math::I8;
  Rng rng(7 + c.B * 13 + c.N + c.C);
  const std::vector<float> points = normals(rng, static_cast<size_t>(c.B) * c.N * c.C, 1.f);
  std::vector<float> transform(static_cast<size_t>(c.B) * 9);
  for (int b = 0; b < c.B; ++b)
    for (int i = 0; i < 9; ++i) transform[b * 9 + i] = (i % 4 == 0 ? 1.f : 0.f) + 0.2f * rng.normal();
  const std::vector<float> w1 = normals(rng, static_cast<size_t>(64) * c.C, 0.5f);
  const std::vector<float> b1 = normals(rng, 64, 0.3f, 0.1f);
  const std::vector<float> b2 = normals(rng, 128, 0.2f, 0.05f);
  cuda_engine::DevLayer conv2;
  CudaLayerWeights packed;
  std::vector<float> scales;
  if (int8) {
    Int8LayerWeights l;
    l.out = 128;
    l.in = 64;
    for (int i = 0; i < 128 * 64; ++i) l.q.push_back(static_cast<int8_t>(static_cast<int>(rng.below(255)) - 127));
    for (int o = 0; o < 128; ++o) l.scale.push_back(0.002f * (1 + o % 7));
    packed = cuda_layer_weights(l);
    scales = l.scale;
  } else {
    FoldedLinear l;
    l.out = 128;
    l.in = 64;
    l.weight = normals(rng, static_cast<size_t>(128) * 64, 0.15f);
    const EnginePrecision p = c.math == Math::F16    ? EnginePrecision::FP16
                              : c.math == Math::BF16 ? EnginePrecision::BF16
                                                     : EnginePrecision::TF32;
    packed = cuda_layer_weights(l, p);
  }
  DeviceBytes points_d(points), transform_d(transform), w1_d(w1), b1_d(b1), b2_d(b2), w2_d(packed.bytes),
      scale_d(scales.empty() ? std::vector<float>(128, 1.f) : scales);
  conv2.w = w2_d.as<void>();
  conv2.bias = b2_d.as<float>();
  if (int8) {
    conv2.scale = scale_d.as<float>();
    conv2.x_scale = 0.02f;      // conv1's output step (h1_scale below)
    conv2.inv_y_scale = 10.f;   // conv2's output step 0.1
  }
  cuda_engine::TrunkArgs a;
  a.math = c.math;
  a.B = c.B;
  a.N = c.N;
  a.C = c.C;
  a.points = points_d.as<float>();
  a.conv1_w = w1_d.as<float>();
  a.conv1_b = b1_d.as<float>();
  a.transform3 = c.transform ? transform_d.as<float>() : nullptr;
  a.h1_scale = int8 ? 0.02f : 1.f;
  a.conv2 = conv2;
  const cuda_engine::TrunkShape s = cuda_engine::trunk_shape_split(c.math, true, false, c.B, c.N, c.C);
  a.h2_rows = s.tiles * s.tile_points;
  const size_t bytes = static_cast<size_t>(c.B) * a.h2_rows * 128 * (int8 ? 1 : c.math == Math::TF32 ? 4 : 2);
  cuda_engine::prepare_trunk_wgmma_kernels();
  // h2 under each kernel, every byte poisoned first (an unwritten byte differs).
  const auto h2 = [&](const char* first, uint8_t poison) {
    testing::ScopedEnv env;
    env.set("POINTNET_ENGINE_SPLIT_FIRST", first);
    EXPECT_EQ(cuda_engine::first_layers_stream(a), std::string(first) == "stream");
    DeviceBytes out(bytes);
    EXPECT_EQ(cudaMemset(out.as<void>(), poison, bytes), cudaSuccess);
    a.h2_out = out.as<void>();
    cuda_engine::launch_trunk_split(a, s, nullptr);
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    a.h2_out = nullptr;
    return out.host();
  };
  const std::vector<uint8_t> want = h2("tiles", 0xA5), got = h2("stream", 0x5A);
  ASSERT_EQ(got.size(), want.size());
  size_t differ = 0, first = 0, nonzero = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i] && differ++ == 0) first = i;
    nonzero += want[i] != 0;
  }
  EXPECT_EQ(differ, 0u) << "of " << want.size() << " bytes (tiles of " << s.tile_points << " points), the first at "
                        << first;
  // Most of conv2's outputs pass its ReLU: a kernel writing zeros would not match by chance.
  EXPECT_GT(nonzero, want.size() / 4);
}

TEST(CudaEngineFirstLayers, StreamedKernelWritesTheTileKernelsBytes) {
  std::string why;
  if (!testing::hopper_available(&why)) GTEST_SKIP() << why;
  using cuda_engine::Math;
  for (Math m : {Math::F16, Math::BF16, Math::TF32, Math::I8})
    for (const auto& [B, N, C, transform] : std::vector<std::tuple<int, int, int, bool>>{
             {3, 300, 3, true}, {2, 64, 3, false}, {2, 1000, 6, true}, {5, 129, 6, false}, {1, 40, 3, true}})
      expect_same_h2({m, B, N, C, transform});
}

#else

TEST(CudaEngineFirstLayers, StreamedKernelWritesTheTileKernelsBytes) {
  GTEST_SKIP() << "no CUDA device: built without CUDA";
}

#endif  // POINTNET_HAS_CUDA

}  // namespace
}  // namespace pointnet
