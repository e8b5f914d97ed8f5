// Cloud labels are part numbers: whole and non-negative, as every reader takes
// them (text, .ply, .pcd). The writers refuse others, so what they write reads back.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.h"

namespace pointnet {

inline void check_labels(const std::string& path, const std::vector<int32_t>& labels) {
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0) fail(path, ": label ", labels[i], " of point ", i, ": expected a non-negative part number");
}

}  // namespace pointnet
