#include "data/pack_format.h"

#include <cstring>

#include "core/errors.h"

namespace pointnet::pack {

Header parse_fixed_header(const MappedFile& file) {
  const std::string& path = file.path();
  const unsigned char* p = file.data();
  if (file.size() < kFixedHeader || std::memcmp(p, kMagic, sizeof kMagic) != 0)
    fail(path, ": not a pointnet dataset pack (expected the magic \"PNTPACK\" at byte 0)");
  Header h;
  h.version = static_cast<uint32_t>(get_le(p + 8, 4));
  if (h.version < kOldestVersion || h.version > kVersion)
    fail(path, ": byte 8: pack format version ", h.version, ", but this build reads versions ", kOldestVersion, " to ",
         kVersion, " (re-create it with `pointnet pack`)");
  h.json_bytes = get_le(p + 12, 4);
  h.data_bytes = get_le(p + 16, 8);
  h.data_offset = align_up(kFixedHeader + h.json_bytes);
  if (h.data_offset > file.size() || h.data_bytes != file.size() - h.data_offset)
    fail(path, ": byte 12: the header says ", h.json_bytes, " header bytes and ", h.data_bytes,
         " data bytes, but the file has ", file.size(), " bytes: truncated or corrupted");
  return h;
}

void parse_json(const MappedFile& file, Header& h) {
  const unsigned char* p = file.data() + kFixedHeader;
  try {
    h.json = nlohmann::json::parse(p, p + h.json_bytes);
  } catch (const nlohmann::json::parse_error& e) {
    fail(file.path(), ": byte ", kFixedHeader + e.byte, ": invalid JSON header: ", e.what());
  } catch (const nlohmann::json::exception& e) {  // not only parse_error: 1e999 is out_of_range (406)
    fail(file.path(), ": byte ", kFixedHeader, ": invalid JSON header: ", e.what());
  }
}

Section section(const Header& h, const std::string& path, const char* name, uint64_t expected_bytes, bool at_least) {
  Section s;
  try {
    s.offset = h.json.at("sections").at(name).at("offset");
    s.bytes = h.json.at("sections").at(name).at("bytes");
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": header: section '", name, "' missing or malformed (", e.what(), ")");
  }
  const bool size_ok = at_least ? s.bytes >= expected_bytes : s.bytes == expected_bytes;
  if (!size_ok || s.offset % kAlign != 0 || s.offset > h.data_bytes || s.bytes > h.data_bytes - s.offset)
    fail(path, ": header: section '", name, "' at ", s.offset, " (", s.bytes, " bytes) does not fit the ",
         h.data_bytes, "-byte data section or its expected ", at_least ? "at least " : "", expected_bytes, " bytes");
  return s;
}

}  // namespace pointnet::pack
