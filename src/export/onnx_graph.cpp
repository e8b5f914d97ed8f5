#include "export/onnx_graph.h"

#include <cfloat>
#include <cmath>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "export/onnx_proto.h"
#include "model/dense.h"
#include "model/fold_batchnorm.h"

#ifndef POINTNET_VERSION
#define POINTNET_VERSION "unknown"
#endif

namespace pointnet {

namespace {

using onnx::Attribute;

// Emits the graph layer by layer. Tensors are (B, C, N) between per-point
// layers (PyTorch's Conv1d layout) and (B, C) after the max over points.
class PointNetExporter {
 public:
  PointNetExporter(const PointNet<float>& model, const OnnxExportOptions& options)
      : model_(model), options_(options) {}

  onnx::GraphBuilder build();

 private:
  std::vector<float> param(const std::string& name) const;
  const ParamInfo& info(const std::string& name) const;
  std::string unique(const std::string& base) { return base + "_" + std::to_string(counter_++); }

  // Linear (Conv kernel 1 over points, or Gemm over clouds), then BatchNorm and ReLU.
  std::string dense(const std::string& x, const std::string& linear, const std::string& bn, bool relu);
  std::string reduce(const std::string& op, const std::string& x, int64_t axis, bool keepdims);
  std::string tnet(const std::string& x, const std::string& prefix, int k, const std::string& output);
  std::string transform(const std::string& x, const std::string& t);  // (B,K,N) -> (T^T x) (B,K,N)
  std::string normalize(const std::string& x);
  std::string repeat_over_points(const std::string& global);  // (B,C) -> (B,C,N)

