// Atomic whole-file writes: write a temporary file beside the target, fsync,
// rename. Readers see the old file or the new one, never a mix.
#pragma once
#include <string>

namespace pointnet {

// Throws pointnet::Error naming `path` when any step fails; the temporary is removed.
void write_file_atomic(const std::string& path, const std::string& bytes);

// Reads a whole file; throws pointnet::Error "<path>: cannot open: <reason>".
std::string read_file(const std::string& path);

}  // namespace pointnet
