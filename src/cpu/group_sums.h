// SyncBN's all-reduces for the CPU kernels: sums of double statistics over
// the ranks of a data-parallel group (Backend::set_batchnorm_group), in place.
#pragma once
#include <algorithm>
#include <initializer_list>
#include <vector>

#include "dist/communicator.h"

namespace pointnet::cpu {

// True when the statistics must be taken over several ranks.
inline bool synchronised(Communicator* group) { return group && group->size() > 1; }

// values = their sum over the group's ranks (unchanged without a group).
inline void sum_over_group(Communicator* group, std::vector<double>& values) {
  if (synchronised(group)) group->all_reduce_sum(values.data(), values.size());
}

// Each part = its sum over the group's ranks, with this rank's row count
// carried after them in the same all-reduce (as the CUDA backend's
// group_sums). Returns the group's row count: `rows` itself without a group.
inline double sum_over_group(Communicator* group, std::initializer_list<std::vector<double>*> parts, int rows) {
  if (!synchronised(group)) return rows;
  std::vector<double> packed;
  for (const std::vector<double>* part : parts) packed.insert(packed.end(), part->begin(), part->end());
  packed.push_back(rows);
  group->all_reduce_sum(packed.data(), packed.size());
  auto from = packed.begin();
  for (std::vector<double>* part : parts) {
    std::copy(from, from + static_cast<std::ptrdiff_t>(part->size()), part->begin());
    from += static_cast<std::ptrdiff_t>(part->size());
  }
  return packed.back();
}

}  // namespace pointnet::cpu
