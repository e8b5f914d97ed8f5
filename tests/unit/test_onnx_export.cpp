// `export_onnx`: the ModelProto bytes decoded with a test-only reader
// (onnx_reader.h): opset and IR version, typed inputs/outputs with their
// dim_params, a topologically ordered graph, initializers equal to the model's
// tensors (or to a BatchNorm fold computed here independently), metadata; and
// the graph run by a small ONNX evaluator (onnx_evaluator.h) against our own
// forward, for all four architectures. onnxruntime is not needed (CI has none):
// scripts/check_onnx.py does that comparison with the real tools.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "data/sampler.h"
#include "export/onnx_graph.h"
#include "model/dense.h"
#include "onnx_evaluator.h"
#include "onnx_reader.h"

namespace pointnet {
namespace {

using testing::OnnxModel;

struct Arch {
  ModelTask task;
  bool feature_transform;
  const char* name;
};
const Arch kArchs[] = {{ModelTask::Classification, false, "cls"},
                       {ModelTask::Classification, true, "cls+ft"},
                       {ModelTask::Segmentation, false, "seg"},
                       {ModelTask::Segmentation, true, "seg+ft"}};

bool is_batchnorm(const std::string& name) { return name.find(".bn") != std::string::npos || name.rfind("bn", 0) == 0; }
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// A model with PyTorch's initialisation and BatchNorm statistics and affine
// parameters drawn at random (some gammas negative), as if trained: folding
// must move every one of them into the weights.
struct TestModel {
  CpuBackend<float> backend;
  std::unique_ptr<PointNet<float>> model;
  CheckpointInfo info;

  TestModel(const Arch& arch, int classes, uint64_t seed) {
    info.config.task = arch.task;
    info.config.num_classes = classes;
    info.config.feature_transform = arch.feature_transform;
    for (int k = 0; k < classes; ++k) info.class_names.push_back("class_" + std::to_string(k));
    model = std::make_unique<PointNet<float>>(info.config, backend);
    Rng rng(seed);
    model->initialize(rng);
    const auto& infos = model->params().infos();
    for (size_t i = 0; i < infos.size(); ++i) {
      if (!is_batchnorm(infos[i].name)) continue;
      float* v = model->params().value(static_cast<int>(i));  // host memory on the CPU backend
      for (size_t j = 0; j < infos[i].count; ++j) {
        if (ends_with(infos[i].name, ".running_var")) v[j] = rng.uniform(0.05f, 0.6f);
        else if (ends_with(infos[i].name, ".running_mean")) v[j] = rng.uniform(-0.3f, 0.3f);
        else if (ends_with(infos[i].name, ".weight")) v[j] = rng.uniform(-0.4f, 1.6f);
        else v[j] = rng.uniform(-0.3f, 0.3f);
      }
    }
  }

