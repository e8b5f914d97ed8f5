// The segmenter's per-point head (engine_kernels.h, SegArgs): one thread block
// per (cloud, tile of points) runs head.0's point part -> head.1 -> head.2 ->
// logits -> log-softmax in shared memory; only the log-probabilities leave it.
#include <cmath>

#include "cuda/check.h"
#include "cuda/engine_kernels.h"
#include "cuda/engine_tile_simt.cuh"
#include "cuda/engine_tile_tc.cuh"

namespace pointnet::cuda_engine {
namespace {

struct SegLayout {
  size_t x = 0, a = 0, c = 0, d = 0, logits = 0, total = 0;
};

constexpr int kTcTile = 64;  // points per block (tensor-core precisions)
using F16 = TcMath<F16Op, 1>;
using BF16 = TcMath<BF16Op, 1>;
using TF32 = TcMath<TF32Op, 1>;
using I8 = TcMath<I8Op, 1>;
using F32X3 = TcMath<F32x3Op, 1>;
using F32 = SimtMath<2>;  // 32 points per block: fp32 tiles of 512 channels are large

template <class M>
constexpr int tile_points() {
  if constexpr (M::kSimt) return M::kTile;
  else return kTcTile;
}

// [x: 64] [a: 512] [c: 256], then head.2's fp32 output d (128 wide) and the
// logits (TP x K fp32) inside a (dead once c is computed) when they fit,
// after c otherwise.
template <class M>
__host__ __device__ SegLayout seg_layout(int TP, int K, size_t d_bytes) {
  SegLayout L;
  L.x = 0;
  L.a = M::tile_bytes(TP, 64);
  L.c = L.a + M::tile_bytes(TP, 512);
  size_t end = L.c + M::tile_bytes(TP, 256);
  const size_t logits_bytes = static_cast<size_t>(TP) * K * 4;
  if (d_bytes + logits_bytes <= M::tile_bytes(TP, 512)) {
    L.d = L.a;
    L.logits = L.a + d_bytes;
  } else {
    L.d = end;
    L.logits = end + d_bytes;
    end += d_bytes + logits_bytes;
  }
  L.total = end;
  return L;
}

// head.2's fp32 output: a 128-wide fp32 tile (F32), or rows of 128 + 4 floats.
template <class M>
__host__ __device__ size_t d_bytes(int TP) {
  if constexpr (M::kSimt) return M::tile_bytes(TP, 128);
  else return static_cast<size_t>(TP) * 132 * 4;
}

template <class M>
__global__ void __launch_bounds__(kThreads, 1) seg_head_kernel(const SegArgs a, int TP) {
  extern __shared__ __align__(16) char smem[];
  const int tiles = (a.N + TP - 1) / TP;
  const int b = blockIdx.x / tiles, row0 = blockIdx.x % tiles * TP, valid = min(TP, a.N - row0);
  const SegLayout L = seg_layout<M>(TP, a.K, d_bytes<M>(TP));
  const int K = a.K;
  M::load_rows(smem + L.x, static_cast<const char*>(a.h1) + (static_cast<size_t>(b) * a.N + row0) * 64 * M::kBytes,
               valid, TP);
  __syncthreads();
  M::template linear<64>(smem + L.x, smem + L.a, 512, TP, a.head0, b, true);
  __syncthreads();
  M::template linear<512>(smem + L.a, smem + L.c, 256, TP, a.head1, 0, true);
  __syncthreads();
  float* d = reinterpret_cast<float*>(smem + L.d);
  M::template linear_f32<256>(smem + L.c, d, TP, a.head2, true);
  __syncthreads();
  float* logits = reinterpret_cast<float*>(smem + L.logits);
  for (int i = threadIdx.x; i < valid * K; i += kThreads) {
    const int r = i / K, k = i % K;
    const float* w = a.head3_w + static_cast<size_t>(k) * 128;
    float v = a.head3_b[k];
    for (int c = 0; c < 128; ++c) v = fmaf(M::f32_at(d, r, c, TP), __ldg(&w[c]), v);
    logits[i] = v;
  }
  __syncthreads();
  // log-softmax, one warp per point.
  for (int r = threadIdx.x >> 5; r < valid; r += kWarps)
    warp_log_softmax(logits + r * K, a.out + (static_cast<size_t>(b) * a.N + row0 + r) * K, K);
}

int smem_per_block() {
  static const int v = [] {
    int device = 0, bytes = 0;
    CUDA_CHECK(cudaGetDevice(&device));
    CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    return bytes;
  }();
  return v;
}

template <class M>
int max_parts() {
  static const int parts = [] {
    constexpr int TP = tile_points<M>();
    int K = 0;
    while (K < 100000 && seg_layout<M>(TP, K + 1, d_bytes<M>(TP)).total <= static_cast<size_t>(smem_per_block())) ++K;
    return K;
  }();
  return parts;
}

template <class M>
void launch(const SegArgs& a, cudaStream_t stream) {
  constexpr int TP = tile_points<M>();
  if (a.K > max_parts<M>())
    fail("the CUDA segmenter head holds at most ", max_parts<M>(), " parts in shared memory, this model has ", a.K);
  const size_t smem = seg_layout<M>(TP, a.K, d_bytes<M>(TP)).total;
  const unsigned blocks = static_cast<unsigned>(static_cast<size_t>(a.B) * ((a.N + TP - 1) / TP));
  seg_head_kernel<M><<<blocks, kThreads, smem, stream>>>(a, TP);
  CUDA_CHECK_LAUNCH();
}

template <class M>
void raise_smem_limit() {
  CUDA_CHECK(cudaFuncSetAttribute(seg_head_kernel<M>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem_per_block()));
}

}  // namespace

int seg_max_parts(Math math) {
  switch (math) {
    case Math::F16: return max_parts<F16>();
    case Math::BF16: return max_parts<BF16>();
    case Math::TF32: return max_parts<TF32>();
    case Math::I8: return max_parts<I8>();
    case Math::F32: return max_parts<F32>();
    case Math::F32X3: return max_parts<F32X3>();
  }
  return 0;
}

void launch_seg_head(const SegArgs& a, cudaStream_t stream) {
  switch (a.math) {
    case Math::F16: return launch<F16>(a, stream);
    case Math::BF16: return launch<BF16>(a, stream);
    case Math::TF32: return launch<TF32>(a, stream);
    case Math::I8: return launch<I8>(a, stream);
    case Math::F32: return launch<F32>(a, stream);
    case Math::F32X3: return launch<F32X3>(a, stream);
  }
}

void prepare_seg_kernels() {
  raise_smem_limit<F16>();
  raise_smem_limit<BF16>();
  raise_smem_limit<TF32>();
  raise_smem_limit<I8>();
  raise_smem_limit<F32>();
  raise_smem_limit<F32X3>();
}

}  // namespace pointnet::cuda_engine
