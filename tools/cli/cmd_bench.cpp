// pointnet bench: time the model's inference forward or one training step on a
// fixed random batch, and report latency statistics and throughput. Its --json
// object is a public contract (docs/benchmarks.md, "pointnet bench").
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/latency_stats.h"
#include "bench_cuda_engine.h"
#include "commands.h"
#include "core/errors.h"
#include "core/rng.h"
#include "cuda/cuda_backend.h"
#include "data/batch.h"
#include "cpu/int8_gemm.h"
#include "engine/builder.h"
#include "engine/cpu_runner.h"
#include "engine/engine_file.h"
#include "engine/engine_predictor.h"
#include "model/device_batch.h"
#include "model_loading.h"
#include "train/adam.h"
#include "train/loss_scaler.h"
#include "train/train_step.h"

namespace pointnet::cli {

namespace {

struct BenchOptions {
  std::string task = "cls";
  std::string device = "cpu";
  std::string precision = "fp32";
  int batch = 32;
  int points = 1024;
  bool train = false;
  bool feature_transform = false;
  bool fp32_fc = false;  // the per-cloud layers' GEMMs in fp32 (as `pointnet train --fp32-fc`)
  int classes = 0;  // 0: 40 (cls) or 50 (seg)
  std::string model_path;
  int warmup = 3;
  int iters = 0;       // 0: not given
  double seconds = 0;  // 0: not given
  uint64_t seed = 1;
  bool json = false;
  std::string runner = "engine";  // CPU inference: "engine" (folded, fused; what `pointnet build` makes) or "model"
};

#ifdef POINTNET_HAS_CUDA
// What the CUDA backend held at its peak, blocks of one use and size counted
// together, largest total first: [{"use", "mib", "count"}, ...].
nlohmann::json peak_blocks_json(const std::vector<CudaBackend::HeldBlock>& blocks) {
  struct Group {
    std::string use;
    size_t bytes = 0;
    int count = 0;
  };
  std::vector<Group> groups;
  for (const auto& b : blocks) {
    auto same = std::find_if(groups.begin(), groups.end(),
                             [&](const Group& g) { return g.use == b.use && g.bytes == b.bytes; });
    if (same == groups.end()) groups.push_back({b.use, b.bytes, 1});
    else ++same->count;
  }
  std::stable_sort(groups.begin(), groups.end(),
                   [](const Group& a, const Group& b) { return a.bytes * a.count > b.bytes * b.count; });
  nlohmann::json out = nlohmann::json::array();
  for (const Group& g : groups)
    out.push_back({{"use", g.use}, {"mib", static_cast<double>(g.bytes) / (1 << 20)}, {"count", g.count}});
  return out;
}
#endif

// Defaults when neither --iters nor --seconds is given: enough iterations for
// a median, and enough time for a p99 when iterations are fast (GPU).
constexpr int kDefaultMinIters = 10;
constexpr double kDefaultMinSeconds = 3.0;

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

// Latencies in milliseconds for the report.
nlohmann::json latency_json(const LatencyStats& s) {
  return {{"median", 1e3 * s.median}, {"p99", 1e3 * s.p99}, {"min", 1e3 * s.min}, {"mean", 1e3 * s.mean},
          {"max", 1e3 * s.max}};
}

TimingPlan timing_plan(const BenchOptions& o) {
  TimingPlan plan;
  plan.warmup = o.warmup;
  if (o.iters > 0) {
    plan.min_iters = o.iters;
    plan.max_iters = o.iters;
  } else if (o.seconds > 0) {
    plan.min_iters = 1;
    plan.min_seconds = o.seconds;
  } else {
    plan.min_iters = kDefaultMinIters;
    plan.min_seconds = kDefaultMinSeconds;
  }
  return plan;
}

// The engine plan to time on the GPU: an engine file built for CUDA, or (CUDA
// inference with --runner engine) one built here from the seeded random
// weights, int8 calibrated on the first clouds of the benchmark's own batch.
bool cuda_engine_plan(const BenchOptions& o, const CLI::App& sub, EnginePlan* plan) {
  if (!o.model_path.empty()) {
    if (!is_engine_file(o.model_path)) return false;
    *plan = read_engine(o.model_path);
    if (plan->device != "cuda") return false;
    if (o.train) fail("bench: ", o.model_path, " is an engine: it runs inference only (drop --train)");
    if (sub.count("--precision") && o.precision != precision_name(plan->precision))
      fail("bench: ", o.model_path, " was built for ", precision_name(plan->precision), ", not --precision ", o.precision);
    return true;
  }
  if (o.device != "cuda" || o.train || o.runner != "engine") return false;
  ModelConfig config;
  config.task = o.task == "seg" ? ModelTask::Segmentation : ModelTask::Classification;
  config.num_classes = o.classes > 0 ? o.classes : (o.task == "seg" ? 50 : 40);
  config.feature_transform = o.feature_transform;
  auto cpu = make_backend("cpu", "fp32");
  PointNet<float> model(config, *cpu);
  Rng init(mix_seed(o.seed, 0x1417));  // the trainer's initialisation stream
  model.initialize(init);
  BuildOptions build;
  build.precision = parse_precision(o.precision);
  build.device = "cuda";
  const int calib = std::min(o.batch, 32);
  std::vector<float> clouds(static_cast<size_t>(calib) * o.points * 3);
  Rng data_rng(mix_seed(o.seed, 0xBE4C));  // bench_cuda_engine's batch starts with these clouds
  for (float& v : clouds) v = data_rng.uniform(-1.0f, 1.0f);
  *plan = build_plan(fold_model(model), build, clouds, build.precision == EnginePrecision::INT8 ? calib : 0, o.points);
  return true;
}

int run_cuda_engine_bench(const BenchOptions& o, const EnginePlan& plan) {
  const ModelConfig& config = plan.model.config;
  const int B = o.batch, N = o.points;
  const nlohmann::json r = bench_cuda_engine(plan, B, N, o.seed, timing_plan(o));
  nlohmann::json out = {{"task", config.task_name()},
                        {"device", "cuda"},
                        {"precision", precision_name(plan.precision)},
                        {"batch", B},
                        {"points", N},
                        {"train", false},
                        {"feature_transform", config.feature_transform},
                        {"classes", config.num_classes},
                        {"model", o.model_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.model_path)},
                        {"seed", o.seed},
                        {"threads", omp_get_max_threads()},
                        {"warmup", o.warmup},
                        {"peak_rss_mb", peak_rss_mb()},
                        {"runner", "engine"}};
  out.update(r);
  if (o.json) {
    std::cout << out.dump() << "\n";
    return 0;
  }
  std::printf("pointnet bench: %s inference, cuda %s engine, batch %d x %d points%s, %s\n", config.task_name().c_str(),
              precision_name(plan.precision), B, N, config.feature_transform ? ", feature transform" : "",
              r["device_name"].get<std::string>().c_str());
  const std::string weights = o.model_path.empty() ? "random weights (seed " + std::to_string(o.seed) + ")" : o.model_path;
  std::printf("  model      %s, %d %s\n", weights.c_str(), config.num_classes,
              config.task == ModelTask::Segmentation ? "parts" : "classes");
  std::printf("  timed      %d iterations after %d warm-up (CUDA graph replays); phases over %d more\n",
              r["iters"].get<int>(), o.warmup, r["phase_iters"].get<int>());
  print_cuda_engine_report(r);
  std::printf("  memory     peak RSS %.1f MiB, device %.1f MiB (engine weights and buffers)\n", out["peak_rss_mb"].get<double>(),
              r["peak_device_mb"].get<double>());
  return 0;
}

int run_bench(const BenchOptions& o, const CLI::App& sub) {
  const bool cuda = o.device == "cuda";
  if (cuda) {
    std::string why;
    if (!cuda_device_available(&why)) fail("bench: --device cuda needs a CUDA GPU: ", why);
  }
  if (o.fp32_fc && (!o.model_path.empty() || o.device != "cuda" || !(o.train || o.runner == "model")))
    fail("bench: --fp32-fc times the CUDA training code's model (--device cuda with --train or --runner model, "
         "random weights, no --model)");
  if (o.precision == "int8" && (o.train || (cuda && o.runner == "model")))
    fail("bench: --precision int8 is engine inference only (an int8 engine); drop --train / --runner model");
  if (EnginePlan plan; cuda_engine_plan(o, sub, &plan)) return run_cuda_engine_bench(o, plan);
  if (o.train && o.batch < 2)
    fail("bench: --train needs --batch of at least 2 (BatchNorm needs two clouds), got ", o.batch);

  // The model: a checkpoint, or seeded random weights (PyTorch's initialisation).
  std::unique_ptr<Backend<float>> backend;
  std::unique_ptr<PointNet<float>> model;
  LoadedModel loaded;
  ModelConfig config;
  if (!o.model_path.empty()) {
    loaded = load_model(o.model_path, o.device, o.precision == "int8" ? "fp32" : o.precision);
    config = loaded.checkpoint.info.config;
    if (loaded.is_engine && o.train) fail("bench: ", o.model_path, " is an engine: it runs inference only (drop --train)");
    if (sub.count("--task") && o.task != config.task_name())
      fail("bench: --task ", o.task, " but ", o.model_path, " is a ", config.task_name(), " model");
    if (sub.count("--classes") && o.classes != config.num_classes)
      fail("bench: --classes ", o.classes, " but ", o.model_path, " has ", config.num_classes);
    if (sub.count("--feature-transform") && !config.feature_transform)
      fail("bench: --feature-transform but ", o.model_path, " has no feature transform");
    backend = std::move(loaded.backend);
    model = std::move(loaded.model);
  } else {
    config.task = o.task == "seg" ? ModelTask::Segmentation : ModelTask::Classification;
    config.num_classes = o.classes > 0 ? o.classes : (o.task == "seg" ? 50 : 40);
    config.feature_transform = o.feature_transform;
    backend = make_backend(o.device, o.precision == "int8" ? "fp32" : o.precision, o.fp32_fc);
    model = std::make_unique<PointNet<float>>(config, *backend);
    Rng init(mix_seed(o.seed, 0x1417));  // the trainer's initialisation stream
    model->initialize(init);
  }
  const bool seg = config.task == ModelTask::Segmentation;
  const int B = o.batch, N = o.points, K = config.num_classes;

  // A fixed random batch: points uniform in [-1, 1)^3, labels uniform in 0..K-1.
  Rng data_rng(mix_seed(o.seed, 0xBE4C));
  std::vector<float> host_points(static_cast<size_t>(B) * N * 3);
  for (float& v : host_points) v = data_rng.uniform(-1.0f, 1.0f);
  std::vector<int32_t> host_labels(static_cast<size_t>(B) * (seg ? N : 1));
  for (int32_t& l : host_labels) l = static_cast<int32_t>(data_rng.below(static_cast<uint32_t>(K)));

  // CPU inference runs the engine (BatchNorm folded, fused tiles; int8 calibrated
  // on this batch), as `pointnet build` would make it, unless --runner model.
  std::unique_ptr<Predictor> engine;
  if (loaded.is_engine) {
    engine = std::move(loaded.predictor);
  } else if (!cuda && !o.train && (o.runner == "engine" || o.precision == "int8")) {
    BuildOptions build;
    build.precision = parse_precision(o.precision);
    const EnginePlan plan = build_plan(fold_model(*model), build, host_points, B, N);
    engine = make_engine_predictor(plan, "bench");
  }
  const bool run_engine = engine != nullptr;
  if (!backend) backend = make_backend("cpu", "fp32");  // an engine file: a CPU backend for the batch and timing
  Backend<float>& be = *backend;
  DeviceBatch<float> batch(be);
  const float* points = batch.points(host_points.data(), host_points.size());
  const int32_t* labels = batch.labels(host_labels.data(), host_labels.size());
  be.synchronize();

  const TimingPlan plan = timing_plan(o);
  auto sync = [&be] { be.synchronize(); };

  std::vector<double> samples, upload_samples, with_upload_samples;
  bool step_graph = false;  // --train: the timed steps replayed a recorded step (CUDA graph)
  if (run_engine) {
    // Host clouds in, host log-probs out: on the CPU there is nothing to upload.
    samples = time_iterations(plan, [&] { engine->predict(host_points.data(), B, N); }, sync);
    upload_samples.assign(samples.size(), 0.0);
    with_upload_samples = samples;
  } else if (!o.train) {
    // The eval-mode forward on the batch already in device memory.
    samples = time_iterations(plan, [&] { model->forward(points, B, N, false); }, sync);
    // Then the same number of iterations with the batch uploaded first (from
    // pageable host memory), each phase timed on its own.
    TimingPlan again = plan;
    again.min_iters = again.max_iters = static_cast<int>(samples.size());
    again.min_seconds = 0;
    again.warmup = std::min(plan.warmup, 1);
    const auto phases = time_phases(
        again,
        {[&] { batch.points(host_points.data(), host_points.size()); },
         [&] { model->forward(points, B, N, false); }},
        sync);
    upload_samples = phases[0];
    for (size_t i = 0; i < phases[0].size(); ++i) with_upload_samples.push_back(phases[0][i] + phases[1][i]);
  } else {
    // One training step, as the trainer takes it (src/train/trainer.cpp):
    // training forward with dropout, loss (read back to the host), backward,
    // Adam at pointnet.pytorch's first learning rate. The batch stays in device
    // memory; the trainer also uploads each batch (see upload_ms without --train).
    // fp16 steps use the trainer's dynamic loss scaling (and its overflow check).
    Adam<float> adam(be, model->params().trainable_count());
    LossScaler scaler = o.precision == "fp16" ? LossScaler(LossScalerConfig{}) : LossScaler::disabled();
    TrainStep step(*model, adam, scaler);
    Rng dropout(mix_seed(o.seed, 0xD50));
    constexpr double kLr = 1e-3;
    samples = time_iterations(
        plan,
        [&] {
          const StepResult r = step.run(points, labels, B, N, kLr, &dropout);
          if (r.outcome == StepOutcome::kDiverged) fail("bench: the training loss became ", r.loss.total);
        },
        sync);
    step_graph = step.last_step_replayed();
  }

  const LatencyStats stats = summarize_latencies(samples);
  const double clouds_per_s = B / stats.median;
  const double rss_mb = peak_rss_mb();
  double device_mb = -1;
  std::string device_name;
  nlohmann::json device_blocks;
#ifdef POINTNET_HAS_CUDA
  if (auto* gpu = dynamic_cast<CudaBackend*>(&be)) {
    device_blocks = peak_blocks_json(gpu->device_blocks_at_peak());
    // The backend's own counter: the most bytes it held through cudaMalloc at
    // once (parameters, activations, Adam moments, grow-only scratch, the
    // cuBLAS workspace). Not included: the CUDA context and cuBLAS's internal
    // allocations, which cudaMemGetInfo would count (with other processes').
    device_mb = static_cast<double>(gpu->device_bytes_peak()) / (1 << 20);
    device_name = gpu->device_name();
  }
#endif
  const int threads = omp_get_max_threads();

  nlohmann::json out = {{"task", config.task_name()},
                        {"device", o.device},
                        {"precision", loaded.is_engine ? loaded.engine_precision : o.precision},
                        {"batch", B},
                        {"points", N},
                        {"train", o.train},
                        {"feature_transform", config.feature_transform},
                        {"classes", K},
                        {"model", o.model_path.empty() ? nlohmann::json(nullptr) : nlohmann::json(o.model_path)},
                        {"seed", o.seed},
                        {"threads", threads},
                        {"warmup", o.warmup},
                        {"iters", stats.count},
                        {"clouds_per_s", clouds_per_s},
                        {"latency_ms", latency_json(stats)},
                        {"cv", stats.cv},
                        {"peak_rss_mb", rss_mb},
                        {"runner", run_engine ? "engine" : "model"}};
  if (run_engine && out["precision"] == "int8") out["int8_kernel"] = cpu::int8_kernel_name();
  if (run_engine && out["precision"] == "fp32" && o.device != "cuda") out["fp32_max_kernel"] = cpu_fp32_max_kernel();

  if (o.train) out["step_graph"] = step_graph;
  if (o.fp32_fc) out["fp32_fc"] = true;
  if (!o.train) {
    out["upload_ms"] = 1e3 * percentile(upload_samples, 0.5);
    out["with_upload_ms"] = 1e3 * percentile(with_upload_samples, 0.5);
  }
  if (device_mb >= 0) {
    out["peak_device_mb"] = device_mb;
    out["peak_device_blocks"] = device_blocks;
    out["device_name"] = device_name;
  }
  if (o.json) {
    std::cout << out.dump() << "\n";
    return 0;
  }

  std::printf("pointnet bench: %s %s, %s %s, batch %d x %d points%s, %d threads%s%s\n", config.task_name().c_str(),
              o.train ? "training step" : "inference", o.device.c_str(), o.precision.c_str(), B, N,
              config.feature_transform ? ", feature transform" : "", threads,
              device_name.empty() ? "" : ", ", device_name.c_str());
  const std::string weights =
      o.model_path.empty() ? "random weights (seed " + std::to_string(o.seed) + ")" : o.model_path;
  std::printf("  model      %s, %d %s\n", weights.c_str(), K, seg ? "parts" : "classes");
  std::printf("  timed      %zu iterations after %d warm-up\n", stats.count, o.warmup);
  std::printf("  latency    median %s ms  p99 %s ms  min %s ms  mean %s ms  cv %s%%\n",
              fmt("%.3f", 1e3 * stats.median).c_str(), fmt("%.3f", 1e3 * stats.p99).c_str(),
              fmt("%.3f", 1e3 * stats.min).c_str(), fmt("%.3f", 1e3 * stats.mean).c_str(),
              fmt("%.1f", 100 * stats.cv).c_str());
  std::printf("  throughput %s clouds/s (batch / median latency)\n", fmt("%.1f", clouds_per_s).c_str());
  if (!o.train)
    std::printf("  upload     %s ms median host->device upload of the batch; %s ms median upload + forward\n",
                fmt("%.3f", out["upload_ms"].get<double>()).c_str(),
                fmt("%.3f", out["with_upload_ms"].get<double>()).c_str());
  std::printf("  memory     peak RSS %s MiB", fmt("%.1f", rss_mb).c_str());
  if (device_mb >= 0) std::printf(", peak device %s MiB (backend allocations)", fmt("%.1f", device_mb).c_str());
  std::printf("\n");
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("bench", "Time inference or a training step on a random batch (latency, clouds/s)");
  auto o = std::make_shared<BenchOptions>();
  sub->add_option("--task", o->task, "cls or seg")->check(CLI::IsMember({"cls", "seg"}));
  sub->add_option("--device", o->device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--precision", o->precision,
                  "fp32, tf32, fp16, bf16 (those three: --device cuda), int8 (inference: an int8 engine)")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16", "int8"}));
  sub->add_option("--runner", o->runner,
                  "inference: engine (folded and fused, as `pointnet build` makes it; on cuda the CUDA engine runner) or "
                  "model (the training code's forward)")
      ->check(CLI::IsMember({"engine", "model"}));
  sub->add_option("--batch", o->batch, "clouds per batch")->check(CLI::Range(1, 65536));
  sub->add_option("--points", o->points, "points per cloud")->check(CLI::Range(1, 1000000));
  sub->add_flag("--train", o->train, "time one training step (forward, loss, backward, Adam) instead of inference");
  sub->add_flag("--feature-transform", o->feature_transform, "with the 64x64 feature transform (STNkd)");
  sub->add_flag("--fp32-fc", o->fp32_fc,
                "with --precision tf32/bf16/fp16 on cuda: the fully connected layers over clouds in fp32 "
                "(as `pointnet train --fp32-fc`)");
  sub->add_option("--classes", o->classes, "outputs: classes (cls, default 40) or parts (seg, default 50)")
      ->check(CLI::Range(1, 100000))
      ->default_str("40 cls, 50 seg");
  sub->add_option("--model", o->model_path, "checkpoint to time (default: random weights from --seed)");
  sub->add_option("--seed", o->seed, "seed for the random weights and batch");
  sub->add_option("--warmup", o->warmup, "untimed iterations first")->check(CLI::Range(0, 1000000));
  auto* iters = sub->add_option("--iters", o->iters, "timed iterations (default: at least 10 and at least 3 s)")
                    ->check(CLI::Range(1, 1000000))
                    ->default_str("");
  auto* seconds = sub->add_option("--seconds", o->seconds, "time iterations for at least this many seconds")
                      ->check(CLI::Range(1e-6, 86400.0))
                      ->default_str("");
  iters->excludes(seconds);
  sub->add_flag("--json", o->json, "print one JSON object (a public contract: docs/benchmarks.md)");
  return {sub, [o, sub] { return run_bench(*o, *sub); }};
}

}  // namespace pointnet::cli