  std::vector<float> param(const std::string& name) const {
    const int index = model->params().find(name);
    EXPECT_GE(index, 0) << name;
    const float* v = model->params().value(index);
    return std::vector<float>(v, v + model->params().infos()[index].count);
  }
};

OnnxModel export_and_decode(const TestModel& m, const OnnxExportOptions& options) {
  return testing::decode_model(export_onnx(*m.model, m.info, options));
}

// Every node's inputs come from the graph inputs, an initializer or an earlier node;
// every name is produced once; every graph output is produced.
void expect_topological(const OnnxModel& g) {
  std::set<std::string> known;
  for (const auto& i : g.inputs) known.insert(i.name);
  for (const auto& t : g.initializers) EXPECT_TRUE(known.insert(t.name).second) << "duplicate " << t.name;
  for (const auto& n : g.nodes) {
    for (const auto& in : n.inputs) EXPECT_TRUE(known.count(in)) << n.op_type << " reads " << in << " before it exists";
    for (const auto& out : n.outputs) EXPECT_TRUE(known.insert(out).second) << n.op_type << " rewrites " << out;
  }
  for (const auto& o : g.outputs) EXPECT_TRUE(known.count(o.name)) << "output " << o.name << " is never produced";
}

TEST(OnnxExport, OpsetInputsOutputsAndMetadata) {
  for (const Arch& arch : kArchs) {
    SCOPED_TRACE(arch.name);
    TestModel m(arch, 5, 11);
    const OnnxModel g = export_and_decode(m, {});
    EXPECT_EQ(g.ir_version, 8);
    ASSERT_EQ(g.opsets.size(), 1u);
    EXPECT_EQ(g.opsets.at(""), 17);
    EXPECT_EQ(g.producer_name, "pointnet");
    EXPECT_FALSE(g.producer_version.empty());
    EXPECT_EQ(nlohmann::json::parse(g.metadata.at("class_names")), nlohmann::json(m.info.class_names));
    const auto arch_json = nlohmann::json::parse(g.metadata.at("architecture"));
    EXPECT_EQ(arch_json.at("num_classes"), 5);
    EXPECT_EQ(arch_json.at("feature_transform"), arch.feature_transform);

    ASSERT_EQ(g.inputs.size(), 1u);
    EXPECT_EQ(g.inputs[0].name, "points");
    EXPECT_EQ(g.inputs[0].elem_type, 1);
    ASSERT_EQ(g.inputs[0].dims.size(), 3u);
    EXPECT_EQ(g.inputs[0].dims[0].param, "batch");
    EXPECT_EQ(g.inputs[0].dims[1].value, 3);
    EXPECT_EQ(g.inputs[0].dims[2].param, "points");

    const bool seg = arch.task == ModelTask::Segmentation;
    ASSERT_EQ(g.outputs.size(), arch.feature_transform ? 3u : 2u);
    EXPECT_EQ(g.outputs[0].name, "log_probs");
    ASSERT_EQ(g.outputs[0].dims.size(), seg ? 3u : 2u);
    EXPECT_EQ(g.outputs[0].dims[0].param, "batch");
    if (seg) {
      EXPECT_EQ(g.outputs[0].dims[1].param, "points");
    }
    EXPECT_EQ(g.outputs[0].dims.back().value, 5);
    EXPECT_EQ(g.outputs[1].name, "trans");
    EXPECT_EQ(g.outputs[1].dims[1].value, 3);
    if (arch.feature_transform) {
      EXPECT_EQ(g.outputs[2].name, "trans_feat");
      EXPECT_EQ(g.outputs[2].dims[2].value, 64);
    }
    expect_topological(g);
  }
}

TEST(OnnxExport, FixedShapesAndOtherOpsets) {
  TestModel m(kArchs[2], 4, 3);
  OnnxExportOptions options;
  options.batch = 8;
  options.points = 2048;
  options.opset = 18;
  const OnnxModel g = export_and_decode(m, options);
  EXPECT_EQ(g.opsets.at(""), 18);
  EXPECT_EQ(g.inputs[0].dims[0].value, 8);
  EXPECT_TRUE(g.inputs[0].dims[0].param.empty());
  EXPECT_EQ(g.inputs[0].dims[2].value, 2048);
  EXPECT_EQ(g.outputs[0].dims[1].value, 2048);
  // Opset 18 moved ReduceMax's axes from an attribute to an input.
  int reduce_max = 0;
  for (const auto& n : g.nodes)
    if (n.op_type == "ReduceMax") {
      ++reduce_max;
      EXPECT_EQ(n.inputs.size(), 2u);
      EXPECT_EQ(n.attributes.count("axes"), 0u);
    }
  EXPECT_EQ(reduce_max, 2);  // the input T-Net's max over points and the global feature's
  expect_topological(g);

  options.opset = 12;
  EXPECT_THROW(export_onnx(*m.model, m.info, options), Error);
}

TEST(OnnxExport, UnfoldedInitializersAreTheModelsTensors) {
  for (const Arch& arch : kArchs) {
    SCOPED_TRACE(arch.name);
    TestModel m(arch, 6, 21);
    OnnxExportOptions options;
    options.fold_batchnorm = false;
    const OnnxModel g = export_and_decode(m, options);
    std::map<std::string, const testing::OnnxTensor*> by_name;
    for (const auto& t : g.initializers) by_name[t.name] = &t;
    int bn_nodes = 0;
    for (const auto& n : g.nodes) bn_nodes += n.op_type == "BatchNormalization";
    int bn_layers = 0;
    for (const ParamInfo& p : m.model->params().infos()) {
      auto it = by_name.find(p.name);
      ASSERT_NE(it, by_name.end()) << p.name << " is not an initializer";
      EXPECT_EQ(it->second->dims, p.shape) << p.name;
      EXPECT_EQ(it->second->data_type, 1);
      EXPECT_EQ(it->second->floats, m.param(p.name)) << p.name;
      bn_layers += is_batchnorm(p.name) && ends_with(p.name, ".running_var");
    }
    EXPECT_EQ(bn_nodes, bn_layers);
    expect_topological(g);
  }
}

// The BatchNorm after a linear layer: "feat.stn.conv2" -> "feat.stn.bn2",
// "feat.stn.fc1" -> "feat.stn.bn4" (the T-Net's fc BNs follow its three conv
// BNs), "fc2" -> "bn2", "conv3" -> "bn3".
std::string batchnorm_of(const std::string& linear) {
  const size_t dot = linear.rfind('.');
  const std::string prefix = dot == std::string::npos ? "" : linear.substr(0, dot + 1);
  const std::string last = linear.substr(prefix.size());
  const bool tnet = prefix.find("stn.") != std::string::npos;
  if (last.rfind("fc", 0) == 0) return prefix + "bn" + std::to_string(std::stoi(last.substr(2)) + (tnet ? 3 : 0));
  return prefix + "bn" + last.substr(4);
}

TEST(OnnxExport, FoldedInitializersEqualAFoldComputedHere) {
  for (const Arch& arch : kArchs) {
    SCOPED_TRACE(arch.name);
    TestModel m(arch, 6, 31);
    const OnnxModel g = export_and_decode(m, {});
    int folded = 0;
    for (const auto& t : g.initializers) {
      EXPECT_FALSE(is_batchnorm(t.name)) << t.name << ": BatchNorm tensors should be folded away";
      if (!ends_with(t.name, ".weight_bn_folded")) continue;
      ++folded;
      const std::string linear = t.name.substr(0, t.name.size() - std::string(".weight_bn_folded").size());
      const std::string bn = batchnorm_of(linear);
      const auto w = m.param(linear + ".weight"), b = m.param(linear + ".bias");
      const auto gamma = m.param(bn + ".weight"), beta = m.param(bn + ".bias");
      const auto mean = m.param(bn + ".running_mean"), var = m.param(bn + ".running_var");
      const testing::OnnxTensor* bias = nullptr;
      for (const auto& u : g.initializers)
        if (u.name == linear + ".bias_bn_folded") bias = &u;
      ASSERT_NE(bias, nullptr) << linear;
      const size_t out = b.size(), in = w.size() / out;
      ASSERT_EQ(t.floats.size(), w.size());
      for (size_t o = 0; o < out; ++o) {
        // BN(x) = (x - mean) * gamma / sqrt(var + eps) + beta, eps = 1e-5 (PyTorch's default).
        const double scale = gamma[o] / std::sqrt(static_cast<double>(var[o]) + 1e-5);
        for (size_t i = 0; i < in; ++i)
          ASSERT_NEAR(t.floats[o * in + i], w[o * in + i] * scale, 1e-6 * std::abs(w[o * in + i] * scale) + 1e-12)
              << linear << " row " << o;
        ASSERT_NEAR(bias->floats[o], (b[o] - mean[o]) * scale + beta[o], 1e-6 * (std::abs(b[o] * scale) + 1.0));
      }
    }
    int bn_layers = 0;
    for (const ParamInfo& p : m.model->params().infos()) bn_layers += ends_with(p.name, ".running_var");
    EXPECT_EQ(folded, bn_layers);
  }
}

// Our forward in eval mode and the exported graph run by the test evaluator,
// on the same clouds: log-probs and transforms within fp32 rounding.
void expect_graph_matches_forward(const Arch& arch, const OnnxExportOptions& options) {
  const int B = 2, N = 37, K = 4;
  TestModel m(arch, K, 41);
  Rng rng(7);
  std::vector<float> raw(static_cast<size_t>(B) * N * 3), normalized;
  for (float& v : raw) v = rng.uniform(-3.0f, 5.0f);  // off the unit sphere on purpose
  normalized = raw;
  for (int b = 0; b < B; ++b) normalize_cloud(normalized.data() + static_cast<size_t>(b) * N * 3, N);
  m.model->forward(normalized.data(), B, N, false);

  const OnnxModel g = export_and_decode(m, options);
  const std::vector<float>& fed = options.include_normalization ? raw : normalized;
  testing::EvalTensor points{{B, 3, N}, std::vector<double>(fed.size()), false};
  for (int b = 0; b < B; ++b)
    for (int n = 0; n < N; ++n)
      for (int c = 0; c < 3; ++c)
        points.v[(static_cast<size_t>(b) * 3 + c) * N + n] = fed[(static_cast<size_t>(b) * N + n) * 3 + c];
  testing::OnnxEvaluator evaluator(g);
  auto values = evaluator.run({{"points", points}});

  auto compare = [&](const std::string& name, const float* ours, std::vector<int64_t> shape) {
    const testing::EvalTensor& got = values.at(name);
    ASSERT_EQ(got.shape, shape) << name;
    double diff2 = 0, ref2 = 0, max_abs = 0;
    for (size_t i = 0; i < got.v.size(); ++i) {
      ASSERT_TRUE(std::isfinite(got.v[i])) << name << "[" << i << "]";
      const double d = got.v[i] - ours[i];
      diff2 += d * d;
      ref2 += static_cast<double>(ours[i]) * ours[i];
      max_abs = std::max(max_abs, std::abs(d));
    }
    // fp32 forward vs a double evaluation: ||diff|| / ||ref|| < 1e-5 (DESIGN.md's fp32 bound).
    EXPECT_LT(std::sqrt(diff2 / ref2), 1e-5) << name << " (max abs " << max_abs << ")";
  };
  const bool seg = arch.task == ModelTask::Segmentation;
  compare("log_probs", m.model->log_probs(), seg ? std::vector<int64_t>{B, N, K} : std::vector<int64_t>{B, K});
  compare("trans", m.model->input_transform(), {B, 3, 3});
  if (arch.feature_transform) compare("trans_feat", m.model->feature_transform(), {B, 64, 64});
}

TEST(OnnxExport, EvaluatedGraphMatchesForwardFolded) {
  for (const Arch& arch : kArchs) {
    SCOPED_TRACE(arch.name);
    expect_graph_matches_forward(arch, {});
  }
}

TEST(OnnxExport, EvaluatedGraphMatchesForwardWithBatchNormNodesAndOpset18) {
  OnnxExportOptions options;
  options.fold_batchnorm = false;
  options.opset = 18;
  for (const Arch& arch : kArchs) {
    SCOPED_TRACE(arch.name);
    expect_graph_matches_forward(arch, options);
  }
}

TEST(OnnxExport, EvaluatedGraphNormalizesRawClouds) {
  OnnxExportOptions options;
  options.include_normalization = true;
  for (const Arch& arch : {kArchs[1], kArchs[2]}) {
    SCOPED_TRACE(arch.name);
    expect_graph_matches_forward(arch, options);
    options.opset = 18;  // ReduceMean/ReduceMax axes as inputs
    expect_graph_matches_forward(arch, options);
  }
}

}  // namespace
}  // namespace pointnet
