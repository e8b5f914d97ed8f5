// Runs an engine on an NVIDIA GPU in any of its five precisions (fp32, tf32,
// fp16, bf16, int8). Construction uploads the weights once, converted and
// packed for the precision's kernels (src/cuda/engine_*.cu). A run copies the
// clouds into pinned staging memory, then replays a CUDA graph captured on
// the first run of that (B, N): upload, the fused kernels, download, all on
// the runner's own stream; the only host wait is the final stream sync.
// Device buffers grow to the largest shape seen (up to the plan's limits) and
// are reused; growing them drops the captured graphs.
//
// Plain C++: no CUDA header. In a build without CUDA, or on a machine without
// a usable GPU, the constructor throws pointnet::Error saying why.
#pragma once
#include <memory>
#include <string>

#include "engine/engine_plan.h"

namespace pointnet {

// Per-phase device times of one run (run_timed), from CUDA events.
struct CudaRunTiming {
  double h2d_ms = 0, compute_ms = 0, d2h_ms = 0;
};

class CudaRunner {
 public:
  explicit CudaRunner(const EnginePlan& plan);
  ~CudaRunner();
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  // points (B, N, C) in host memory, normalised as in training; writes
  // log-probabilities, (B, classes) for cls or (B, N, parts) for seg. When
  // points / log_probs are the runner's own pinned buffers (input_buffer,
  // output_buffer), the host copies into and out of them are skipped.
  void run(const float* points, int B, int N, float* log_probs);

  // Pinned host buffers for (B, N): the input holds B * N * C floats, the
  // output B * classes (cls) or B * N * parts (seg). Valid until a run or
  // call with a larger shape.
  float* input_buffer(int B, int N);
  float* output_buffer(int B, int N);

  // The GPU compute alone: points and log_probs are DEVICE pointers (shapes
  // as run). Queued on the runner's stream (a graph per shape and pointers);
  // returns without waiting: call synchronize().
  void run_device(const float* device_points, int B, int N, float* device_log_probs);
  void synchronize();

  // Queues one run from the pinned buffers (input_buffer, output_buffer:
  // take them for this shape or a larger one, and fill the input first) and
  // returns without waiting; the output holds the results after
  // synchronize(). Until then, do not write the input, read the output or
  // call run on this runner. Two runners, each with a batch in flight,
  // overlap one's upload with the other's kernels (pointnet bench's
  // pipelined throughput).
  void submit(int B, int N);

  // One run from the pinned buffers (input_buffer, output_buffer) with CUDA
  // events between upload, compute (the run_device graph) and download.
  CudaRunTiming run_timed(int B, int N);

  std::string device_name() const;
  // The trunk's tensor-core kernels in use: "mma.sync", "wgmma", ...
  // (engine_trunk.cu); for a segmenter, its head's too.
  std::string trunk_kernels() const;
  // How many slices (streams) a batch of B clouds runs in (POINTNET_ENGINE_SLICES).
  int slices(int B) const;
  size_t device_bytes() const;  // weights and activation buffers held through cudaMalloc

 private:
  std::string trunk_kernel_names() const;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pointnet
