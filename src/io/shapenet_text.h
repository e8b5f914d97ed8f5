// ShapeNet part (v0) text files: `.seg` (one 1-based part label per line) and
// `.pts` (points; read as any text cloud, see io/text_cloud.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

// Returns (n, 3) xyz of a text cloud (io/text_cloud.h), dropping any normals
// or labels. Throws pointnet::Error naming the file, line and column.
std::vector<float> read_pts(const std::string& path);
std::vector<float> parse_pts(const std::string& text, const std::string& name_for_errors);

// Returns n labels converted to 0-based (file label - 1); labels < 1 are refused.
std::vector<int32_t> read_seg(const std::string& path);
std::vector<int32_t> parse_seg(const std::string& text, const std::string& name_for_errors);

}  // namespace pointnet
