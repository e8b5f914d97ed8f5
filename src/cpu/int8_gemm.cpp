// The INT8 GEMM's entry points: preconditions, then the kernel this CPU runs
// (int8_gemm_vnni.cpp where AVX512-VNNI is there, else int8_gemm_portable.cpp).
#include <atomic>
#include <cmath>

#include "core/errors.h"
#include "cpu/int8_gemm.h"
#include "cpu/int8_kernels.h"

namespace pointnet::cpu {
namespace {

using int8_detail::Output;

std::atomic<Int8Kernel> forced{Int8Kernel::automatic};

bool use_vnni() {
  switch (forced.load(std::memory_order_relaxed)) {
    case Int8Kernel::avx512_vnni: return true;
    case Int8Kernel::portable: return false;
    default: {
      static const bool supported = int8_vnni_supported();
      return supported;
    }
  }
}

void check_scale(const char* fn, const char* name, float s) {
  if (!(std::isfinite(s) && s > 0.f)) fail(fn, ": ", name, " is ", s, ", expected finite and > 0");
}

void run(const char* fn, const uint8_t* x, int M, const Int8Weights& w, const Output& out) {
  if (M < 0) fail(fn, ": M = ", M);
  check_scale(fn, "x_scale", out.x_scale);
  const size_t n = static_cast<size_t>(w.out), k = static_cast<size_t>(w.in);
  const size_t steps = (k + 3) / 4, groups = (n + 15) / 16;
  if (w.out < 0 || w.in < 0 || w.scale.size() != n || w.q.size() != n * k || w.packed.size() != groups * steps)
    fail(fn, ": weights (", w.out, ", ", w.in, ") are not packed: build them with Int8Weights::quantize or "
         "Int8Weights::from_quantized");
  if (M == 0 || w.out == 0) return;
  const auto* packed = reinterpret_cast<const int8_t*>(w.packed.data());
  const int8_detail::Weights view{w.q.data(), packed, w.scale.data(), w.out, w.in, static_cast<int>(steps * 4),
                                  static_cast<int>(groups)};
  if (use_vnni())
    int8_detail::linear_vnni(x, M, view, out);
  else
    int8_detail::linear_portable(x, M, view, out);
}

}  // namespace

bool int8_vnni_supported() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // __builtin_cpu_supports also checks that the OS saves the zmm state.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

void set_int8_kernel_for_testing(Int8Kernel kernel) {
  if (kernel == Int8Kernel::avx512_vnni && !int8_vnni_supported())
    fail("set_int8_kernel_for_testing: this CPU has no AVX512-VNNI");
  forced.store(kernel, std::memory_order_relaxed);
}

const char* int8_kernel_name() { return use_vnni() ? "avx512-vnni" : "portable"; }

void quantize_u8(uint8_t* q, const float* x, size_t count, float x_scale) {
  check_scale("quantize_u8", "x_scale", x_scale);
  if (use_vnni())
    int8_detail::quantize_u8_vnni(q, x, count, x_scale);
  else
    int8_detail::quantize_u8_portable(q, x, count, x_scale);
}

void int8_linear_u8(uint8_t* y, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                    const float* bias, bool relu, float y_scale) {
  check_scale("int8_linear_u8", "y_scale", y_scale);
  run("int8_linear_u8", x, M, w, Output{Output::u8, y, bias, x_scale, 1.f / y_scale, relu});
}

void int8_linear_f32(float* y, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                     const float* bias, bool relu) {
  run("int8_linear_f32", x, M, w, Output{Output::f32, y, bias, x_scale, 1.f, relu});
}

void int8_linear_max(float* ymax, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                     const float* bias) {
  run("int8_linear_max", x, M, w, Output{Output::max, ymax, bias, x_scale, 1.f, false});
}

}  // namespace pointnet::cpu
