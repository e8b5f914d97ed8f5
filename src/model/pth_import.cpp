#include "model/pth_import.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "core/errors.h"
#include "cpu/cpu_backend.h"

namespace pointnet {

namespace {

using Kind = PickleValue::Kind;
constexpr size_t kShownOffenders = 5;

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// "a, b, c and 4 more"
std::string first_few(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < kShownOffenders; ++i) s += (i ? ", " : "") + items[i];
  if (items.size() > kShownOffenders) s += " and " + std::to_string(items.size() - kShownOffenders) + " more";
  return s;
}

// The dict of tensors: the root, or the state_dict a training script wrapped.
const PickleValue& find_state_dict(const TorchFile& file) {
  const PickleValue& root = *file.root;
  if (root.kind != Kind::Dict)
    fail(file.path, ": the file holds a ", kind_name(root.kind),
         ", not a state_dict (save one with torch.save(model.state_dict(), path))");
  for (const char* key : {"model_state_dict", "state_dict", "model"})
    if (const PickleValue* inner = root.get(key)) {
      if (inner->kind == Kind::Dict) return *inner;
      fail(file.path, ": '", key, "' holds a ", kind_name(inner->kind),
           ", not a state_dict (a whole pickled model cannot be read without Python; save its state_dict)");
    }
  return root;
}

// Which pointnet.pytorch model the keys and shapes describe.
ModelConfig infer_config(const std::map<std::string, TensorData>& tensors, const std::string& path) {
  ModelConfig config;
  config.feature_transform = false;
  for (const auto& [name, t] : tensors) config.feature_transform |= starts_with(name, "feat.fstn.");
  const bool cls = tensors.count("fc3.weight") != 0, seg = tensors.count("conv4.weight") != 0;
  if (cls == seg) {
    std::vector<std::string> keys;
    for (const auto& [name, t] : tensors) keys.push_back(name);
    fail(path, ": not a pointnet.pytorch PointNetCls or PointNetDenseCls state_dict (",
         cls ? "it has both fc3.weight and conv4.weight" : "it has neither fc3.weight nor conv4.weight",
         "; ", keys.size(), " keys: ", first_few(keys), ")");
  }
  config.task = cls ? ModelTask::Classification : ModelTask::Segmentation;
  const TensorData& last = tensors.at(cls ? "fc3.weight" : "conv4.weight");
  if (last.shape.empty())
    fail(path, ": ", cls ? "fc3.weight" : "conv4.weight", " is a scalar, not a weight matrix");
  const int64_t k = last.shape[0];
  if (k < 2 || k > 100000)
    fail(path, ": ", cls ? "fc3.weight" : "conv4.weight", " has shape ", shape_string(last.shape), ": ", k,
         " outputs is out of range (2..100000)");
  config.num_classes = static_cast<int>(k);
  return config;
}

// Every tensor the architecture has, with its shape, and nothing else.
void check_against_model(const std::map<std::string, TensorData>& tensors, const ModelConfig& config,
                         const std::string& path) {
  CpuBackend<float> be;
  const PointNet<float> probe(config, be);
  std::set<std::string> expected;
  std::vector<std::string> missing, wrong, extra;
  for (const ParamInfo& p : probe.params().infos()) {
    expected.insert(p.name);
    auto it = tensors.find(p.name);
    if (it == tensors.end()) {
      missing.push_back(p.name);
    } else if (it->second.shape != p.shape || it->second.dtype != "F32") {
      wrong.push_back(p.name + " " + (it->second.dtype != "F32" ? "integer " : "") + shape_string(it->second.shape) +
                      ", expected float " + shape_string(p.shape));
    }
  }
  for (const auto& [name, t] : tensors) {
    if (expected.count(name)) continue;
    // num_batches_tracked (PyTorch >= 0.4.1) beside each BatchNorm's running_mean.
    const std::string bn = name.substr(0, name.size() - std::string("num_batches_tracked").size());
    if (ends_with(name, ".num_batches_tracked") && expected.count(bn + "running_mean") && t.numel() == 1 &&
        t.dtype == "I64")
      continue;
    extra.push_back(name);
  }
  if (missing.empty() && wrong.empty() && extra.empty()) return;
  std::string what = std::string(config.task == ModelTask::Classification ? "PointNetCls" : "PointNetDenseCls") +
                     "(k=" + std::to_string(config.num_classes) +
                     (config.feature_transform ? ", feature_transform=True" : "") + ")";
  std::string msg;
  if (!missing.empty()) msg += "; missing " + std::to_string(missing.size()) + ": " + first_few(missing);
  if (!wrong.empty()) msg += "; wrong shape or type " + std::to_string(wrong.size()) + ": " + first_few(wrong);
  if (!extra.empty()) msg += "; unexpected " + std::to_string(extra.size()) + ": " + first_few(extra);
  fail(path, ": the state_dict does not match pointnet.pytorch's ", what, msg);
}

// A NaN or infinite weight (a diverged run, or a double too large for float)
// would not fail loudly downstream: ReLU maps NaN to 0 in our kernels, so the
// model would answer, wrongly. Name the tensor and the element.
void check_finite(const TensorData& t, const std::string& name, const std::string& path) {
  if (t.dtype != "F32") return;
  const std::vector<float> values = t.as_f32();
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    std::string index;
    for (size_t d = t.shape.size(), rest = i; d-- > 0; rest /= static_cast<size_t>(t.shape[d]))
      index = std::to_string(rest % static_cast<size_t>(t.shape[d])) + (index.empty() ? "" : ", ") + index;
    fail(path, ": tensor '", name, "' element (", index, ") is ", std::isnan(values[i]) ? "NaN" : "infinite",
         " (after conversion to float32); a model with non-finite weights cannot predict");
  }
}

}  // namespace

