#include "io/zip_archive.h"

#include <algorithm>

#include "core/errors.h"

namespace pointnet {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22, kZip64LocatorSize = 20, kZip64EndSize = 56;
constexpr size_t kCentralHeaderSize = 46, kLocalHeaderSize = 30;

// Little-endian reads; callers have checked that [offset, offset + width) is in range.
uint64_t le(std::string_view b, uint64_t offset, int width) {
  uint64_t v = 0;
  for (int i = width - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[offset + i]);
  return v;
}

class Reader {
 public:
  Reader(std::string_view bytes, const std::string& path) : b_(bytes), path_(path) {}
  // Fails unless [offset, offset + n) lies inside the file.
  void need(uint64_t offset, uint64_t n, const char* what) const {
    if (offset > b_.size() || n > b_.size() - offset)
      fail(path_, ": byte ", offset, ": zip ", what, " (", n, " bytes) runs past the end of the file (",
           b_.size(), " bytes): truncated or corrupt");
  }
  uint64_t u(uint64_t offset, int width, const char* what) const {
    need(offset, width, what);
    return le(b_, offset, width);
  }
  void expect_sig(uint64_t offset, uint32_t sig, const char* what) const {
    if (u(offset, 4, what) != sig)
      fail(path_, ": byte ", offset, ": expected a zip ", what, " signature, found something else: corrupt archive");
  }

 private:
  std::string_view b_;
  const std::string& path_;
};

// Where the end-of-central-directory record starts: the last signature within
// the final 22 + 65535 bytes (the comment may follow it).
uint64_t find_end_record(std::string_view b, const std::string& path) {
  if (b.size() < kEndSize)
    fail(path, ": ", b.size(), " bytes is too short for a zip archive (no end of central directory record)");
  const uint64_t last = b.size() - kEndSize;
  const uint64_t first = last > 65535 ? last - 65535 : 0;
  for (uint64_t p = last + 1; p-- > first;)
    if (le(b, p, 4) == kEndSig && p + kEndSize + le(b, p + 20, 2) <= b.size()) return p;
  fail(path, ": no zip end of central directory record in the last ", b.size() - first,
       " bytes: truncated or not a zip archive");
}

}  // namespace

bool looks_like_zip(std::string_view bytes) { return bytes.size() >= 4 && le(bytes, 0, 4) == kLocalHeaderSig; }

