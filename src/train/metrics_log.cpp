#include "train/metrics_log.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "core/atomic_file.h"
#include "core/errors.h"

namespace pointnet {

MetricsLog::MetricsLog(std::string path, bool append) : path_(std::move(path)) {
  errno = 0;
  out_.open(path_, append ? std::ios::out | std::ios::app : std::ios::out | std::ios::trunc);
  if (!out_) fail(path_, ": cannot open metrics log: ", errno ? std::strerror(errno) : "unknown error");
}

void MetricsLog::write(const nlohmann::json& record) {
  if (!record.is_object()) fail(path_, ": metrics record must be a JSON object, got ", record.type_name());
  // replace: a stray invalid UTF-8 byte in a name must not lose the whole record.
  out_ << record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << '\n' << std::flush;
  if (!out_) fail(path_, ": write to metrics log failed");
}

void MetricsLog::truncate_after_epoch(const std::string& path, int epoch) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return;
  std::istringstream in(read_file(path));
  std::string kept, line;
  while (std::getline(in, line)) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) continue;  // torn or garbage line
    auto e = record.find("epoch");
    if (e != record.end() && e->is_number() && e->get<double>() > epoch) continue;
    kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace pointnet
