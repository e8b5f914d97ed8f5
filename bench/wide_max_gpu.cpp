// Micro-benchmark of the engine's widest layer alone: conv3 (128 -> 1024)
// and the max over each cloud's points, by the weight-stationary wgmma
// kernel (src/cuda/sm90a/wide_max_wgmma.cu), beside cuBLAS's plain GEMM of
// the same shape (which writes the whole (B N, 1024) product and takes no
// max) in the same process. Checks the kernel's maxima against the CPU
// first: the inputs are small multiples of powers of two, so every product
// and sum is exact in fp32 and int32 and the maxima must be equal.
//
//   bench_wide_max_gpu [--batch B] [--points N] [--iters K] [--json]
//
// Prints one line per (precision, program): microseconds per launch and
// TFLOP/s (2 B N 128 1024 / time). Exits 1 if a check fails.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "core/half.h"
#include "core/rng.h"
#include "cuda/check.h"
#include "cuda/engine_wide_max.h"
#include "engine/cuda_weights.h"

namespace {

using pointnet::Rng;
using namespace pointnet::cuda_engine;

constexpr int K = 128, C = 1024;

struct Options {
  int batch = 1024, points = 1024, iters = 20;
  bool json = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_wide_max_gpu: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return std::atoi(argv[++i]);
    };
    if (a == "--batch") o.batch = value();
    else if (a == "--points") o.points = value();
    else if (a == "--iters") o.iters = value();
    else if (a == "--json") o.json = true;
    else {
      std::fprintf(stderr, "usage: bench_wide_max_gpu [--batch B] [--points N] [--iters K] [--json]\n");
      std::exit(2);
    }
  }
  if (o.batch < 1 || o.points < 1 || o.points % 64 != 0 || o.iters < 1) {
    std::fprintf(stderr, "bench_wide_max_gpu: batch >= 1, points a positive multiple of 64, iters >= 1\n");
    std::exit(2);
  }
  return o;
}

// Inputs as small integers: x in [0, 31], w in [-32, 32] (int8: u8 and s8
// ranges), scaled by 1/16 and 1/64 for the float types (exact in fp16/bf16/tf32).
struct Problem {
  std::vector<int> x, w;  // (B N, K) and (C, K) as integers
};

Problem make_problem(int rows, bool int8, uint64_t seed) {
  Rng rng(seed);
  Problem p;
  p.x.resize(static_cast<size_t>(rows) * K);
  p.w.resize(static_cast<size_t>(C) * K);
  for (int& v : p.x) v = int8 ? static_cast<int>(rng.below(256)) : static_cast<int>(rng.below(32));
  for (int& v : p.w) v = int8 ? static_cast<int>(rng.below(255)) - 127 : static_cast<int>(rng.below(65)) - 32;
  return p;
}

// Element bytes of value v (integer units) for the math type.
void put(uint8_t* at, int v, Math m, float unit) {
  if (m == Math::I8) {
    *at = static_cast<uint8_t>(static_cast<int8_t>(v));  // u8 for x (0..255), s8 for w
    return;
  }
  if (m == Math::TF32) {
    const float f = v * unit;  // exact in tf32: small integers times a power of two
    std::memcpy(at, &f, 4);
    return;
  }
  const uint16_t h = m == Math::F16 ? pointnet::float_to_half(v * unit) : pointnet::float_to_bf16(v * unit);
  std::memcpy(at, &h, 2);
}

// (rows, K) integers in the kernel's core layout, by the engine's own packers.
std::vector<uint8_t> core_bytes(const std::vector<int>& v, int rows, Math m, float unit) {
  if (m == Math::I8) {
    pointnet::Int8LayerWeights l;
    l.out = rows;
    l.in = K;
    for (int x : v) l.q.push_back(static_cast<int8_t>(static_cast<uint8_t>(x)));  // u8 inputs keep their bits
    l.scale.assign(rows, 1.f);
    return pointnet::cuda_core_weights(l).bytes;
  }
  pointnet::FoldedLinear l;
  l.out = rows;
  l.in = K;
  for (int x : v) l.weight.push_back(x * unit);
  const pointnet::EnginePrecision p = m == Math::F16    ? pointnet::EnginePrecision::FP16
                                      : m == Math::BF16 ? pointnet::EnginePrecision::BF16
                                                        : pointnet::EnginePrecision::TF32;
  return pointnet::cuda_core_weights(l, p).bytes;
}
// Row-major bytes for cuBLAS.
std::vector<uint8_t> row_major_bytes(const std::vector<int>& v, Math m, float unit) {
  const int eb = elem_bytes(m);
  std::vector<uint8_t> out(v.size() * eb);
  for (size_t i = 0; i < v.size(); ++i) put(&out[i * eb], v[i], m, unit);
  return out;
}