bool is_torch_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char head[16] = {};
  in.read(head, sizeof head);
  return looks_like_torch_file(std::string_view(head, static_cast<size_t>(in.gcount())));
}

std::vector<std::string> placeholder_class_names(int count) {
  std::vector<std::string> names;
  for (int i = 0; i < count; ++i) names.push_back("class" + std::to_string(i));
  return names;
}

Checkpoint import_pth(const std::string& path, const std::vector<std::string>& class_names) {
  return import_pth(read_torch_file(path), class_names);
}

Checkpoint import_pth(const TorchFile& file, const std::vector<std::string>& class_names) {
  const PickleValue& dict = find_state_dict(file);
  // DataParallel saves every key as "module.<name>".
  bool all_module = !dict.dict.empty();
  for (const auto& [k, v] : dict.dict) all_module &= k->kind == Kind::String && starts_with(k->text, "module.");
  // Names, shapes and types first (from the pickle alone): the architecture
  // is checked before any tensor is copied, so a hostile size never allocates.
  std::map<std::string, TensorData> shapes;
  std::map<std::string, std::pair<std::string, const PickledTensor*>> sources;  // name -> (key in file, tensor)
  std::vector<std::string> not_tensors;
  for (const auto& [k, v] : dict.dict) {
    if (k->kind != Kind::String) fail(file.path, ": a state_dict key is a ", kind_name(k->kind), ", not a str");
    const std::string name = all_module ? k->text.substr(7) : k->text;
    if (v->kind != Kind::Tensor) {
      not_tensors.push_back(k->text + " (" + kind_name(v->kind) + ")");
      continue;
    }
    TensorData& t = shapes[name];
    t.shape = v->tensor.sizes;
    t.dtype = materialized_dtype(v->tensor.storage);
    if (!sources.emplace(name, std::make_pair(k->text, &v->tensor)).second)
      fail(file.path, ": the state_dict has '", name, "' twice");
  }
  if (!not_tensors.empty())
    fail(file.path, ": not a state_dict: ", not_tensors.size(), " entries are not tensors: ", first_few(not_tensors));
  for (size_t i = 0; i < class_names.size(); ++i)
    if (class_names[i].empty() || std::find(class_names.begin(), class_names.begin() + i, class_names[i]) !=
                                      class_names.begin() + i)
      fail(file.path, ": class name ", i + 1, " ('", class_names[i], "') is empty or given twice");
  Checkpoint ck;
  ck.file.source = file.path;
  CheckpointInfo& info = ck.info;
  info.config = infer_config(shapes, file.path);
  check_against_model(shapes, info.config, file.path);
  for (const auto& [name, source] : sources) {
    ck.file.tensors[name] = materialize(file, *source.second, source.first);
    check_finite(ck.file.tensors[name], source.first, file.path);
  }
  const int k = info.config.num_classes;
  if (info.config.task == ModelTask::Classification) {
    if (!class_names.empty() && static_cast<int>(class_names.size()) != k)
      fail(file.path, ": ", class_names.size(), " class names given for a classifier with ", k, " classes");
    info.class_names = class_names.empty() ? placeholder_class_names(k) : class_names;
  } else {
    if (class_names.size() > 1)
      fail(file.path, ": a pointnet.pytorch segmenter covers one category (its ", k, " parts); ", class_names.size(),
           " category names were given");
    info.class_names = class_names.empty() ? placeholder_class_names(1) : class_names;
    if (!class_names.empty()) info.class_choice = class_names[0];
    info.part_offset = {0};
    info.part_count = {k};
  }
  return ck;
}

}  // namespace pointnet
