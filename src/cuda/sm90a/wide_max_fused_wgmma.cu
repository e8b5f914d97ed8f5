// The trunk from the points to conv3's max in one weight-stationary wgmma
// kernel (POINTNET_ENGINE_TRUNK=fused-wide, opt-in): wide_max_wgmma.cu, but
// each 64-row tile of conv3's input is made in the block instead of read
// from memory. Per tile, while conv3's wgmmas of the current tile run:
// conv1 (FFMA, the cloud's 3x3 transform folded into its weights) of the
// next tile into shared memory, then conv2 (wgmma m64n64, each warpgroup 64
// of its 128 channels; the weights resident in shared memory) into the next
// conv3 input stage. Each of a cloud's two blocks (512 channels each) makes
// its own conv1/conv2 tiles: 12% more tensor work than the split trunk, but
// no second kernel and no stored conv2 output.
//
// For trunks that start from the points without the feature transform's
// 64 -> 64 layer (the input T-Net's, and the main trunk without a feature
// transform); the runner keeps the split trunk for the others.
#include <algorithm>
#include <cstdint>

#include "cuda/check.h"
#include "cuda/engine_fragment.h"
#include "cuda/engine_wide_max.h"
#include "cuda/sm90a/wide_max_common.cuh"

namespace pointnet::cuda_engine {
namespace {

using wide::kColsPerBlock;
using wide::kTileRows;

constexpr int kThreadsFw = 256;  // two warpgroups
constexpr int kMaxInputs = 6;    // conv1's inputs: xyz, or xyz + normals

template <class Op>
struct FusedLayout {
  static constexpr int kH1RowBytes = 64 * Op::kBytes;   // conv2's input row
  static constexpr int kH2RowBytes = 128 * Op::kBytes;  // conv3's input row
  static constexpr int kW3Bytes = kColsPerBlock * kH2RowBytes;
  static constexpr int kW2Bytes = 128 * kH1RowBytes;
  static constexpr int kH1Bytes = kTileRows * kH1RowBytes;
  static constexpr int kH2Bytes = kTileRows * kH2RowBytes;
  static constexpr int kW1Bytes = 64 * kMaxInputs * 4;
  static constexpr int kRedBytes = 2 * 2 * 4 * 128 * 4;
  // [conv3 weights][conv2 weights][h2 stage 0][h2 stage 1][h1 tile][conv1 weights][reduction]
  static constexpr int kW2At = kW3Bytes, kH2At = kW2At + kW2Bytes, kH1At = kH2At + 2 * kH2Bytes,
                       kW1At = kH1At + kH1Bytes, kRedAt = kW1At + kW1Bytes;
  static constexpr size_t kSmem = static_cast<size_t>(kRedAt) + kRedBytes;
};

// kC: conv1's inputs (3 or 6).
template <class Op, int kC>
__global__ void __launch_bounds__(kThreadsFw, 1) wide_max_fused_kernel(const TrunkArgs a, float* out, int T) {
  using L = FusedLayout<Op>;
  using Acc = typename Op::Acc;
  extern __shared__ __align__(128) char smem[];
  char* w3_s = smem;
  char* w2_s = smem + L::kW2At;
  char* h2_s = smem + L::kH2At;
  char* h1_s = smem + L::kH1At;
  float* w1_s = reinterpret_cast<float*>(smem + L::kW1At);
  float* red = reinterpret_cast<float*>(smem + L::kRedAt);

  constexpr int groups = 1024 / kColsPerBlock;
  const int group = blockIdx.x % groups;
  const int first = blockIdx.x / groups, stride = gridDim.x / groups;
  const int clouds = first < a.B ? (a.B - first + stride - 1) / stride : 0;
  const int wgi = threadIdx.x >> 7, warp = (threadIdx.x & 127) >> 5, lane = threadIdx.x & 31;

  // Both layers' weights, once per launch.
  const char* w3_src = static_cast<const char*>(a.conv3.w_core) + static_cast<size_t>(group) * L::kW3Bytes;
  for (int i = threadIdx.x; i < L::kW3Bytes / 16; i += kThreadsFw) wg::cp_async16(w3_s + i * 16, w3_src + i * 16);
  const char* w2_src = static_cast<const char*>(a.conv2.w_core);
  for (int i = threadIdx.x; i < L::kW2Bytes / 16; i += kThreadsFw) wg::cp_async16(w2_s + i * 16, w2_src + i * 16);
  wg::cp_async_commit();
  wg::cp_async_wait<0>();
  wg::fence_proxy_async();
  __syncthreads();
  if (clouds == 0) return;

  // conv1 of tile `tile` of cloud b into h1_s (conv2's input, core layout),
  // two adjacent channels per step, straight-line (kC inputs); rows past the
  // cloud's last point repeat it (a repeated point leaves every max
  // unchanged). Block 0 of the cloud also stores conv1's output where the
  // segmenter's head reads it. Quantised as the fused trunk's conv1_tile (I8:
  // v / scale), so the same bytes.
  const auto conv1 = [&](int b, int tile) {
    const int row0 = tile * kTileRows, valid = min(kTileRows, a.N - row0);
    const float* src = a.points + (static_cast<size_t>(b) * a.N + row0) * kC;
    char* h1_global = (a.h1_out && group == 0)
                          ? static_cast<char*>(a.h1_out) + (static_cast<size_t>(b) * a.N + row0) * 64 * Op::kBytes
                          : nullptr;
#pragma unroll
    for (int k = 0; k < kTileRows * 32 / kThreadsFw; ++k) {
      const int i = k * kThreadsFw + threadIdx.x;
      const int r = i / 32, o = (i % 32) * 2, from = min(r, valid - 1);
      float v0 = a.conv1_b[o], v1 = a.conv1_b[o + 1];
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const float p = src[from * kC + c];
        v0 = fmaf(p, w1_s[o * kC + c], v0);
        v1 = fmaf(p, w1_s[(o + 1) * kC + c], v1);
      }
      v0 = fmaxf(v0, 0.f);
      v1 = fmaxf(v1, 0.f);
      char* at = h1_s + core_byte(r, o * Op::kBytes, L::kH1RowBytes);
      Op::store1(at, v0, a.h1_scale);
      Op::store1(at + Op::kBytes, v1, a.h1_scale);
      if (h1_global && r < valid) {
        Op::store1(h1_global + (r * 64 + o) * Op::kBytes, v0, a.h1_scale);
        Op::store1(h1_global + (r * 64 + o + 1) * Op::kBytes, v1, a.h1_scale);
      }
    }
  };
  // conv2 of the tile in h1_s: this warpgroup's 64 channels, wgmma into c.
  const char* w2_mine = w2_s + static_cast<size_t>(wgi * 64) * L::kH1RowBytes;
  const auto issue_conv2 = [&](Acc (&c)[32]) {
    constexpr int kSteps = L::kH1RowBytes / 32;
    constexpr uint32_t kSbo = L::kH1RowBytes * 8;
    wg::fence_acc(c);
    wg::fence();
#pragma unroll
    for (int ks = 0; ks < kSteps; ++ks)
      wg::Mma<Op>::run(c, wg::desc(h1_s + ks * 256, kSbo), wg::desc(w2_mine + ks * 256, kSbo), ks > 0);
    wg::commit();
    wg::fence_acc(c);
  };
  // conv2's bias, ReLU and conversion (I8: requantised), into h2 stage s.
  const auto store_conv2 = [&](Acc (&c)[32], int s) {
    wg::fence_acc(c);
    char* h2 = h2_s + s * L::kH2Bytes;
    const int row = warp * 16 + lane / 4;
#pragma unroll
    for (int j = 0; j < 8; ++j) {
      const int ch = wgi * 64 + 8 * j + 2 * (lane % 4);
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int k = ch + (e & 1);
        v[e] = epilogue_value<Op>(c[4 * j + e], a.conv2.bias[k], a.conv2.x_scale, a.conv2.scale ? a.conv2.scale[k] : 1.f);
        v[e] = v[e] > 0.f ? v[e] : 0.f;
      }
      Op::store2(h2 + core_byte(row, ch * Op::kBytes, L::kH2RowBytes), v[0], v[1], a.conv2.inv_y_scale);
      Op::store2(h2 + core_byte(row + 8, ch * Op::kBytes, L::kH2RowBytes), v[2], v[3], a.conv2.inv_y_scale);
    }
    wg::fence_proxy_async();  // read next by wgmma
  };

