#include "engine/engine_file.h"

#include <cmath>
#include <cstring>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/sealed_file.h"

namespace pointnet {

namespace {

constexpr char kMagic[8] = {'P', 'N', 'E', 'N', 'G', 'I', 'N', 'E'};
constexpr size_t kFixedHeader = 32;
constexpr size_t kChecksumAt = 24;
constexpr size_t kAlign = 64;
constexpr const char* kFormat = "pointnet-engine";

size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Tensors to write, by name, with their bytes.
struct Blob {
  std::string name, dtype;
  std::vector<int64_t> shape;
  const void* data;
  size_t bytes;
};

std::vector<Blob> blobs_of(const EnginePlan& plan) {
  std::vector<Blob> out;
  for (const auto& [name, l] : named_layers(plan.model)) {
    out.push_back({name + ".weight", "f32", {l->out, l->in}, l->weight.data(), l->weight.size() * sizeof(float)});
    out.push_back({name + ".bias", "f32", {l->out}, l->bias.data(), l->bias.size() * sizeof(float)});
  }
  for (const auto& [name, w] : plan.int8_weights) {
    out.push_back({name + ".weight_q", "i8", {w.out, w.in}, w.q.data(), w.q.size()});
    out.push_back({name + ".weight_scale", "f32", {w.out}, w.scale.data(), w.scale.size() * sizeof(float)});
  }
  return out;
}

nlohmann::json architecture_json(const ModelConfig& c) {
  return {{"task", c.task_name()}, {"num_classes", c.num_classes}, {"feature_transform", c.feature_transform},
          {"input_channels", c.input_channels}};
}

}  // namespace

void write_engine(const std::string& path, const EnginePlan& plan) {
  const std::vector<Blob> blobs = blobs_of(plan);
  nlohmann::json tensors = nlohmann::json::array();
  size_t offset = 0;
  for (const Blob& b : blobs) {
    tensors.push_back({{"name", b.name}, {"dtype", b.dtype}, {"shape", b.shape}, {"offset", offset}});
    offset = align_up(offset + b.bytes);
  }
  const nlohmann::json header = {{"format", kFormat},
                                 {"precision", precision_name(plan.precision)},
                                 {"device", plan.device},
                                 {"max_batch", plan.max_batch},
                                 {"max_points", plan.max_points},
                                 {"architecture", architecture_json(plan.model.config)},
                                 {"class_names", plan.class_names},
                                 {"part_offset", plan.part_offset},
                                 {"part_count", plan.part_count},
                                 {"class_choice", plan.class_choice},
                                 {"up_axis", plan.up_axis},
                                 {"trained_points", plan.trained_points},
                                 {"activation_scales", plan.activation_scales},
                                 {"build", plan.build},
                                 {"tensors", tensors}};
  const std::string text = header.dump();
  const size_t data_start = align_up(kFixedHeader + text.size());
  std::string bytes(data_start + offset, '\0');
  std::memcpy(&bytes[0], kMagic, sizeof kMagic);
  put_le(bytes, 8, kEngineVersion, 4);
  put_le(bytes, 16, text.size(), 8);
  std::memcpy(&bytes[kFixedHeader], text.data(), text.size());
  for (size_t i = 0; i < blobs.size(); ++i)
    std::memcpy(&bytes[data_start + tensors[i]["offset"].get<size_t>()], blobs[i].data, blobs[i].bytes);
  put_le(bytes, kChecksumAt,
         sealed_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), kChecksumAt), 8);
  write_file_atomic(path, bytes);
}

bool is_engine_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return false;
  char head[sizeof kMagic] = {};
  const bool ok = std::fread(head, 1, sizeof head, f) == sizeof head && std::memcmp(head, kMagic, sizeof kMagic) == 0;
  std::fclose(f);
  return ok;
}

