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

}  // namespace pointnet
