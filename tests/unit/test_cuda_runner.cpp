// The CUDA engine runner (engine/cuda_runner.h) against the CPU: every
// precision against the folded fp32 reference for cls and seg, with and
// without the feature transform, 3 and 6 channels, ragged N, B = 1, batches
// on both per-cloud paths (<= 8 clouds: the warp kernel; more: cuBLASLt);
// int8 against the CPU int8 engine; the device-pointer and timed entries;
// graphs dropped and recaptured when buffers grow. Outputs are poisoned (NaN)
// before each run, so an element no kernel wrote fails.
//
// The weight layouts are checked on any machine (against PTX's operand
// tables); everything that needs a GPU skips cleanly ("no CUDA device:
// <reason>") without one, and in builds without the CUDA backend.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "../engine_fixtures.h"
#include "../scoped_env.h"
#include "core/errors.h"
#include "core/half.h"
#include "cuda/cuda_backend.h"
#include "../cuda_test_support.h"
#include "cuda/engine_fragment.h"
#include "engine/builder.h"
#include "engine/cpu_runner.h"
#include "engine/cuda_runner.h"
#include "engine/cuda_weights.h"
#include "engine/engine_predictor.h"
#include "expect_error.h"

#ifdef POINTNET_HAS_CUDA
#include <cuda_runtime.h>
#endif

