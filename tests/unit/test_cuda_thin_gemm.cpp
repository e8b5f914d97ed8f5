// The products with a side of at most 4 (src/cuda/thin_gemm.cu: the first
// conv over the points' coordinates, the 3 x 3 transform) in the fp16 / bf16
// modes, against the same products in double over the same rounded operands:
// the kernels widen the 2-byte values exactly and add in fp32, so the only
// error is fp32's over the terms. Each case also checks which path ran (the
// thin kernels with POINTNET_THIN_GEMMS=on where the shape allows, cuBLAS
// without).
//
// Skips cleanly where there is no GPU; compiled out in builds without the CUDA backend.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "cuda/cuda_backend.h"
#include "../cuda_test_support.h"

#ifdef POINTNET_HAS_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "../scoped_env.h"

namespace pointnet {
namespace {

using testing::Dev;

// x rounded to the mode's 2-byte type, as gemm_operand does (nearest even).
float rounded(float x, Precision p) {
  return p == Precision::FP16 ? __half2float(__float2half_rn(x)) : __bfloat162float(__float2bfloat16_rn(x));
}
std::vector<float> rounded(const std::vector<float>& v, Precision p) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = rounded(v[i], p);
  return out;
}
std::vector<float> normals(Rng& rng, size_t n, float scale = 1.0f) {
  std::vector<float> v(n);
  for (float& x : v) x = scale * rng.normal();
  return v;
}

// A product's exact value in double and the sum of its terms' magnitudes:
// fp32 accumulation of K exact products is off by at most ~K ulp of that sum.
struct Exact {
  std::vector<double> value, magnitude;
};

// C(M, N) = A(M, K) B(K, N) + bias (row-major; bias nullable).
Exact product(const std::vector<float>& A, const std::vector<float>& B, const std::vector<float>* bias, int M,
              int N, int K) {
  Exact e{std::vector<double>(size_t(M) * N), std::vector<double>(size_t(M) * N)};
  for (int m = 0; m < M; ++m)
    for (int n = 0; n < N; ++n) {
      double sum = bias ? (*bias)[n] : 0.0, magnitude = bias ? std::fabs((*bias)[n]) : 0.0;
      for (int k = 0; k < K; ++k) {
        const double t = double(A[size_t(m) * K + k]) * B[size_t(k) * N + n];
        sum += t;
        magnitude += std::fabs(t);
      }
      e.value[size_t(m) * N + n] = sum;
      e.magnitude[size_t(m) * N + n] = magnitude;
    }
  return e;
}
std::vector<float> transposed(const std::vector<float>& a, int rows, int cols) {
  std::vector<float> t(a.size());
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) t[size_t(c) * rows + r] = a[size_t(r) * cols + c];
  return t;
}

// How many elements of `got` are further from the exact value than fp32
// accumulation allows (K + 2 roundings of the terms' magnitude), plus one
// more rounding of the value where `narrow` (the output in 2 bytes).
size_t outside(const std::vector<float>& got, const Exact& e, int K, Precision narrow_in = Precision::FP32) {
  size_t bad = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    double bound = (K + 2) * std::ldexp(1.0, -24) * e.magnitude[i] + 1e-30;
    // Half an ulp relative (2^-11 fp16, 2^-8 bf16), and fp16's
    // subnormal spacing near zero (2^-24).
    if (narrow_in == Precision::FP16) bound += std::fabs(e.value[i]) * std::ldexp(1.0, -11) + std::ldexp(1.0, -24);
    if (narrow_in == Precision::BF16) bound += std::fabs(e.value[i]) * std::ldexp(1.0, -8);
    if (!(std::fabs(got[i] - e.value[i]) <= bound)) ++bad;
  }
  return bad;
}

// The backend in `p` with the thin kernels on or off.
std::unique_ptr<CudaBackend> backend_with(Precision p, bool thin) {
  ::pointnet::testing::ScopedEnv env;
  env.set("POINTNET_THIN_GEMMS", thin ? "on" : "off");
  return std::make_unique<CudaBackend>(p);
}

