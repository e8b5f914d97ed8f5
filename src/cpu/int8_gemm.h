// INT8 GEMM for the quantised 1x1 convolutions of inference: activations u8
// (post-ReLU, zero point 0), weights s8 symmetric per output channel, int32
// accumulation: exactly AVX512-VNNI's vpdpbusd (u8 x s8 -> s32).
//
//   acc[m][o] = sum_k x[m][k] * w.q[o][k]                  (int32, exact)
//   s[o]      = x_scale * w.scale[o]                       (float)
//   v[m][o]   = fma(float(acc[m][o]), s[o], bias[o])       (one rounding: a fused multiply-add)
//
// Rounding is to nearest, ties to even (the CPU's default mode), everywhere.
// Every function OVERWRITES its output, except int8_linear_max, which takes the
// running max with what ymax already holds. x is (M, w.in) row-major with
// stride w.in (any in: padding happens inside the kernel); bias is (w.out) or
// nullptr for zero and may differ per call. Scales must be finite and > 0.
// The kernels are single-threaded (callers parallelise over tiles), allocate
// nothing and use no scratch: K and N tails are handled in registers.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace pointnet::cpu {

// 16 output channels x 4 inputs of packed weights: one zmm, one vpdpbusd operand.
struct alignas(64) Int8Block {
  int8_t b[64];
};

struct Int8Weights {
  int out = 0, in = 0;
  std::vector<float> scale;  // (out): w[o][k] ~= scale[o] * q[o][k]
  std::vector<int8_t> q;     // (out, in) row-major, in [-127, 127]: what the engine file stores
  // The kernel's layout, rebuilt from q: [ceil(out/16)][ceil(in/4)][16][4], zero padded.
  std::vector<Int8Block> packed;

  // scale[o] = max_k |w[o][k]| / 127 (1 for a row of zeros, or for one too small
  // for that to be a normal float: it quantises to zeros), q = round(w / scale).
  static Int8Weights quantize(const float* w, int out, int in);  // w (out, in)
  // From the stored form; checks sizes, q in [-127, 127], scales finite and > 0.
  static Int8Weights from_quantized(std::vector<int8_t> q, std::vector<float> scale, int out, int in);
};

// q[i] = clamp(round(x[i] / x_scale), 0, 255); NaN gives 0.
void quantize_u8(uint8_t* q, const float* x, size_t count, float x_scale);

// y (M, w.out) = clamp(round(v' * (1 / y_scale)), 0, 255), v' = relu ? max(v, 0) : v.
// (Multiplying by the reciprocal can differ from dividing by y_scale by one
// step where the quotient lies within an ulp of a tie.)
void int8_linear_u8(uint8_t* y, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                    const float* bias, bool relu, float y_scale);
// y (M, w.out) = v' in fp32.
void int8_linear_f32(float* y, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                     const float* bias, bool relu);
// ymax[o] = max(ymax[o], max_m v[m][o]), without the (M, out) block: v is
// increasing in acc (s > 0), so the max is taken over int32 accumulators and
// only the winner goes through the epilogue; the result equals the max of
// int8_linear_f32's output bit for bit. M = 0 leaves ymax as it was.
void int8_linear_max(float* ymax, const uint8_t* x, int M, float x_scale, const Int8Weights& w,
                     const float* bias);

// "avx512-vnni" or "portable": the kernel these functions run now.
const char* int8_kernel_name();

// Tests: force a kernel. Automatic picks VNNI when the CPU has it; forcing VNNI
// on a CPU without it is an error. Not thread-safe against running kernels.
enum class Int8Kernel { automatic, avx512_vnni, portable };
void set_int8_kernel_for_testing(Int8Kernel kernel);
bool int8_vnni_supported();  // this CPU (and OS) can run the VNNI kernel

}  // namespace pointnet::cpu