namespace pointnet {
namespace {

using testing::engine_config;

// ---------------------------------------------------------------- layouts (no GPU)

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// PTX ISA, "Matrix fragments for mma.m16n8k*": operand B of m16n8k16 (.f16,
// .bf16), m16n8k8 (.tf32) and m16n8k32 (.s8). Lane = 4 g + t, column n = g;
// register r (0, 1), element e within it: the row k it holds.
int ptx_b_row(int elem_bytes, int t, int r, int e) {
  switch (elem_bytes) {
    case 2: return 2 * t + e + 8 * r;   // b0, b1: 2t + {0, 1}; b2, b3: 2t + 8 + {0, 1}
    case 4: return t + 4 * r;           // b0: t; b1: t + 4
    default: return 4 * t + e + 16 * r; // b0..b3: 4t + {0..3}; b4..b7: 4t + 16 + {0..3}
  }
}

// Packs a 16 x 64 layer with distinct weights and reads every lane's
// registers back through PTX's table.
void check_fragments(EnginePrecision p) {
  const int out = 16, in = 64;
  FoldedLinear l;
  l.in = in;
  l.out = out;
  l.bias.assign(out, 0.f);
  Int8LayerWeights q;
  q.in = in;
  q.out = out;
  q.scale.assign(out, 1.f);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      l.weight.push_back(static_cast<float>(o * in + i) * 0.37f);  // distinct; compared as converted bits
      q.q.push_back(static_cast<int8_t>((o * 7 + i) % 255 - 127));
    }
  const bool int8 = p == EnginePrecision::INT8;
  const CudaLayerWeights w = int8 ? cuda_layer_weights(q) : cuda_layer_weights(l, p);
  const int eb = int8 ? 1 : p == EnginePrecision::TF32 ? 4 : 2;
  const int k_step = 32 / eb, steps = in / k_step;
  ASSERT_EQ(w.bytes.size(), static_cast<size_t>(out) * in * eb);
  for (int nt = 0; nt < out / 8; ++nt)
    for (int ks = 0; ks < steps; ++ks)
      for (int lane = 0; lane < 32; ++lane)
        for (int r = 0; r < 2; ++r)
          for (int e = 0; e < 4 / eb; ++e) {
            const int g = lane / 4, t = lane % 4;
            const int o = nt * 8 + g, k = ks * k_step + ptx_b_row(eb, t, r, e);
            const uint8_t* at = &w.bytes[((static_cast<size_t>(nt) * steps + ks) * 32 + lane) * 8 + r * 4 + e * eb];
            const float v = l.weight[static_cast<size_t>(o) * in + k];
            if (int8) {
              ASSERT_EQ(static_cast<int8_t>(*at), q.q[static_cast<size_t>(o) * in + k]) << "o " << o << " k " << k;
            } else if (eb == 2) {
              uint16_t h;
              std::memcpy(&h, at, 2);
              ASSERT_EQ(h, p == EnginePrecision::FP16 ? float_to_half(v) : float_to_bf16(v)) << "o " << o << " k " << k;
            } else {
              uint32_t u;
              std::memcpy(&u, at, 4);
              ASSERT_EQ(u, bits(round_to_tf32(v))) << "o " << o << " k " << k;
            }
          }
}

TEST(CudaEngineLayout, FragmentsFollowThePtxOperandTables) {
  for (EnginePrecision p : {EnginePrecision::FP16, EnginePrecision::BF16, EnginePrecision::TF32, EnginePrecision::INT8}) {
    SCOPED_TRACE(precision_name(p));
    check_fragments(p);
  }
}

// The A fragment's words (a_fragment_word, where the streamed first kernel
// puts conv1's values) against the PTX ISA's tables of each element a_i a
// lane holds (groupID g = lane / 4, threadID_in_group t = lane % 4), written
// out per shape: register j holds elements a_{j n}.. a_{j n + n - 1}, n = 4 /
// element bytes.
TEST(CudaEngineLayout, AFragmentWordsFollowThePtxOperandTables) {
  for (int eb : {2, 4, 1}) {
    SCOPED_TRACE("element bytes " + std::to_string(eb));
    const int n = 4 / eb;
    for (int lane = 0; lane < 32; ++lane) {
      const int g = lane / 4, t = lane % 4;
      for (int j = 0; j < 4; ++j)
        for (int e = 0; e < n; ++e) {
          const int i = j * n + e;
          int row = 0, col = 0;
          if (eb == 2) {  // m16n8k16 .f16/.bf16: a0..a7
            row = g + ((i >> 1) % 2 ? 8 : 0);
            col = t * 2 + (i & 1) + (i >= 4 ? 8 : 0);
          } else if (eb == 4) {  // m16n8k8 .tf32: a0..a3
            row = g + (i % 2 ? 8 : 0);
            col = t + (i >= 2 ? 4 : 0);
          } else {  // m16n8k32 .u8/.s8: a0..a15
            row = g + ((i >> 2) % 2 ? 8 : 0);
            col = t * 4 + (i & 3) + (i >= 8 ? 16 : 0);
          }
          const cuda_engine::AFragmentWord w = cuda_engine::a_fragment_word(lane, j);
          EXPECT_EQ(w.row, row) << "lane " << lane << " a" << i;
          EXPECT_EQ(w.byte / eb + e, col) << "lane " << lane << " a" << i;
        }
    }
  }
}

// wgmma's operands without swizzling: every 128-byte block is a core matrix
// of 8 consecutive channels x 16 consecutive bytes of K; a group of 8
// channels (and so any slice of 64) is one contiguous range of the layer.
TEST(CudaEngineLayout, CoreMatricesHoldEightChannelsBySixteenBytes) {
  for (EnginePrecision p : {EnginePrecision::FP16, EnginePrecision::TF32, EnginePrecision::INT8}) {
    SCOPED_TRACE(precision_name(p));
    const int out = 24, in = 128, eb = p == EnginePrecision::INT8 ? 1 : p == EnginePrecision::TF32 ? 4 : 2;
    FoldedLinear l;
    l.in = in;
    l.out = out;
    Int8LayerWeights q;
    q.in = in;
    q.out = out;
    q.scale.assign(out, 1.f);
    for (int o = 0; o < out; ++o)
      for (int i = 0; i < in; ++i) {
        l.weight.push_back(static_cast<float>((o * in + i) % 2048 - 1024));  // integers below 2048: exact in fp16, tf32
        q.q.push_back(static_cast<int8_t>((o * 5 + i) % 250 - 125));
      }
    const CudaLayerWeights w = p == EnginePrecision::INT8 ? cuda_core_weights(q) : cuda_core_weights(l, p);
    ASSERT_EQ(w.bytes.size(), static_cast<size_t>(out) * in * eb);
    const int row_bytes = in * eb, chunks = row_bytes / 16;
    for (size_t block = 0; block < w.bytes.size() / 128; ++block) {
      const int group = static_cast<int>(block) / chunks, chunk = static_cast<int>(block) % chunks;
      for (int r = 0; r < 8; ++r)
        for (int e = 0; e < 16 / eb; ++e) {
          const int o = group * 8 + r, i = chunk * 16 / eb + e;
          const uint8_t* at = &w.bytes[block * 128 + r * 16 + e * eb];
          if (p == EnginePrecision::INT8) {
            ASSERT_EQ(static_cast<int8_t>(*at), q.q[static_cast<size_t>(o) * in + i]) << o << ", " << i;
          } else if (eb == 2) {
            uint16_t h;
            std::memcpy(&h, at, 2);
            ASSERT_EQ(half_to_float(h), l.weight[static_cast<size_t>(o) * in + i]) << o << ", " << i;
          } else {
            float f;
            std::memcpy(&f, at, 4);
            ASSERT_EQ(f, l.weight[static_cast<size_t>(o) * in + i]) << o << ", " << i;
          }
        }
    }
  }
}

// The 3xTF32 kernels read fp32 weights from the TF32 fragment positions,
// every bit kept (the split into tf32 parts happens in registers).
TEST(CudaEngineLayout, ThreeTf32WeightsAreUnroundedTf32Fragments) {
  const int out = 16, in = 64;
  FoldedLinear l;
  l.in = in;
  l.out = out;
  l.bias.assign(out, 0.f);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) l.weight.push_back(static_cast<float>(o * in + i) * 0.37f + 1e-3f);
  const CudaLayerWeights w = cuda_3xtf32_weights(l);
  ASSERT_EQ(w.bytes.size(), static_cast<size_t>(out) * in * 4);
  int not_tf32 = 0;
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      const float v = l.weight[static_cast<size_t>(o) * in + i];
      float f;
      std::memcpy(&f, &w.bytes[cuda_engine::fragment_byte(o, i, in, 4)], 4);
      ASSERT_EQ(bits(f), bits(v)) << "o " << o << " i " << i;
      not_tf32 += round_to_tf32(v) != v;
    }
  EXPECT_GT(not_tf32, out * in / 2);  // the check above would catch a rounding packer
}

