// The CUDA backend's core: device discovery, the stream and cuBLAS handle,
// memory and transfers, grow-only scratch, and the GEMM wrapper with the
// precision modes (fp32, tf32, fp16 and bf16 operands with fp32 accumulation).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>

#include "core/env_choice.h"
#include "cuda/cuda_common.cuh"

namespace pointnet {

namespace {
constexpr size_t kBlasWorkspaceBytes = size_t(32) << 20;  // cuBLAS's recommendation for Hopper

__global__ void probe_kernel(int* out) {
  if (out) *out = 1;
}
}  // namespace

// ---------------------------------------------------------------- discovery

bool cuda_device_available(std::string* why) {
  int count = 0;
  cudaError_t error = cudaGetDeviceCount(&count);
  if (error != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA driver or device (cudaGetDeviceCount: ") +
                    cudaGetErrorString(error) + ")";
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (count == 0) {
    if (why) *why = "the CUDA driver reports no device";
    return false;
  }
  cudaDeviceProp prop{};
  error = cudaGetDeviceProperties(&prop, 0);
  if (error != cudaSuccess) {
    if (why) *why = std::string("cudaGetDeviceProperties: ") + cudaGetErrorString(error);
    cudaGetLastError();
    return false;
  }
  // Can this build's kernels run there (compiled for the device's architecture)?
  cudaFuncAttributes attributes{};
  error = cudaFuncGetAttributes(&attributes, probe_kernel);
  if (error != cudaSuccess) {
    if (why) *why = std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) +
                    ") cannot run this build's kernels (" + cudaGetErrorString(error) +
                    "); rebuild with -DCMAKE_CUDA_ARCHITECTURES=" +
                    std::to_string(prop.major * 10 + prop.minor);
    cudaGetLastError();
    return false;
  }
  if (why) *why = std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ")";
  return true;
}

std::unique_ptr<Backend<float>> make_cuda_backend(Precision precision, bool fp32_per_cloud) {
  std::string why;
  if (!cuda_device_available(&why)) fail("the CUDA backend needs a CUDA GPU: ", why);
  auto backend = std::make_unique<CudaBackend>(precision, 0);
  backend->set_fp32_per_cloud(fp32_per_cloud);
  return backend;
}

// ---------------------------------------------------------------- state

void* CudaBackend::State::device_malloc(size_t bytes, const char* use) {
  void* p = nullptr;
  if (bytes == 0) bytes = 256;
  CUDA_CHECK(cudaMalloc(&p, bytes));
  ++allocations;
  blocks[p] = Block{bytes, use};
  bytes_in_use += bytes;
  if (bytes_in_use > peak_bytes) {
    peak_bytes = bytes_in_use;
    // A few dozen blocks, and a new peak only while shapes grow: cheap.
    blocks_at_peak.clear();
    for (const auto& held : blocks) blocks_at_peak.push_back(held.second);
  }
  return p;
}

const char* CudaBackend::State::slot_name(Slot slot) {
  static const char* const names[] = {
      "scratch gemm_a",    "scratch gemm_b",   "scratch partials", "scratch sums",        "scratch coeffs",
      "scratch small",     "scratch flag",     "scratch wide_rows", "scratch wide_terms", "scratch concat",
      "scratch group_sums", "scratch group_sums2", "scratch weights", "scratch linear_out",
      "scratch thin_partials"};
  static_assert(sizeof(names) / sizeof(names[0]) == kSlots, "a name for every slot");
  return names[slot];
}

void CudaBackend::State::device_free(void* pointer) {
  if (!pointer) return;
  // Work queued on the stream may still read it.
  CUDA_CHECK(cudaStreamSynchronize(stream));
  CUDA_CHECK(cudaFree(pointer));
  const auto block = blocks.find(pointer);
  if (block != blocks.end()) {
    // A weights' copy of values in this block: its addresses may come back
    // holding anything else.
    forget_weights_written(pointer, block->second.bytes);
    bytes_in_use -= block->second.bytes;
    blocks.erase(block);
  }
}

void CudaBackend::State::forget_weights_written(const void* p, size_t bytes) {
  if (!weights) return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p), b = reinterpret_cast<uintptr_t>(weights);
  if (a < b + weight_count * sizeof(float) && b < a + bytes) weights = nullptr;
}

void* CudaBackend::State::scratch(Slot slot, size_t bytes) {
  if (bytes > scratch_bytes[slot]) {
    device_free(scratch_ptr[slot]);
    scratch_ptr[slot] = nullptr;
    scratch_bytes[slot] = 0;
    // Round up so that slowly growing shapes do not reallocate every call.
    const size_t rounded = (bytes + (size_t(1) << 16) - 1) / (size_t(1) << 16) * (size_t(1) << 16);
    scratch_ptr[slot] = device_malloc(rounded, slot_name(slot));
    scratch_bytes[slot] = rounded;
  }
  return scratch_ptr[slot];
}

CudaBackend::CudaBackend(Precision precision, int device) : s_(std::make_unique<State>()) {
  s_->device = device;
  s_->precision = s_->mode_precision = precision;
  // "off" converts every fp32 operand per GEMM as before the copies existed (the same bits; for comparisons).
  s_->narrow_copies = env_choice("POINTNET_NARROW_ACTIVATIONS", {"on", "off"}) == "on";
  // "broadcast" writes the bias into y and accumulates the GEMM onto it, as before the epilogue (for comparisons).
  s_->bias_epilogue = env_choice("POINTNET_LINEAR_BIAS", {"epilogue", "broadcast"}) == "epilogue";
  // "off" converts each weight per GEMM that reads it, as before narrow_weights (the same bits; for comparisons).
  s_->weight_copies = env_choice("POINTNET_NARROW_WEIGHTS", {"on", "off"}) == "on";
  // The BatchNorm+ReLU conv layers' z in 2 bytes (Backend::narrow_linear_outputs):
  // "on" (default) in fp16 and bf16, "off" in neither (for comparisons). Both
  // modes reached fp32's ModelNet40 accuracy with it (docs/results.md: bf16
  // 89.30%, fp16 89.14%, fp32 89.02%; one seed each).
  s_->narrow_z = env_choice("POINTNET_NARROW_Z", {"on", "off"}) == "on";
  // The conv layers' input gradients in 2 bytes (Backend::narrow_gradients):
  // "on" (default) in fp16 and bf16, "off" to compare. ModelNet40 with it
  // (docs/results.md, session 16): bf16 89.42%, fp16 89.67%; the segmenter's
  // peak 837 -> 603 MiB, its fp32 gradient scratch no longer (M, 512).
  s_->narrow_gradients = env_choice("POINTNET_NARROW_GRADIENTS", {"on", "off"}) == "on";
  // The fused wide layer's input gradient in bf16 as well (bf16 only;
  // Backend::wide_max_writes_narrow_dx): "on" (default), "off" keeps it fp32
  // (to compare). Read once: the model sizes its gradient buffers by it.
  s_->wide_narrow_dx = env_choice("POINTNET_WIDE_NARROW_DX", {"on", "off"}) == "on";
  // The products with a side <= 4 (the first conv over the coordinates) by
  // thin_gemm.cu's kernels in fp16 / bf16: "on" (default), "off" for cuBLAS's
  // (docs/benchmarks.md, session 16: cls bf16 -21 us per step).
  s_->thin_gemms = env_choice("POINTNET_THIN_GEMMS", {"on", "off"}) == "on";
  // BatchNorm's dx pass two channels per thread where C is even: "on"
  // (default; docs/benchmarks.md, session 17: seg bf16 -106 us a step), "off"
  // one channel per thread (the same bits; to compare).
  s_->dx_pairs = env_choice("POINTNET_BATCHNORM_DX_PAIRS", {"on", "off"}) == "on";
  // BatchNorm over the per-cloud layers' few rows (<= kReduceChunkRows, not
  // SyncBN) in one launch each way: "fused" (default; the same bits as the
  // general path's three launches, by construction and by test), 12-42 us a
  // step faster (cls bf16 1.115 vs 1.136 ms, H100, 2026-12-07); "chunked"
  // the general path, kept to compare.
  s_->batchnorm_rows = env_choice("POINTNET_BATCHNORM_ROWS", {"fused", "chunked"}) == "fused";
  // The bias gradient of a linear layer followed by BatchNorm+ReLU (no
  // dropout) as dx's column sums inside the BatchNorm backward
  // (Backend::batchnorm_sums_dx), where the 2-byte gradient copies do not
  // already take it (fp32 / tf32 modes, the per-cloud layers): "linear"
  // (default) sums dy again in linear_backward (two launches, one more pass
  // over dy); "batchnorm" does not. The same bits either way (the dx pass
  // sums in column_sums' order). Opt-in: the bf16 steps moved within their
  // spread (cls +3, seg -4, cls ft -21 us; H100, 2026-12-07), and the fp32
  // step, where it skips the most, is not yet timed.
  s_->bias_from_batchnorm = env_choice("POINTNET_BIAS_SUMS", {"linear", "batchnorm"}) == "batchnorm";
  CUDA_CHECK(cudaSetDevice(device));
  cudaDeviceProp prop{};
  CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  s_->device_name = std::string(prop.name) + " (sm_" + std::to_string(prop.major * 10 + prop.minor) + ")";
  CUDA_CHECK(cudaStreamCreateWithFlags(&s_->stream, cudaStreamNonBlocking));
  CUBLAS_CHECK(cublasCreate(&s_->blas));
  // The stream first: cublasSetStream resets a user workspace.
  CUBLAS_CHECK(cublasSetStream(s_->blas, s_->stream));
  s_->blas_workspace = s_->device_malloc(kBlasWorkspaceBytes, "cuBLAS workspace");
  CUBLAS_CHECK(cublasSetWorkspace(s_->blas, s_->blas_workspace, kBlasWorkspaceBytes));
  CUBLAS_CHECK(cublasSetPointerMode(s_->blas, CUBLAS_POINTER_MODE_HOST));
  // cuBLASLt shares cuBLAS's workspace: both queue on this one stream.
  s_->lt = std::make_unique<cuda_engine::LtLinear>(s_->blas_workspace, kBlasWorkspaceBytes);
}

CudaBackend::~CudaBackend() {
  // No throwing from a destructor: best effort.
  if (!s_) return;
  if (s_->stream) cudaStreamSynchronize(s_->stream);
  for (const State::Recorded& g : s_->graphs)
    if (g.exec) cudaGraphExecDestroy(g.exec);
  if (s_->host_results) cudaFreeHost(s_->host_results);
  s_->lt.reset();
  if (s_->blas) cublasDestroy(s_->blas);
  for (void* p : s_->scratch_ptr)
    if (p) cudaFree(p);
  if (s_->blas_workspace) cudaFree(s_->blas_workspace);
  if (s_->stream) cudaStreamDestroy(s_->stream);
}

Precision CudaBackend::precision() const { return s_->mode_precision; }
void CudaBackend::set_precision(Precision precision) {
  s_->precision = s_->mode_precision = precision;
  s_->weights = nullptr;  // a copy in the old mode's type
}

void CudaBackend::narrow_weights(const float* values, size_t count) {
  State& s = *s_;
  s.weights = nullptr;
  const bool two_bytes = s.mode_precision == Precision::FP16 || s.mode_precision == Precision::BF16;
  if (!two_bytes || !s.weight_copies || count == 0) return;
  PN_CHECK(values != nullptr);
  void* out = s.scratch(State::kWeights, count * 2);
  cuda::convert_counted(s, out, values, count);
  s.weights = values;
  s.weight_count = count;
}
void CudaBackend::set_fp32_per_cloud(bool on) { s_->fp32_per_cloud = on; }
bool CudaBackend::narrow_activations() const { return cuda::narrow_copies_on(*s_); }
bool CudaBackend::narrow_linear_outputs() const { return cuda::narrow_copies_on(*s_) && s_->narrow_z; }
bool CudaBackend::batchnorm_sums_dx() const { return s_->bias_from_batchnorm; }
bool CudaBackend::narrow_gradients() const { return cuda::narrow_copies_on(*s_) && s_->narrow_gradients; }
void CudaBackend::per_cloud_gemms(bool per_cloud) {
  const Precision mode = s_->mode_precision;
  s_->precision = per_cloud && s_->fp32_per_cloud ? Precision::FP32 : mode;
}
void CudaBackend::synchronize() { CUDA_CHECK(cudaStreamSynchronize(s_->stream)); }
void* CudaBackend::stream() const { return s_->stream; }
std::string CudaBackend::device_name() const { return s_->device_name; }
size_t CudaBackend::device_allocations() const { return s_->allocations; }
CudaBackend::GemmCounts CudaBackend::gemm_counts() const { return s_->gemm_counts; }
size_t CudaBackend::device_bytes_in_use() const { return s_->bytes_in_use; }
size_t CudaBackend::device_bytes_peak() const { return s_->peak_bytes; }
std::vector<CudaBackend::HeldBlock> CudaBackend::device_blocks_at_peak() const {
  std::vector<HeldBlock> held;
  for (const State::Block& b : s_->blocks_at_peak) held.push_back({b.use, b.bytes});
  std::sort(held.begin(), held.end(), [](const HeldBlock& a, const HeldBlock& b) { return a.bytes > b.bytes; });
  return held;
}

// ---------------------------------------------------------------- memory

float* CudaBackend::allocate(size_t count) {
  return static_cast<float*>(s_->device_malloc(count * sizeof(float), "tensor"));
}
void CudaBackend::release(float* pointer) { s_->device_free(pointer); }
int32_t* CudaBackend::allocate_index(size_t count) {
  return static_cast<int32_t*>(s_->device_malloc(count * sizeof(int32_t), "index tensor"));
}
void CudaBackend::release_index(int32_t* pointer) { s_->device_free(pointer); }

namespace {
// Host -> device. From pageable memory cudaMemcpyAsync returns once the source
// is staged (the caller may reuse it); from pinned memory it returns at once,
// so wait for the copy there to give the same guarantee.
void upload_bytes(CudaBackend::State& s, void* device, const void* host, size_t bytes) {
  if (bytes == 0) return;
  s.forget_weights_written(device, bytes);
  CUDA_CHECK(cudaMemcpyAsync(device, host, bytes, cudaMemcpyDefault, s.stream));
  cudaPointerAttributes attributes{};
  CUDA_CHECK(cudaPointerGetAttributes(&attributes, host));
  if (attributes.type == cudaMemoryTypeHost) CUDA_CHECK(cudaStreamSynchronize(s.stream));
}

void download_bytes(CudaBackend::State& s, void* host, const void* device, size_t bytes) {
  if (bytes == 0) {
    CUDA_CHECK(cudaStreamSynchronize(s.stream));
    return;
  }
  CUDA_CHECK(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDefault, s.stream));
  CUDA_CHECK(cudaStreamSynchronize(s.stream));
}
}  // namespace

