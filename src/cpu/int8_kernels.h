// Internal to the INT8 GEMM: what the dispatcher (int8_gemm.cpp) hands the two
// kernels. Raw pointers only, no std containers: the VNNI file is compiled for
// AVX-512 and must not emit out-of-line copies of shared inline code (the
// linker could then pick an AVX-512 copy for the whole program).
#pragma once
#include <cstddef>
#include <cstdint>

namespace pointnet::cpu::int8_detail {

struct Weights {
  const int8_t* q;       // (out, in) row-major
  const int8_t* packed;  // [groups][in4 / 4][16][4], 64-byte aligned
  const float* scale;    // (out)
  int out, in, in4, groups;  // in4 = in rounded up to 4, groups = ceil(out / 16)
};

// What to do with the accumulators (the epilogue); see int8_gemm.h for the formulas.
struct Output {
  enum Kind { f32, u8, max } kind;
  void* y;             // f32: float (M, out); u8: uint8_t (M, out); max: float (out), read and written
  const float* bias;   // (out) or nullptr
  float x_scale;
  float inv_y_scale;   // u8 only
  bool relu;           // not for max
};

void linear_vnni(const uint8_t* x, int M, const Weights& w, const Output& out);
void linear_portable(const uint8_t* x, int M, const Weights& w, const Output& out);
void quantize_u8_vnni(uint8_t* q, const float* x, size_t count, float x_scale);
void quantize_u8_portable(uint8_t* q, const float* x, size_t count, float x_scale);

}  // namespace pointnet::cpu::int8_detail