TEST(CudaEngineLayout, Fp32WeightsAreTransposed) {
  FoldedLinear l;
  l.in = 3;
  l.out = 2;
  l.weight = {1, 2, 3, 4, 5, 6};
  const CudaLayerWeights w = cuda_layer_weights(l, EnginePrecision::FP32);
  std::vector<float> t(6);
  std::memcpy(t.data(), w.bytes.data(), 24);
  EXPECT_EQ(t, (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(CudaEngineLayout, RoundingMatchesTheDevice) {
  // bf16: ties to even, as __float2bfloat16_rn.
  EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);                               // tie, even below
  EXPECT_EQ(float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);                           // tie, even above
  EXPECT_EQ(float_to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -12)), 0x3f81);      // above the tie
  const uint16_t nan = float_to_bf16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(nan & 0x7f80, 0x7f80);
  EXPECT_NE(nan & 0x7f, 0);
  // tf32: 10 mantissa bits, ties away from zero, as cvt.rna.tf32.f32.
  EXPECT_EQ(round_to_tf32(1.0f + std::ldexp(1.0f, -11)), 1.0f + std::ldexp(1.0f, -10));
  EXPECT_EQ(round_to_tf32(-1.0f - std::ldexp(1.0f, -11)), -1.0f - std::ldexp(1.0f, -10));
  EXPECT_EQ(round_to_tf32(1.0f + std::ldexp(1.0f, -12)), 1.0f);
  EXPECT_TRUE(std::isinf(round_to_tf32(std::numeric_limits<float>::infinity())));
}

TEST(CudaEngineLayout, BuildRecordNamesTheFp32Layers) {
  testing::TempDir dir;
  const FoldedModel model = fold_model(testing::make_random_checkpoint(engine_config(ModelTask::Segmentation, 4, true), 3, dir));
  BuildOptions options;
  options.device = "cuda";
  options.precision = EnginePrecision::FP16;
  const EnginePlan plan = build_plan(model, options, {}, 0, 0);
  const nlohmann::json& layers = plan.build["layers"];
  EXPECT_EQ(layers["conv1"], "fp32");
  EXPECT_EQ(layers["stn.conv1"], "fp32");
  EXPECT_EQ(layers["stn.conv3"], "fp16");
  EXPECT_EQ(layers["fstn.conv1"], "fp16");
  EXPECT_EQ(layers["stn.fc2"].get<std::string>().rfind("tf32 products", 0), 0u) << layers["stn.fc2"];
  EXPECT_EQ(layers["stn.fc3"], "fp32 (per cloud)");  // makes the transform
  EXPECT_EQ(layers["head.3"], "fp32 (logits)");
  EXPECT_EQ(layers["head.1"], "fp16");
  EXPECT_NE(layers["conv2"].get<std::string>().find("per cloud"), std::string::npos);
  EXPECT_NE(layers["head.0.point"].get<std::string>().find("per cloud"), std::string::npos);
}

TEST(CudaEngineRunner, RefusesWithoutAGpu) {
  std::string why;
  if (cuda_device_available(&why)) GTEST_SKIP() << "a CUDA device is here: " << why;
  testing::TempDir dir;
  EnginePlan plan;
  plan.model = fold_model(testing::make_random_checkpoint(engine_config(ModelTask::Classification, 3, false), 1, dir));
  plan.device = "cuda";
  plan.precision = EnginePrecision::FP16;
  plan.max_batch = plan.max_points = 8;
  testing::expect_error_containing([&] { CudaRunner runner(plan); }, {"a CUDA engine needs a CUDA GPU: " + why});
  testing::expect_error_containing([&] { make_engine_predictor(plan, "m.engine"); },
                                   {"m.engine: a CUDA engine needs a CUDA GPU: " + why});
}

