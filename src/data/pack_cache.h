// Packs mapped and verified once per process. `pointnet train` reads a pack's
// train and test splits, `info` every split: each load would otherwise map
// and verify the whole file again (~10 ms for ModelNet40, docs/benchmarks.md).
// An entry lives as long as a Dataset views its mapping; a file replaced or
// rewritten since (another FileIdentity) is mapped and verified anew.
#pragma once
#include <memory>
#include <string>

#include "core/mapped_file.h"

namespace pointnet::pack {

// The mapping of `path` verified earlier in this process and still in use,
// if the file is still the one mapped; else null.
std::shared_ptr<const MappedFile> verified_mapping(const std::string& path);

// Remembers `file`, just verified, for verified_mapping().
void remember_verified(const std::shared_ptr<const MappedFile>& file);

}  // namespace pointnet::pack
