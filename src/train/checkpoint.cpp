#include "train/checkpoint.h"

#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "model/device_batch.h"

namespace pointnet {

namespace {

std::vector<std::string> batchnorm_prefixes(const ParamStore<float>& store) {
  std::vector<std::string> out;
  const std::string suffix = ".running_mean";
  for (const ParamInfo& info : store.infos())
    if (info.name.size() > suffix.size() &&
        info.name.compare(info.name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(info.name.substr(0, info.name.size() - suffix.size()));
  return out;
}

nlohmann::json info_to_json(const CheckpointInfo& info) {
  return {{"task", info.config.task_name()},
          {"num_classes", info.config.num_classes},
          {"feature_transform", info.config.feature_transform},
          {"input_channels", info.config.input_channels},
          {"class_names", info.class_names},
          {"part_offset", info.part_offset},
          {"part_count", info.part_count},
          {"class_choice", info.class_choice},
          {"up_axis", info.up_axis},
          {"epoch", info.epoch},
          {"trainer", info.trainer}};
}

CheckpointInfo info_from_json(const nlohmann::json& j, const std::string& path) {
  CheckpointInfo info;
  try {
    const std::string task = j.at("task");
    if (task != "cls" && task != "seg") fail(path, ": unknown task '", task, "' (expected cls or seg)");
    info.config.task = task == "cls" ? ModelTask::Classification : ModelTask::Segmentation;
    info.config.num_classes = j.at("num_classes");
    info.config.feature_transform = j.at("feature_transform");
    info.config.input_channels = j.at("input_channels");
    info.class_names = j.at("class_names").get<std::vector<std::string>>();
    info.part_offset = j.at("part_offset").get<std::vector<int>>();
    info.part_count = j.at("part_count").get<std::vector<int>>();
    info.class_choice = j.at("class_choice");
    info.up_axis = j.at("up_axis");
    info.epoch = j.at("epoch");
    info.trainer = j.at("trainer");
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": checkpoint metadata is malformed: ", e.what());
  }
  if (info.config.num_classes < 2 || info.config.num_classes > 100000)
    fail(path, ": num_classes ", info.config.num_classes, " is out of range");
  if (info.config.task == ModelTask::Classification &&
      static_cast<int>(info.class_names.size()) != info.config.num_classes)
    fail(path, ": ", info.class_names.size(), " class names for ", info.config.num_classes, " classes");
  if (info.part_offset.size() != info.part_count.size())
    fail(path, ": part_offset and part_count differ in length");
  return info;
}

}  // namespace

void save_checkpoint(const std::string& path, const PointNet<float>& model, const Adam<float>* adam,
                     const CheckpointInfo& info) {
  SafeTensors file;
  file.metadata["format"] = kCheckpointFormat;
  file.metadata["version"] = std::to_string(kCheckpointVersion);
  file.metadata["pointnet"] = info_to_json(info).dump();
  // Parameters and moments may live in device memory: copy them out first.
  const ParamStore<float>& store = model.params();
  Backend<float>& be = model.backend();
  const std::vector<float> values = to_host(be, store.values(), store.trainable_count());
  const std::vector<float> buffers = to_host(be, store.buffers(), store.buffer_count());
  std::vector<float> m, v;
  if (adam) {
    m = to_host(be, adam->first_moment(), store.trainable_count());
    v = to_host(be, adam->second_moment(), store.trainable_count());
  }
  for (const ParamInfo& p : store.infos()) {
    file.tensors[p.name] = make_f32(p.shape, (p.trainable ? values : buffers).data() + p.offset);
    if (adam && p.trainable) {
      file.tensors["optimizer.exp_avg." + p.name] = make_f32(p.shape, m.data() + p.offset);
      file.tensors["optimizer.exp_avg_sq." + p.name] = make_f32(p.shape, v.data() + p.offset);
    }
  }
  const int64_t tracked = model.batches_tracked();
  for (const std::string& bn : batchnorm_prefixes(store))
    file.tensors[bn + ".num_batches_tracked"] = make_i64({}, &tracked);
  if (adam) {
    const int64_t steps = adam->steps();
    file.tensors["optimizer.step"] = make_i64({}, &steps);
  }
  write_safetensors(path, file);
}

Checkpoint load_checkpoint(const std::string& path) {
  Checkpoint ck;
  ck.file = read_safetensors(path);
  const auto& meta = ck.file.metadata;
  auto it = meta.find("format");
  if (it == meta.end() || it->second != kCheckpointFormat)
    fail(path, ": not a pointnet checkpoint (metadata 'format' is ",
         it == meta.end() ? std::string("missing") : "'" + it->second + "'", ", expected '",
         kCheckpointFormat, "')");
  it = meta.find("version");
  if (it == meta.end() || it->second != std::to_string(kCheckpointVersion))
    fail(path, ": checkpoint version ", it == meta.end() ? std::string("missing") : it->second,
         " is not supported (this build reads version ", kCheckpointVersion, ")");
  it = meta.find("pointnet");
  if (it == meta.end()) fail(path, ": checkpoint metadata 'pointnet' is missing");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": checkpoint metadata is not valid JSON: ", e.what());
  }
  ck.info = info_from_json(j, path);
  // Every tensor the architecture needs, with its shape: checked here so a
  // wrong file fails at load, not halfway through a run.
  CpuBackend<float> be;
  PointNet<float> probe(ck.info.config, be);
  for (const ParamInfo& p : probe.params().infos()) {
    const TensorData& t = ck.file.get(p.name);
    if (t.dtype != "F32") fail(path, ": tensor '", p.name, "' is ", t.dtype, ", expected F32");
    if (t.shape != p.shape) fail(path, ": tensor '", p.name, "' has the wrong shape for this architecture");
  }
  return ck;
}

void restore_model(const Checkpoint& ck, PointNet<float>& model) {
  ParamStore<float>& store = model.params();
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& p = store.infos()[i];
    const std::vector<float> values = ck.file.get(p.name).as_f32();
    PN_CHECK(values.size() == p.count);
    model.backend().upload(store.value(static_cast<int>(i)), values.data(), values.size());
  }
  const std::vector<std::string> bns = batchnorm_prefixes(store);
  model.batches_tracked() = 0;
  if (!bns.empty() && ck.file.has(bns[0] + ".num_batches_tracked"))
    model.batches_tracked() = ck.file.get(bns[0] + ".num_batches_tracked").as_i64().at(0);
}

void restore_optimizer(const Checkpoint& ck, const PointNet<float>& model, Adam<float>& adam) {
  if (!ck.file.has("optimizer.step"))
    fail(ck.file.source, ": the checkpoint has no optimizer state, so training cannot resume exactly");
  const ParamStore<float>& store = model.params();
  for (const ParamInfo& p : store.infos()) {
    if (!p.trainable) continue;
    for (auto [prefix, dest] : {std::pair<const char*, float*>{"optimizer.exp_avg.", adam.first_moment()},
                                {"optimizer.exp_avg_sq.", adam.second_moment()}}) {
      const TensorData& t = ck.file.get(prefix + p.name);
      if (t.shape != p.shape) fail(ck.file.source, ": tensor '", prefix, p.name, "' has the wrong shape");
      const std::vector<float> values = t.as_f32();
      model.backend().upload(dest + p.offset, values.data(), values.size());
    }
  }
  adam.set_steps(ck.file.get("optimizer.step").as_i64().at(0));
}

}  // namespace pointnet