// ---------------------------------------------------------------- on the GPU

// Tolerances on ||out - ref|| / ||ref|| of log-probabilities against the CPU
// fp32 reference, from each precision's unit roundoff u (operands rounded to
// it; fp32 accumulation): about 20 u covers a value's walk through the ~10
// layers (conv1, the T-Net's transform re-entering conv1, conv2 ... logits).
// fp32: different summation order only (K up to 1024): ~sqrt(K) ulp per sum.
constexpr double kFp32 = 1e-5;
// tf32 and fp16 both keep 10 mantissa bits (u = 2^-11 = 4.9e-4): 20 u = 1e-2.
constexpr double kTenBits = 1e-2;
// bf16 keeps 7 (u = 2^-8 = 3.9e-3): 20 u = 8e-2.
constexpr double kBf16 = 8e-2;
// int8 against the CPU int8 engine: the same integers, except where the fp32
// parts (conv1, the transforms) round differently and a quantised activation
// lands one step away at a tie: rare, and each moves a sum by one step of its
// scale. A layer fed a wrong scale or weight misses by far more than 1e-2.
constexpr double kInt8VsCpu = 1e-2;

double tolerance(EnginePrecision p) {
  switch (p) {
    case EnginePrecision::FP32: return kFp32;
    case EnginePrecision::TF32: case EnginePrecision::FP16: return kTenBits;
    case EnginePrecision::BF16: return kBf16;
    case EnginePrecision::INT8: return kInt8VsCpu;
  }
  return 0;
}

size_t count_nonfinite(const std::vector<float>& v) {
  size_t n = 0;
  for (float x : v) n += !std::isfinite(x);
  return n;
}

// NaN never passes: infinity on any non-finite value or a size mismatch.
double rel_error(const std::vector<float>& a, const std::vector<float>& ref) {
  if (a.size() != ref.size() || count_nonfinite(a) || count_nonfinite(ref)) return std::numeric_limits<double>::infinity();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (static_cast<double>(a[i]) - ref[i]) * (static_cast<double>(a[i]) - ref[i]);
    norm += static_cast<double>(ref[i]) * ref[i];
  }
  return std::sqrt(diff / (norm > 0 ? norm : 1.0));
}

size_t outputs(const ModelConfig& c, int B, int N) {
  return static_cast<size_t>(B) * (c.task == ModelTask::Segmentation ? N : 1) * c.num_classes;
}

std::vector<float> run_poisoned(CudaRunner& runner, const ModelConfig& c, const std::vector<float>& points, int B, int N) {
  std::vector<float> out(outputs(c, B, N), std::numeric_limits<float>::quiet_NaN());
  runner.run(points.data(), B, N, out.data());
  return out;
}

EnginePlan cuda_plan(const FoldedModel& model, EnginePrecision p, const std::vector<float>& calib = {}, int calib_count = 0,
                     int calib_points = 0) {
  BuildOptions options;
  options.device = "cuda";
  options.precision = p;
  options.max_batch = 512;
  options.max_points = 4096;
  options.calibration = CalibrationMethod::MinMax;  // nothing clips on clouds like the calibration's
  return build_plan(model, options, calib, calib_count, calib_points);
}

// (3, 300): ragged last tile; (1, 1): one point; (1, 1024): channel groups
// over one cloud; (13, 129): the cuBLASLt per-cloud path, ragged; (2, 700);
// (130, 64): two slices on two streams (64 and 66 clouds); (500, 40): four
// (112, 128, 128, 132). On sm_90 these
// and the next run the split trunk (64 clouds and more), whose wide_max
// kernel sees T row tiles of 64 per cloud: (130, 64) T = 1, (64, 100) T = 2,
// (150, 200) two clouds per block, ragged, and (70, 300) T = 8, or with
// POINTNET_ENGINE_SPLIT_TILE=128 T = 6: a 4-tile body and two single tiles.
const std::vector<std::pair<int, int>> kShapes = {{3, 300},  {1, 1},    {1, 1024},  {13, 129}, {2, 700},
                                                  {130, 64}, {500, 40}, {64, 100}, {150, 200}, {70, 300}};

class CudaRunnerTest : public ::testing::TestWithParam<ModelConfig> {};

