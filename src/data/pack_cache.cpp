#include "data/pack_cache.h"

#include <map>
#include <mutex>

#include "core/errors.h"

namespace pointnet::pack {
namespace {

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, std::weak_ptr<const MappedFile>>& cache() {
  static std::map<std::string, std::weak_ptr<const MappedFile>> entries;
  return entries;
}

}  // namespace

std::shared_ptr<const MappedFile> verified_mapping(const std::string& path) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  const auto it = cache().find(path);
  if (it == cache().end()) return nullptr;
  std::shared_ptr<const MappedFile> file = it->second.lock();
  try {
    if (file && file->identity() == file_identity(path)) return file;
  } catch (const Error&) {  // gone or unreadable now: mapping it anew says why
  }
  cache().erase(it);
  return nullptr;
}

void remember_verified(const std::shared_ptr<const MappedFile>& file) {
  std::lock_guard<std::mutex> lock(cache_mutex());
  for (auto it = cache().begin(); it != cache().end();)  // drop mappings no Dataset uses any more
    it = it->second.expired() ? cache().erase(it) : std::next(it);
  cache()[file->path()] = file;
}

}  // namespace pointnet::pack
