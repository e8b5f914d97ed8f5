#include "data/pack_paths.h"

#include "core/errors.h"
#include "data/pack_format.h"

namespace pointnet::pack {

std::string PathTable::encode(const std::vector<std::string>& paths) {
  std::string out(4 * paths.size(), '\0');
  for (size_t i = 0; i < paths.size(); ++i) {
    out += paths[i];
    const uint64_t end = out.size() - 4 * paths.size();
    if (end > 0xffffffffu) fail("pack: the shapes' paths take more than 4 GB");
    put_le(out, 4 * i, end, 4);
  }
  return out;
}

PathTable PathTable::from_section(const unsigned char* section, uint64_t bytes, uint64_t shapes,
                                  const std::string& file) {
  if (bytes < 4 * shapes) fail(file, ": header: the path table (", bytes, " bytes) is shorter than ", shapes, " offsets");
  uint64_t previous = 0;
  for (uint64_t i = 0; i < shapes; ++i) {
    const uint64_t end = get_le(section + 4 * i, 4);
    if (end < previous || end > bytes - 4 * shapes)
      fail(file, ": path table: shape ", i, " ends at byte ", end, ", outside ", previous, "..", bytes - 4 * shapes);
    previous = end;
  }
  if (previous != bytes - 4 * shapes)
    fail(file, ": path table: the paths end at byte ", previous, " of ", bytes - 4 * shapes);
  PathTable t;
  t.section_ = section;
  t.shapes_ = shapes;
  return t;
}

PathTable PathTable::from_json(const nlohmann::json& splits, uint64_t shapes, const std::string& file) {
  PathTable t;
  t.names_.resize(shapes);
  try {
    for (const auto& [name, split] : splits.items()) {
      const nlohmann::json& paths = split.at("paths");
      const uint64_t first = split.at("first").get<uint64_t>(), count = split.at("count").get<uint64_t>();
      if (!paths.is_array() || paths.size() != count)
        fail(file, ": header: split '", name, "': 'paths' must be an array of one string per shape (", count,
             " shapes)");
      for (uint64_t i = 0; i < count; ++i) {
        if (!paths[i].is_string()) fail(file, ": header: split '", name, "': 'paths' holds a non-string entry");
        if (first + i < shapes) t.names_[first + i] = paths[i].get<std::string>();
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(file, ": header: missing or malformed field (", e.what(), ")");
  }
  return t;
}

std::string_view PathTable::operator()(uint64_t shape) const {
  if (!section_) return shape < names_.size() ? std::string_view(names_[shape]) : std::string_view();
  if (shape >= shapes_) return {};
  const uint64_t begin = shape == 0 ? 0 : get_le(section_ + 4 * (shape - 1), 4), end = get_le(section_ + 4 * shape, 4);
  return std::string_view(reinterpret_cast<const char*>(section_ + 4 * shapes_) + begin, end - begin);
}

}  // namespace pointnet::pack
