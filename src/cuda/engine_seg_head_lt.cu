#include "cuda/engine_seg_head_lt.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <vector>

#include "cuda/check.h"
#include "cuda/cuda_common.cuh"
#include "cuda/seg_head_chunks.h"

namespace pointnet::cuda_engine {
namespace {

// fp32 -> an fp16 / bf16 engine's activation type, rounded to nearest even:
// the training backend's GEMM operand conversion (cuda_common.cuh).
void narrow(Math math, const float* x, size_t n, void* y, cudaStream_t stream) {
  if (math == Math::F16) cuda::convert(stream, static_cast<__half*>(y), x, n);
  else cuda::convert(stream, static_cast<__nv_bfloat16*>(y), x, n);
}

void* device_alloc(size_t bytes) {
  void* p = nullptr;
  CUDA_CHECK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
  return p;
}

}  // namespace

struct SegHeadLt::Impl {
  Math math;
  int chunk_rows;
  int K;
  size_t e;  // bytes of one activation element
  LtLinear::Math act, f32_out, logits;
  // Weights (out, in) row-major in the operand type; biases in their output's type.
  void *w0 = nullptr, *w1 = nullptr, *w2 = nullptr, *b1 = nullptr;
  float *b2 = nullptr, *w3 = nullptr, *b3 = nullptr;
  size_t weight_bytes = 0;
  // Per slice: head.0's output a (rows_held, 512) and head.1's c (rows_held,
  // 256) in the activation type, head.2's d (rows_held, 128) fp32, and the
  // slice's head.0 biases (clouds_held, 512) in fp16 / bf16 (tf32 engines
  // read the caller's fp32 biases).
  struct Scratch {
    void *a = nullptr, *c = nullptr, *bias = nullptr;
    float* d = nullptr;
  };
  std::vector<Scratch> scratch;
  size_t rows_held = 0, clouds_held = 0, scratch_bytes = 0;

  void* upload_as(Math m, const float* host, size_t n) {
    float* staged = static_cast<float*>(device_alloc(n * 4));
    CUDA_CHECK(cudaMemcpy(staged, host, n * 4, cudaMemcpyHostToDevice));
    if (m == Math::TF32) {
      weight_bytes += n * 4;
      return staged;
    }
    void* out = device_alloc(n * 2);
    narrow(m, staged, n, out, nullptr);
    CUDA_CHECK(cudaDeviceSynchronize());
    CUDA_CHECK(cudaFree(staged));
    weight_bytes += n * 2;
    return out;
  }
  float* upload_f32(const float* host, size_t n) { return static_cast<float*>(upload_as(Math::TF32, host, n)); }

  ~Impl() {
    free_scratch();
    for (void* p : {w0, w1, w2, b1, static_cast<void*>(b2), static_cast<void*>(w3), static_cast<void*>(b3)}) cudaFree(p);
  }

