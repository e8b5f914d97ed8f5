// pointnet bench on a CUDA engine, reported the way trtexec reports a
// TensorRT engine: end-to-end latency and throughput from pinned host memory,
// then host-to-device, GPU compute and device-to-host times from CUDA events.
#pragma once
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "bench/latency_stats.h"
#include "engine/engine_plan.h"

namespace pointnet::cli {

// Runs `plan` on a seeded random batch (B, N): checks the output against the
// CPU fp32 reference on the first clouds, then times. Returns the fields
// `pointnet bench --json` adds for it (docs/benchmarks.md): latency_ms,
// clouds_per_s, cv, iters, h2d_ms, d2h_ms, gpu_compute_ms, gpu_compute_cv,
// gpu_clouds_per_s, check_rel_error, check_clouds, upload_ms, with_upload_ms,
// peak_device_mb, device_name, trunk_kernels, phase_iters, outputs.
nlohmann::json bench_cuda_engine(const EnginePlan& plan, int B, int N, uint64_t seed, const TimingPlan& timing);

// The report's text lines for those fields.
void print_cuda_engine_report(const nlohmann::json& r);

}  // namespace pointnet::cli
