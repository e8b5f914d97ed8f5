// The CUDA implementation of the op contract (model/backend.h) for float, with
// a precision mode for the GEMMs. Plain C++: no CUDA header is exposed, so any
// .cpp may include this; the kernels live in src/cuda/*.cu (one per family).
//
// Precision (what the matrix products use; everything else is fp32 always:
// BatchNorm statistics, softmax, loss, reductions, optimizer; in the fused
// wide layer z = x w^T follows the mode, and x's covariance and the backward's
// dx += -x P take TF32 in every mode but fp32, see wide_max.cu):
//   FP32  plain fp32 cuBLAS (CUBLAS_COMPUTE_32F)
//   TF32  fp32 tensors, TF32 tensor-core math (CUBLAS_COMPUTE_32F_FAST_TF32)
//   FP16  operands converted to half on the fly into grow-only scratch,
//         fp32 accumulation and fp32 output (cublasGemmEx)
//   BF16  the same with bfloat16 operands
// In FP16 / BF16 the BatchNorm+ReLU passes also write their output's (and its
// gradient's) 2-byte copy where the model asks (narrow_activations), and the
// GEMMs that read those tensors take the copy: the same values, no pass.
//
// Execution: every op is queued on one stream owned by the backend and returns
// at once, except download, download_index, nll_loss, transform_regularizer
// and all_finite, which wait for the stream (they hand host values back), as
// do the *_result halves of their queue_* forms (model/backend.h). upload from pageable
// host memory returns once the host buffer may be reused (the runtime stages
// it); from pinned memory it waits for the copy. Errors from a kernel surface as
// pointnet::Error at the next synchronising call.
//
// Memory: allocate() is one cudaMalloc; the backend's own scratch (GEMM operand
// conversion, reduction partials, per-channel coefficients, the wide layer's
// row chunks, the cuBLAS workspace) only grows, so a repeated step of the same shape allocates nothing.
//
// Determinism: the same inputs give the same bits on every run on one GPU
// model. Reductions (BatchNorm statistics and gradients, bias gradients, the
// concat gradient, loss, the wide layer's statistics and gradients) use
// fixed-size row chunks or fixed-order loops and trees in double, never
// atomics (the wide layer's scatter into dx gives each element one writing
// thread); cuBLAS GEMMs are deterministic on one stream with a fixed
// workspace. The bits differ from the CPU's (different summation order).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "model/backend.h"

