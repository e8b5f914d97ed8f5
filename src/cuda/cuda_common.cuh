// Shared by the CUDA kernel families (src/cuda/*.cu): the backend's state
// (stream, cuBLAS handle, grow-only scratch), launch helpers, and the two
// building blocks several families use: the GEMM wrapper (cuda_backend.cu) and
// the deterministic column reduction (batchnorm.cu). Not a public header.
#pragma once
#include <type_traits>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <unordered_map>
#include <vector>

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "cuda/check.h"
#include "cuda/cuda_backend.h"
#include "cuda/engine_gemm_lt.h"

namespace pointnet {

struct CudaBackend::State {
  // Grow-only scratch slots. A slot is reused by every op (all work is on one
  // stream, so a later op's use is ordered after an earlier op's); growing one
  // waits for the stream before freeing the old block.
  enum Slot {
    kGemmA,     // GEMM operand A converted to fp16/bf16
    kGemmB,     // GEMM operand B converted to fp16/bf16
    kPartials,  // (chunks, 2, C) double: per-chunk column sums
    kSums,      // (2, C) double: column sums
    kCoeffs,    // per-channel coefficients (BatchNorm scale/shift, backward terms)
    kSmall,     // a few values handed back to the host (loss, norms)
    kFlag,      // one int: the non-finite flag (its own slot so that it could stay on the device)
    kWideRows,  // wide_max: x's centred rows (M, K), then row chunks of z (wide_max.cu)
    kWideTerms, // wide_max: per-cloud and per-segment extremes, per-channel terms, sorted picks (wide_max.cu)
    kConcat,    // concat_linear: per-cloud rows and sums (concat_linear.cu)
    kGroupSums, // SyncBN: the double sums (and row count) all-reduced over the group (group_sums)
    kGroupSums2,// SyncBN: a second such buffer, for an op that needs two at once
    kWeights,   // the trainable values' 2-byte copy (narrow_weights)
    kLinearOut, // an fp32 result before its 2-byte form, where cuBLASLt has no plan for that (linear_forward, the wide layer's dx)
    kThinPartials, // thin_gemm: per-chunk partial sums of the long products
    kSlots
  };
  static const char* slot_name(Slot slot);

  int device = 0;
  Precision precision = Precision::FP32;       // of the GEMMs queued now
  Precision mode_precision = Precision::FP32;  // the backend's mode (set_precision)
  bool fp32_per_cloud = false;                 // per-cloud GEMMs in fp32 (set_fp32_per_cloud)
  bool bias_from_batchnorm = false;            // linear bias gradients from the BatchNorm backward's dx sums (POINTNET_BIAS_SUMS)
  bool narrow_copies = true;                   // 2-byte activation copies in fp16/bf16 (POINTNET_NARROW_ACTIVATIONS)
  bool weight_copies = true;                   // the weights' 2-byte copy in fp16/bf16 (POINTNET_NARROW_WEIGHTS)
  bool narrow_z = false;                       // 2-byte linear outputs (POINTNET_NARROW_Z: on by default)
  bool narrow_gradients = false;               // 2-byte input gradients (POINTNET_NARROW_GRADIENTS, on unless "off")
  bool wide_narrow_dx = true;                  // the wide layer's dx in bf16 too (POINTNET_WIDE_NARROW_DX, on unless "off")
  bool thin_gemms = false;                     // GEMMs with a side <= 4 by thin_gemm in fp16/bf16 (POINTNET_THIN_GEMMS, on unless "off")
  bool dx_pairs = true;                        // BatchNorm's dx pass two channels a thread where it can (POINTNET_BATCHNORM_DX_PAIRS)
  bool batchnorm_rows = true;                  // BatchNorm over <= kReduceChunkRows rows in one launch each way (POINTNET_BATCHNORM_ROWS, fused unless "chunked")
  // narrow_weights' copy: of weights(weight_count) (null: none held), in slot kWeights.
  const float* weights = nullptr;
  size_t weight_count = 0;
  bool bias_epilogue = true;                   // biases in cuBLASLt epilogues: linear_forward, the wide layer's dx (POINTNET_LINEAR_BIAS)
  std::unique_ptr<cuda_engine::LtLinear> lt;   // those matmuls (their plans, their workspace)
  Communicator* batchnorm_group = nullptr;     // SyncBN's ranks (set_batchnorm_group), or none
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  void* blas_workspace = nullptr;
  std::string device_name;
  size_t allocations = 0;
  CudaBackend::GemmCounts gemm_counts;  // CudaBackend::gemm_counts
  // Bytes held through device_malloc (contract allocations, scratch, the cuBLAS
  // workspace): now and at most so far. `blocks` remembers each block's size
  // and what it is for; `blocks_at_peak` is the list of them when the peak was
  // last raised (CudaBackend::device_blocks_at_peak).
  struct Block {
    size_t bytes = 0;
    const char* use = "";
  };
  size_t bytes_in_use = 0, peak_bytes = 0;
  std::unordered_map<void*, Block> blocks;
  std::vector<Block> blocks_at_peak;
  void* scratch_ptr[kSlots] = {};
  size_t scratch_bytes[kSlots] = {};