TEST_P(CudaRunnerTest, EveryFloatPrecisionMatchesTheFoldedReference) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = GetParam();
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 5, dir));
  std::vector<std::vector<float>> clouds, want;
  for (auto [B, N] : kShapes) {
    clouds.push_back(testing::random_clouds(B, N, config.input_channels, 100 + B * N));
    want.push_back(folded_forward_reference(model, clouds.back().data(), B, N));
  }
  for (EnginePrecision p : {EnginePrecision::FP32, EnginePrecision::TF32, EnginePrecision::FP16, EnginePrecision::BF16}) {
    CudaRunner runner(cuda_plan(model, p));
    for (size_t s = 0; s < kShapes.size(); ++s) {
      const auto [B, N] = kShapes[s];
      const std::vector<float> got = run_poisoned(runner, config, clouds[s], B, N);
      const double err = rel_error(got, want[s]);
      std::cout << "[ info     ] " << precision_name(p) << " " << B << " x " << N << ": rel. error " << err << "\n";
      EXPECT_EQ(count_nonfinite(got), 0u) << precision_name(p) << " " << B << " x " << N << ": unwritten or non-finite";
      EXPECT_LT(err, tolerance(p)) << precision_name(p) << " " << B << " x " << N;
      // The same shape again replays the captured graph: the same bits.
      EXPECT_EQ(run_poisoned(runner, config, clouds[s], B, N), got) << precision_name(p) << " " << B << " x " << N;
    }
  }
}

TEST_P(CudaRunnerTest, Int8MatchesTheCpuInt8Engine) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = GetParam();
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 21, dir));
  const int count = 24, calib_points = 200;
  const std::vector<float> calib = testing::random_clouds(count, calib_points, config.input_channels, 77);
  const EnginePlan plan = cuda_plan(model, EnginePrecision::INT8, calib, count, calib_points);
  CudaRunner gpu(plan);
  CpuRunner cpu(plan);
  for (auto [B, N] : kShapes) {
    const std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 500 + N);
    std::vector<float> want(outputs(config, B, N));
    cpu.run(points.data(), B, N, want.data());
    const std::vector<float> got = run_poisoned(gpu, config, points, B, N);
    const double err = rel_error(got, want);
    std::cout << "[ info     ] int8 " << B << " x " << N << ": rel. error vs the CPU int8 engine " << err << "\n";
    EXPECT_LT(err, kInt8VsCpu) << B << " x " << N;
  }
}

INSTANTIATE_TEST_SUITE_P(CudaArchitectures, CudaRunnerTest,
                         ::testing::Values(engine_config(ModelTask::Classification, 5, false),
                                           engine_config(ModelTask::Classification, 7, true),
                                           engine_config(ModelTask::Classification, 4, false, 6),
                                           engine_config(ModelTask::Segmentation, 6, false),
                                           engine_config(ModelTask::Segmentation, 4, true, 6)),
                         [](const ::testing::TestParamInfo<ModelConfig>& info) {
                           const ModelConfig& c = info.param;
                           return std::string(c.task == ModelTask::Segmentation ? "seg" : "cls") +
                                  (c.feature_transform ? "_ft" : "") + "_" + std::to_string(c.input_channels) + "ch";
                         });

#ifdef POINTNET_HAS_CUDA

