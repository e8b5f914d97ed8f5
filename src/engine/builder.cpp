#include "engine/builder.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"
#include "cpu/int8_gemm.h"
#include "engine/cuda_weights.h"

namespace pointnet {

Int8LayerWeights quantize_layer(const float* weight, int out, int in) {
  cpu::Int8Weights q = cpu::Int8Weights::quantize(weight, out, in);
  Int8LayerWeights w;
  w.out = out;
  w.in = in;
  w.q = std::move(q.q);
  w.scale = std::move(q.scale);
  return w;
}

EnginePlan build_plan(FoldedModel model, const BuildOptions& options, const std::vector<float>& calib_clouds,
                      int calib_count, int calib_points) {
  if (options.max_batch < 1 || options.max_points < 1)
    fail("engine limits must be at least 1 (max batch ", options.max_batch, ", max points ", options.max_points, ")");
  EnginePlan plan;
  plan.precision = options.precision;
  plan.device = options.device;
  plan.max_batch = options.max_batch;
  plan.max_points = options.max_points;
  nlohmann::json layers = nlohmann::json::object();
  for (const auto& [name, l] : named_layers(model)) layers[name] = options.precision == EnginePrecision::INT8 ? "fp32" : precision_name(options.precision);
  if (options.precision == EnginePrecision::INT8) {
    if (calib_count < 1) fail("an int8 engine needs calibration clouds (--calib DATA)");
    const CalibrationResult calib =
        calibrate(model, calib_clouds, calib_count, calib_points, options.calibration, options.percentile);
    plan.activation_scales = calib.scales;
    for (const Int8Layer& il : int8_layers(model)) {
      layers[il.layer] = il.per_cloud ? "int8 (weights quantised per cloud: a transform is folded in at run time)" : "int8";
      if (il.per_cloud) continue;
      if (il.layer == "head.0.point") {
        const FoldedLinear& h = model.head[0];
        std::vector<float> cols(static_cast<size_t>(h.out) * 64);
        for (int o = 0; o < h.out; ++o)
          std::copy_n(&h.weight[static_cast<size_t>(o) * h.in + 1024], 64, &cols[static_cast<size_t>(o) * 64]);
        plan.int8_weights[il.layer] = quantize_layer(cols.data(), h.out, 64);
        continue;
      }
      for (const auto& [name, l] : named_layers(model))
        if (name == il.layer) plan.int8_weights[il.layer] = quantize_layer(l->weight.data(), l->out, l->in);
    }
    if (model.config.task == ModelTask::Segmentation) layers["head.0"] = "global part fp32 (once per cloud); point part: see head.0.point";
    plan.build["calibration"] = {{"method", calibration_method_name(options.calibration)},
                                 {"clouds", calib_count},
                                 {"points", calib_points},
                                 {"max_seen", calib.max_seen}};
    if (options.calibration == CalibrationMethod::Percentile) plan.build["calibration"]["percentile"] = options.percentile;
  }
  // The CUDA runner keeps conv1, the per-cloud layers and the logits in fp32 in every precision.
  plan.build["layers"] = options.device == "cuda" ? cuda_layer_precisions(model, options.precision) : layers;
  plan.model = std::move(model);
  return plan;
}

void describe_plan(EnginePlan& plan, const CheckpointInfo& info) {
  plan.class_names = info.class_names;
  plan.part_offset = info.part_offset;
  plan.part_count = info.part_count;
  plan.class_choice = info.class_choice;
  plan.up_axis = info.up_axis;
  const auto& t = info.trainer;
  if (t.is_object() && t.contains("recipe")) {
    plan.trained_points = t["recipe"].value("points", plan.trained_points);
    if (t["recipe"].value("sampling", "") == "fps") plan.build["sampling"] = "fps";
  }
}

}  // namespace pointnet
