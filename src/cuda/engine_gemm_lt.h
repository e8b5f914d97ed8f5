// The engine's per-cloud fp32 layers for larger batches (more than
// kSmallRows clouds): cuBLASLt matmuls with the bias and ReLU in the epilogue,
// true fp32 (CUBLAS_COMPUTE_32F). Plans are found once per shape and kept, so
// a run (and its graph capture) only queues the matmul.
#pragma once
#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <tuple>

namespace pointnet::cuda_engine {

class LtLinear {
 public:
  LtLinear();
  ~LtLinear();
  LtLinear(const LtLinear&) = delete;
  LtLinear& operator=(const LtLinear&) = delete;

  // y(rows, out) = x(rows, in) w^T + bias, ReLU if relu; w (out, in) row-major.
  void run(const float* x, int rows, int in, const float* w, const float* bias, int out, bool relu, float* y,
           cudaStream_t stream);

 private:
  struct Plan;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pointnet::cuda_engine