TEST(CudaRunnerEntries, DeviceAndTimedEntriesAgreeWithRun) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = engine_config(ModelTask::Classification, 10, true);
  CudaRunner runner(cuda_plan(fold_model(testing::make_random_checkpoint(config, 8, dir)), EnginePrecision::FP16));
  const int B = 12, N = 333;
  const std::vector<float> points = testing::random_clouds(B, N, 3, 9);
  const std::vector<float> want = run_poisoned(runner, config, points, B, N);

  float *d_points = nullptr, *d_out = nullptr;
  ASSERT_EQ(cudaMalloc(&d_points, points.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&d_out, want.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(d_points, points.data(), points.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  for (int round = 0; round < 2; ++round) {  // capture, then replay
    ASSERT_EQ(cudaMemset(d_out, 0xff, want.size() * 4), cudaSuccess);  // NaN poison
    runner.run_device(d_points, B, N, d_out);
    runner.synchronize();
    std::vector<float> got(want.size());
    ASSERT_EQ(cudaMemcpy(got.data(), d_out, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(got, want) << "round " << round;
  }
  cudaFree(d_points);
  cudaFree(d_out);

  float* in = runner.input_buffer(B, N);
  float* out = runner.output_buffer(B, N);
  std::copy(points.begin(), points.end(), in);
  for (int round = 0; round < 2; ++round) {
    std::fill(out, out + want.size(), std::numeric_limits<float>::quiet_NaN());
    const CudaRunTiming t = runner.run_timed(B, N);
    EXPECT_GT(t.h2d_ms, 0.0);
    EXPECT_GT(t.compute_ms, 0.0);
    EXPECT_GT(t.d2h_ms, 0.0);
    EXPECT_EQ(std::vector<float>(out, out + want.size()), want) << "round " << round;
  }
  // The pinned buffers as run()'s arguments: no host copies, same result.
  std::fill(out, out + want.size(), std::numeric_limits<float>::quiet_NaN());
  runner.run(in, B, N, out);
  EXPECT_EQ(std::vector<float>(out, out + want.size()), want);
}

#endif

TEST(CudaRunnerEntries, GrowingBuffersRecaptureTheGraphs) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = engine_config(ModelTask::Segmentation, 5, false);
  CudaRunner runner(cuda_plan(fold_model(testing::make_random_checkpoint(config, 4, dir)), EnginePrecision::BF16));
  const std::vector<float> small = testing::random_clouds(2, 100, 3, 1), large = testing::random_clouds(9, 900, 3, 2);
  const std::vector<float> first = run_poisoned(runner, config, small, 2, 100);
  run_poisoned(runner, config, large, 9, 900);  // grows every buffer: the small shape's graph is gone
  EXPECT_EQ(run_poisoned(runner, config, small, 2, 100), first);
}

// The split trunk's streamed first kernel (POINTNET_ENGINE_SPLIT_FIRST=stream)
// makes the tile kernel's operations in the same order: the same output bits
// for every tensor-core precision, from 3 and 6 channels, at shapes that run
// split (64 clouds and more; ragged last tiles, clouds shorter than a tile).
// The variable is read when a shape's graph is captured, so each runner runs
// under its own setting; the runner reports the streamed kernel only once a
// trunk has launched it. (CudaEngineFirstLayers compares the kernel's whole
// output, which the classes' scores only sample through the max.)
TEST(CudaRunnerEntries, StreamedFirstKernelGivesTheSameBits) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const std::vector<std::pair<int, int>> shapes = {{130, 64}, {500, 40}, {64, 100}, {150, 200}, {70, 300}};
  for (int channels : {3, 6}) {
    const ModelConfig config = engine_config(ModelTask::Classification, 5, false, channels);
    const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 9, dir));
    const int count = 24, calib_points = 200;
    const std::vector<float> calib = testing::random_clouds(count, calib_points, channels, 78);
    for (EnginePrecision p :
         {EnginePrecision::TF32, EnginePrecision::FP16, EnginePrecision::BF16, EnginePrecision::INT8}) {
      CudaRunner tiles(cuda_plan(model, p, calib, count, calib_points));
      CudaRunner streamed(cuda_plan(model, p, calib, count, calib_points));
      for (auto [B, N] : shapes) {
        const std::string what = std::string(precision_name(p)) + " " + std::to_string(channels) + "ch " +
                                 std::to_string(B) + " x " + std::to_string(N);
        const std::vector<float> points = testing::random_clouds(B, N, channels, 60 + N);
        std::vector<float> want, got;
        {
          testing::ScopedEnv env;
          env.set("POINTNET_ENGINE_SPLIT_FIRST", "tiles");
          want = run_poisoned(tiles, config, points, B, N);
        }
        if (tiles.trunk_kernels().find("split") != 0) GTEST_SKIP() << "no split trunk here: " << tiles.trunk_kernels();
        {
          testing::ScopedEnv env;
          env.set("POINTNET_ENGINE_SPLIT_FIRST", "stream");
          got = run_poisoned(streamed, config, points, B, N);
          EXPECT_NE(streamed.trunk_kernels().find("streamed first kernel"), std::string::npos)
              << streamed.trunk_kernels();
        }
        EXPECT_EQ(tiles.trunk_kernels().find("streamed"), std::string::npos) << tiles.trunk_kernels();
        EXPECT_EQ(count_nonfinite(want), 0u) << what;
        ASSERT_EQ(got.size(), want.size()) << what;
        EXPECT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0) << what;
      }
    }
  }
}