uint32_t crc32(std::string_view bytes) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char ch : bytes) c = table[(c ^ ch) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

ZipArchive::ZipArchive(std::string_view bytes, std::string path) : bytes_(bytes), path_(std::move(path)) {
  const Reader r(bytes_, path_);
  const uint64_t end = find_end_record(bytes_, path_);
  uint64_t count = r.u(end + 10, 2, "entry count");
  uint64_t cd_size = r.u(end + 12, 4, "directory size");
  uint64_t cd_offset = r.u(end + 16, 4, "directory offset");
  if (r.u(end + 4, 2, "disk number") != 0 || r.u(end + 6, 2, "disk number") != 0)
    fail(path_, ": byte ", end, ": multi-disk zip archives are not supported");
  // Zip64: a locator just before the end record points at the 64-bit record.
  if (end >= kZip64LocatorSize && le(bytes_, end - kZip64LocatorSize, 4) == kZip64LocatorSig) {
    const uint64_t locator = end - kZip64LocatorSize;
    const uint64_t z64 = r.u(locator + 8, 8, "zip64 end record offset");
    if (z64 > locator)
      fail(path_, ": byte ", locator, ": zip64 end record offset ", z64, " is past its locator: corrupt archive");
    r.need(z64, kZip64EndSize, "zip64 end record");
    r.expect_sig(z64, kZip64EndSig, "zip64 end record");
    count = r.u(z64 + 32, 8, "entry count");
    cd_size = r.u(z64 + 40, 8, "directory size");
    cd_offset = r.u(z64 + 48, 8, "directory offset");
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {
    fail(path_, ": byte ", end, ": the end record defers to a zip64 record that is missing: corrupt archive");
  }
  if (cd_offset > end || cd_size > end - cd_offset)
    fail(path_, ": byte ", end, ": central directory at ", cd_offset, " (", cd_size,
         " bytes) does not lie before the end record at ", end, ": truncated or corrupt archive");
  // Each directory record is at least 46 bytes: bounds the count before reserving.
  if (count > cd_size / kCentralHeaderSize)
    fail(path_, ": byte ", end, ": ", count, " entries cannot fit in a ", cd_size, "-byte central directory");
  entries_.reserve(count);
  const uint64_t cd_end = cd_offset + cd_size;
  uint64_t p = cd_offset;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - p < kCentralHeaderSize)
      fail(path_, ": byte ", p, ": central directory record ", i, " runs past the directory's end: corrupt archive");
    r.expect_sig(p, kCentralHeaderSig, "central directory record");
    const uint64_t flags = le(bytes_, p + 8, 2), method = le(bytes_, p + 10, 2);
    const uint64_t name_len = le(bytes_, p + 28, 2), extra_len = le(bytes_, p + 30, 2),
                   comment_len = le(bytes_, p + 32, 2);
    if (cd_end - p - kCentralHeaderSize < name_len + extra_len + comment_len)
      fail(path_, ": byte ", p, ": central directory record ", i, " runs past the directory's end: corrupt archive");
    ZipEntry e;
    e.name.assign(bytes_.substr(p + kCentralHeaderSize, name_len));
    e.crc32 = static_cast<uint32_t>(le(bytes_, p + 16, 4));
    uint64_t compressed = le(bytes_, p + 20, 4);
    e.size = le(bytes_, p + 24, 4);
    e.header_offset = le(bytes_, p + 42, 4);
    // The zip64 extra field (id 1) holds, in order, whichever of these were 0xFFFFFFFF.
    uint64_t x = p + kCentralHeaderSize + name_len;
    const uint64_t x_end = x + extra_len;
    while (x_end - x >= 4) {
      const uint64_t id = le(bytes_, x, 2), len = le(bytes_, x + 2, 2);
      if (x_end - x - 4 < len) fail(path_, ": byte ", x, ": extra field of '", e.name, "' runs past its record");
      if (id == 1) {
        uint64_t q = x + 4;
        for (uint64_t* field : {&e.size, &compressed, &e.header_offset}) {
          if (*field != 0xFFFFFFFF) continue;
          if (x + 4 + len - q < 8) fail(path_, ": byte ", x, ": zip64 extra field of '", e.name, "' is too short");
          *field = le(bytes_, q, 8);
          q += 8;
        }
      }
      x += 4 + len;
    }
    if (flags & 1) fail(path_, ": byte ", p, ": entry '", e.name, "' is encrypted, which is not supported");
    if (method != 0)
      fail(path_, ": byte ", p, ": entry '", e.name, "' uses compression method ", method,
           "; only stored (uncompressed, method 0) entries are supported, which is what torch.save writes");
    if (compressed != e.size)
      fail(path_, ": byte ", p, ": stored entry '", e.name, "' has compressed size ", compressed,
           " but uncompressed size ", e.size, ": corrupt archive");
    // The local header repeats the name and has its own extra field (PyTorch pads
    // it so that data is aligned): the data starts after both.
    if (e.header_offset > cd_offset || cd_offset - e.header_offset < kLocalHeaderSize)
      fail(path_, ": byte ", p, ": entry '", e.name, "' has its local header at ", e.header_offset,
           ", outside the data area (0..", cd_offset, "): corrupt archive");
    r.expect_sig(e.header_offset, kLocalHeaderSig, "local file header");
    e.data_offset = e.header_offset + kLocalHeaderSize + le(bytes_, e.header_offset + 26, 2) +
                    le(bytes_, e.header_offset + 28, 2);
    if (e.data_offset > cd_offset || e.size > cd_offset - e.data_offset)
      fail(path_, ": byte ", e.header_offset, ": entry '", e.name, "' (", e.size, " bytes from byte ", e.data_offset,
           ") runs into the central directory at ", cd_offset, ": truncated or corrupt archive");
    entries_.push_back(std::move(e));
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipArchive::find(const std::string& name) const {
  for (const ZipEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

std::string_view ZipArchive::read(const ZipEntry& e) const {
  const std::string_view data = bytes_.substr(e.data_offset, e.size);
  const uint32_t crc = crc32(data);
  if (crc != e.crc32)
    fail(path_, ": byte ", e.data_offset, ": entry '", e.name, "' fails its CRC-32 check (stored ", e.crc32,
         ", computed ", crc, "): corrupt archive");
  return data;
}

}  // namespace pointnet
