// The dataset pack's binary layout (data/pack.h describes it), shared by its
// writer, reader and verifier: constants, little-endian fields, the header.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "core/sealed_file.h"

namespace pointnet::pack {

constexpr char kMagic[8] = {'P', 'N', 'T', 'P', 'A', 'C', 'K', '\n'};
constexpr uint32_t kVersion = 3;        // 3: path table section, chunked checksum; 2: normals
constexpr uint32_t kOldestVersion = 1;  // 1 and 2 are still read
constexpr size_t kFixedHeader = 32;
constexpr size_t kAlign = 64;
constexpr size_t kShapeRecord = 16;  // u64 first point, u32 count, i32 label
constexpr size_t kChecksumAt = 24;   // the u64 checksum, read as zero while computing it

inline size_t align_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

// Little-endian fields: get_le / put_le from core/sealed_file.h (shared with engine files).
using ::pointnet::get_le;
using ::pointnet::put_le;

struct Header {
  uint32_t version = 0;
  uint64_t json_bytes = 0;
  nlohmann::json json;      // empty until parse_json()
  size_t data_offset = 0;   // the data section: [data_offset, data_offset + data_bytes) = the rest of the file
  uint64_t data_bytes = 0;
};

// The checksum the pack says it has (bytes 24..32); the file is at least kFixedHeader long.
inline uint64_t stored_checksum(const MappedFile& file) { return get_le(file.data() + kChecksumAt, 8); }

// Magic, version and the sizes against the file's; the JSON is left for parse_json().
Header parse_fixed_header(const MappedFile& file);
void parse_json(const MappedFile& file, Header& h);

struct Section {
  uint64_t offset = 0, bytes = 0;  // within the data section
};

// The header's section `name`, refused unless it is `expected_bytes` long (or,
// with at_least, no shorter), 64-aligned and inside the data section.
Section section(const Header& h, const std::string& path, const char* name, uint64_t expected_bytes,
                bool at_least = false);

}  // namespace pointnet::pack
