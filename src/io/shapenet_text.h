// ShapeNet part (v0) text files: `.pts` ("x y z" per line) and `.seg` (one
// 1-based part label per line).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

// Returns (n, 3) floats. Blank lines are skipped; NaN/Inf are refused.
// Throws pointnet::Error naming the file and line.
std::vector<float> read_pts(const std::string& path);
std::vector<float> parse_pts(const std::string& text, const std::string& name_for_errors);

// Returns n labels converted to 0-based (file label - 1); labels < 1 are refused.
std::vector<int32_t> read_seg(const std::string& path);
std::vector<int32_t> parse_seg(const std::string& text, const std::string& name_for_errors);

}  // namespace pointnet
