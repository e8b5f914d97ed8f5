// Reading zip archives as PyTorch writes them (torch.save since 1.6): the
// central directory (zip64 where present) and stored, uncompressed entries.
// Compressed entries, multi-disk archives and encryption are refused. Every
// offset and length is checked against the bytes before use, so a truncated or
// corrupt archive is an Error naming the file and the byte offset.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pointnet {

struct ZipEntry {
  std::string name;
  uint64_t header_offset = 0;  // of its local file header
  uint64_t data_offset = 0;    // of its first data byte
  uint64_t size = 0;           // stored == uncompressed
  uint32_t crc32 = 0;
};

// "PK\x03\x04": the local file header that begins every non-empty zip.
bool looks_like_zip(std::string_view bytes);

class ZipArchive {
 public:
  // Parses the directory of `bytes`, which must outlive the archive. `path`
  // names the file in messages.
  ZipArchive(std::string_view bytes, std::string path);

  const std::vector<ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;  // null when absent
  // The entry's bytes, after checking their CRC-32.
  std::string_view read(const ZipEntry& entry) const;
  const std::string& path() const { return path_; }

 private:
  std::string_view bytes_;
  std::string path_;
  std::vector<ZipEntry> entries_;
};

uint32_t crc32(std::string_view bytes);

}  // namespace pointnet
