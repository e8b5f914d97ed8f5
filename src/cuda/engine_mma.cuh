// The tensor-core element types of the CUDA engine, one struct each: the
// mma.sync instruction, how an fp32 value becomes an element (and two become a
// stored pair), and the epilogue value of an accumulator. Every type's mma
// consumes 32 bytes of k per step with the same register layout (A: 4 words
// from ldmatrix.x4, B: 2 words, C: 4 accumulators: rows g and g + 8, columns
// 2t and 2t + 1), so the tile code above it is written once.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cfloat>
#include <climits>
#include <cstdint>
#include <type_traits>

namespace pointnet::cuda_engine {

// A: rows 0-15 of a 16 x 32-byte block at row stride `stride` bytes.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&a)[4], const char* tile, int stride) {
  const int lane = threadIdx.x & 31;
  const char* p = tile + (lane & 15) * stride + (lane >> 4) * 16;
  const unsigned addr = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(a[0]), "=r"(a[1]), "=r"(a[2]), "=r"(a[3])
               : "r"(addr));
}

// 1.5 * 2^23: a float in [2^23, 2^24) has a spacing of 1, so adding it to a
// small value rounds that value to an integer (half to even, the add's own
// rounding) and leaves the integer in the low mantissa bits. Conversions done
// this way run on the FMA pipe; F2I / I2F go through a unit that takes 16 per
// clock per SM on sm_90, and the int8 first kernel spent most of its time
// there (95.5 us a call vs fp16's 41.4, H100, 2026-12-08).
constexpr float kRoundingMagic = 12582912.f;
constexpr int kRoundingMagicBits = 0x4B400000;

// Clamp first (NaN -> 0), then round half to even: cpu/int8_gemm_portable.cpp's
// to_u8. The same result as __float2int_rn for t in [0, 255].
__device__ __forceinline__ uint32_t to_u8(float t) {
  t = t > 0.f ? t : 0.f;
  t = t < 255.f ? t : 255.f;
  return __float_as_uint(__fadd_rn(t, kRoundingMagic)) & 0xFFu;
}

// float(acc) exactly, for |acc| < 2^22 (the caller's bound: a u8 x s8 sum of
// at most 128 terms is under 128 * 255 * 127 < 2^22); the same value as the
// conversion instruction.
__device__ __forceinline__ float small_int_to_float(int acc) {
  return __fsub_rn(__int_as_float(acc + kRoundingMagicBits), kRoundingMagic);
}

struct F16Op {
  using Acc = float;
  static constexpr int kBytes = 2;
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint2 b) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
  }
  __device__ static void store1(char* p, float v, float) { *reinterpret_cast<__half*>(p) = __float2half_rn(v); }
  __device__ static void store2(char* p, float v0, float v1, float) {
    *reinterpret_cast<__half2*>(p) = __floats2half2_rn(v0, v1);
  }
  // The 32-bit word store1 writes for 4 / kBytes consecutive elements (an A fragment register).
  __device__ static uint32_t word(const float (&v)[2], float) {
    const __half2 h = __floats2half2_rn(v[0], v[1]);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

struct BF16Op {
  using Acc = float;
  static constexpr int kBytes = 2;
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint2 b) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
  }
  __device__ static void store1(char* p, float v, float) {
    *reinterpret_cast<__nv_bfloat16*>(p) = __float2bfloat16_rn(v);
  }
  __device__ static void store2(char* p, float v0, float v1, float) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v0, v1);
  }
  __device__ static uint32_t word(const float (&v)[2], float) {
    const __nv_bfloat162 h = __floats2bfloat162_rn(v[0], v[1]);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
};

__device__ __forceinline__ float to_tf32(float v) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
}

struct TF32Op {
  using Acc = float;
  static constexpr int kBytes = 4;
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint2 b) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
  }
  __device__ static void store1(char* p, float v, float) { *reinterpret_cast<float*>(p) = to_tf32(v); }
  __device__ static void store2(char* p, float v0, float v1, float) {
    *reinterpret_cast<float2*>(p) = make_float2(to_tf32(v0), to_tf32(v1));
  }
  __device__ static uint32_t word(const float (&v)[1], float) { return __float_as_uint(to_tf32(v[0])); }
};

