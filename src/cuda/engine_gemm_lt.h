// cuBLASLt matmuls with the bias (and ReLU) in the epilogue: the engine's
// per-cloud fp32 layers for larger batches (more than kSmallRows clouds), true
// fp32 (CUBLAS_COMPUTE_32F), and the training backend's linear forward in its
// precision mode (fp32 / TF32 / fp16 / bf16 operands, fp32 accumulation and
// output), where the bias would otherwise be broadcast into y first. Plans are
// found once per shape and kept, so a run (and its graph capture) only queues
// the matmul.
#pragma once
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <tuple>

namespace pointnet::cuda_engine {

class LtLinear {
 public:
  // With its own workspace (cudaMalloc), or with the caller's (`bytes` at
  // `workspace`, used by this object's matmuls only on the caller's stream).
  LtLinear();
  LtLinear(void* workspace, size_t bytes);
  ~LtLinear();
  LtLinear(const LtLinear&) = delete;
  LtLinear& operator=(const LtLinear&) = delete;

  // The operands' type, the accumulation, and y's type (the bias is in y's
  // type too: cuBLASLt's epilogue takes it so for fp16 / bf16 outputs).
  struct Math {
    cudaDataType_t operands = CUDA_R_32F;
    cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
    cudaDataType_t out = CUDA_R_32F;
  };

  // y(rows, out) = x(rows, in) w^T + bias, ReLU if relu; w (out, in) row-major.
  void run(const float* x, int rows, int in, const float* w, const float* bias, int out, bool relu, float* y,
           cudaStream_t stream) {
    run(x, rows, in, w, bias, out, relu, y, stream, Math{});
  }
  // The same with x and w in `math.operands` (fp16 / bf16 ones 2 bytes each).
  void run(const void* x, int rows, int in, const void* w, const float* bias, int out, bool relu, float* y,
           cudaStream_t stream, Math math);
  // run, or false with nothing queued where cuBLASLt has no algorithm for this
  // shape, math and these pointers' alignments (the caller then takes another way).
  bool try_run(const void* x, int rows, int in, const void* w, const float* bias, int out, bool relu, float* y,
               cudaStream_t stream, Math math) {
    return try_run_batched(x, 1, rows, in, w, bias, out, relu, y, stream, math);
  }
  // try_run over `batch` consecutive blocks of `rows` rows of x and y (clouds),
  // the same w, each block with its own bias (`out` elements apart): the
  // segmenter's head.0, whose global part is a bias per cloud. ldw: the
  // elements between w's rows (0: in; more for a column block of a wider w).
  bool try_run_batched(const void* x, int batch, int rows, int in, const void* w, const void* bias, int out,
                       bool relu, void* y, cudaStream_t stream, Math math, int ldw = 0);
  // Whether try_run_batched with these shapes and pointers' alignments has an
  // algorithm (finds and keeps the plan; queues nothing).
  bool has_algorithm(const void* x, int batch, int rows, int in, const void* w, int out, bool relu, const void* y,
                     Math math);

 private:
  struct Plan;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pointnet::cuda_engine
