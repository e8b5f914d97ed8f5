#include "data/pack_stamp.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <system_error>

#include "core/env_choice.h"
#include "core/errors.h"

namespace pointnet::pack {
namespace {

// Change this whenever what a verification checks changes: older stamps then
// stop matching, and every pack is verified again under the new rules.
constexpr const char* kStampMagic = "pointnet-pack-verified-1";
constexpr int64_t kRacyNs = 2'000'000'000;  // a change this recent may share its timestamp tick with the next
constexpr size_t kMaxStamp = 255;           // a stamp is one short line

bool stamps_on() { return env_choice("POINTNET_PACK_VERIFY", {"stamp", "always"}) == "stamp"; }

std::string cache_folder() {
  const auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? std::string(v) : std::string();
  };
  if (std::string d = set("POINTNET_CACHE_DIR"); !d.empty()) return d;
  if (std::string d = set("XDG_CACHE_HOME"); !d.empty() && d.front() == '/') return d + "/pointnet";
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

// Owned by this user and writable by no one else: no other user can plant a stamp here.
bool private_to_me(const struct stat& st) {
  return st.st_uid == ::geteuid() && (st.st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

bool private_folder(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && private_to_me(st);
}

// The stamp's text, or "" unless it is a private regular file of at most
// kMaxStamp bytes (never blocks: a FIFO or device there is not read).
std::string read_stamp(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return "";
  std::string text;
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && private_to_me(st) &&
      static_cast<size_t>(st.st_size) <= kMaxStamp) {
    char buf[kMaxStamp + 1];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) text.assign(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return text;
}

// Writes `text` to `path` by a temporary file and a rename (readers see the
// old stamp or the new one); no fsync: a lost stamp only means verifying again.
void write_small_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (::close(fd) != 0 || !written || std::rename(tmp.c_str(), path.c_str()) != 0) ::unlink(tmp.c_str());
}

}  // namespace

int64_t wall_clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string stamp_path(const MappedFile& file) {
  if (!stamps_on()) return "";
  const std::string folder = cache_folder();
  if (folder.empty()) return "";
  const FileIdentity& id = file.identity();
  return folder + "/verified-packs/" + std::to_string(id.device) + "-" + std::to_string(id.inode) + ".stamp";
}

bool stamp_says_verified(const MappedFile& file, uint64_t stored_checksum) {
  const std::string path = stamp_path(file);
  if (path.empty() || !private_folder(std::filesystem::path(path).parent_path().string())) return false;
  return read_stamp(path) == stamp_text(file.identity(), stored_checksum);
}

void write_stamp(const MappedFile& file, uint64_t stored_checksum, int64_t stat_time_ns) {
  const std::string path = stamp_path(file);
  if (path.empty()) return;
  const FileIdentity& id = file.identity();
  if (stat_time_ns - std::max(id.mtime_ns, id.ctime_ns) < kRacyNs) return;
  try {
    // Defensive: the stamp names the identity the file had when opened, so a
    // later change would not match it anyway; but a stamp for a file that is
    // no longer at its path is useless.
    if (!(file_identity(file.path()) == id)) return;
  } catch (const Error&) {
    return;
  }
  const std::string folder = std::filesystem::path(path).parent_path().string();
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(folder).parent_path(), ec);
  if (::mkdir(folder.c_str(), 0700) != 0) {
    // An existing folder of this user's that others could write (an older
    // version made it under the umask) is made private; anyone else's is left alone.
    struct stat st {};
    if (::lstat(folder.c_str(), &st) == 0 && S_ISDIR(st.st_mode) && st.st_uid == ::geteuid())
      ::chmod(folder.c_str(), 0700);
  }
  if (!private_folder(folder)) return;
  write_small_file(path, stamp_text(id, stored_checksum));
}

}  // namespace pointnet::pack
