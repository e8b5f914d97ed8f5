// pointnet.pytorch checkpoints (torch.save(model.state_dict(), path), zip or
// legacy format) as our Checkpoint: the state_dict's names are ours one to
// one, so the work is finding the state_dict, converting its tensors to float,
// and working out the architecture from its keys and shapes.
#pragma once
#include <string>
#include <vector>

#include "io/torch_file.h"
#include "train/checkpoint.h"

namespace pointnet {

// True when the file starts like a torch.save file (zip or legacy pickle).
bool is_torch_checkpoint(const std::string& path);

// Reads the state_dict (also when wrapped under "model_state_dict",
// "state_dict" or "model", and with DataParallel's "module." prefix), infers
// classifier vs segmenter, feature transform and the number of outputs, and
// checks every key and shape: missing, extra or misshapen tensors are refused
// with the first few named. `class_names` empty: "class0", "class1", ... (cls)
// or one category "class0" (seg); a segmenter takes at most one name (its
// category, as pointnet.pytorch trains one category at a time).
Checkpoint import_pth(const std::string& path, const std::vector<std::string>& class_names = {});
Checkpoint import_pth(const TorchFile& file, const std::vector<std::string>& class_names = {});

// The names import_pth gives when none are known.
std::vector<std::string> placeholder_class_names(int count);

}  // namespace pointnet
