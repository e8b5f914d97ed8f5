// --size WIDTHxHEIGHT, shared by `show` and `plot`.
#pragma once
#include <regex>
#include <string>
#include <utility>

#include "core/errors.h"

namespace pointnet::cli {

// "WxH" -> (W, H), each 64..8192 pixels; (0, 0) for an empty string (the command's default).
inline std::pair<int, int> parse_size(const std::string& text) {
  if (text.empty()) return {0, 0};
  std::smatch m;
  if (!std::regex_match(text, m, std::regex(R"((\d{1,6})x(\d{1,6}))")))
    fail("--size '", text, "': expected WIDTHxHEIGHT in pixels, e.g. 800x600");
  const int w = std::stoi(m[1]), h = std::stoi(m[2]);
  if (w < 64 || h < 64 || w > 8192 || h > 8192) fail("--size ", w, "x", h, ": expected 64 to 8192 pixels on each side");
  return {w, h};
}

}  // namespace pointnet::cli