void CudaBackend::upload(float* device, const float* host, size_t count) {
  upload_bytes(*s_, device, host, count * sizeof(float));
}
void CudaBackend::download(float* host, const float* device, size_t count) {
  download_bytes(*s_, host, device, count * sizeof(float));
}
void CudaBackend::upload_index(int32_t* device, const int32_t* host, size_t count) {
  upload_bytes(*s_, device, host, count * sizeof(int32_t));
}
void CudaBackend::download_index(int32_t* host, const int32_t* device, size_t count) {
  download_bytes(*s_, host, device, count * sizeof(int32_t));
}

void CudaBackend::copy(float* y, const float* x, size_t count) {
  if (count == 0 || y == x) return;
  s_->forget_weights_written(y, count * sizeof(float));
  CUDA_CHECK(cudaMemcpyAsync(y, x, count * sizeof(float), cudaMemcpyDeviceToDevice, s_->stream));
}

// ---------------------------------------------------------------- GEMM

namespace cuda {

namespace {
// fp32 -> fp16 / bf16, four values per thread and step where x and y are
// aligned for it (16-byte loads, 8-byte stores: the scalar loop ran at about
// half the memory bandwidth), the tail and unaligned cases one by one.
template <typename Half>
__global__ void to_narrow_kernel(Half* y, const float* x, size_t n, bool by_four) {
  const size_t stride = size_t(gridDim.x) * blockDim.x;
  size_t done = 0;
  if (by_four) {
    const size_t quads = n / 4;
    for (size_t q = blockIdx.x * size_t(blockDim.x) + threadIdx.x; q < quads; q += stride)
      store_narrow4(y, q, reinterpret_cast<const float4*>(x)[q]);
    done = quads * 4;
  }
  for (size_t i = done + blockIdx.x * size_t(blockDim.x) + threadIdx.x; i < n; i += stride)
    y[i] = to_narrow<Half>(x[i]);
}


cudaDataType_t operand_type(Precision p) {
  switch (p) {
    case Precision::FP16: return CUDA_R_16F;
    case Precision::BF16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}
}  // namespace

template <typename Half>
void convert(cudaStream_t stream, Half* y, const float* x, size_t n) {
  const bool by_four = reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(y) % 8 == 0;
  to_narrow_kernel<Half><<<grid_for(by_four ? (n + 3) / 4 : n), kBlock, 0, stream>>>(y, x, n, by_four);
  CUDA_CHECK_LAUNCH();
}
template void convert<__half>(cudaStream_t, __half*, const float*, size_t);
template void convert<__nv_bfloat16>(cudaStream_t, __nv_bfloat16*, const float*, size_t);

void convert_to_mode(const State& s, void* y, const float* x, size_t n) {
  PN_CHECK(s.mode_precision == Precision::FP16 || s.mode_precision == Precision::BF16);
  if (s.mode_precision == Precision::FP16) convert(s.stream, static_cast<__half*>(y), x, n);
  else convert(s.stream, static_cast<__nv_bfloat16*>(y), x, n);
}

void convert_counted(State& s, void* y, const float* x, size_t n) {
  s.gemm_counts.converted_values += n;
  ++s.gemm_counts.conversions;
  convert_to_mode(s, y, x, n);
}

bool narrow_copies_on(const State& s) {
  return s.narrow_copies && (s.mode_precision == Precision::FP16 || s.mode_precision == Precision::BF16);
}

cuda_engine::LtLinear::Math gemm_math(const State& s) {
  return {operand_type(s.precision),
          s.precision == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F};
}

const void* gemm_operand(State& s, State::Slot slot, const float* x, size_t count, const void* x_narrow) {
  // Copies are written in the mode's type; a GEMM queued in another (per-cloud fp32) reads x.
  const bool two_bytes = s.precision == Precision::FP16 || s.precision == Precision::BF16;
  if (x_narrow && two_bytes && s.precision == s.mode_precision) return x_narrow;
  PN_CHECK(x || count == 0);  // a caller that wrote only the copy must have handed it over
  if (!two_bytes) return x;
  if (s.weights && s.precision == s.mode_precision) {
    // Inside the weights' copy (narrow_weights): the same values, already converted.
    const uintptr_t begin = reinterpret_cast<uintptr_t>(s.weights), at = reinterpret_cast<uintptr_t>(x);
    if (at >= begin && count <= s.weight_count && (at - begin) / sizeof(float) <= s.weight_count - count)
      return static_cast<const char*>(s.scratch_ptr[State::kWeights]) + (at - begin) / sizeof(float) * 2;
  }
  void* out = s.scratch(slot, count * 2);  // both half types are 2 bytes
  if (count == 0) return out;
  convert_counted(s, out, x, count);  // two_bytes: s.precision is the mode's (per-cloud fp32 is not)
  return out;
}

// One row-major product C(M, N) = op(A) op(B) + beta C, C of type c_type:
// cuBLAS is column-major, so the row-major C is the column-major C^T(N, M) =
// op(B)^T op(A)^T, and a row-major matrix's memory is its transpose in
// column-major: the operands swap and each keeps its transpose flag.
static void gemm_ex(State& s, cublasOperation_t op_a, cublasOperation_t op_b, int M, int N, int K, const void* A,
                    int lda, const void* B, int ldb, float beta, void* C, cudaDataType_t c_type, int ldc,
                    cublasComputeType_t compute) {
  const float alpha = 1.0f;
  const cudaDataType_t type = operand_type(s.precision);
  CUBLAS_CHECK(cublasGemmEx(s.blas, op_b, op_a, N, M, K, &alpha, B, type, ldb, A, type, lda, &beta, C, c_type, ldc,
                            compute, CUBLAS_GEMM_DEFAULT));
}

void gemm(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A, int lda,
          long long stride_a, const void* B, int ldb, long long stride_b, float beta, float* C,
          int ldc, long long stride_c, int batch) {
  if (M == 0 || N == 0 || batch == 0) return;
  const float alpha = 1.0f;
  // Operands swapped, each keeping its transpose flag (gemm_ex).
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cudaDataType_t type = operand_type(s.precision);
  const cublasComputeType_t compute =
      s.precision == Precision::TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
  if (K == 0) {
    // An empty product: C = beta C. We only use beta 0 (overwrite) or 1 (keep).
    PN_CHECK(beta == 0.0f || beta == 1.0f);
    if (beta == 0.0f)
      for (int b = 0; b < batch; ++b)
        CUDA_CHECK(cudaMemset2DAsync(C + b * stride_c, size_t(ldc) * sizeof(float), 0,
                                     size_t(N) * sizeof(float), M, s.stream));
    return;
  }
  if (thin_gemm(s, transpose_a, transpose_b, M, N, K, A, lda, stride_a, B, ldb, stride_b, beta, C, ldc, stride_c,
                batch))
    return;
  if (batch == 1) {
    gemm_ex(s, op_a, op_b, M, N, K, A, lda, B, ldb, beta, C, CUDA_R_32F, ldc, compute);
  } else {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(s.blas, op_b, op_a, N, M, K, &alpha, B, type, ldb,
                                            stride_b, A, type, lda, stride_a, &beta, C, CUDA_R_32F,
                                            ldc, stride_c, batch, compute, CUBLAS_GEMM_DEFAULT));
  }
}

void gemm_to_narrow(State& s, bool transpose_a, bool transpose_b, int M, int N, int K, const void* A, int lda,
                    const void* B, int ldb, void* C, int ldc) {
  PN_CHECK(s.precision == Precision::FP16 || s.precision == Precision::BF16);
  if (M == 0 || N == 0) return;
  PN_CHECK(K > 0);  // an empty product would leave C unwritten
  gemm_ex(s, transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N, M, N, K, A, lda, B,
          ldb, 0.0f, C, operand_type(s.precision), ldc, CUBLAS_COMPUTE_32F);
}

}  // namespace cuda
}  // namespace pointnet