// fp32 on the TF32 tensor cores by the 3xTF32 split (CUTLASS's "fast
// accurate" fp32): every operand v = big + small with big = tf32(v) and small =
// tf32(v - big), and a b = a_small b_big + a_big b_small + a_big b_big. What is
// dropped, a_small b_small and the rounding of the small parts, is ~2^-21 of
// |a b|: fp32's level (a K = 128 sum of fp32 products already carries
// ~2^-21). Three tf32 mma per product: a third of TF32's rate, ~2.5x the FFMA
// ceiling on paper (390 / 3 vs ~51 TFLOP/s, DESIGN.md); measured 1.24x the
// FFMA kernels end to end (docs/benchmarks.md). Activations and weights are
// stored as plain fp32 and split in registers.
struct F32x3Op {
  using Acc = float;
  static constexpr int kBytes = 4;
  __device__ static void split(uint32_t v, uint32_t& big, uint32_t& small) {
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(big) : "f"(__uint_as_float(v)));
    const float rest = __fsub_rn(__uint_as_float(v), __uint_as_float(big));
    asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(small) : "f"(rest));
  }
  __device__ static void mma1(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ static void mma(float (&d)[4], const uint32_t (&a)[4], uint2 b) {
    uint32_t ab[4], as[4], bb0, bs0, bb1, bs1;
#pragma unroll
    for (int i = 0; i < 4; ++i) split(a[i], ab[i], as[i]);
    split(b.x, bb0, bs0);
    split(b.y, bb1, bs1);
    mma1(d, as, bb0, bb1);
    mma1(d, ab, bs0, bs1);
    mma1(d, ab, bb0, bb1);
  }
  __device__ static void store1(char* p, float v, float) { *reinterpret_cast<float*>(p) = v; }
  __device__ static void store2(char* p, float v0, float v1, float) {
    *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
  }
};

// u8 activations x s8 weights -> s32. store1 quantises conv1's fp32 output
// (x / scale: cpu::quantize_u8); store2 requantises an epilogue value
// (v * (1 / scale): cpu::int8_linear_u8), so both take their own argument.
struct I8Op {
  using Acc = int;
  static constexpr int kBytes = 1;
  __device__ static void mma(int (&d)[4], const uint32_t (&a)[4], uint2 b) {
    asm("mma.sync.aligned.m16n8k32.row.col.s32.u8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
  }
  __device__ static void store1(char* p, float v, float scale) {
    *reinterpret_cast<uint8_t*>(p) = static_cast<uint8_t>(to_u8(__fdiv_rn(v, scale)));
  }
  __device__ static void store2(char* p, float v0, float v1, float inv_scale) {
    *reinterpret_cast<uint16_t*>(p) =
        static_cast<uint16_t>(to_u8(__fmul_rn(v0, inv_scale)) | (to_u8(__fmul_rn(v1, inv_scale)) << 8));
  }
  __device__ static uint32_t word(const float (&v)[4], float scale) {
    uint32_t w = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) w |= to_u8(__fdiv_rn(v[e], scale)) << (8 * e);
    return w;
  }
};

// The epilogue value of accumulator `acc` for output channel c: float types
// add the bias; I8 dequantises with one fused multiply-add, as
// cpu/int8_gemm.h: fma(float(acc), x_scale * w_scale[c], bias). kShortSums:
// the caller's I8 sums have at most 128 terms (small_int_to_float's bound).
template <class Op, bool kShortSums = false>
__device__ __forceinline__ float epilogue_value(typename Op::Acc acc, float bias, float x_scale, float w_scale) {
  if constexpr (Op::kBytes == 1) {
    const float a = kShortSums ? small_int_to_float(acc) : static_cast<float>(acc);
    return __fmaf_rn(a, __fmul_rn(x_scale, w_scale), bias);
  } else {
    return acc + bias;
  }
}

// The epilogue values of one mma accumulator fragment (rows g and g + 8,
// columns col and col + 1): epilogue_value with bias[c] and w_scale[c] (1
// where w_scale is null), then max(., 0) where relu. The tile layers and the
// streamed first kernel share it, so their outputs keep the same bits.
template <class Op, bool kShortSums = false>
__device__ __forceinline__ void fragment_epilogue(const typename Op::Acc (&acc)[4], int col, const float* bias,
                                                  const float* w_scale, float x_scale, bool relu, float (&v)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    const int c = col + (j & 1);
    v[j] = epilogue_value<Op, kShortSums>(acc[j], bias[c], x_scale, w_scale ? w_scale[c] : 1.f);
    if (relu) v[j] = v[j] > 0.f ? v[j] : 0.f;
  }
}

// Running maxima of accumulators: the start value and the max, per type.
template <class Acc>
__device__ __forceinline__ Acc acc_lowest() {
  if constexpr (std::is_integral_v<Acc>) return INT_MIN;
  else return -FLT_MAX;
}
__device__ __forceinline__ int acc_max(int a, int b) { return max(a, b); }
__device__ __forceinline__ float acc_max(float a, float b) { return fmaxf(a, b); }

// y[k] = x[k] - log(sum exp x) over K values, by one whole warp (as
// engine_cpu::log_softmax_rows; x and y may be the same).
__device__ __forceinline__ void warp_log_softmax(const float* x, float* y, int K) {
  const int lane = threadIdx.x & 31;
  float top = -INFINITY;
  for (int k = lane; k < K; k += 32) top = fmaxf(top, x[k]);
  for (int s = 16; s > 0; s >>= 1) top = fmaxf(top, __shfl_xor_sync(0xffffffffu, top, s));
  float sum = 0.f;
  for (int k = lane; k < K; k += 32) sum += expf(x[k] - top);
  for (int s = 16; s > 0; s >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, s);
  const float lse = top + logf(sum);
  for (int k = lane; k < K; k += 32) y[k] = x[k] - lse;
}

}  // namespace pointnet::cuda_engine
