// Verification stamps: a pack verified once (checksum over every byte, every
// f32 value finite) is not verified again on later loads while the file is
// unchanged, as git trusts a file's stat data instead of hashing it again.
// The stamp lives in the user's cache folder, one small file per pack, and
// holds the file's identity (device, inode, size, mtime, ctime) and stored
// checksum; any write through the file system changes the pack's ctime, so a
// changed pack is verified again. Loading ModelNet40's 152 MB pack then takes
// ~1.7 ms instead of ~10 (docs/benchmarks.md).
//
// What a stamp trusts, and so no longer catches after the first load:
// corruption below the file system (a failing disk, bit rot, bad memory),
// writes through a shared memory mapping that leave mtime and ctime alone,
// file systems whose ctime is unreliable. `POINTNET_PACK_VERIFY=always`
// verifies every load (`POINTNET_PACK_VERIFY=always pointnet info X.pack`
// checks a pack's integrity now); stamps are neither read nor written then.
//
// The cache folder: POINTNET_CACHE_DIR, else $XDG_CACHE_HOME/pointnet (an
// absolute XDG_CACHE_HOME only, as the XDG spec says), else
// $HOME/.cache/pointnet; stamps go in its verified-packs/ (mode 0700). A stamp
// is trusted only if it is a regular file of this user's in a folder of this
// user's that no one else can write. Where no folder can be written, every
// load verifies. `rm -rf ~/.cache/pointnet/verified-packs` forgets them all.
#pragma once
#include <cstdint>
#include <string>

#include "core/mapped_file.h"

namespace pointnet::pack {

// Whether a trusted stamp says `file` (as mapped: its identity) was verified
// with this stored checksum.
bool stamp_says_verified(const MappedFile& file, uint64_t stored_checksum);

// Records that `file` passed verification. `stat_time_ns`: the wall clock
// (ns since the epoch) taken just before `file` was opened and stat'ed. No
// stamp where the file had changed less than 2 s before that moment (a write
// in the same timestamp tick could otherwise leave a changed file with the
// stamped identity), nor where the file at its path is no longer the one
// verified. Failing to write a stamp is not an error: the next load verifies.
void write_stamp(const MappedFile& file, uint64_t stored_checksum, int64_t stat_time_ns);

// The wall clock in ns since the epoch, as write_stamp wants it.
int64_t wall_clock_ns();

// The stamp file for `file`, or "" where stamps are off or no cache folder is known.
std::string stamp_path(const MappedFile& file);

}  // namespace pointnet::pack