namespace {

// Reads the header's fields with messages that name the file and the field.
class HeaderReader {
 public:
  HeaderReader(const std::string& path, const nlohmann::json& j) : path_(path), j_(j) {}

  template <typename T>
  T get(const char* key) const {
    if (!j_.contains(key)) fail(path_, ": engine header has no '", key, "'");
    try {
      return j_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      fail(path_, ": engine header field '", key, "' has the wrong type: ", j_.at(key).dump().substr(0, 80));
    }
  }

 private:
  const std::string& path_;
  const nlohmann::json& j_;
};

ModelConfig read_architecture(const std::string& path, const nlohmann::json& a) {
  const HeaderReader r(path, a);
  ModelConfig c;
  const std::string task = r.get<std::string>("task");
  if (task != "cls" && task != "seg") fail(path, ": engine architecture task '", task, "': expected cls or seg");
  c.task = task == "cls" ? ModelTask::Classification : ModelTask::Segmentation;
  c.num_classes = r.get<int>("num_classes");
  c.feature_transform = r.get<bool>("feature_transform");
  c.input_channels = r.get<int>("input_channels");
  if (c.num_classes < 2 || c.num_classes > 100000) fail(path, ": engine has ", c.num_classes, " classes: expected 2..100000");
  if (c.input_channels != 3 && c.input_channels != 6)
    fail(path, ": engine input channels ", c.input_channels, ": expected 3 or 6");
  return c;
}

}  // namespace

