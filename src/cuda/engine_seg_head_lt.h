// The segmenter's per-point head as cuBLASLt GEMMs, for fp16 / bf16 / tf32
// engines without a feature transform: head.0's point part (its global part
// is a bias per cloud) -> head.1 -> head.2 -> logits -> log-softmax, with
// each layer's bias and ReLU in the GEMM's epilogue. The one-kernel head
// (engine_seg_head.cu) runs each 64-point tile through all four layers in
// shared memory with weight fragments from L2 and one block per SM; it
// reached ~15 TFLOP/s. These GEMMs stream their activations through memory
// (2 KiB per point in fp16) but run at cuBLASLt's rates. Points go in chunks
// of at most `chunk_rows` (whole clouds where a cloud fits), so the scratch
// stays bounded whatever the batch.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <memory>

#include "cuda/engine_gemm_lt.h"
#include "cuda/engine_kernels.h"

namespace pointnet::cuda_engine {

// One layer's fp32 weights (out, in) row-major and bias, in host memory.
struct HostLinear {
  const float* w = nullptr;
  const float* b = nullptr;
  int in = 0, out = 0;
};

class SegHeadLt {
 public:
  static bool supports(Math math) { return math == Math::F16 || math == Math::BF16 || math == Math::TF32; }

  // head0: (512, 64), the point part; head1 (256, 512); head2 (128, 256);
  // head3 (K, 128), the logits, run in fp32.
  SegHeadLt(Math math, const HostLinear& head0, const HostLinear& head1, const HostLinear& head2,
            const HostLinear& head3, int chunk_rows);
  ~SegHeadLt();
  SegHeadLt(const SegHeadLt&) = delete;
  SegHeadLt& operator=(const SegHeadLt&) = delete;

  // Scratch for `slices` concurrent slices of up to B clouds of N points.
  // Call with no work queued that uses it.
  void reserve(int slices, int B, int N);

  // Queues the head for clouds [0, B) of one slice: h1 (B, N, 64) in the
  // engine's activation type, bias (B, 512) fp32 (head.0's global part and
  // bias), out (B, N, K) log-probabilities. False where cuBLASLt has no
  // algorithm for a layer: the caller then runs the one-kernel head (which
  // reads neither the scratch nor out, so what was queued does no harm).
  bool enqueue(LtLinear& lt, int slice, const void* h1, const float* bias, int B, int N, float* out,
               cudaStream_t stream);

  size_t device_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointnet::cuda_engine
