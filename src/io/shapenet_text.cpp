#include "io/shapenet_text.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/quoted.h"
#include "io/text_cloud.h"
#include "io/text_lines.h"

namespace pointnet {
namespace {

// Calls fn(tokens, line_number) for every non-blank line.
template <typename Fn>
void for_each_line(const std::string& text, Fn fn) {
  std::vector<std::string> tokens;
  for_each_text_line(text, [&](const char* p, const char* end, int line) {
    tokens.clear();
    while (p < end) {
      while (p < end && std::isspace(static_cast<unsigned char>(*p))) ++p;
      const char* start = p;
      while (p < end && !std::isspace(static_cast<unsigned char>(*p))) ++p;
      if (p > start) tokens.emplace_back(start, p);
    }
    if (!tokens.empty()) fn(tokens, line);
  });
}

}  // namespace

std::vector<float> parse_pts(const std::string& text, const std::string& name) {
  return parse_text_cloud(text, name).xyz;
}

std::vector<int32_t> parse_seg(const std::string& text, const std::string& name) {
  std::vector<int32_t> out;
  for_each_line(text, [&](const std::vector<std::string>& tok, int line) {
    if (tok.size() != 1) fail(name, ": line ", line, ": expected one part label, found ", tok.size(), " values");
    errno = 0;
    char* end = nullptr;
    long long v = std::strtoll(tok[0].c_str(), &end, 10);
    if (*end != '\0' || errno == ERANGE || v > std::numeric_limits<int32_t>::max())
      fail(name, ": line ", line, ": expected an integer part label, found ", quoted(tok[0]));
    if (v < 1) fail(name, ": line ", line, ": expected a part label >= 1 (labels are 1-based), found ", v);
    out.push_back(static_cast<int32_t>(v - 1));
  });
  return out;
}

std::vector<float> read_pts(const std::string& path) { return parse_pts(read_file(path), path); }
std::vector<int32_t> read_seg(const std::string& path) { return parse_seg(read_file(path), path); }

}  // namespace pointnet
