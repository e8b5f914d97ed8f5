#include "engine/cuda_weights.h"

#include <cstring>

#include "core/errors.h"
#include "core/half.h"
#include "cuda/engine_fragment.h"

namespace pointnet {

namespace {

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Every (o, i) element get(o, i) at its fragment position (engine_fragment.h).
template <typename Elem, typename Get>
std::vector<uint8_t> pack(int out, int in, Get get) {
  if (out % 8 != 0 || (in * static_cast<int>(sizeof(Elem))) % 32 != 0)
    fail("CUDA engine: a ", out, " x ", in, " layer does not tile into mma fragments (outputs by 8, inputs by 32 bytes)");
  std::vector<uint8_t> bytes(cuda_engine::fragment_bytes(out, in, sizeof(Elem)));
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      const Elem e = get(o, i);
      std::memcpy(&bytes[cuda_engine::fragment_byte(o, i, in, sizeof(Elem))], &e, sizeof(Elem));
    }
  return bytes;
}

// Every element at its core-matrix position (engine_fragment.h, core_byte).
template <typename Elem, typename Get>
std::vector<uint8_t> pack_core(int out, int in, Get get) {
  const int row_bytes = in * static_cast<int>(sizeof(Elem));
  if (out % 8 != 0 || row_bytes % 16 != 0)
    fail("CUDA engine: a ", out, " x ", in, " layer does not tile into core matrices (rows by 8, 16-byte chunks)");
  std::vector<uint8_t> bytes(static_cast<size_t>(out) * row_bytes);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) {
      const Elem e = get(o, i);
      std::memcpy(&bytes[cuda_engine::core_byte(o, i * static_cast<int>(sizeof(Elem)), row_bytes)], &e, sizeof(Elem));
    }
  return bytes;
}

}  // namespace

CudaLayerWeights cuda_core_weights(const FoldedLinear& l, EnginePrecision p) {
  CudaLayerWeights w;
  const auto at = [&l](int o, int i) { return l.weight[static_cast<size_t>(o) * l.in + i]; };
  switch (p) {
    case EnginePrecision::FP16:
      w.bytes = pack_core<uint16_t>(l.out, l.in, [&](int o, int i) { return float_to_half(at(o, i)); });
      return w;
    case EnginePrecision::BF16:
      w.bytes = pack_core<uint16_t>(l.out, l.in, [&](int o, int i) { return float_to_bf16(at(o, i)); });
      return w;
    case EnginePrecision::TF32:
      w.bytes = pack_core<float>(l.out, l.in, [&](int o, int i) { return round_to_tf32(at(o, i)); });
      return w;
    default: break;
  }
  fail("cuda_core_weights: ", precision_name(p), " has no wgmma layout (int8 comes quantised from the plan)");
}

CudaLayerWeights cuda_core_weights(const Int8LayerWeights& l) {
  CudaLayerWeights w;
  w.bytes = pack_core<int8_t>(l.out, l.in, [&l](int o, int i) { return l.q[static_cast<size_t>(o) * l.in + i]; });
  w.scale = l.scale;
  return w;
}

uint16_t float_to_bf16(float f) {
  const uint32_t u = bits_of(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

float round_to_tf32(float f) {
  uint32_t u = bits_of(f);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // finite: half an ulp up, truncate
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

CudaLayerWeights cuda_layer_weights(const FoldedLinear& l, EnginePrecision p) {
  CudaLayerWeights w;
  const auto at = [&l](int o, int i) { return l.weight[static_cast<size_t>(o) * l.in + i]; };
  switch (p) {
    case EnginePrecision::FP32: {
      std::vector<float> t(static_cast<size_t>(l.in) * l.out);
      for (int o = 0; o < l.out; ++o)
        for (int i = 0; i < l.in; ++i) t[static_cast<size_t>(i) * l.out + o] = at(o, i);
      w.bytes.resize(t.size() * 4);
      std::memcpy(w.bytes.data(), t.data(), w.bytes.size());
      return w;
    }
    case EnginePrecision::FP16:
      w.bytes = pack<uint16_t>(l.out, l.in, [&](int o, int i) { return float_to_half(at(o, i)); });
      return w;
    case EnginePrecision::BF16:
      w.bytes = pack<uint16_t>(l.out, l.in, [&](int o, int i) { return float_to_bf16(at(o, i)); });
      return w;
    case EnginePrecision::TF32:
      w.bytes = pack<float>(l.out, l.in, [&](int o, int i) { return round_to_tf32(at(o, i)); });
      return w;
    case EnginePrecision::INT8: break;
  }
  fail("cuda_layer_weights: int8 layers come quantised from the plan (Int8LayerWeights)");
}

CudaLayerWeights cuda_3xtf32_weights(const FoldedLinear& l) {
  CudaLayerWeights w;
  w.bytes = pack<float>(l.out, l.in, [&l](int o, int i) { return l.weight[static_cast<size_t>(o) * l.in + i]; });
  return w;
}

CudaLayerWeights cuda_layer_weights(const Int8LayerWeights& l) {
  CudaLayerWeights w;
  w.bytes = pack<int8_t>(l.out, l.in, [&l](int o, int i) { return l.q[static_cast<size_t>(o) * l.in + i]; });
  w.scale = l.scale;
  return w;
}

nlohmann::json cuda_layer_precisions(const FoldedModel& model, EnginePrecision precision) {
  const bool int8 = precision == EnginePrecision::INT8;
  const std::string p = precision_name(precision);
  // The wide per-cloud layers (engine/cuda_runner.cpp, tf32_wide_fc).
  const std::string wide_fc = precision == EnginePrecision::FP32
                                  ? "fp32 (per cloud)"
                                  : "tf32 products, fp32 in and out (per cloud; fp32 at <= 8 clouds)";
  nlohmann::json layers = nlohmann::json::object();
  for (const auto& [name, l] : named_layers(model)) {
    const bool tnet = name.rfind("stn.", 0) == 0 || name.rfind("fstn.", 0) == 0;
    const std::string leaf = name.substr(name.find_last_of('.') + 1);
    if (name == "conv1" || name == "stn.conv1") layers[name] = "fp32";
    else if (tnet && (leaf == "fc1" || leaf == "fc2")) layers[name] = wide_fc;
    else if (tnet && leaf.rfind("fc", 0) == 0) layers[name] = "fp32 (per cloud)";
    else layers[name] = p;
  }
  const bool seg = model.config.task == ModelTask::Segmentation;
  for (size_t i = 0; i < model.head.size(); ++i) {
    const std::string name = "head." + std::to_string(i);
    if (!seg) layers[name] = i + 1 < model.head.size() ? wide_fc : "fp32 (per cloud)";
    else if (i == 0) layers[name] = "global part " + wide_fc + " (once per cloud); point part: see head.0.point";
    else if (i + 1 == model.head.size()) layers[name] = "fp32 (logits)";
  }
  if (seg) layers["head.0.point"] = p;
  if (int8)
    for (const Int8Layer& il : int8_layers(model))
      layers[il.layer] = il.per_cloud ? "int8 (weights quantised per cloud: a transform is folded in at run time)" : "int8";
  else if (model.has_fstn) {
    const std::string folded = p + " (weights per cloud: the feature transform is folded in at run time)";
    layers["conv2"] = folded;
    if (seg) layers["head.0.point"] = folded;
  }
  return layers;
}

}  // namespace pointnet
