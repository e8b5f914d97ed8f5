// INT8 GEMM kernels against OpenBLAS sgemm on PointNet's per-point layer
// shapes (K -> N over M points), one thread each: the int8 kernels are
// single-threaded by design and OpenBLAS is set to one thread in main().
// GOP/s counts 2 M K N operations (multiply and add) for every variant; the
// int8 figures include their epilogue (scale, bias, relu, store or max),
// sgemm's is the bare product. Each kernel's output is checked against the
// portable kernel before it is timed.
//
//   build/pointnet_microbench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "core/rng.h"
#include "cpu/int8_gemm.h"
#include "cpu/kernels.h"

namespace {

using pointnet::Rng;
namespace cpu = pointnet::cpu;

enum Variant { kF32, kU8, kMax };
enum Kernel { kVnni, kPortable };

struct Data {
  int M, K, N;
  std::vector<uint8_t> x;
  std::vector<float> xf, wf, bias;
  cpu::Int8Weights w;
  Data(int M_, int K_, int N_) : M(M_), K(K_), N(N_) {
    Rng rng(42);
    x.resize(static_cast<size_t>(M) * K);
    for (uint8_t& e : x) e = static_cast<uint8_t>(rng.below(256));
    xf.assign(x.begin(), x.end());
    wf.resize(static_cast<size_t>(N) * K);
    for (float& e : wf) e = rng.uniform(-0.5f, 0.5f);
    bias.resize(N);
    for (float& e : bias) e = rng.uniform(-1.f, 1.f);
    w = cpu::Int8Weights::quantize(wf.data(), N, K);
  }
};

// One call of the variant; out is (M, N) floats or bytes, or N floats for max.
void run(Variant v, const Data& d, void* out) {
  const float x_scale = 1.f / 255.f;
  const float* b = d.bias.data();
  switch (v) {
    case kF32: cpu::int8_linear_f32(static_cast<float*>(out), d.x.data(), d.M, x_scale, d.w, b, true); break;
    case kU8: cpu::int8_linear_u8(static_cast<uint8_t*>(out), d.x.data(), d.M, x_scale, d.w, b, true, 0.01f); break;
    case kMax: cpu::int8_linear_max(static_cast<float*>(out), d.x.data(), d.M, x_scale, d.w, b); break;
  }
}

void reset_max(Variant v, const Data& d, std::vector<float>& out) {
  if (v == kMax) std::fill(out.begin(), out.begin() + d.N, -INFINITY);
}

void set_gops(benchmark::State& state, const Data& d) {
  state.counters["GOP/s"] = benchmark::Counter(2.0 * d.M * d.K * d.N, benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}

// Args: M, K, N, variant, kernel.
void BM_int8(benchmark::State& state) {
  const Data d(state.range(0), state.range(1), state.range(2));
  const auto v = static_cast<Variant>(state.range(3));
  const auto kernel = static_cast<Kernel>(state.range(4));
  if (kernel == kVnni && !cpu::int8_vnni_supported()) {
    state.SkipWithError("no AVX512-VNNI on this CPU");
    return;
  }
  std::vector<float> out(static_cast<size_t>(d.M) * d.N), expect(out.size());
  cpu::set_int8_kernel_for_testing(cpu::Int8Kernel::portable);
  reset_max(v, d, expect);
  run(v, d, expect.data());
  cpu::set_int8_kernel_for_testing(kernel == kVnni ? cpu::Int8Kernel::avx512_vnni : cpu::Int8Kernel::portable);
  reset_max(v, d, out);
  run(v, d, out.data());
  if (std::memcmp(out.data(), expect.data(), out.size() * sizeof(float)) != 0) {
    state.SkipWithError("output differs from the portable kernel");
    return;
  }
  for (auto _ : state) {
    run(v, d, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  set_gops(state, d);
  state.SetLabel(cpu::int8_kernel_name());
  cpu::set_int8_kernel_for_testing(cpu::Int8Kernel::automatic);
}

// The project's fp32 GEMM (OpenBLAS), the layout the fp32 engine uses: y = x w^T.
void BM_sgemm(benchmark::State& state) {
  const Data d(state.range(0), state.range(1), state.range(2));
  std::vector<float> y(static_cast<size_t>(d.M) * d.N);
  cpu::gemm<float>(false, true, d.M, d.N, d.K, 1.f, d.xf.data(), d.K, d.wf.data(), d.K, 0.f, y.data(), d.N);
  double ref = 0;  // spot check one entry
  for (int k = 0; k < d.K; ++k) ref += double(d.xf[(d.M - 1) * size_t(d.K) + k]) * d.wf[(d.N - 1) * size_t(d.K) + k];
  if (std::fabs(y.back() - ref) > 1e-3 * (1 + std::fabs(ref))) {
    state.SkipWithError("sgemm result wrong");
    return;
  }
  for (auto _ : state) {
    cpu::gemm<float>(false, true, d.M, d.N, d.K, 1.f, d.xf.data(), d.K, d.wf.data(), d.K, 0.f, y.data(), d.N);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  set_gops(state, d);
}

#if defined(__x86_64__)
// The core's ceilings, for "how near peak": 24 independent vpdpbusd zmm
// (u8 x s8, 128 ops each) or vfmadd231ps zmm (32 flops each) per loop, no
// memory traffic.
#define PN_DP(n) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #n "\n\t"
#define PN_FMA(n) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #n "\n\t"
#define PN_X24(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) \
  M(12) M(13) M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23)
#define PN_CLOBBER_ZMM "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", \
  "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", \
  "xmm23", "xmm30", "xmm31"

void BM_peak(benchmark::State& state) {
  if (!cpu::int8_vnni_supported()) {
    state.SkipWithError("no AVX512-VNNI on this CPU");
    return;
  }
  const bool fma = state.range(0) == 1;
  const long loops = 100000;
  for (auto _ : state) {
    long n = loops;
    if (fma)
      asm volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n1:\n\t" PN_X24(PN_FMA)
                   "dec %0\n\tjnz 1b" : "+r"(n) : : PN_CLOBBER_ZMM);
    else
      asm volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n\tvpxord %%zmm31, %%zmm31, %%zmm31\n1:\n\t" PN_X24(PN_DP)
                   "dec %0\n\tjnz 1b" : "+r"(n) : : PN_CLOBBER_ZMM);
  }
  state.SetLabel(fma ? "vfmadd231ps zmm (GFLOP/s)" : "vpdpbusd zmm (GOP/s)");
  state.counters["GOP/s"] = benchmark::Counter(24.0 * loops * (fma ? 32 : 128),
                                               benchmark::Counter::kIsIterationInvariantRate,
                                               benchmark::Counter::OneK::kIs1000);
}
BENCHMARK(BM_peak)->ArgName("fma")->Arg(0)->Arg(1);
#endif

// PointNet's per-point layers (in -> out) at a 256-point tile, and the wide
// layer at 1024 points.
const int kLayers[][2] = {{64, 128}, {128, 1024}, {64, 512}, {512, 256}, {256, 128}, {128, 50}};

void int8_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N", "variant", "kernel"});
  for (auto& l : kLayers) {
    for (int v : {kF32, kU8, kMax}) b->Args({256, l[0], l[1], v, kVnni});
    b->Args({256, l[0], l[1], kF32, kPortable});
  }
  b->Args({1024, 128, 1024, kMax, kVnni});
}

void sgemm_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "K", "N"});
  for (auto& l : kLayers) b->Args({256, l[0], l[1]});
  b->Args({1024, 128, 1024});
}

BENCHMARK(BM_int8)->Apply(int8_args);
BENCHMARK(BM_sgemm)->Apply(sgemm_args);

}  // namespace

int main(int argc, char** argv) {
  openblas_set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