// The first conv: y = x w^T + b over M rows with Cin <= 4 (and a layer with
// Cout <= 4), into fp32 y; then dx = dy w, dw = dy^T x, db.
TEST(CudaThinGemm, LinearLayersOverAFewInputsMatchTheExactProducts) {
  PN_REQUIRE_CUDA();
  Rng rng(41);
  for (Precision p : {Precision::BF16, Precision::FP16})
  for (bool thin : {true, false})
  for (int M : {1, 37, 3000, 40000})  // 40,000: 157 chunks of the sums, past a warp's 32
  for (const auto& [Cin, Cout] : {std::pair{1, 64}, {3, 64}, {4, 64}, {3, 9}, {4, 9}, {128, 2}, {128, 4}}) {
    SCOPED_TRACE(std::string(precision_name(p)) + (thin ? " thin" : " cuBLAS") + " M=" + std::to_string(M) +
                 " Cin=" + std::to_string(Cin) + " Cout=" + std::to_string(Cout));
    const std::unique_ptr<CudaBackend> gpu = backend_with(p, thin);
    const std::vector<float> x = normals(rng, size_t(M) * Cin), w = normals(rng, size_t(Cout) * Cin, 0.5f),
                             bias = normals(rng, Cout, 0.3f), dy = normals(rng, size_t(M) * Cout);
    const std::vector<float> xr = rounded(x, p), wr = rounded(w, p), dyr = rounded(dy, p);
    Dev gx(*gpu, x), gw(*gpu, w), gb(*gpu, bias), gdy(*gpu, dy), y(*gpu, size_t(M) * Cout),
        dx(*gpu, size_t(M) * Cin), dw(*gpu, size_t(Cout) * Cin), db(*gpu, Cout);
    y.poison();
    dx.poison();
    dw.poison();
    const size_t thin_before = gpu->gemm_counts().thin_products;
    gpu->linear_forward(y, gx, gw, gb, M, Cin, Cout);
    gpu->linear_backward(dx, dw, db, gdy, gx, gw, M, Cin, Cout);
    // Cin <= 4: forward, dx and dw, all thin (dw's M = Cout <= 256). A layer
    // with Cout <= 4 (a segmenter's logits over a few parts): dx alone (its K
    // = Cout); the forward and dw (N = Cin = 128) stay with cuBLAS.
    const size_t thin_expected = !thin ? 0u : Cin <= 4 ? 3u : 1u;
    EXPECT_EQ(gpu->gemm_counts().thin_products - thin_before, thin_expected);
    const Exact ey = product(xr, transposed(wr, Cout, Cin), &bias, M, Cout, Cin);
    EXPECT_EQ(outside(y.host(), ey, Cin), 0u) << "y";
    const Exact edx = product(dyr, wr, nullptr, M, Cin, Cout);
    EXPECT_EQ(outside(dx.host(), edx, Cout), 0u) << "dx";
    const Exact edw = product(transposed(dyr, M, Cout), xr, nullptr, Cout, Cin, M);
    EXPECT_EQ(outside(dw.host(), edw, M), 0u) << "dw";
  }
}

// The BatchNorm conv layers' z in the 2-byte type (POINTNET_NARROW_Z): one
// more rounding of the fp32 result, read back through an identity product.
TEST(CudaThinGemm, TwoByteOutputsAreTheFp32ResultRoundedOnce) {
  PN_REQUIRE_CUDA();
  Rng rng(43);
  for (Precision p : {Precision::BF16, Precision::FP16}) {
    SCOPED_TRACE(precision_name(p));
    ::pointnet::testing::ScopedEnv env;
    env.set("POINTNET_NARROW_Z", "on");
    env.set("POINTNET_NARROW_ACTIVATIONS", "on");
    const std::unique_ptr<CudaBackend> gpu = backend_with(p, true);
    ASSERT_TRUE(gpu->narrow_linear_outputs());
    const int M = 1001, Cin = 3, Cout = 64;
    const size_t n = size_t(M) * Cout;
    const std::vector<float> x = normals(rng, size_t(M) * Cin), w = normals(rng, size_t(Cout) * Cin, 0.5f),
                             bias = normals(rng, Cout, 0.3f);
    std::vector<float> eye(size_t(Cout) * Cout, 0.0f);
    for (int c = 0; c < Cout; ++c) eye[size_t(c) * Cout + c] = 1.0f;
    Dev gx(*gpu, x), gw(*gpu, w), gb(*gpu, bias), z(*gpu, Backend<float>::narrow_count(n)), zeros(*gpu, n),
        eyes(*gpu, eye), z_values(*gpu, n);
    gpu->fill(zeros, 0.0f, n);
    const size_t thin_before = gpu->gemm_counts().thin_products;
    gpu->linear_forward(nullptr, gx, gw, gb, M, Cin, Cout, nullptr, z);
    EXPECT_EQ(gpu->gemm_counts().thin_products - thin_before, 1u);
    gpu->linear_forward(z_values, zeros, eyes, nullptr, M, Cout, Cout, z);  // the 2-byte values, exactly
    const Exact ez = product(rounded(x, p), transposed(rounded(w, p), Cout, Cin), &bias, M, Cout, Cin);
    const std::vector<float> got = z_values.host();
    EXPECT_EQ(outside(got, ez, Cin, p), 0u);
    size_t not_narrow = 0;  // every value is one of the 2-byte type's
    for (float v : got) not_narrow += rounded(v, p) != v;
    EXPECT_EQ(not_narrow, 0u);
  }
}

