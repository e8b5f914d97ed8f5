// The fp32 engine's widest layer fused with its max over points:
//   ymax(out) = max(ymax, max over the rows of x(rows, in) W^T)   (read and written)
// without writing the (rows, out) block anywhere: an AVX-512 register block of
// 12 rows x 32 output channels accumulates over the inputs and folds straight
// into a running max (CPUs without AVX-512F get no kernel: the caller keeps its
// GEMM + max). Weights are packed once into panels of 32 output channels,
// input-major, so a panel (in x 32 floats, 16 KiB at in = 128) stays in L1
// while every row of the tile streams past it.
#pragma once
#include <cstddef>
#include <memory>

namespace pointnet::cpu {

struct F32PanelWeights {
  int out = 0, in = 0, panels = 0;  // panels = ceil(out / 32)
  std::unique_ptr<float[], void (*)(void*)> packed{nullptr, nullptr};  // [panels][in][32], 64-byte aligned, zero padded
};

// w: (out, in) row-major.
F32PanelWeights pack_f32_panels(const float* w, int out, int in);

// True where the AVX-512 kernel can run (the CPU has AVX-512F and the OS
// saves its registers).
bool f32_linear_max_available();

// ymax(out) = max(ymax, max over rows of x W^T); rows >= 1, x (rows, in)
// row-major. A NaN product never replaces ymax (as std::max(ymax, v)). Needs
// f32_linear_max_available().
void f32_linear_max(float* ymax, const float* x, int rows, const F32PanelWeights& w);

}  // namespace pointnet::cpu
