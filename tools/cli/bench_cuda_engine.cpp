#include "bench_cuda_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <vector>

#include "core/errors.h"
#include "core/rng.h"
#include "data/batch.h"  // mix_seed
#include "engine/cuda_runner.h"
#include "engine/folded_model.h"

namespace pointnet::cli {

namespace {

nlohmann::json stats_json(const std::vector<double>& ms) {
  const LatencyStats s = summarize_latencies(ms);
  return {{"median", s.median}, {"p99", s.p99}, {"min", s.min}, {"mean", s.mean}, {"max", s.max}};
}

// ||got - want|| / ||want|| over the first `clouds` clouds' outputs.
double relative_error(const float* got, const std::vector<float>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    if (!std::isfinite(got[i])) return INFINITY;
    num += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    den += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(num / (den > 0 ? den : 1));
}

}  // namespace

nlohmann::json bench_cuda_engine(const EnginePlan& plan, int B, int N, uint64_t seed, const TimingPlan& timing) {
  const ModelConfig& config = plan.model.config;
  const bool seg = config.task == ModelTask::Segmentation;
  const int C = config.input_channels, K = config.num_classes;
  CudaRunner runner(plan);
  // The batch goes straight into the runner's pinned input (as trtexec's own
  // pinned buffers): points uniform in [-1, 1), normals too (unnormalised).
  float* in = runner.input_buffer(B, N);
  float* out = runner.output_buffer(B, N);
  Rng data_rng(mix_seed(seed, 0xBE4C));
  for (size_t i = 0; i < static_cast<size_t>(B) * N * C; ++i) in[i] = data_rng.uniform(-1.0f, 1.0f);

  // Check before timing (house rule 7): the first clouds against the CPU fp32 reference.
  runner.run(in, B, N, out);
  const int check = std::min(B, 4);
  const std::vector<float> want = folded_forward_reference(plan.model, in, check, N);
  const double check_error = relative_error(out, want);
  if (!std::isfinite(check_error)) fail("bench: the CUDA engine's output is not finite");

  const std::vector<double> e2e = time_iterations(timing, [&] { runner.run(in, B, N, out); }, [] {});
  // The phases, as many iterations again (at most 2000: each waits for its events).
  std::vector<double> h2d, compute, d2h;
  const size_t phase_iters = std::min<size_t>(e2e.size(), 2000);
  for (size_t i = 0; i < phase_iters; ++i) {
    const CudaRunTiming t = runner.run_timed(B, N);
    h2d.push_back(t.h2d_ms);
    compute.push_back(t.compute_ms);
    d2h.push_back(t.d2h_ms);
  }

  // Pipelined throughput (as trtexec's, which keeps inferences queued): a
  // second runner, and each runner's next batch queued while the other's
  // runs, so that one batch's upload and download overlap the other's
  // kernels. A sample is the time from one batch's end to the next's.
  CudaRunner second(plan);
  float* in2 = second.input_buffer(B, N);
  float* out2 = second.output_buffer(B, N);
  std::copy(in, in + static_cast<size_t>(B) * N * C, in2);
  second.run(in2, B, N, out2);
  CudaRunner* running = &runner;
  CudaRunner* queued = &second;
  running->submit(B, N);
  const std::vector<double> handoffs = time_iterations(timing, [&] {
    queued->submit(B, N);
    running->synchronize();
    std::swap(running, queued);
  }, [] {});
  running->synchronize();
  const LatencyStats piped = summarize_latencies(handoffs);
  // Both outputs now come from overlapped runs: the same bytes, or the two
  // runners disturbed each other.
  const size_t outputs = static_cast<size_t>(B) * (seg ? N : 1) * K;
  const bool same_output = std::memcmp(out, out2, sizeof(float) * outputs) == 0;

  const LatencyStats s = summarize_latencies(e2e);
  const LatencyStats gpu = summarize_latencies(compute);
  return {{"iters", s.count},
          {"clouds_per_s", B / s.median},
          {"latency_ms", {{"median", 1e3 * s.median}, {"p99", 1e3 * s.p99}, {"min", 1e3 * s.min},
                          {"mean", 1e3 * s.mean}, {"max", 1e3 * s.max}}},
          {"cv", s.cv},
          {"h2d_ms", stats_json(h2d)},
          {"d2h_ms", stats_json(d2h)},
          {"gpu_compute_ms", stats_json(compute)},
          {"gpu_compute_cv", gpu.cv},
          {"gpu_clouds_per_s", B / (gpu.median * 1e-3)},
          {"pipelined_clouds_per_s", B / piped.median},
          {"pipelined_ms", 1e3 * piped.median},
          {"pipelined_same_output", same_output},
          {"phase_iters", phase_iters},
          {"check_rel_error", check_error},
          {"check_clouds", check},
          {"upload_ms", percentile(h2d, 0.5)},
          {"with_upload_ms", 1e3 * s.median},
          {"peak_device_mb", static_cast<double>(runner.device_bytes()) / (1 << 20)},
          {"device_name", runner.device_name()},
          {"trunk_kernels", runner.trunk_kernels()},
          {"outputs", outputs}};
}

void print_cuda_engine_report(const nlohmann::json& r) {
  const auto line = [](const char* what, const nlohmann::json& ms, const char* extra) {
    std::printf("  %-11s median %.4f ms  p99 %.4f  min %.4f  mean %.4f  max %.4f%s\n", what, ms["median"].get<double>(),
                ms["p99"].get<double>(), ms["min"].get<double>(), ms["mean"].get<double>(), ms["max"].get<double>(), extra);
  };
  std::printf("  throughput %.1f clouds/s end to end (batch / median latency); GPU compute alone %.1f clouds/s\n",
              r["clouds_per_s"].get<double>(), r["gpu_clouds_per_s"].get<double>());
  std::printf("  pipelined  %.1f clouds/s end to end, two batches in flight (one's copies under the other's kernels)\n",
              r["pipelined_clouds_per_s"].get<double>());
  if (!r["pipelined_same_output"].get<bool>())
    std::printf("  WARNING    the two pipelined runners gave different scores for the same clouds\n");
  char cv[64];
  std::snprintf(cv, sizeof cv, "  cv %.1f%%", 100 * r["cv"].get<double>());
  line("latency", r["latency_ms"], cv);
  std::printf("              (end to end: pinned host -> device, kernels, device -> pinned host; one CUDA graph)\n");
  line("H2D", r["h2d_ms"], "");
  std::snprintf(cv, sizeof cv, "  cv %.1f%%", 100 * r["gpu_compute_cv"].get<double>());
  line("GPU compute", r["gpu_compute_ms"], cv);
  line("D2H", r["d2h_ms"], "");
  std::printf("  check      ||out - ref|| / ||ref|| = %.2e on %d clouds (ref: the CPU fp32 folded model)\n",
              r["check_rel_error"].get<double>(), r["check_clouds"].get<int>());
}

}  // namespace pointnet::cli