  const PointNet<float>& model_;
  const OnnxExportOptions& options_;
  onnx::GraphBuilder g_;
  int counter_ = 0;
};

const ParamInfo& PointNetExporter::info(const std::string& name) const {
  const int index = model_.params().find(name);
  PN_CHECK(index >= 0);
  return model_.params().infos()[index];
}

std::vector<float> PointNetExporter::param(const std::string& name) const {
  const int index = model_.params().find(name);
  PN_CHECK(index >= 0);
  std::vector<float> host(model_.params().infos()[index].count);
  model_.backend().download(host.data(), model_.params().value(index), host.size());
  return host;
}

std::string PointNetExporter::dense(const std::string& x, const std::string& linear, const std::string& bn,
                                    bool relu) {
  const ParamInfo& w = info(linear + ".weight");
  const bool conv = w.shape.size() == 3;  // Conv1d (out, in, 1) vs Linear (out, in)
  std::vector<float> weight = param(linear + ".weight"), bias = param(linear + ".bias");
  std::string weight_name = linear + ".weight", bias_name = linear + ".bias";
  const bool fold = !bn.empty() && options_.fold_batchnorm;
  if (fold) {
    fold_batchnorm(weight, bias, param(bn + ".weight"), param(bn + ".bias"), param(bn + ".running_mean"),
                   param(bn + ".running_var"));
    weight_name += "_bn_folded";
    bias_name += "_bn_folded";
  }
  g_.add_float_tensor(weight_name, w.shape, weight);
  g_.add_float_tensor(bias_name, info(linear + ".bias").shape, bias);
  std::string y = linear;
  if (conv)
    g_.add_node("Conv", {x, weight_name, bias_name}, {y}, {Attribute::integers("kernel_shape", {1})});
  else
    g_.add_node("Gemm", {x, weight_name, bias_name}, {y}, {Attribute::integer("transB", 1)});
  if (!bn.empty() && !fold) {
    std::vector<std::string> inputs = {y};
    for (const char* part : {".weight", ".bias", ".running_mean", ".running_var"})
      inputs.push_back(g_.add_float_tensor(bn + part, info(bn + part).shape, param(bn + part)));
    g_.add_node("BatchNormalization", inputs, {bn}, {Attribute::real("epsilon", static_cast<float>(kBatchNormEps))});
    y = bn;
  }
  if (relu) {
    g_.add_node("Relu", {y}, {y + ".relu"});
    y += ".relu";
  }
  return y;
}

std::string PointNetExporter::reduce(const std::string& op, const std::string& x, int64_t axis, bool keepdims) {
  // ReduceSum took its axes as an input from opset 13, ReduceMax/ReduceMean from opset 18.
  const bool axes_as_input = op == "ReduceSum" || options_.opset >= 18;
  const std::string y = unique(x + "." + op);
  const Attribute keep = Attribute::integer("keepdims", keepdims ? 1 : 0);
  if (axes_as_input)
    g_.add_node(op, {x, g_.add_int64_tensor(unique("axes"), {1}, {axis})}, {y}, {keep});
  else
    g_.add_node(op, {x}, {y}, {Attribute::integers("axes", {axis}), keep});
  return y;
}

std::string PointNetExporter::tnet(const std::string& x, const std::string& prefix, int k,
                                   const std::string& output) {
  const std::string p = prefix + ".";
  std::string h = dense(x, p + "conv1", p + "bn1", true);
  h = dense(h, p + "conv2", p + "bn2", true);
  h = dense(h, p + "conv3", p + "bn3", true);
  h = reduce("ReduceMax", h, 2, false);  // (B, 1024)
  h = dense(h, p + "fc1", p + "bn4", true);
  h = dense(h, p + "fc2", p + "bn5", true);
  h = dense(h, p + "fc3", "", false);    // (B, k*k)
  std::vector<float> identity(static_cast<size_t>(k) * k, 0.0f);
  for (int i = 0; i < k; ++i) identity[static_cast<size_t>(i) * k + i] = 1.0f;
  g_.add_float_tensor(p + "identity", {1, static_cast<int64_t>(k) * k}, identity);
  g_.add_node("Add", {h, p + "identity"}, {p + "plus_identity"});
  g_.add_int64_tensor(p + "shape", {3}, {-1, k, k});
  g_.add_node("Reshape", {p + "plus_identity", p + "shape"}, {output});
  return output;
}

std::string PointNetExporter::transform(const std::string& x, const std::string& t) {
  // pointnet.pytorch: bmm(x^T, T)^T, which is T^T x: only the small (B,K,K) tensor is transposed.
  const std::string tt = t + ".T";
  g_.add_node("Transpose", {t}, {tt}, {Attribute::integers("perm", {0, 2, 1})});
  const std::string y = x + ".transformed";
  g_.add_node("MatMul", {tt, x}, {y});
  return y;
}

std::string PointNetExporter::normalize(const std::string& x) {
  // As normalize_cloud(): subtract the centroid, divide by the largest distance
  // from it (a cloud of equal points stays at the origin: 0 / FLT_MIN = 0).
  const std::string centroid = reduce("ReduceMean", x, 2, true);      // (B, 3, 1)
  g_.add_node("Sub", {x, centroid}, {"centred"});
  g_.add_node("Mul", {"centred", "centred"}, {"centred_squared"});
  const std::string r2 = reduce("ReduceSum", "centred_squared", 1, true);  // (B, 1, N)
  const std::string max_r2 = reduce("ReduceMax", r2, 2, true);            // (B, 1, 1)
  g_.add_node("Sqrt", {max_r2}, {"radius"});
  g_.add_float_tensor("smallest_radius", {}, {FLT_MIN});
  g_.add_node("Max", {"radius", "smallest_radius"}, {"safe_radius"});
  g_.add_node("Div", {"centred", "safe_radius"}, {"normalized_points"});
  return "normalized_points";
}

std::string PointNetExporter::repeat_over_points(const std::string& global) {
  // Expand broadcasts (B, C, 1) against (1, 1, N); N from the input's shape.
  g_.add_node("Unsqueeze", {global, g_.add_int64_tensor("unsqueeze_axes", {1}, {2})}, {global + ".unsqueezed"});
  g_.add_node("Shape", {"points"}, {"points_shape"});
  g_.add_node("Gather", {"points_shape", g_.add_int64_tensor("points_axis", {1}, {2})}, {"num_points"},
              {Attribute::integer("axis", 0)});
  g_.add_node("Concat", {g_.add_int64_tensor("ones_2", {2}, {1, 1}), "num_points"}, {"expand_shape"},
              {Attribute::integer("axis", 0)});
  const std::string y = global + ".repeated";
  g_.add_node("Expand", {global + ".unsqueezed", "expand_shape"}, {y});
  return y;
}

onnx::GraphBuilder PointNetExporter::build() {
  const ModelConfig& config = model_.config();
  const bool seg = config.task == ModelTask::Segmentation;
  const onnx::Dim batch = options_.batch > 0 ? onnx::Dim{options_.batch, ""} : onnx::Dim{0, "batch"};
  const onnx::Dim points = options_.points > 0 ? onnx::Dim{options_.points, ""} : onnx::Dim{0, "points"};
  const int64_t k = config.num_classes;
  g_.add_input("points", {batch, {3, ""}, points});

  std::string x = options_.include_normalization ? normalize("points") : "points";
  x = transform(x, tnet(x, "feat.stn", 3, "trans"));                // (B, 3, N)
  x = dense(x, "feat.conv1", "feat.bn1", true);                       // (B, 64, N)
  if (config.feature_transform) x = transform(x, tnet(x, "feat.fstn", 64, "trans_feat"));
  const std::string pointfeat = x;
  x = dense(x, "feat.conv2", "feat.bn2", true);                       // (B, 128, N)
  x = dense(x, "feat.conv3", "feat.bn3", false);                      // (B, 1024, N), no ReLU
  const std::string global = reduce("ReduceMax", x, 2, false);        // (B, 1024)

  if (!seg) {
    x = dense(global, "fc1", "bn1", true);
    x = dense(x, "fc2", "bn2", true);  // dropout is the identity in eval mode
    x = dense(x, "fc3", "", false);    // (B, K)
    g_.add_node("LogSoftmax", {x}, {"log_probs"}, {Attribute::integer("axis", 1)});
    g_.add_output("log_probs", {batch, {k, ""}});
  } else {
    g_.add_node("Concat", {repeat_over_points(global), pointfeat}, {"concat_feature"},
                {Attribute::integer("axis", 1)});                    // (B, 1088, N): global first
    x = dense("concat_feature", "conv1", "bn1", true);
    x = dense(x, "conv2", "bn2", true);
    x = dense(x, "conv3", "bn3", true);
    x = dense(x, "conv4", "", false);                                 // (B, K, N)
    g_.add_node("Transpose", {x}, {"logits"}, {Attribute::integers("perm", {0, 2, 1})});
    g_.add_node("LogSoftmax", {"logits"}, {"log_probs"}, {Attribute::integer("axis", 2)});
    g_.add_output("log_probs", {batch, points, {k, ""}});
  }
  g_.add_output("trans", {batch, {3, ""}, {3, ""}});
  if (config.feature_transform) g_.add_output("trans_feat", {batch, {64, ""}, {64, ""}});
  return std::move(g_);
}

std::vector<std::pair<std::string, std::string>> metadata(const ModelConfig& config, const CheckpointInfo& info,
                                                          const OnnxExportOptions& options) {
  const bool seg = config.task == ModelTask::Segmentation;
  nlohmann::json architecture = {
      {"model", seg ? "PointNetDenseCls" : "PointNetCls"},
      {"task", config.task_name()},
      {"num_classes", config.num_classes},
      {"feature_transform", config.feature_transform},
      {"batchnorm_folded", options.fold_batchnorm}};
  std::vector<std::pair<std::string, std::string>> props = {
      {"architecture", architecture.dump()},
      {"class_names", nlohmann::json(info.class_names).dump()},
      {"input", options.include_normalization
                    ? "points (B, 3, N) float32: raw xyz; the graph centres each cloud and scales it to the unit sphere"
                    : "points (B, 3, N) float32: xyz centred on the cloud's centroid and divided by the largest "
                      "distance from it (unit sphere), as pointnet predict does"},
      {"up_axis", info.up_axis == 1 ? "y" : "z"}};
  if (seg) {
    props.push_back({"part_offset", nlohmann::json(info.part_offset).dump()});
    props.push_back({"part_count", nlohmann::json(info.part_count).dump()});
    if (!info.class_choice.empty()) props.push_back({"class_choice", info.class_choice});
  }
  return props;
}

}  // namespace

std::string export_onnx(const PointNet<float>& model, const CheckpointInfo& info, const OnnxExportOptions& options) {
  onnx::ModelInfo model_info;
  model_info.opset = options.opset;
  onnx::ir_version_for_opset(options.opset);  // refuses an unsupported opset before any work
  if (options.batch < 0 || options.points < 0) fail("a fixed batch or point count must be positive");
  model_info.producer_name = "pointnet";
  model_info.producer_version = POINTNET_VERSION;
  model_info.doc_string = "PointNet (pointnet.pytorch's " +
                          std::string(model.config().task == ModelTask::Segmentation ? "PointNetDenseCls" : "PointNetCls") +
                          ") in eval mode, exported by pointnet export-onnx";
  model_info.metadata = metadata(model.config(), info, options);
  PointNetExporter exporter(model, options);
  const onnx::GraphBuilder graph = exporter.build();
  return onnx::model_bytes(graph, "pointnet_" + model.config().task_name(), model_info);
}

}  // namespace pointnet