// POINTNET_ENGINE_NARROW_FC=kernel (read when a runner is made): the input
// T-Net's last layer (9 outputs) and the logits with their log-softmax by the
// few-row kernels above 8 clouds, 8 clouds a block: (9, 64) one full block
// and one of one cloud; (13, 129) a ragged block; (600, 64) four slices of
// 144-156 clouds (ragged last blocks). Scores within the precision's
// tolerance of the CPU reference and of cuBLAS's layers (the kernels
// themselves: CudaEngineSmallLinear).
TEST(CudaRunnerEntries, NarrowLayersByTheFewRowKernelsMatchTheReference) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = engine_config(ModelTask::Classification, 5, false);
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 13, dir));
  struct Shape {
    int B, N;
    std::vector<float> points, want;
  };
  std::vector<Shape> shapes;
  for (auto [B, N] : std::vector<std::pair<int, int>>{{9, 64}, {13, 129}, {600, 64}}) {
    std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 17 + B);
    std::vector<float> want = folded_forward_reference(model, points.data(), B, N);
    shapes.push_back({B, N, std::move(points), std::move(want)});
  }
  for (EnginePrecision p : {EnginePrecision::FP32, EnginePrecision::TF32, EnginePrecision::FP16}) {
    EnginePlan plan = cuda_plan(model, p);
    plan.max_batch = 1024;
    CudaRunner by_cublas(plan);
    std::unique_ptr<CudaRunner> by_kernel;
    {
      testing::ScopedEnv env;
      env.set("POINTNET_ENGINE_NARROW_FC", "kernel");
      by_kernel = std::make_unique<CudaRunner>(plan);
    }
    for (const auto& [B, N, points, want] : shapes) {
      const std::string what = std::string(precision_name(p)) + " " + std::to_string(B) + " x " + std::to_string(N);
      const std::vector<float> base = run_poisoned(by_cublas, config, points, B, N);
      const std::vector<float> got = run_poisoned(*by_kernel, config, points, B, N);
      EXPECT_EQ(count_nonfinite(got), 0u) << what << ": unwritten or non-finite";
      EXPECT_LT(rel_error(got, want), tolerance(p)) << what;
      EXPECT_LT(rel_error(got, base), tolerance(p)) << what;
      // The switch took effect: fp32 sums of 256 terms in another order than
      // cuBLAS's differ somewhere in the last bits over 600 clouds' scores.
      if (p == EnginePrecision::FP32 && B == 600) {
        EXPECT_NE(std::memcmp(got.data(), base.data(), got.size() * sizeof(float)), 0)
            << what << ": the same bits as cuBLAS's layers (POINTNET_ENGINE_NARROW_FC not taken?)";
      }
    }
  }
}

// POINTNET_ENGINE_SLICES (read when a runner is made): a batch of 600 clouds
// runs in 8 slices (64 to 88 clouds, starting at multiples of 16), 9 when 16
// are asked (64 clouds a slice at least), or 2, each
// on its own stream, and every cloud's scores still match the CPU reference
// and the default 4 slices' within the precision's tolerance; 100 clouds
// take one slice whatever is asked (64 clouds a slice at least: the count is
// checked, not run). The segmenter holds per-slice scratch for its GEMM head:
// it runs too. A value outside 2, 4, 8, 16 is refused.
TEST(CudaRunnerEntries, SliceCountsGiveTheSameScores) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  for (ModelTask task : {ModelTask::Classification, ModelTask::Segmentation}) {
    const ModelConfig config = engine_config(task, 5, false);
    const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 11, dir));
    const auto plan = [&](EnginePrecision p) {
      EnginePlan e = cuda_plan(model, p);
      e.max_batch = 1024;
      return e;
    };
    const int B = 600, N = 64;
    const std::vector<float> points = testing::random_clouds(B, N, config.input_channels, 31 + B);
    const std::vector<float> want = folded_forward_reference(model, points.data(), B, N);
    for (EnginePrecision p : {EnginePrecision::FP32, EnginePrecision::TF32, EnginePrecision::FP16}) {
      CudaRunner four(plan(p));
      ASSERT_EQ(four.slices(B), 4);
      EXPECT_EQ(four.slices(100), 1);
      const std::vector<float> base = run_poisoned(four, config, points, B, N);
      const std::vector<std::pair<const char*, int>> counts = {{"8", 8}, {"16", 9}, {"2", 2}};
      for (auto [slices, expected] : counts) {
        const std::string what = std::string(task == ModelTask::Segmentation ? "seg " : "cls ") +
                                 precision_name(p) + " " + std::to_string(B) + " x " + std::to_string(N) + ", " +
                                 slices + " slices";
        std::vector<float> got;
        {
          testing::ScopedEnv env;
          env.set("POINTNET_ENGINE_SLICES", slices);
          CudaRunner runner(plan(p));
          EXPECT_EQ(runner.slices(B), expected) << what;
          EXPECT_EQ(runner.slices(100), 1) << what;
          got = run_poisoned(runner, config, points, B, N);
        }
        EXPECT_EQ(count_nonfinite(got), 0u) << what << ": unwritten or non-finite";
        EXPECT_LT(rel_error(got, want), tolerance(p)) << what;
        EXPECT_LT(rel_error(got, base), tolerance(p)) << what;
      }
    }
  }
  testing::ScopedEnv env;
  env.set("POINTNET_ENGINE_SLICES", "3");
  const ModelConfig config = engine_config(ModelTask::Classification, 5, false);
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 11, dir));
  try {
    CudaRunner refused(cuda_plan(model, EnginePrecision::FP16));
    ADD_FAILURE() << "POINTNET_ENGINE_SLICES=3 was taken";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("POINTNET_ENGINE_SLICES"), std::string::npos) << e.what();
  }
}