  const char* w_half0 = w3_s + static_cast<size_t>(wgi * 256) * L::kH2RowBytes;
  const char* w_half1 = w_half0 + 128 * L::kH2RowBytes;
  Acc best0[32], best1[32], d[64], c2[32];
#pragma unroll
  for (int i = 0; i < 32; ++i) best0[i] = best1[i] = acc_lowest<Acc>();

  // Tile `tile` of cloud b, straight-line (see wide_max_wgmma.cu: no branch
  // between a wgmma and its wait), drained at its end. Its conv3 input is in
  // stage tile % 2; the next tile's (past the end, the last tile's again:
  // made, never read) is made into the other stage meanwhile.
  const auto one_tile = [&](int b, int tile) {
    const int s = tile & 1;
    const char* h2 = h2_s + s * L::kH2Bytes;
    wide::issue128<Op, L::kH2RowBytes>(d, h2, w_half0);
    conv1(b, min(tile + 1, T - 1));
    wg::fence_proxy_async();
    __syncthreads();  // the next tile's h1 is whole
    issue_conv2(c2);
    wg::wait<1>();  // conv3 half 0 done
    wide::fold128(best0, d);
    wide::issue128<Op, L::kH2RowBytes>(d, h2, w_half1);
    wg::wait<1>();  // conv2 done
    store_conv2(c2, s ^ 1);
    wg::wait<0>();  // conv3 half 1 done
    wide::fold128(best1, d);
    __syncthreads();  // the next stage is whole; this one, and h1, free again
  };

