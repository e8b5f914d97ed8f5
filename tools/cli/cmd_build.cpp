// pointnet build: a checkpoint becomes an engine file for one precision and
// device (BatchNorm folded, int8 calibrated on training clouds).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "commands.h"
#include "data/batch.h"
#include "data/fps.h"
#include "engine/builder.h"
#include "engine/engine_file.h"
#include "eval/evaluate.h"
#include "model_loading.h"

namespace pointnet::cli {

namespace {

struct BuildFlags {
  std::string model, out, precision = "fp32", device = "cpu", calib, calib_split = "train",
                          calib_method = "entropy";
  int calib_clouds = 512, max_batch = 65536, max_points = 262144;
  double percentile = 99.99;
  bool json = false;
};

// The first `count` shapes of a seeded shuffle of the split, sampled as eval does.
std::vector<float> calibration_clouds(const BuildFlags& f, const CheckpointInfo& info, int points, int* count) {
  LoadOptions load;
  load.split = f.calib_split;
  load.with_parts = info.config.task == ModelTask::Segmentation;
  load.class_choice = info.class_choice;
  Dataset data = load_dataset(f.calib, load);
  align_to_model(data, info);
  if (info.trainer.is_object() && info.trainer.contains("recipe") &&
      info.trainer["recipe"].value("sampling", "") == "fps")
    keep_farthest_points(data, points);
  std::vector<int> order(data.shapes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  Rng rng(kEvaluationSeed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(static_cast<uint32_t>(i))]);
  *count = std::min<int>(f.calib_clouds, static_cast<int>(order.size()));
  if (*count == 0) fail(f.calib, ": the ", f.calib_split, " split has no shapes to calibrate on");
  order.resize(*count);
  SampleOptions sampling;
  sampling.num_points = points;
  sampling.up_axis = data.up_axis;
  sampling.use_normals = info.config.input_channels == 6;
  if (sampling.use_normals && !data.has_normals)
    fail(f.calib, ": the model takes normals (trained with --use-normals), but this dataset has none");
  std::vector<float> clouds(static_cast<size_t>(*count) * points * sampling.channels());
  std::vector<int32_t> labels(static_cast<size_t>(*count) * (load.with_parts ? points : 1));
  assemble_batch(data, order, sampling, kEvaluationSeed, load.with_parts, clouds.data(), labels.data());
  return clouds;
}

int run_build(const BuildFlags& f) {
  BuildOptions options;
  options.precision = parse_precision(f.precision);
  options.device = f.device;
  options.max_batch = f.max_batch;
  options.max_points = f.max_points;
  options.calibration = parse_calibration_method(f.calib_method);
  options.percentile = f.percentile;
  if (f.device == "cpu" && options.precision != EnginePrecision::FP32 && options.precision != EnginePrecision::INT8)
    fail("build: --precision ", f.precision, " on the CPU: the CPU runs fp32 and int8 engines (tf32, fp16 and bf16: "
         "--device cuda)");
  if (options.precision == EnginePrecision::INT8 && f.calib.empty())
    fail("build: --precision int8 needs --calib DATA (training clouds to calibrate the activations on)");
  if (options.precision != EnginePrecision::INT8 && !f.calib.empty())
    fail("build: --calib is for --precision int8 only");

  LoadedModel m = load_model(f.model, "cpu", "fp32", false);
  const CheckpointInfo& info = m.checkpoint.info;
  int count = 0;
  std::vector<float> clouds;
  if (options.precision == EnginePrecision::INT8) clouds = calibration_clouds(f, info, m.trained_points, &count);
  EnginePlan plan = build_plan(fold_model(*m.model), options, clouds, count, m.trained_points);
  describe_plan(plan, info);
  plan.build["source"] = std::filesystem::path(f.model).filename().string();
  write_engine(f.out, plan);
  const auto bytes = std::filesystem::file_size(f.out);
  if (f.json) {
    std::cout << nlohmann::json({{"engine", f.out}, {"bytes", bytes}, {"precision", f.precision}, {"device", f.device},
                                 {"build", plan.build}, {"activation_scales", plan.activation_scales}})
                     .dump()
              << "\n";
    return 0;
  }
  std::printf("pointnet build: %s -> %s (%s, %s, %.1f MiB)\n", f.model.c_str(), f.out.c_str(), f.precision.c_str(),
              f.device.c_str(), static_cast<double>(bytes) / (1 << 20));
  std::printf("  BatchNorm folded into every layer; limits: batch <= %d, points <= %d\n", f.max_batch, f.max_points);
  if (options.precision == EnginePrecision::INT8)
    std::printf("  calibrated on %d clouds of %s (%s split, %s)\n", count, f.calib.c_str(), f.calib_split.c_str(),
                f.calib_method.c_str());
  if (options.precision == EnginePrecision::INT8 || f.device == "cuda") {
    for (const auto& [layer, how] : plan.build["layers"].items())
      std::printf("  %-14s %s\n", layer.c_str(), how.get<std::string>().c_str());
  }
  return 0;
}

}  // namespace

Command add_build(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("build", "Build an inference engine from a checkpoint (CPU: fp32, int8; CUDA: all five)");
  auto f = std::make_shared<BuildFlags>();
  sub->add_option("--model", f->model, "checkpoint (.safetensors, or a pointnet.pytorch .pth)")->required();
  sub->add_option("--out", f->out, "engine file to write")->required();
  sub->add_option("--precision", f->precision, "fp32, tf32, fp16, bf16 or int8 (the CPU runs fp32 and int8)")
      ->check(CLI::IsMember({"fp32", "tf32", "fp16", "bf16", "int8"}));
  sub->add_option("--device", f->device, "cpu or cuda (the device the engine runs on)")->check(CLI::IsMember({"cpu", "cuda"}));
  sub->add_option("--calib", f->calib, "int8: dataset (folder or pack) whose clouds calibrate the activations");
  sub->add_option("--calib-split", f->calib_split, "split of --calib to use (never the test split you score on)");
  sub->add_option("--calib-method", f->calib_method, "minmax, percentile or entropy")
      ->check(CLI::IsMember({"minmax", "percentile", "entropy"}));
  sub->add_option("--calib-clouds", f->calib_clouds, "clouds to calibrate on")->check(CLI::Range(1, 1000000));
  sub->add_option("--percentile", f->percentile, "for --calib-method percentile")->check(CLI::Range(50.0, 100.0));
  sub->add_option("--max-batch", f->max_batch, "largest batch the engine accepts")->check(CLI::Range(1, 1 << 20));
  sub->add_option("--max-points", f->max_points, "largest cloud the engine accepts")->check(CLI::Range(1, 1 << 24));
  sub->add_flag("--json", f->json, "print one JSON object");
  return {sub, [f] { return run_build(*f); }};
}

}  // namespace pointnet::cli
