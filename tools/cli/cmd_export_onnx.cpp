// pointnet export-onnx: a checkpoint as a standard ONNX model (opset 17 by
// default) for ONNX Runtime, TensorRT, OpenVINO.
#include <cstdio>

#include "commands.h"
#include "core/atomic_file.h"
#include "core/errors.h"
#include "export/onnx_graph.h"
#include "model_loading.h"

namespace pointnet::cli {
namespace {

// "dynamic" -> 0 (a symbolic dimension), or a positive size.
int64_t parse_dim(const std::string& flag, const std::string& text) {
  if (text == "dynamic") return 0;
  size_t used = 0;
  long long value = 0;
  try {
    value = std::stoll(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != text.size() || value < 1 || value > (1LL << 30))
    fail(flag, ": expected \"dynamic\" or a positive integer, got \"", text, "\"");
  return value;
}

}  // namespace

Command add_export_onnx(CLI::App& app) {
  CLI::App* sub = app.add_subcommand("export-onnx", "Write a checkpoint as an ONNX model (eval mode)");
  auto model_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto batch = std::make_shared<std::string>("dynamic");
  auto points = std::make_shared<std::string>("dynamic");
  auto opset = std::make_shared<int>(17);
  auto normalization = std::make_shared<bool>(false);
  auto keep_bn = std::make_shared<bool>(false);
  sub->add_option("--model", *model_path, "checkpoint (.safetensors)")->required();
  sub->add_option("--out", *out, "ONNX file to write (atomically)")->required();
  sub->add_option("--batch", *batch, "batch dimension: dynamic or a fixed size");
  sub->add_option("--points", *points, "points per cloud: dynamic or a fixed count");
  sub->add_option("--opset", *opset, "ONNX opset of the default domain")->check(CLI::Range(13, 21));
  sub->add_flag("--include-normalization", *normalization,
                "centre and scale each cloud to the unit sphere inside the graph, so raw clouds can be fed "
                "(default: the graph expects clouds already normalised, as pointnet predict feeds them)");
  sub->add_flag("--keep-batchnorm", *keep_bn,
                "emit BatchNormalization nodes instead of folding them into the Conv/Gemm weights");
  return {sub, [=] {
    OnnxExportOptions options;
    options.opset = *opset;
    options.batch = parse_dim("--batch", *batch);
    options.points = parse_dim("--points", *points);
    options.include_normalization = *normalization;
    options.fold_batchnorm = !*keep_bn;
    LoadedModel m = load_model(*model_path, "cpu", "fp32", false);
    const std::string bytes = export_onnx(*m.model, m.checkpoint.info, options);
    write_file_atomic(*out, bytes);
    std::printf("%s: ONNX opset %d, %s%s, %zu bytes\n", out->c_str(), options.opset,
                m.checkpoint.info.config.task_name().c_str(), m.checkpoint.info.config.feature_transform ? " + feature transform" : "",
                bytes.size());
    return 0;
  }};
}

}  // namespace pointnet::cli