  for (int ci = 0; ci < clouds; ++ci) {
    const int b = first + ci * stride;
    // The cloud's conv1 weights, its 3x3 transform folded in per group of 3 inputs.
    for (int i = threadIdx.x; i < 64 * kC; i += kThreadsFw)
      w1_s[i] = a.transform3 ? folded_conv1_weight(a.conv1_w, a.transform3 + b * 9, i / kC, i % kC, kC) : a.conv1_w[i];
    __syncthreads();
    // Tile 0 into stage 0, then the tiles.
    conv1(b, 0);
    wg::fence_proxy_async();
    __syncthreads();
    issue_conv2(c2);
    wg::wait<0>();
    store_conv2(c2, 0);
    __syncthreads();
    for (int tile = 0; tile < T; ++tile) one_tile(b, tile);
    float* row = out + static_cast<size_t>(b) * 1024;
    const int c0 = group * kColsPerBlock + wgi * 256;
    wide::finish128<Op>(best0, red + (wgi * 2) * 4 * 128, wgi, c0, a.conv3.x_scale, a.conv3.scale, row);
    wide::finish128<Op>(best1, red + (wgi * 2 + 1) * 4 * 128, wgi, c0 + 128, a.conv3.x_scale, a.conv3.scale, row);
    __syncthreads();  // w1_s and red are rewritten for the next cloud
  }
}

template <class Op>
void raise_limit() {
  for (const void* k : {reinterpret_cast<const void*>(wide_max_fused_kernel<Op, 3>),
                        reinterpret_cast<const void*>(wide_max_fused_kernel<Op, 6>)})
    CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                    static_cast<int>(FusedLayout<Op>::kSmem)));
}

template <class Op>
void launch(const TrunkArgs& a, float* out, int grid, cudaStream_t stream) {
  const int T = (a.N + kTileRows - 1) / kTileRows;
  if (a.C == 3) wide_max_fused_kernel<Op, 3><<<grid, kThreadsFw, FusedLayout<Op>::kSmem, stream>>>(a, out, T);
  else wide_max_fused_kernel<Op, 6><<<grid, kThreadsFw, FusedLayout<Op>::kSmem, stream>>>(a, out, T);
  CUDA_CHECK(cudaGetLastError());
}

}  // namespace

void prepare_wide_max_fused_kernels() {
  raise_limit<F16Op>();
  raise_limit<BF16Op>();
  raise_limit<I8Op>();
}

void launch_wide_max_fused(const TrunkArgs& a, float* out, int grid, cudaStream_t stream) {
  PN_CHECK(a.points && !a.pre.w && !a.h1_in && a.conv2.w_core && a.conv3.w_core && (a.C == 3 || a.C == 6) &&
           a.conv2.w_cloud_bytes == 0 && a.conv2.bias_cloud_stride == 0 && a.conv2.scale_cloud_stride == 0 &&
           grid % (1024 / kColsPerBlock) == 0);
  switch (a.math) {
    case Math::F16: return launch<F16Op>(a, out, grid, stream);
    case Math::BF16: return launch<BF16Op>(a, out, grid, stream);
    case Math::I8: return launch<I8Op>(a, out, grid, stream);
    default: break;
  }
  fail("launch_wide_max_fused: no fused trunk for this precision");
}

}  // namespace pointnet::cuda_engine