EnginePlan read_engine(const std::string& path) {
  const std::string bytes = read_file(path);
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < kFixedHeader || std::memcmp(p, kMagic, sizeof kMagic) != 0)
    fail(path, ": not a pointnet engine (expected the magic 'PNENGINE' at byte 0; build one with `pointnet build`)");
  const uint64_t version = get_le(p + 8, 4);
  if (version != kEngineVersion)
    fail(path, ": engine format version ", version, " at byte 8; this pointnet reads version ", kEngineVersion,
         " (rebuild the engine with this pointnet's `pointnet build`)");
  const uint64_t header_bytes = get_le(p + 16, 8);
  if (header_bytes > bytes.size() - kFixedHeader)
    fail(path, ": engine header length ", header_bytes, " at byte 16 runs past the end of the file (", bytes.size(),
         " bytes): truncated?");
  if (get_le(p + kChecksumAt, 8) != sealed_checksum(p, bytes.size(), kChecksumAt))
    fail(path, ": checksum mismatch (byte 24): the engine file is corrupted or truncated; rebuild it");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + kFixedHeader, bytes.begin() + kFixedHeader + header_bytes);
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": engine header (byte 32) is not valid JSON: ", e.what());
  }
  if (!header.is_object() || header.value("format", "") != kFormat)
    fail(path, ": engine header (byte 32) is not a '", kFormat, "' header");
  const HeaderReader r(path, header);
  EnginePlan plan;
  plan.precision = parse_precision(r.get<std::string>("precision"));
  plan.device = r.get<std::string>("device");
  plan.max_batch = r.get<int>("max_batch");
  plan.max_points = r.get<int>("max_points");
  plan.class_names = r.get<std::vector<std::string>>("class_names");
  plan.part_offset = r.get<std::vector<int>>("part_offset");
  plan.part_count = r.get<std::vector<int>>("part_count");
  plan.class_choice = r.get<std::string>("class_choice");
  plan.up_axis = r.get<int>("up_axis");
  plan.trained_points = r.get<int>("trained_points");
  plan.activation_scales = r.get<std::map<std::string, float>>("activation_scales");
  plan.build = header.value("build", nlohmann::json::object());
  plan.model = folded_skeleton(read_architecture(path, r.get<nlohmann::json>("architecture")));

  // The tensor table: every entry within the data, each expected tensor once.
  const size_t data_start = align_up(kFixedHeader + header_bytes);
  const size_t data_bytes = bytes.size() >= data_start ? bytes.size() - data_start : 0;
  std::map<std::string, nlohmann::json> table;
  for (const nlohmann::json& t : r.get<nlohmann::json>("tensors")) {
    const HeaderReader tr(path, t);
    const std::string name = tr.get<std::string>("name");
    if (!table.emplace(name, t).second) fail(path, ": engine tensor '", name, "' appears twice");
  }
  const auto load = [&](const std::string& name, const char* dtype, std::vector<int64_t> shape, void* dst) {
    const auto it = table.find(name);
    if (it == table.end()) fail(path, ": engine has no tensor '", name, "'");
    const HeaderReader tr(path, it->second);
    if (tr.get<std::string>("dtype") != dtype || tr.get<std::vector<int64_t>>("shape") != shape)
      fail(path, ": engine tensor '", name, "' is ", it->second["dtype"].dump(), " ", it->second["shape"].dump(),
           ", expected ", dtype, " ", nlohmann::json(shape).dump(), " for this architecture");
    size_t count = 1;
    for (int64_t s : shape) count *= static_cast<size_t>(s);
    const size_t size = count * (std::string(dtype) == "f32" ? 4 : 1);
    const size_t offset = tr.get<size_t>("offset");
    if (offset > data_bytes || size > data_bytes - offset)
      fail(path, ": engine tensor '", name, "' at data offset ", offset, " (", size, " bytes) runs past the end of the file");
    std::memcpy(dst, p + data_start + offset, size);
    table.erase(it);
  };
  for (auto& [name, l] : named_layers(plan.model)) {
    load(name + ".weight", "f32", {l->out, l->in}, l->weight.data());
    load(name + ".bias", "f32", {l->out}, l->bias.data());
    for (float v : l->weight)
      if (!std::isfinite(v)) fail(path, ": engine tensor '", name, ".weight' holds a NaN or Inf");
  }
  if (plan.precision == EnginePrecision::INT8) {
    for (const Int8Layer& il : int8_layers(plan.model)) {
      if (!plan.activation_scales.count(il.input) || !(plan.activation_scales[il.input] > 0.0f) ||
          !std::isfinite(plan.activation_scales[il.input]))
        fail(path, ": int8 engine has no valid activation scale for '", il.input, "'");
      if (il.per_cloud) continue;
      const std::string& name = il.layer;
      const int in = name == "head.0.point" ? 64 : 0;
      Int8LayerWeights w;
      for (const auto& [lname, l] : named_layers(plan.model))
        if (lname == name) w.in = l->in, w.out = l->out;
      if (in) w.in = in, w.out = 512;
      w.q.resize(static_cast<size_t>(w.in) * w.out);
      w.scale.resize(w.out);
      load(name + ".weight_q", "i8", {w.out, w.in}, w.q.data());
      load(name + ".weight_scale", "f32", {w.out}, w.scale.data());
      for (float s : w.scale)
        if (!(s > 0.0f) || !std::isfinite(s)) fail(path, ": engine tensor '", name, ".weight_scale' holds a scale <= 0, NaN or Inf");
      for (int8_t q : w.q)
        if (q == -128) fail(path, ": engine tensor '", name, ".weight_q' holds -128 (symmetric weights are in -127..127)");
      plan.int8_weights[name] = std::move(w);
    }
  }
  if (!table.empty()) fail(path, ": engine tensor '", table.begin()->first, "' is not part of this architecture");
  const size_t names_expected = plan.model.config.task == ModelTask::Classification ? plan.model.config.num_classes
                                                                                     : plan.part_count.size();
  if (plan.class_names.size() != names_expected || plan.class_names.empty())
    fail(path, ": engine lists ", plan.class_names.size(), " class names, expected ", names_expected);
  if (plan.max_batch < 1 || plan.max_points < 1)
    fail(path, ": engine limits max_batch ", plan.max_batch, ", max_points ", plan.max_points, ": expected >= 1");
  return plan;
}

}  // namespace pointnet