namespace pointnet {

enum class Precision { FP32, TF32, FP16, BF16 };

// "fp32", "tf32", "fp16", "bf16".
inline const char* precision_name(Precision p) {
  switch (p) {
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::FP16: return "fp16";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

// Parses "fp32" | "tf32" | "fp16" | "bf16"; false for anything else.
inline bool parse_precision(const std::string& text, Precision* out) {
  for (Precision p : {Precision::FP32, Precision::TF32, Precision::FP16, Precision::BF16}) {
    if (text == precision_name(p)) {
      *out = p;
      return true;
    }
  }
  return false;
}

// True when this build has the CUDA backend and a usable GPU is present (a
// driver, a device, and a device that can run this build's kernels). On false,
// `why` (if given) says what is missing; on true it names the device. Never
// throws; works in CPU-only builds (returns false).
bool cuda_device_available(std::string* why = nullptr);

// A CUDA backend on device 0. Throws pointnet::Error naming the reason when
// there is no usable GPU or the build has no CUDA support.
// fp32_per_cloud: see CudaBackend::set_fp32_per_cloud.
std::unique_ptr<Backend<float>> make_cuda_backend(Precision precision = Precision::FP32, bool fp32_per_cloud = false);

class CudaBackend final : public Backend<float> {
 public:
  // Creates the stream, cuBLAS handle and workspace on `device`. Throws
  // pointnet::Error when that fails.
  explicit CudaBackend(Precision precision = Precision::FP32, int device = 0);
  ~CudaBackend() override;
  CudaBackend(const CudaBackend&) = delete;
  CudaBackend& operator=(const CudaBackend&) = delete;

  Precision precision() const;
  // GEMMs queued after this call use the new mode.
  void set_precision(Precision precision);
  // Per-cloud GEMMs (Backend::per_cloud_gemms) in fp32 whatever the mode: the
  // fully connected layers over B rows cost ~1% of a step's FLOPs.
  void set_fp32_per_cloud(bool on);
  void per_cloud_gemms(bool per_cloud) override;
  // True in fp16 / bf16 unless POINTNET_NARROW_ACTIVATIONS=off (read at construction).
  bool narrow_activations() const override;
  // True where narrow_activations() is, unless POINTNET_NARROW_Z=off (read
  // at construction): the BatchNorm+ReLU conv layers' z in 2 bytes.
  bool narrow_linear_outputs() const override;
  // True where narrow_activations() is, unless POINTNET_NARROW_GRADIENTS=off
  // (read at construction).
  bool narrow_gradients() const override;
  // POINTNET_BIAS_SUMS=batchnorm (opt-in, read at construction).
  bool batchnorm_sums_dx() const override;
  void narrow_weights(const float* values, size_t count) override;
  // Waits for everything queued on the backend's stream (cudaStreamSynchronize:
  // every op, copy and cuBLAS call goes to that one stream); throws
  // pointnet::Error on a kernel error.
  void synchronize() override;
  // The cudaStream_t every op is queued on (opaque here; cast it in .cu code).
  void* stream() const;
  // e.g. "NVIDIA H100 80GB HBM3 (sm_90)".
  std::string device_name() const;
  // cudaMalloc calls made so far, contract allocations and scratch growth
  // together: tests use it to check that a steady-state step allocates nothing.
  size_t device_allocations() const;
  // What the GEMM wrappers queued so far, for tests that check a path is
  // taken: values converted to fp16/bf16 as operands (weights and activations
  // without a 2-byte copy), and linear layers (or wide layers' dx) whose bias
  // was broadcast into the output because cuBLASLt had no epilogue plan (or
  // POINTNET_LINEAR_BIAS=broadcast).
  // Counted when queued: a recorded step's replays add nothing.
  struct GemmCounts {
    size_t converted_values = 0;
    size_t conversions = 0;  // launches of the conversion (each converts one operand, or all weights)
    size_t bias_broadcasts = 0;
    size_t thin_products = 0;  // products queued by thin_gemm / thin_linear (a side of at most 4)
  };
  GemmCounts gemm_counts() const;
  // Bytes this backend holds through cudaMalloc (tensors, grow-only scratch,
  // the cuBLAS workspace), now and at most since it was created. Excludes the
  // CUDA context and cuBLAS's own internal allocations.
  size_t device_bytes_in_use() const;
  size_t device_bytes_peak() const;
  // The blocks held when the peak was reached, largest first: what each is
  // for ("tensor", "scratch gemm_a", "cuBLAS workspace", ...) and its bytes.
  struct HeldBlock {
    std::string use;
    size_t bytes = 0;
  };
  std::vector<HeldBlock> device_blocks_at_peak() const;

  const char* name() const override { return "cuda"; }
  // SyncBN over `group` (NCCL on this backend's stream; group_sums.cu).
  void set_batchnorm_group(Communicator* group) override;

  float* allocate(size_t count) override;
  void release(float* pointer) override;
  int32_t* allocate_index(size_t count) override;
  void release_index(int32_t* pointer) override;
  void upload(float* device, const float* host, size_t count) override;
  void download(float* host, const float* device, size_t count) override;
  void upload_index(int32_t* device, const int32_t* host, size_t count) override;
  void download_index(int32_t* host, const int32_t* device, size_t count) override;
  void fill(float* x, float value, size_t count) override;
  void copy(float* y, const float* x, size_t count) override;
  void multiply(float* y, const float* x, const float* mask, size_t count) override;

  void linear_forward(float* y, const float* x, const float* w, const float* b, int M, int Cin, int Cout,
                      const void* x_narrow = nullptr, void* y_narrow = nullptr) override;
  void linear_backward(float* dx, float* dw, float* db, const float* dy, const float* x, const float* w, int M,
                       int Cin, int Cout, const void* dy_narrow = nullptr, const void* x_narrow = nullptr,
                       void* dx_narrow = nullptr, bool accumulate_dx = false) override;

  void batchnorm_forward_train(float* y, float* mean, float* invstd, float* running_mean,
                               float* running_var, const float* x, const float* gamma,
                               const float* beta, int M, int C, double eps,
                               double momentum) override;
  void batchnorm_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, int M, int C,
                              double eps) override;
  void batchnorm_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                          const float* gamma, const float* mean, const float* invstd, int M,
                          int C) override;

  void batchnorm_relu_forward_train(float* y, float* mean, float* invstd, float* running_mean, float* running_var,
                                    const float* x, const float* gamma, const float* beta, int M, int C, double eps,
                                    double momentum, void* y_narrow = nullptr,
                                    const void* x_narrow = nullptr) override;
  void batchnorm_relu_forward_eval(float* y, const float* x, const float* gamma, const float* beta,
                                   const float* running_mean, const float* running_var, int M, int C,
                                   double eps) override;
  void batchnorm_relu_backward(float* dx, float* dgamma, float* dbeta, const float* dy, const float* x,
                               const float* y, const float* gamma, const float* beta, const float* mean,
                               const float* invstd, int M, int C, void* dx_narrow = nullptr,
                               float* dx_sum = nullptr, const void* x_narrow = nullptr,
                               const void* dy_narrow = nullptr) override;
  void relu_forward(float* y, const float* x, size_t count) override;
  void relu_backward(float* dx, const float* dy, const float* y, size_t count) override;

  void max_over_points_forward(float* y, int32_t* argmax, const float* x, int B, int N,
                               int C) override;
  void max_over_points_backward(float* dx, const float* dy, const int32_t* argmax, int B, int N,
                                int C) override;

  void transform_forward(float* y, const float* x, const float* t, int B, int N, int K,
                         const void* x_narrow = nullptr, void* y_narrow = nullptr) override;
  void transform_backward(float* dx, float* dt, const float* dy, const float* x, const float* t,
                          int B, int N, int K, const void* x_narrow = nullptr) override;
  void add_identity(float* t, int B, int K) override;

  void concat_global_forward(float* y, const float* global, const float* pointfeat, int B, int N,
                             int G, int P) override;
  void concat_global_backward(float* dglobal, float* dpointfeat, const float* dy, int B, int N,
                              int G, int P) override;

  void log_softmax_forward(float* y, const float* x, int M, int K) override;
  double nll_loss(int64_t* correct, const float* logp, const int32_t* target, int M,
                  int K) override;
  void log_softmax_nll_backward(float* dx, const float* logp, const int32_t* target, int M, int K,
                                float scale) override;
  void argmax_rows(int32_t* argmax, const float* x, int M, int K) override;

  double transform_regularizer(const float* t, int B, int K) override;
  void transform_regularizer_backward_accumulate(float* dt, const float* t, int B, int K,
                                                 float weight) override;

  void concat_linear_forward(float* y, const float* global, const float* pointfeat, const float* w,
                             const float* bias, int B, int N, int G, int P, int Cout,
                             const void* pointfeat_narrow = nullptr, void* y_narrow = nullptr) override;
  void concat_linear_backward(float* dglobal, float* dpointfeat, float* dw, float* dbias, const float* dy,
                              const float* global, const float* pointfeat, const float* w, int B, int N, int G,
                              int P, int Cout, const void* pointfeat_narrow = nullptr,
                              const void* dy_narrow = nullptr) override;
  void wide_max_forward_train(float* y, const WideMaxSaved<float>& saved, float* running_mean,
                              float* running_var, const float* x, const float* w, const float* bias,
                              const float* gamma, const float* beta, int B, int N, int K, int C, bool relu,
                              double eps, double momentum, const void* x_narrow = nullptr) override;
  void wide_max_forward_eval(float* y, const float* x, const float* w, const float* bias, const float* gamma,
                             const float* beta, const float* running_mean, const float* running_var, int B,
                             int N, int K, int C, bool relu, double eps) override;
  void wide_max_backward(float* dx, float* dw, float* dbias, float* dgamma, float* dbeta, const float* dy,
                         const float* y, const WideMaxSaved<float>& saved, const float* x, const float* w,
                         const float* gamma, int B, int N, int K, int C, bool relu,
                         const void* x_narrow = nullptr, void* dx_narrow = nullptr) override;
  bool wide_max_reads_narrow_input() const override;
  bool wide_max_writes_narrow_dx() const override;

  bool all_finite(const float* x, size_t count) override;
  void adam_step(float* param, const float* grad, float* m, float* v, size_t count, double lr,
                 double beta1, double beta2, double eps, int64_t step, double grad_scale,
                 double weight_decay) override;

  void queue_nll_loss(const float* logp, const int32_t* target, int M, int K) override;
  double nll_loss_result(int64_t* correct) override;
  void queue_transform_regularizer(const float* t, int B, int K) override;
  double transform_regularizer_result() override;
  void queue_all_finite(const float* x, size_t count) override;
  bool all_finite_result() override;

  // Recorded steps as CUDA graphs of the backend's stream (recording.cu).
  bool can_record() const override { return true; }
  void begin_recording() override;
  int end_recording() override;
  void replay(int id) override;
  void forget_recording(int id) override;
  size_t allocation_count() const override { return device_allocations(); }

  // Stream, cuBLAS handle, scratch: defined in cuda/cuda_common.cuh.
  struct State;

 private:
  std::unique_ptr<State> s_;
};

}  // namespace pointnet