// The segmenter's head as cuBLASLt GEMMs (the default, POINTNET_ENGINE_SEG_HEAD=gemm;
// fp16 / bf16 / tf32, no feature transform) in chunks of
// POINTNET_ENGINE_SEG_ROWS points: 256 splits clouds
// of 300 and 700 points into pieces (the last ragged) and takes one cloud of
// 129 or 200 per chunk; 1000 takes 7 clouds of 129 per chunk (13 = 7 + 6).
// Each against the CPU reference, and against the one-kernel head
// (POINTNET_ENGINE_SEG_HEAD=fused), within the precision's tolerance.
TEST(CudaRunnerEntries, SegmenterHeadInChunksMatchesTheReference) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = engine_config(ModelTask::Segmentation, 7, false);
  const FoldedModel model = fold_model(testing::make_random_checkpoint(config, 12, dir));
  const std::vector<std::pair<int, int>> shapes = {{3, 300}, {2, 700}, {3, 480}, {13, 129}, {5, 200}};
  for (EnginePrecision p : {EnginePrecision::FP16, EnginePrecision::BF16, EnginePrecision::TF32}) {
    std::vector<std::unique_ptr<CudaRunner>> runners;
    for (const char* rows : {"256", "1000"}) {
      testing::ScopedEnv env;
      env.set("POINTNET_ENGINE_SEG_HEAD", "gemm");
      env.set("POINTNET_ENGINE_SEG_ROWS", rows);
      runners.push_back(std::make_unique<CudaRunner>(cuda_plan(model, p)));
    }
    {
      testing::ScopedEnv env;
      env.set("POINTNET_ENGINE_SEG_HEAD", "fused");
      runners.push_back(std::make_unique<CudaRunner>(cuda_plan(model, p)));
    }
    for (auto [B, N] : shapes) {
      const std::vector<float> points = testing::random_clouds(B, N, 3, 40 + N);
      const std::vector<float> want = folded_forward_reference(model, points.data(), B, N);
      const std::vector<float> fused = run_poisoned(*runners[2], config, points, B, N);
      for (int r = 0; r < 2; ++r) {
        const std::vector<float> got = run_poisoned(*runners[r], config, points, B, N);
        const std::string what = std::string(precision_name(p)) + " " + std::to_string(B) + " x " +
                                 std::to_string(N) + (r == 0 ? ", chunks of 256" : ", chunks of 1000");
        std::cout << "[ info     ] seg head GEMMs " << what << ": rel. error " << rel_error(got, want)
                  << ", vs the one-kernel head " << rel_error(got, fused) << "\n";
        EXPECT_LT(rel_error(got, want), tolerance(p)) << what;
        EXPECT_LT(rel_error(got, fused), tolerance(p)) << what;  // each within it of the reference: a loose bound
        EXPECT_EQ(run_poisoned(*runners[r], config, points, B, N), got) << what << ": the graph's replay";
      }
    }
    EXPECT_NE(runners[0]->trunk_kernels().find("seg head: cuBLASLt GEMMs"), std::string::npos);
    EXPECT_EQ(runners[0]->trunk_kernels().find("one kernel"), std::string::npos) << runners[0]->trunk_kernels();
    EXPECT_EQ(runners[1]->trunk_kernels().find("one kernel"), std::string::npos) << runners[1]->trunk_kernels();
    EXPECT_NE(runners[2]->trunk_kernels().find("seg head: one kernel"), std::string::npos);
  }
}

TEST(CudaRunnerEntries, PredictorEnforcesThePlanLimits) {
  PN_REQUIRE_CUDA();
  testing::TempDir dir;
  const ModelConfig config = engine_config(ModelTask::Classification, 3, false);
  EnginePlan plan = cuda_plan(fold_model(testing::make_random_checkpoint(config, 6, dir)), EnginePrecision::TF32);
  plan.max_batch = 4;
  plan.max_points = 64;
  const auto predictor = make_engine_predictor(plan, "t.engine");
  const std::vector<float> points = testing::random_clouds(5, 64, 3, 3);
  testing::expect_error_containing([&] { predictor->predict(points.data(), 5, 64); },
                                   {"t.engine: engine built for batches of at most 4"});
  testing::expect_error_containing([&] { predictor->predict(points.data(), 1, 65); }, {"at most 64 points"});
  EXPECT_EQ(predictor->predict(points.data(), 4, 64).size(), 4u * 3);
}

}  // namespace
}  // namespace pointnet