// The per-cloud 3 x 3 transform: y = x t, dx = dy t^T, dt = x^T dy (its sum
// over the cloud's points in chunks: N from 1 to past several chunks), by
// transform.cu's own kernels (the default), the thin products or cuBLAS.
TEST(CudaThinGemm, TheThreeByThreeTransformMatchesTheExactProducts) {
  PN_REQUIRE_CUDA();
  Rng rng(47);
  for (Precision p : {Precision::BF16, Precision::FP16})
  for (const char* path : {"kernel", "thin", "cuBLAS"})
  for (int N : {1, 100, 2500}) {
    SCOPED_TRACE(std::string(precision_name(p)) + " " + path + " N=" + std::to_string(N));
    const int B = 5, K = 3;
    const bool thin = std::string(path) == "thin";
    ::pointnet::testing::ScopedEnv env;
    env.set("POINTNET_SMALL_TRANSFORMS", std::string(path) == "kernel" ? "kernel" : "gemm");
    const std::unique_ptr<CudaBackend> gpu = backend_with(p, thin);
    const std::vector<float> x = normals(rng, size_t(B) * N * K), t = normals(rng, size_t(B) * K * K),
                             dy = normals(rng, size_t(B) * N * K);
    const std::vector<float> xr = rounded(x, p), tr = rounded(t, p), dyr = rounded(dy, p);
    Dev gx(*gpu, x), gt(*gpu, t), gdy(*gpu, dy), y(*gpu, x.size()), dx(*gpu, x.size()), dt(*gpu, t.size());
    y.poison();
    dx.poison();
    dt.poison();
    const size_t thin_before = gpu->gemm_counts().thin_products;
    gpu->transform_forward(y, gx, gt, B, N, K);
    gpu->transform_backward(dx, dt, gdy, gx, gt, B, N, K);
    EXPECT_EQ(gpu->gemm_counts().thin_products - thin_before, thin ? 3u : 0u);
    const std::vector<float> yh = y.host(), dxh = dx.host(), dth = dt.host();
    for (int b = 0; b < B; ++b) {
      auto cloud = [&](const std::vector<float>& v, size_t size) {
        return std::vector<float>(v.begin() + b * size, v.begin() + (b + 1) * size);
      };
      const size_t nk = size_t(N) * K, kk = size_t(K) * K;
      const std::vector<float> xb = cloud(xr, nk), tb = cloud(tr, kk), dyb = cloud(dyr, nk);
      EXPECT_EQ(outside(cloud(yh, nk), product(xb, tb, nullptr, N, K, K), K), 0u) << "y, cloud " << b;
      EXPECT_EQ(outside(cloud(dxh, nk), product(dyb, transposed(tb, K, K), nullptr, N, K, K), K), 0u)
          << "dx, cloud " << b;
      EXPECT_EQ(outside(cloud(dth, kk), product(transposed(xb, N, K), dyb, nullptr, K, K, N), N), 0u)
          << "dt, cloud " << b;
    }
  }
}

// Not in fp32 or tf32: those keep cuBLAS's products.
TEST(CudaThinGemm, OnlyTheTwoByteModesTakeThem) {
  PN_REQUIRE_CUDA();
  for (Precision p : {Precision::FP32, Precision::TF32}) {
    const std::unique_ptr<CudaBackend> gpu = backend_with(p, true);
    const int M = 64, Cin = 3, Cout = 16;
    Dev x(*gpu, std::vector<float>(size_t(M) * Cin, 1.0f)), w(*gpu, std::vector<float>(size_t(Cout) * Cin, 0.5f)),
        y(*gpu, size_t(M) * Cout);
    gpu->linear_forward(y, x, w, nullptr, M, Cin, Cout);
    EXPECT_EQ(gpu->gemm_counts().thin_products, 0u) << precision_name(p);
    for (float v : y.host()) ASSERT_EQ(v, 1.5f) << precision_name(p);
  }
}

}  // namespace
}  // namespace pointnet
#endif  // POINTNET_HAS_CUDA
