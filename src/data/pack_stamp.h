// Verification stamps: a pack verified once (checksum over every byte, every
// f32 value finite) is not verified again on later loads while the file is
// unchanged, as git trusts a file's stat data instead of hashing it again.
// The stamp lives in the user's cache folder, one small file per pack, and
// holds the file's identity (device, inode, size, mtime, ctime) and stored
// checksum; any write to the pack changes its ctime, so a changed pack is
// verified again. Loading ModelNet40's 152 MB pack then costs ~3 ms instead
// of ~10 (docs/benchmarks.md).
//
// POINTNET_PACK_VERIFY=always verifies on every load (stamps neither read
// nor written). The cache folder: POINTNET_CACHE_DIR, else
// $XDG_CACHE_HOME/pointnet, else $HOME/.cache/pointnet; where none can be
// written, every load verifies.
#pragma once
#include <cstdint>
#include <string>

#include "core/mapped_file.h"

namespace pointnet::pack {

// Whether a stamp says `file` (as mapped: its identity) was verified with this stored checksum.
bool stamp_says_verified(const MappedFile& file, uint64_t stored_checksum);

// Records that `file` just passed verification. Skipped (no stamp) while the
// file's last change is under 2 s old: a write within the same timestamp
// tick could otherwise leave a changed file with the stamped identity.
// Failing to write the stamp is not an error: the next load verifies again.
void write_stamp(const MappedFile& file, uint64_t stored_checksum);

// The stamp file for `file`, or "" where stamps are off or no cache folder is known.
std::string stamp_path(const MappedFile& file);

}  // namespace pointnet::pack
