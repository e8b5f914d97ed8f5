#include "engine/engine_plan.h"

#include "core/errors.h"

namespace pointnet {

const char* precision_name(EnginePrecision p) {
  switch (p) {
    case EnginePrecision::FP32: return "fp32";
    case EnginePrecision::TF32: return "tf32";
    case EnginePrecision::FP16: return "fp16";
    case EnginePrecision::BF16: return "bf16";
    case EnginePrecision::INT8: return "int8";
  }
  return "?";
}

EnginePrecision parse_precision(const std::string& name) {
  for (EnginePrecision p : {EnginePrecision::FP32, EnginePrecision::TF32, EnginePrecision::FP16,
                            EnginePrecision::BF16, EnginePrecision::INT8})
    if (name == precision_name(p)) return p;
  fail("unknown precision '", name, "': expected fp32, tf32, fp16, bf16 or int8");
}

std::vector<std::string> int8_activation_names(const FoldedModel& model) {
  // stn.h1 -> stn.conv2, stn.h2 -> stn.conv3 (+ max); h1 -> conv2 (and fstn.conv1,
  // and the segmenter's head1 point part); h2 -> conv3 (+ max); fstn likewise;
  // seg head: a -> head2, c -> head3. conv1 (3 or 6 inputs), the per-cloud
  // layers and the logits stay fp32.
  std::vector<std::string> names = {"stn.h1", "stn.h2", "h1", "h2"};
  if (model.has_fstn) names.insert(names.end(), {"fstn.h1", "fstn.h2"});
  if (model.config.task == ModelTask::Segmentation) names.insert(names.end(), {"head.a", "head.c"});
  return names;
}

namespace {

template <typename Model, typename Layer>
std::vector<std::pair<std::string, Layer*>> list_layers(Model& m) {
  std::vector<std::pair<std::string, Layer*>> out;
  const auto tnet = [&](const std::string& p, auto& t) {
    for (auto [name, l] : {std::pair<const char*, Layer*>{"conv1", &t.conv1}, {"conv2", &t.conv2}, {"conv3", &t.conv3},
                           {"fc1", &t.fc1}, {"fc2", &t.fc2}, {"fc3", &t.fc3}})
      out.emplace_back(p + "." + name, l);
  };
  tnet("stn", m.stn);
  out.emplace_back("conv1", &m.conv1);
  out.emplace_back("conv2", &m.conv2);
  out.emplace_back("conv3", &m.conv3);
  if (m.has_fstn) tnet("fstn", m.fstn);
  for (size_t i = 0; i < m.head.size(); ++i) out.emplace_back("head." + std::to_string(i), &m.head[i]);
  return out;
}

}  // namespace

std::vector<std::pair<std::string, const FoldedLinear*>> named_layers(const FoldedModel& model) {
  return list_layers<const FoldedModel, const FoldedLinear>(model);
}

std::vector<std::pair<std::string, FoldedLinear*>> named_layers(FoldedModel& model) {
  return list_layers<FoldedModel, FoldedLinear>(model);
}

std::vector<Int8Layer> int8_layers(const FoldedModel& model) {
  const bool ft = model.has_fstn;
  std::vector<Int8Layer> layers = {{"stn.conv2", "stn.h1"}, {"stn.conv3", "stn.h2"}, {"conv2", "h1", ft}, {"conv3", "h2"}};
  if (ft) layers.insert(layers.end(), {{"fstn.conv1", "h1"}, {"fstn.conv2", "fstn.h1"}, {"fstn.conv3", "fstn.h2"}});
  if (model.config.task == ModelTask::Segmentation)
    layers.insert(layers.end(), {{"head.0.point", "h1", ft}, {"head.1", "head.a"}, {"head.2", "head.c"}});
  return layers;
}

}  // namespace pointnet