  void free_scratch() {
    for (Scratch& s : scratch) {
      cudaFree(s.a);
      cudaFree(s.c);
      cudaFree(s.d);
      cudaFree(s.bias);
    }
    scratch.clear();
    scratch_bytes = 0;
  }
};

SegHeadLt::SegHeadLt(Math math, const HostLinear& head0, const HostLinear& head1, const HostLinear& head2,
                     const HostLinear& head3, int chunk_rows)
    : impl_(std::make_unique<Impl>()) {
  if (!supports(math)) fail("SegHeadLt: fp16, bf16 or tf32 engines only, not math ", static_cast<int>(math));
  if (head0.in != 64 || head0.out != 512 || head1.in != 512 || head1.out != 256 || head2.in != 256 ||
      head2.out != 128 || head3.in != 128)
    fail("SegHeadLt: the segmenter's head is 64 (+ 1024) -> 512 -> 256 -> 128 -> K, got ", head0.in, " -> ",
         head0.out, ", ", head1.in, " -> ", head1.out, ", ", head2.in, " -> ", head2.out, ", ", head3.in, " -> ",
         head3.out);
  Impl& m = *impl_;
  m.math = math;
  m.chunk_rows = std::max(1, chunk_rows);
  m.K = head3.out;
  m.e = math == Math::TF32 ? 4 : 2;
  const cudaDataType_t type = math == Math::F16 ? CUDA_R_16F : math == Math::BF16 ? CUDA_R_16BF : CUDA_R_32F;
  m.act.operands = m.act.out = type;
  m.act.compute = math == Math::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  m.f32_out = m.act;
  m.f32_out.out = CUDA_R_32F;
  // m.logits: fp32 operands, products and output, as the one-kernel head's FFMA logits.
  m.w0 = m.upload_as(math, head0.w, size_t(512) * 64);
  m.w1 = m.upload_as(math, head1.w, size_t(256) * 512);
  m.b1 = m.upload_as(math, head1.b, 256);
  m.w2 = m.upload_as(math, head2.w, size_t(128) * 256);
  m.b2 = m.upload_f32(head2.b, 128);
  m.w3 = m.upload_f32(head3.w, static_cast<size_t>(m.K) * 128);
  m.b3 = m.upload_f32(head3.b, m.K);
}

SegHeadLt::~SegHeadLt() = default;  // Impl frees (also when the constructor throws midway)

void SegHeadLt::reserve(int slices, int B, int N) {
  Impl& m = *impl_;
  // Never more rows than this in a chunk, whatever the run's (B, N) (seg_head_chunks.h).
  const size_t rows = seg_chunk_rows_bound(B, N, m.chunk_rows);
  if (static_cast<int>(m.scratch.size()) >= slices && m.rows_held >= rows && m.clouds_held >= static_cast<size_t>(B))
    return;
  const size_t want_rows = std::max(rows, m.rows_held), want_clouds = std::max<size_t>(B, m.clouds_held);
  const int want_slices = std::max<int>(slices, static_cast<int>(m.scratch.size()));
  m.free_scratch();
  for (int i = 0; i < want_slices; ++i) {
    Impl::Scratch s;
    s.a = device_alloc(want_rows * 512 * m.e);
    s.c = device_alloc(want_rows * 256 * m.e);
    s.d = static_cast<float*>(device_alloc(want_rows * 128 * 4));
    if (m.math != Math::TF32) s.bias = device_alloc(want_clouds * 512 * m.e);
    m.scratch.push_back(s);
    m.scratch_bytes += want_rows * (768 * m.e + 512) + (s.bias ? want_clouds * 512 * m.e : 0);
  }
  m.rows_held = want_rows;
  m.clouds_held = want_clouds;
}

bool SegHeadLt::enqueue(LtLinear& lt, int slice, const void* h1, const float* bias, int B, int N, float* out,
                        cudaStream_t stream) {
  Impl& m = *impl_;
  if (slice >= static_cast<int>(m.scratch.size()))
    fail("SegHeadLt: no scratch reserved for slice ", slice, " (", m.scratch.size(), " reserved)");
  const Impl::Scratch& s = m.scratch[slice];
  if (static_cast<size_t>(B) > m.clouds_held)
    fail("SegHeadLt: ", B, " clouds of ", N, " points, but scratch was reserved for ", m.clouds_held, " clouds");
  // Each chunk's four GEMMs; with `dry`, only whether cuBLASLt has their algorithms.
  const auto chunks = [&](bool dry) {
    bool ok = true;
    for_each_seg_chunk(B, N, m.chunk_rows, [&](const SegChunk& c) {
      if (!ok) return;
      const int total = c.clouds * c.rows;
      if (static_cast<size_t>(total) > m.rows_held)
        fail("SegHeadLt: a chunk of ", total, " points, but scratch holds ", m.rows_held);
      const size_t first = static_cast<size_t>(c.b0) * N + c.r0;
      const char* x = static_cast<const char*>(h1) + first * 64 * m.e;
      const void* chunk_bias = s.bias ? static_cast<const char*>(s.bias) + static_cast<size_t>(c.b0) * 512 * m.e
                                      : static_cast<const void*>(bias + static_cast<size_t>(c.b0) * 512);
      float* y = out + first * m.K;
      if (dry) {
        ok = lt.has_algorithm(x, c.clouds, c.rows, 64, m.w0, 512, true, s.a, m.act) &&
             lt.has_algorithm(s.a, 1, total, 512, m.w1, 256, true, s.c, m.act) &&
             lt.has_algorithm(s.c, 1, total, 256, m.w2, 128, true, s.d, m.f32_out) &&
             lt.has_algorithm(s.d, 1, total, 128, m.w3, m.K, false, y, m.logits);
        return;
      }
      ok = lt.try_run_batched(x, c.clouds, c.rows, 64, m.w0, chunk_bias, 512, true, s.a, stream, m.act) &&
           lt.try_run_batched(s.a, 1, total, 512, m.w1, m.b1, 256, true, s.c, stream, m.act) &&
           lt.try_run_batched(s.c, 1, total, 256, m.w2, m.b2, 128, true, s.d, stream, m.f32_out) &&
           lt.try_run_batched(s.d, 1, total, 128, m.w3, m.b3, m.K, false, y, stream, m.logits);
      if (ok) launch_log_softmax(y, total, m.K, stream);
    });
    return ok;
  };
  // Nothing queued unless every GEMM has an algorithm (a plan found now is
  // kept; the run itself can still refuse, rarely: then the caller's
  // one-kernel head overwrites what was queued).
  if (!chunks(true)) return false;
  // Every cloud's head.0 bias in the 2-byte activation type, once for the slice.
  if (s.bias) narrow(m.math, bias, static_cast<size_t>(B) * 512, s.bias, stream);
  return chunks(false);
}

size_t SegHeadLt::device_bytes() const { return impl_->weight_bytes + impl_->scratch_bytes; }

}  // namespace pointnet::cuda_engine