template <class F>
float time_us(int iters, F&& f) {
  cudaEvent_t start, stop;
  CUDA_CHECK(cudaEventCreate(&start));
  CUDA_CHECK(cudaEventCreate(&stop));
  for (int i = 0; i < 3; ++i) f();
  CUDA_CHECK(cudaEventRecord(start));
  for (int i = 0; i < iters; ++i) f();
  CUDA_CHECK(cudaEventRecord(stop));
  CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0.f;
  CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  CUDA_CHECK(cudaEventDestroy(start));
  CUDA_CHECK(cudaEventDestroy(stop));
  return ms * 1000.f / iters;
}

const char* name_of(Math m) {
  return m == Math::F16 ? "fp16" : m == Math::BF16 ? "bf16" : m == Math::TF32 ? "tf32" : "int8";
}

void report(const Options& o, Math m, const char* program, float us) {
  const double flop = 2.0 * o.batch * o.points * K * C;
  if (o.json)
    std::printf("{\"bench\": \"wide_max\", \"precision\": \"%s\", \"program\": \"%s\", \"batch\": %d, \"points\": %d, "
                "\"us\": %.2f, \"tflops\": %.1f}\n",
                name_of(m), program, o.batch, o.points, us, flop / us * 1e-6);
  else
    std::printf("%-5s %-28s B=%d N=%d  %9.2f us  %6.1f TFLOP/s\n", name_of(m), program, o.batch, o.points, us,
                flop / us * 1e-6);
}

