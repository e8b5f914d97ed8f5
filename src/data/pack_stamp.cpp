#include "data/pack_stamp.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

#include "core/atomic_file.h"
#include "core/env_choice.h"
#include "core/errors.h"

namespace pointnet::pack {
namespace {

constexpr const char* kStampMagic = "pointnet-pack-verified-1";
constexpr int64_t kRacyNs = 2'000'000'000;  // a change this recent may share its timestamp tick with the next

std::string cache_folder() {
  if (env_choice("POINTNET_PACK_VERIFY", {"stamp", "always"}) == "always") return "";
  const auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string();
  };
  if (std::string d = set("POINTNET_CACHE_DIR"); !d.empty()) return d;
  if (std::string d = set("XDG_CACHE_HOME"); !d.empty()) return d + "/pointnet";
  if (std::string d = set("HOME"); !d.empty()) return d + "/.cache/pointnet";
  return "";
}

// The one line a stamp holds: everything that must still match.
std::string stamp_text(const FileIdentity& id, uint64_t checksum) {
  std::ostringstream s;
  s << kStampMagic << ' ' << id.device << ' ' << id.inode << ' ' << id.size << ' ' << id.mtime_ns << ' '
    << id.ctime_ns << ' ' << checksum << '\n';
  return s.str();
}

}  // namespace

std::string stamp_path(const MappedFile& file) {
  const std::string folder = cache_folder();
  if (folder.empty()) return "";
  const FileIdentity& id = file.identity();
  return folder + "/verified-packs/" + std::to_string(id.device) + "-" + std::to_string(id.inode) + ".stamp";
}

bool stamp_says_verified(const MappedFile& file, uint64_t stored_checksum) {
  const std::string path = stamp_path(file);
  if (path.empty()) return false;
  std::ifstream in(path, std::ios::binary);
  char buf[256] = {};  // a stamp is one short line: never read more
  in.read(buf, sizeof buf - 1);
  return in.gcount() > 0 && std::string(buf, static_cast<size_t>(in.gcount())) ==
                                stamp_text(file.identity(), stored_checksum);
}

void write_stamp(const MappedFile& file, uint64_t stored_checksum) {
  const std::string path = stamp_path(file);
  if (path.empty()) return;
  const FileIdentity& id = file.identity();
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  if (now - std::max(id.mtime_ns, id.ctime_ns) < kRacyNs) return;
  try {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    write_file_atomic(path, stamp_text(id, stored_checksum));
  } catch (const Error&) {  // a read-only home or a full disk: the next load verifies again
  }
}

}  // namespace pointnet::pack
