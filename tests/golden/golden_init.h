// Deterministic parameter values for the golden tests: the same formula that
// scripts/make_goldens.py used to fill pointnet.pytorch's model before it
// recorded the goldens, reproduced here bit for bit (checked against the
// files' "init_check.<name>" tensors).
//
// THE RULES (the same text is in scripts/make_goldens.py; change both or neither):
//
//   For state_dict entry NAME with shape S, element i (flat, C order):
//     h = fnv1a64(NAME bytes)      offset 0xcbf29ce484222325, prime 0x100000001b3
//     x = splitmix64(h ^ (i * 0x9E3779B97F4A7C15 mod 2^64))
//         splitmix64(z): z += 0x9E3779B97F4A7C15; z = (z ^ z>>30) * 0xBF58476D1CE4E5B9;
//                        z = (z ^ z>>27) * 0x94D049BB133111EB; return z ^ z>>31   (all mod 2^64)
//     u = ((x >> 11) * 2^-53) * 2 - 1          uniform in [-1, 1), exact in double
//   Kind, from NAME (last component = after the final '.', module = the one before it):
//     last == "num_batches_tracked"            -> 0
//     last == "running_mean"                   -> 0.1 * u
//     last == "running_var"                    -> 1 + 0.25 * (u + 1)
//     module starts with "bn",   last "weight" -> 1 + 0.1 * u
//     module starts with "bn",   last "bias"   -> 0.1 * u
//     module starts with "conv"/"fc", "weight" -> u / sqrt(fan_in), fan_in = prod(S[1:])
//                                                 (Conv1d weight is (out, in, 1): fan_in = in)
//         and if NAME ends with "stn.fc3.weight" (T-Net last layer, also "fstn.fc3.weight"):
//                                                 (u / sqrt(fan_in)) * 0.1
//     module starts with "conv"/"fc", "bias"   -> 0.1 * u
//     anything else                            -> error
//   Every operation is one IEEE double operation, rounded to nearest, in the order
//   written (no fused multiply-add: see round_here below).
//
// Shapes are PyTorch's: Conv1d weight (out, in, 1), Linear weight (out, in), so a
// C++ layer that stores (in, out) must transpose what golden_param returns.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pointnet {
namespace golden {

inline uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

inline uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Forces a product to be rounded to double before it is added to anything, so a
// compiler allowed to contract a*b+c into an FMA (GCC's default -ffp-contract=fast
// with -march=native) cannot change the last bit. Python rounds every operation.
inline double round_here(double x) {
  volatile double v = x;
  return v;
}

// u in [-1, 1) for element `index` of the entry whose name hashes to `name_hash`.
inline double golden_uniform(uint64_t name_hash, int64_t index) {
  uint64_t x = splitmix64(name_hash ^ (static_cast<uint64_t>(index) * 0x9E3779B97F4A7C15ULL));
  return static_cast<double>(x >> 11) * 0x1.0p-53 * 2.0 - 1.0;  // exact: no rounding anywhere
}

enum class ParamKind { kNumBatchesTracked, kRunningMean, kRunningVar, kBnWeight, kBnBias, kWeight, kBias };

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// The kind of a state_dict entry, from its name alone (the rules above).
inline ParamKind golden_param_kind(const std::string& name) {
  size_t dot = name.rfind('.');
  std::string last = dot == std::string::npos ? name : name.substr(dot + 1);
  std::string module;
  if (dot != std::string::npos) {
    size_t dot2 = dot == 0 ? std::string::npos : name.rfind('.', dot - 1);
    module = dot2 == std::string::npos ? name.substr(0, dot) : name.substr(dot2 + 1, dot - dot2 - 1);
  }
  if (last == "num_batches_tracked") return ParamKind::kNumBatchesTracked;
  if (last == "running_mean") return ParamKind::kRunningMean;
  if (last == "running_var") return ParamKind::kRunningVar;
  if (starts_with(module, "bn") && last == "weight") return ParamKind::kBnWeight;
  if (starts_with(module, "bn") && last == "bias") return ParamKind::kBnBias;
  if ((starts_with(module, "conv") || starts_with(module, "fc")) && last == "weight") return ParamKind::kWeight;
  if ((starts_with(module, "conv") || starts_with(module, "fc")) && last == "bias") return ParamKind::kBias;
  throw std::invalid_argument("golden init: no rule for parameter '" + name + "'");
}

// All values of state_dict entry `name` with PyTorch shape `shape` (flat, C order).
// num_batches_tracked (shape []) gives {0.0}.
inline std::vector<double> golden_param(const std::string& name, const std::vector<int64_t>& shape) {
  ParamKind kind = golden_param_kind(name);
  int64_t numel = 1;
  for (int64_t d : shape) {
    if (d < 0) throw std::invalid_argument("golden init: negative dimension for '" + name + "'");
    numel *= d;
  }
  std::vector<double> out(static_cast<size_t>(numel), 0.0);
  if (kind == ParamKind::kNumBatchesTracked) return out;

  double inv_scale = 1.0;  // sqrt(fan_in), weights only
  bool tnet_last = false;
  if (kind == ParamKind::kWeight) {
    if (shape.size() < 2) throw std::invalid_argument("golden init: weight '" + name + "' needs (out, in, ...)");
    int64_t fan_in = 1;
    for (size_t d = 1; d < shape.size(); ++d) fan_in *= shape[d];
    inv_scale = std::sqrt(static_cast<double>(fan_in));
    tnet_last = ends_with(name, "stn.fc3.weight");
  }

  const uint64_t h = fnv1a64(name);
  for (int64_t i = 0; i < numel; ++i) {
    const double u = golden_uniform(h, i);
    double v = 0.0;
    switch (kind) {
      case ParamKind::kRunningMean: v = round_here(0.1 * u); break;
      case ParamKind::kRunningVar:  v = 1.0 + round_here(0.25 * (u + 1.0)); break;
      case ParamKind::kBnWeight:    v = 1.0 + round_here(0.1 * u); break;
      case ParamKind::kBnBias:      v = round_here(0.1 * u); break;
      case ParamKind::kWeight:
        v = round_here(u / inv_scale);
        if (tnet_last) v = round_here(v * 0.1);
        break;
      case ParamKind::kBias:        v = round_here(0.1 * u); break;
      case ParamKind::kNumBatchesTracked: break;
    }
    out[static_cast<size_t>(i)] = v;
  }
  return out;
}

}  // namespace golden
}  // namespace pointnet
