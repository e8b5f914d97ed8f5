// Runs an engine on the CPU: fp32 (OpenBLAS GEMMs on tiles of points, every
// epilogue fused into one pass over a tile that is still in cache) or int8
// (u8 x s8 GEMMs, AVX512-VNNI where the CPU has it). The work is split into
// (cloud, tile of points) items over OpenMP threads, so one cloud uses every
// core; tiles' partial maxima are merged after (max is exact, so results do
// not depend on the thread count). Buffers grow to the largest batch seen
// and are reused: no allocation in steady state.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "engine/engine_plan.h"

namespace pointnet {

class CpuRunner {
 public:
  explicit CpuRunner(const EnginePlan& plan);
  ~CpuRunner();
  CpuRunner(const CpuRunner&) = delete;
  CpuRunner& operator=(const CpuRunner&) = delete;

  // points (B, N, C) in host memory, normalised as in training; writes
  // log-probabilities, (B, classes) for cls or (B, N, parts) for seg.
  void run(const float* points, int B, int N, float* log_probs);

  // Calibration (fp32 plans only): called with every tile of each activation
  // int8_activation_names() lists, from several threads at once.
  using Observer = std::function<void(const std::string& name, const float* values, size_t count)>;
  void set_observer(Observer observer);

  // What the int8 GEMMs run on this CPU ("avx512-vnni" or "portable"), or "-".
  const char* int8_kernel() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// How fp32 engines run their 128 -> 1024 layers and the max over points on
// this CPU: "avx512-fused" (cpu/f32_linear_max.h) or "openblas" (GEMM, then
// the max); POINTNET_CPU_FP32_MAX=blas forces the latter (=fused, or unset:
// the former where the CPU has AVX-512F; another value throws).
const char* cpu_fp32_max_kernel();

}  // namespace pointnet
