#include "core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/errors.h"

namespace pointnet {
namespace {

std::string reason(int err) { return std::strerror(err); }

std::string parent_dir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// Removes the temporary on every failure path, unless released after the rename.
class TempFile {
 public:
  explicit TempFile(std::string name) : name_(std::move(name)) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!released_) ::unlink(name_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& name() const { return name_; }
  int fd_ = -1;
  bool released_ = false;

 private:
  std::string name_;
};

bool write_all(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  if (path.empty()) fail("write_file_atomic: empty path");
  TempFile tmp(path + ".tmp-" + std::to_string(::getpid()));

  tmp.fd_ = ::open(tmp.name().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  if (tmp.fd_ < 0) {
    int err = errno;
    tmp.released_ = true;  // we did not create it; do not remove someone else's file
    fail(path, ": cannot create temporary file ", tmp.name(), ": ", reason(err));
  }
  if (!write_all(tmp.fd_, bytes.data(), bytes.size())) {
    int err = errno;
    fail(path, ": write to ", tmp.name(), " failed: ", reason(err));
  }
  // fsync before rename: otherwise a crash can leave the new name pointing at empty data.
  if (::fsync(tmp.fd_) != 0) {
    int err = errno;
    fail(path, ": fsync of ", tmp.name(), " failed: ", reason(err));
  }
  int fd = tmp.fd_;
  tmp.fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    fail(path, ": close of ", tmp.name(), " failed: ", reason(err));
  }
  if (::rename(tmp.name().c_str(), path.c_str()) != 0) {
    int err = errno;
    fail(path, ": cannot rename ", tmp.name(), " over it: ", reason(err));
  }
  tmp.released_ = true;

  // fsync the directory so the rename itself survives a crash.
  std::string dir = parent_dir(path);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) {
    int err = errno;
    fail(path, ": cannot open directory ", dir, " to fsync: ", reason(err));
  }
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  // EINVAL: the file system does not support fsync on directories; nothing more we can do.
  if (rc != 0 && err != EINVAL) fail(path, ": fsync of directory ", dir, " failed: ", reason(err));
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    fail(path, ": cannot open: ", reason(err));
  }
  std::string out;
  struct stat st {};
  // Only regular files: a device or FIFO (/dev/zero) could be read forever.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));  // a hint only; we read until EOF
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail(path, ": read failed: ", reason(err));
    }
    if (n == 0) break;
    out.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace pointnet
