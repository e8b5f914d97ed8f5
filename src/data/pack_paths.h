// Where each packed shape came from (its path relative to the packed folder),
// for messages and `pointnet info` only. Version 3 keeps the paths out of the
// JSON header (parsing ~12k strings there cost more than the rest of a load):
// a table at the end of the data section, u32 LE end offset per shape, then
// the bytes; one name is read when asked for. Versions 1-2 kept a JSON array
// per split.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pointnet::pack {

class PathTable {
 public:
  // The version-3 section for these paths, in shape order.
  static std::string encode(const std::vector<std::string>& paths);
  // Checks every end offset (in order, inside the section), naming `file` when one is not.
  static PathTable from_section(const unsigned char* section, uint64_t bytes, uint64_t shapes, const std::string& file);
  // Versions 1-2: `splits` as the header holds it, each {"first", "count", "paths": [one string per shape]}.
  static PathTable from_json(const nlohmann::json& splits, uint64_t shapes, const std::string& file);

  // Shape `shape`'s path (empty when no split names it), valid while the
  // section (the mapping) and this table live.
  std::string_view operator()(uint64_t shape) const;

 private:
  const unsigned char* section_ = nullptr;  // version 3
  uint64_t shapes_ = 0;
  std::vector<std::string> names_;          // versions 1-2
};

}  // namespace pointnet::pack