  // Pinned host memory the queued results land in (queue_* / *_result in
  // model/backend.h): the loss at kHostNll, the non-finite flag at kHostFlag,
  // the regulariser's per-cloud norms from kHostNorms. The copies into it are
  // ordinary stream operations, so a recorded step can hold them.
  enum HostOffset : size_t { kHostNll = 0, kHostFlag = 64, kHostNorms = 128 };
  char* host_results = nullptr;
  size_t host_results_bytes = 0;
  int queued_rows = 0;    // M of the queued loss
  int queued_classes = 0; // its K
  int queued_clouds = 0;  // B of the queued regulariser
  char* host_results_for(size_t bytes);  // at least `bytes`; grows (waiting for the stream) when short

  // Recording (recording.cu): capture in progress, allocations when it began,
  // and the instantiated graphs by id (null once forgotten) with the queued
  // sizes their results are read with (a replay sets them again).
  struct Recorded {
    cudaGraphExec_t exec = nullptr;
    int rows = 0, classes = 0, clouds = 0;
  };
  bool recording = false;
  size_t allocations_at_recording = 0;
  std::vector<Recorded> graphs;

  void* device_malloc(size_t bytes, const char* use);  // cudaMalloc, counted; `use` names it in blocks_at_peak
  void device_free(void* pointer);            // waits for the stream, then cudaFree
  void* scratch(Slot slot, size_t bytes);     // at least `bytes` in `slot`
  // Drops the weights' copy (narrow_weights) when [p, p + bytes) overlaps the
  // values it was made of: called by the ops that write values.
  void forget_weights_written(const void* p, size_t bytes);
};

namespace cuda {

using State = CudaBackend::State;

constexpr int kBlock = 256;  // threads per block for element-wise kernels

// Blocks for a grid-stride loop over n elements.
inline unsigned grid_for(size_t n, int block = kBlock) {
  const size_t blocks = (n + block - 1) / block;
  const size_t cap = size_t(1) << 16;  // the loop covers the rest
  return static_cast<unsigned>(blocks == 0 ? 1 : (blocks < cap ? blocks : cap));
}

// Whether a row-major (rows, C) pass may move four floats at a time: C % 4 ==
// 0 (a float4 never straddles rows) and every given pointer 16-byte aligned.
inline bool by_four(int C, const void* a, const void* b = nullptr, const void* c = nullptr) {
  auto aligned = [](const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; };
  return C % 4 == 0 && aligned(a) && aligned(b) && aligned(c);
}

// The operand of a GEMM in the current precision: `x` itself for fp32/tf32,
// or `count` values converted to fp16/bf16 into scratch `slot`. With
// x_narrow (x's 2-byte copy, Backend::narrow_activations), that copy where the
// GEMMs queued now read the mode's 2-byte type (not a per-cloud GEMM kept in
// fp32), and no conversion; likewise the weights' copy (narrow_weights) for
// an x inside the weights it holds.
const void* gemm_operand(State& s, State::Slot slot, const float* x, size_t count,
                         const void* x_narrow = nullptr);

// Whether ops write 2-byte activation copies now (Backend::narrow_activations).
bool narrow_copies_on(const State& s);

// y(n) = x(n) rounded to nearest even to __half or __nv_bfloat16, queued on
// `stream` (the GEMM operand conversion; the engine's GEMM head uses it too).
template <typename Half>
void convert(cudaStream_t stream, Half* y, const float* x, size_t n);
// convert into the backend mode's 2-byte type (fp16 or bf16 modes only).
void convert_to_mode(const State& s, void* y, const float* x, size_t n);
// convert_to_mode, counted in s.gemm_counts (the tests compare how many
// operand values a step converts).
void convert_counted(State& s, void* y, const float* x, size_t n);

// fp32 -> the 2-byte types, rounded to nearest even (as the GEMM operand
// conversion), one value or four (one 8-byte store).
template <typename Half>
__device__ __forceinline__ Half to_narrow(float v);
template <>
__device__ __forceinline__ __half to_narrow<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 to_narrow<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <typename Half>
struct alignas(8) NarrowFour {
  Half v[4];
};
template <typename Half>
__device__ __forceinline__ void store_narrow4(Half* out, size_t quad, float4 f) {
  reinterpret_cast<NarrowFour<Half>*>(out)[quad] =
      NarrowFour<Half>{{to_narrow<Half>(f.x), to_narrow<Half>(f.y), to_narrow<Half>(f.z), to_narrow<Half>(f.w)}};
}
template <typename Half>
__device__ __forceinline__ void store_narrow(Half* out, size_t i, float v) {
  out[i] = to_narrow<Half>(v);
}
// A value read as float, from fp32 or from a 2-byte form (exact: every fp16
// and bf16 value is a float), one or four at a time (x 16-byte aligned for
// floats, 8-byte for the 2-byte types).
__device__ __forceinline__ float widen(float v) { return v; }
__device__ __forceinline__ float widen(__half v) { return __half2float(v); }
__device__ __forceinline__ float widen(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float4 load4(const float* x, size_t quad) {
  return reinterpret_cast<const float4*>(x)[quad];
}
template <typename Half>
__device__ __forceinline__ float4 load4(const Half* x, size_t quad) {
  const NarrowFour<Half> v = reinterpret_cast<const NarrowFour<Half>*>(x)[quad];
  return make_float4(widen(v.v[0]), widen(v.v[1]), widen(v.v[2]), widen(v.v[3]));
}
// Two adjacent values at once (one 4- or 8-byte access; x aligned to two
// elements): V of them from element i (V = 1, or 2 with i even), as floats.
template <typename T>
struct alignas(2 * sizeof(T)) Pair {
  T v[2];
};
template <int V, typename T>
__device__ __forceinline__ void load_lanes(const T* x, size_t i, float (&out)[V]) {
  static_assert(V == 1 || V == 2, "one value or a pair");
  if constexpr (V == 1) {
    out[0] = widen(x[i]);
  } else {
    const Pair<T> p = reinterpret_cast<const Pair<T>*>(x)[i / 2];
    out[0] = widen(p.v[0]);
    out[1] = widen(p.v[1]);
  }
}
template <int V>
__device__ __forceinline__ void store_lanes(float* y, size_t i, const float (&v)[V]) {
  if constexpr (V == 1) y[i] = v[0];
  else reinterpret_cast<float2*>(y)[i / 2] = make_float2(v[0], v[1]);
}
template <int V, typename Half>
__device__ __forceinline__ void store_narrow_lanes(Half* y, size_t i, const float (&v)[V]) {
  if constexpr (V == 1) y[i] = to_narrow<Half>(v[0]);
  else reinterpret_cast<Pair<Half>*>(y)[i / 2] = Pair<Half>{{to_narrow<Half>(v[0]), to_narrow<Half>(v[1])}};
}
// The type a kernel template takes where no 2-byte copy is written: its stores do nothing.
struct NoNarrow {};
__device__ __forceinline__ void store_narrow(NoNarrow*, size_t, float) {}
__device__ __forceinline__ void store_narrow4(NoNarrow*, size_t, float4) {}
template <int V>
__device__ __forceinline__ void store_narrow_lanes(NoNarrow*, size_t, const float (&)[V]) {}
// Whether a pass over (rows, C) may take two channels at a time: C even and
// every given pointer aligned to two of its elements.
template <typename... T>
inline bool by_two(int C, const T*... p) {
  return C % 2 == 0 && ((reinterpret_cast<uintptr_t>(p) % (2 * sizeof(T)) == 0) && ...);
}
// Calls f with a null pointer of precision p's 2-byte type (__half* for
// FP16, __nv_bfloat16* for BF16; other precisions are refused): the one
// dispatch from a precision to a kernel's 2-byte template argument.
template <typename F>
void with_half_type(Precision p, F&& f) {
  PN_CHECK(p == Precision::FP16 || p == Precision::BF16);
  if (p == Precision::FP16) f(static_cast<__half*>(nullptr));
  else f(static_cast<__nv_bfloat16*>(nullptr));
}

// Calls f with `narrow` typed as the mode's 2-byte type (__half* or
// __nv_bfloat16*), or with a null NoNarrow* where `narrow` is null.
template <typename F>
void with_narrow_type(const State& s, void* narrow, F&& f) {
  if (!narrow) return f(static_cast<NoNarrow*>(nullptr));
  with_half_type(s.mode_precision, [&](auto* half) { f(static_cast<decltype(half)>(narrow)); });
}

// Calls f with x typed as float (x_narrow null) or as the mode's 2-byte type
// (x_narrow): a pass that reads an activation in either form.
template <typename F>
void with_input_type(const State& s, const float* x, const void* x_narrow, F&& f) {
  if (!x_narrow) return f(x);
  with_half_type(s.mode_precision, [&](auto* half) {
    f(static_cast<const std::remove_pointer_t<decltype(half)>*>(x_narrow));
  });
}

// The operand type and accumulation of the GEMMs queued now, for cuBLASLt.
cuda_engine::LtLinear::Math gemm_math(const State& s);

// gemm with beta 0, batch 1, and C written in the mode's 2-byte type (fp16 /
// bf16 modes only), rounded once from the fp32 sums.
void gemm_to_narrow(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A, int lda,
                    const void* B, int ldb, void* C, int ldc);

// Row-major C(M, N) = op(A) op(B) + beta C, batched with element strides
// (batch 1: strides ignored). A and B come from gemm_operand (their element
// type follows the precision); C is fp32. op(A) is (M, K), op(B) is (K, N).
void gemm(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A,
          int lda, long long stride_a, const void* B, int ldb, long long stride_b, float beta,
          float* C, int ldc, long long stride_c, int batch = 1);

// gemm's contract, for the fp16 / bf16 products with a side of at most 4
// (thin_gemm.cu: the layers and transforms over the points' coordinates):
// queues them and returns true; false (nothing queued) for every other
// product, mode or beta, and where POINTNET_THIN_GEMMS=off.
bool thin_gemm(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A, int lda,
               long long stride_a, const void* B, int ldb, long long stride_b, float beta, float* C, int ldc,
               long long stride_c, int batch);
// y(M, Cout) = x(M, Cin) w(Cout, Cin)^T + bias (bias nullable) for Cin <= 4
// and Cout <= 1024, in fp32 into y or in the mode's 2-byte type into y_narrow
// (not null: then y is not written), the operands from gemm_operand. False
// as thin_gemm.
bool thin_linear(State& s, const void* x, const void* w, const float* bias, int M, int Cin, int Cout, float* y,
                 void* y_narrow);

// y(M, C) = row(C) on every row (linear.cu): the bias under a GEMM that
// accumulates onto it, the wide layer's offset.
void broadcast_rows(State& s, float* y, const float* row, size_t M, int C);

// Queues a check of x(count) that leaves one int in scratch slot kFlag: 0 when
// every element is finite, 1 when any is inf or NaN. all_finite() reads it
// back (one sync per step); a device-side loss scaler could instead hand this
// pointer to the Adam kernel (skip when set) and never wait.
const int* nonfinite_flag(State& s, const float* x, size_t count);

// What column_sums adds up over the rows m of (M, C) matrices, per channel c:
enum class ReduceTerm {
  kSum,            // sums[c] = sum a(m, c)                                    (one row of sums)
  kShiftedMoments, // sums[c] = sum (a - a(0, c)), sums[C + c] = sum (a - a(0, c))^2
  kBatchNormGrad,  // sums[c] = sum a, sums[C + c] = sum a (b - mean[c]) invstd[c]
  kBatchNormReluGrad,  // kBatchNormGrad with a = 0 where batchnorm_apply(b, ...) <= 0 (needs gamma, beta)
  kCentredSquares,     // sums[c] = sum (a - mu_c)^2, mu_c = centre[c] / centre[C] (group_sums' layout)
};
// Deterministic column sums in double: rows are cut into fixed chunks of
// kReduceChunkRows (independent of the device), each chunk is summed by one
// block in a fixed order with a fixed tree, and the chunks are then added by
// one warp per sum (lanes over the chunks in order, a fixed shuffle tree). Returns (1 or 2, C) doubles in scratch slot kSums.
constexpr int kReduceChunkRows = 256;
const double* column_sums(State& s, ReduceTerm term, const float* a, const float* b,
                          const float* mean, const float* invstd, int M, int C, const float* gamma = nullptr,
                          const float* beta = nullptr, const double* centre = nullptr);
// column_sums in two halves, for a kernel that forms the summed values itself
// and sums them in column_partials_kernel's order (so, the same bits): its
// launch shape and the per-chunk partials buffer, then the finishing sum of
// the chunks (rows_of_sums 1 or 2) into scratch slot kSums.
struct ColumnPartials {
  double* partials = nullptr;  // (chunks, 2, C)
  double* sums = nullptr;      // (2, C)
  int chunks = 0, C = 0;
  dim3 grid, block;
};
ColumnPartials column_partials_for(State& s, int M, int C);
const double* finish_column_sums(State& s, const ColumnPartials& p, int rows_of_sums);
// sums[j * C + c] (j < rows_of_sums) = the sum over k < chunks of
// partials[(k * rows_per_chunk + j) * C + c], in column_sums' fixed order
// (the second half of column_sums, for partials of any chunk layout).
void add_chunks(cudaStream_t stream, double* sums, const double* partials, int C, int rows_of_sums,
                int rows_per_chunk, int chunks);
// out(C) = float(sums(C)).
void sums_to_float(State& s, float* out, const double* sums, int C);

// SyncBN (set_batchnorm_group). True when the statistics span several ranks.
bool synchronised(const State& s);
// The sum over the group's ranks of parts[0] (n[0] doubles), parts[1] (n[1]),
// ... and of this rank's row count `rows` after them, gathered into scratch
// slot `slot` (kGroupSums or kGroupSums2) and all-reduced there on the stream
// (NCCL queues it; no host wait). Returns that buffer: the parts in order,
// then the global row count.
double* group_sums(State& s, State::Slot slot, std::initializer_list<std::pair<const double*, int>> parts,
                   int rows);
// The row count a kernel divides by: the global one where SyncBN summed it
// (a pointer into group_sums' result), else this rank's M.
__device__ __forceinline__ double row_count(const double* global_rows, int M) {
  return global_rows ? *global_rows : static_cast<double>(M);
}

// BatchNorm's per-channel scale and its apply, in float with explicit
// roundings: the forward applies them, and the fused ReLU's backward recomputes
// the forward's output sign from x with the same bits (no saved mask). The
// scale is gamma times the saved float invstd, rounded once more than the
// CPU's float(gamma * invstd in double): at most 1 ulp apart, and it is what
// lets the backward rebuild it from what was saved.
__device__ __forceinline__ float batchnorm_scale(float gamma, float invstd) { return __fmul_rn(gamma, invstd); }
__device__ __forceinline__ float batchnorm_apply(float x, float centre, float scale, float shift) {
  return __fmaf_rn(__fsub_rn(x, centre), scale, shift);
}

}  // namespace cuda
}  // namespace pointnet