// Returns false if the kernel's maxima differ from the CPU's.
bool run(const Options& o, Math m, int sms, cublasHandle_t blas) {
  const bool int8 = m == Math::I8;
  const int rows = o.batch * o.points;
  const float xu = int8 ? 1.f : 1.f / 16, wu = int8 ? 1.f : 1.f / 64;
  const Problem p = make_problem(rows, int8, 7);
  // Each cloud's rows are one block of core layout (tiles of 64 rows follow).
  const std::vector<uint8_t> x_core = core_bytes(p.x, rows, m, xu), w_core = core_bytes(p.w, C, m, wu);
  void *x_d, *w_d, *y_d, *xr_d, *wr_d;
  float* out_d;
  CUDA_CHECK(cudaMalloc(&x_d, x_core.size()));
  CUDA_CHECK(cudaMalloc(&w_d, w_core.size()));
  CUDA_CHECK(cudaMalloc(&out_d, sizeof(float) * o.batch * C));
  CUDA_CHECK(cudaMemcpy(x_d, x_core.data(), x_core.size(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(w_d, w_core.data(), w_core.size(), cudaMemcpyHostToDevice));

  WideMaxArgs a;
  a.math = m;
  a.B = o.batch;
  a.tiles = o.points / 64;
  a.C = C;
  a.x = x_d;
  a.w = w_d;
  a.out = out_d;
  // int8: the dequantising epilogue with an input scale and per-channel
  // weight scales, powers of two so the expected values stay exact.
  std::vector<float> scales(C);
  for (int c = 0; c < C; ++c) scales[c] = std::ldexp(1.f, c % 5 - 2);
  float* scale_d = nullptr;
  if (int8) {
    CUDA_CHECK(cudaMalloc(&scale_d, sizeof(float) * C));
    CUDA_CHECK(cudaMemcpy(scale_d, scales.data(), sizeof(float) * C, cudaMemcpyHostToDevice));
    a.scale = scale_d;
    a.x_scale = 0.5f;
  }
  const int grid = wide_max_grid(m, o.batch, C, sms);
  launch_wide_max(a, grid, nullptr);
  CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> out(static_cast<size_t>(o.batch) * C);
  CUDA_CHECK(cudaMemcpy(out.data(), out_d, sizeof(float) * out.size(), cudaMemcpyDeviceToHost));
  bool ok = true;
  int checked = 0;
  for (int b : {0, o.batch / 2, o.batch - 1}) {
    for (int c = 0; c < C && ok; ++c) {
      long best = 0;
      for (int r = 0; r < o.points; ++r) {
        long s = 0;
        const int* xr = &p.x[(static_cast<size_t>(b) * o.points + r) * K];
        const int* wr = &p.w[static_cast<size_t>(c) * K];
        for (int k = 0; k < K; ++k) s += static_cast<long>(xr[k]) * wr[k];
        best = r == 0 ? s : std::max(best, s);
      }
      const double epilogue = int8 ? 0.5 * scales[c] : static_cast<double>(xu) * wu;
      const float want = static_cast<float>(best * epilogue);
      const float got = out[static_cast<size_t>(b) * C + c];
      if (got != want) {
        std::fprintf(stderr, "%s wide_max: cloud %d channel %d: got %.9g, want %.9g\n", name_of(m), b, c, got, want);
        ok = false;
      }
      ++checked;
    }
  }
  if (ok) std::printf("%-5s check: %d maxima equal to the CPU's (exact inputs)\n", name_of(m), checked);
  report(o, m, "wgmma wide_max (max only)", time_us(o.iters, [&] { launch_wide_max(a, grid, nullptr); }));

  // cuBLAS: Y(B N, C) = X W^T, row-major: column-major Y^T = W X^T (TN).
  const std::vector<uint8_t> xr = row_major_bytes(p.x, m, xu), wr = row_major_bytes(p.w, m, wu);
  CUDA_CHECK(cudaMalloc(&xr_d, xr.size()));
  CUDA_CHECK(cudaMalloc(&wr_d, wr.size()));
  CUDA_CHECK(cudaMemcpy(xr_d, xr.data(), xr.size(), cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(wr_d, wr.data(), wr.size(), cudaMemcpyHostToDevice));
  const size_t y_elem = int8 || m == Math::TF32 ? 4 : 2;
  CUDA_CHECK(cudaMalloc(&y_d, static_cast<size_t>(rows) * C * y_elem));
  const cudaDataType_t in_t = m == Math::F16    ? CUDA_R_16F
                              : m == Math::BF16 ? CUDA_R_16BF
                              : m == Math::TF32 ? CUDA_R_32F
                                                : CUDA_R_8I;
  const cudaDataType_t out_t = int8 ? CUDA_R_32I : in_t;
  const cublasComputeType_t compute = int8               ? CUBLAS_COMPUTE_32I
                                      : m == Math::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32
                                                        : CUBLAS_COMPUTE_32F;
  const float alpha = 1.f, beta = 0.f;
  const int32_t ialpha = 1, ibeta = 0;
  const void* al = int8 ? static_cast<const void*>(&ialpha) : &alpha;
  const void* be = int8 ? static_cast<const void*>(&ibeta) : &beta;
  const auto gemm = [&] {
    CUBLAS_CHECK(cublasGemmEx(blas, CUBLAS_OP_T, CUBLAS_OP_N, C, rows, K, al, wr_d, in_t, K, xr_d, in_t, K, be, y_d,
                              out_t, C, compute, CUBLAS_GEMM_DEFAULT));
  };
  report(o, m,
         int8              ? "cuBLAS GEMM (s32 out, no max)"
         : m == Math::TF32 ? "cuBLAS GEMM (fp32 out, no max)"
                           : "cuBLAS GEMM (16-bit out, no max)",
         time_us(o.iters, gemm));
  for (void* ptr : {x_d, w_d, y_d, xr_d, wr_d, static_cast<void*>(out_d), static_cast<void*>(scale_d)})
    CUDA_CHECK(cudaFree(ptr));
  return ok;
}

}  // namespace

int main(int argc, char** argv) try {
  const Options o = parse(argc, argv);
  int device = 0, major = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess) {
    std::fprintf(stderr, "bench_wide_max_gpu: no CUDA device\n");
    return 2;
  }
  CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  if (major != 9) {
    std::fprintf(stderr, "bench_wide_max_gpu: the wgmma kernel needs compute capability 9.x\n");
    return 2;
  }
  prepare_wide_max_kernels();
  cublasHandle_t blas;
  CUBLAS_CHECK(cublasCreate(&blas));
  bool ok = true;
  for (Math m : {Math::F16, Math::BF16, Math::I8, Math::TF32}) ok = run(o, m, sms, blas) && ok;
  CUBLAS_CHECK(cublasDestroy(blas));
  return ok ? 0 : 1;
} catch (const std::exception& e) {  // a failed CUDA or cuBLAS call (cuda/check.h), a refused launch
  std::fprintf(stderr, "bench_wide_max_gpu: %s\n", e.what());
  return 2;
}
