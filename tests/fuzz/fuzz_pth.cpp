// torch.save files (zip or legacy) through the restricted unpickler, then every
// tensor of a dict-shaped root copied out of its storage, as the .pth import does.
#include "fuzz_common.h"
#include "io/torch_file.h"

POINTNET_FUZZ_TARGET({
  const pointnet::TorchFile file =
      pointnet::parse_torch_file(std::string(pointnet::fuzz::as_text(data, size)), "fuzz.pth");
  if (file.root && file.root->kind == pointnet::PickleValue::Kind::Dict)
    for (const auto& [key, value] : file.root->dict)
      if (value && value->kind == pointnet::PickleValue::Kind::Tensor)
        (void)pointnet::materialize(file, value->tensor, "fuzz");
})
