// Where one weight of a tensor-core layer lives in the packed layout the CUDA
// engine's kernels read (shared by the host packer and the device-side
// per-cloud folding, so the two cannot drift apart).
//
// mma.sync's B operand for m16n8kX (X elements = 32 bytes: k16 fp16/bf16, k8
// tf32, k32 int8) is two 32-bit registers per lane: lane = 4 g + t holds
// 32-bit word t (register 0) and word t + 4 (register 1) of output channel
// n0 + g's 32-byte k-step. Packed as uint2[out / 8][in bytes / 32][32 lanes],
// a warp loads one (n8 tile, k-step) fragment as 256 contiguous bytes.
#pragma once
#include <cmath>
#include <cstddef>

#ifdef __CUDACC__
#define PN_HOST_DEVICE __host__ __device__
#else
#define PN_HOST_DEVICE
#endif

namespace pointnet::cuda_engine {

// Byte offset of weight (o, i) (elem_bytes each) in a layer with `in` inputs.
PN_HOST_DEVICE inline size_t fragment_byte(int o, int i, int in, int elem_bytes) {
  const int ksteps = in * elem_bytes / 32;
  const int byte = i * elem_bytes;        // within the row of channel o
  const int ks = byte / 32, word = (byte % 32) / 4;
  const int lane = (o % 8) * 4 + word % 4;
  const size_t fragment = (static_cast<size_t>(o / 8) * ksteps + ks) * 32 + lane;
  return fragment * 8 + (word / 4) * 4 + byte % 4;
}

// Bytes of a packed (out, in) layer (out a multiple of 8, in bytes of 32).
PN_HOST_DEVICE inline size_t fragment_bytes(int out, int in, int elem_bytes) {
  return static_cast<size_t>(out) * in * elem_bytes;
}

// mma.sync's A operand (16 rows x one 32-byte k-step): lane = 4 g + t holds
// its register j (0-3) as the 32-bit word of row g + 8 (j & 1) at byte
// 16 (j >> 1) + 4 t of the step, as ldmatrix.x4 hands it over from a
// row-major block; in elements, the PTX ISA's tables for m16n8k16 (f16/bf16),
// m16n8k8 (tf32) and m16n8k32 (u8/s8). The streamed first kernel computes
// its values there (sm90a/engine_first_layers.cu).
struct AFragmentWord {
  int row, byte;
};
PN_HOST_DEVICE inline AFragmentWord a_fragment_word(int lane, int j) {
  return {lane / 4 + 8 * (j & 1), 16 * (j >> 1) + 4 * (lane % 4)};
}

// wgmma's operands in shared memory without swizzling are "core matrices" of
// 8 rows x 16 contiguous bytes (128 bytes). Both of the engine's (conv2's
// output tile, conv3's weights) are K-major rows of row_bytes; core matrix
// (row group r / 8, 16-byte chunk c) sits at (r / 8 * row_bytes / 16 + c) *
// 128, so the descriptor's K-direction stride (LBO) is 128 bytes and its
// row-group stride (SBO) row_bytes * 8. A group of rows is contiguous: rows
// [8 g, 8 g + n) start at byte 8 g * row_bytes.
PN_HOST_DEVICE inline size_t core_byte(int row, int byte, int row_bytes) {
  return (static_cast<size_t>(row / 8) * (row_bytes / 16) + byte / 16) * 128 + (row % 8) * 16 + byte % 16;
}

// conv1's weight (o, k) of C inputs with a cloud's 3x3 transform t folded in,
// for each group of 3 inputs (xyz, then normals): as engine_cpu::fold_transform.
PN_HOST_DEVICE inline float folded_conv1_weight(const float* w, const float* t, int o, int k, int C) {
  const int g = k / 3 * 3, i = k % 3;
  float s = 0.f;
  for (int j = 0; j < 3; ++j) s = fmaf(w[o * C + g + j], t[i * 3 + j], s);
  return s;
}

}  // namespace pointnet::cuda_engine
