// SyncBN's all-reduces for the CPU kernels: sums of double statistics over
// the ranks of a data-parallel group (Backend::set_batchnorm_group), in place.
#pragma once
#include <vector>

#include "dist/communicator.h"

namespace pointnet::cpu {

// True when the statistics must be taken over several ranks.
inline bool synchronised(Communicator* group) { return group && group->size() > 1; }

// values = their sum over the group's ranks (unchanged without a group).
inline void sum_over_group(Communicator* group, std::vector<double>& values) {
  if (synchronised(group)) group->all_reduce_sum(values.data(), values.size());
}

}  // namespace pointnet::cpu
