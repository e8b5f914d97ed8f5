// A token from a file as an error message shows it: in single quotes, bytes
// outside printable ASCII written as \xNN, cut after 40 bytes ("..."), so a
// binary file given to a text reader makes a readable one-line message.
#pragma once
#include <cstdio>
#include <string>
#include <string_view>

namespace pointnet {

inline std::string quoted(std::string_view token) {
  constexpr size_t kMax = 40;
  std::string out = "'";
  for (size_t i = 0; i < token.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(token[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    }
  }
  out += token.size() > kMax ? "'..." : "'";
  return out;
}

}  // namespace pointnet
