#include "io/text_cloud.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "io/quoted.h"
#include "io/text_lines.h"

namespace pointnet {
namespace {

constexpr int kMaxColumns = 7;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits [begin, end) into fields: by commas when the line has one (fields are
// trimmed, an empty one is an error), else by runs of white space.
int split_fields(const char* begin, const char* end, const char* (&field)[kMaxColumns + 1],
                 const char* (&field_end)[kMaxColumns + 1], const std::string& name, int line) {
  bool commas = false;
  for (const char* p = begin; p < end; ++p) commas |= *p == ',';
  int n = 0;
  const char* p = begin;
  while (p < end) {
    while (p < end && is_blank(*p)) ++p;
    if (p == end && !commas) break;
    const char* start = p;
    while (p < end && !(commas ? *p == ',' : is_blank(*p))) ++p;
    const char* stop = p;
    while (stop > start && is_blank(stop[-1])) --stop;
    if (commas && stop == start)
      fail(name, ": line ", line, ", column ", n + 1, ": empty value between commas");
    if (n <= kMaxColumns) {
      field[n] = start;
      field_end[n] = stop;
    }
    ++n;
    if (commas && p < end) {
      ++p;  // the comma
      if (p == end) fail(name, ": line ", line, ", column ", n + 1, ": empty value after a trailing comma");
    }
  }
  return n;
}

float parse_number(const char* begin, const char* end, const std::string& name, int line, int column) {
  const char* p = begin;
  if (p < end && *p == '+') ++p;  // from_chars refuses a leading '+'
  float v = 0;
  const auto [stop, ec] = std::from_chars(p, end, v);
  const std::string_view token(begin, static_cast<size_t>(end - begin));
  if (ec == std::errc::result_out_of_range && stop == end)
    fail(name, ": line ", line, ", column ", column, ": expected a number within float range, found ", quoted(token));
  if (ec != std::errc() || stop != end || p == end)
    fail(name, ": line ", line, ", column ", column, ": expected a number, found ", quoted(token));
  if (!std::isfinite(v))
    fail(name, ": line ", line, ", column ", column, ": expected a finite number, found ", quoted(token));
  return v;
}

}  // namespace

Cloud parse_text_cloud(const std::string& text, const std::string& name) {
  Cloud cloud;
  int columns = 0;  // fixed by the first row
  int first_row = 0;
  const char* field[kMaxColumns + 1];
  const char* field_end[kMaxColumns + 1];
  for_each_text_line(text, [&](const char* begin, const char* end, int line) {
    const int n = split_fields(begin, end, field, field_end, name, line);
    if (n == 0) return;
    if (columns == 0) {
      if (n != 3 && n != 6 && n != 7)
        fail(name, ": line ", line, ": ", n, " columns: expected 3 (x y z), 6 (x y z nx ny nz) or 7 (x y z nx ny nz label)");
      columns = n;
      first_row = line;
    } else if (n != columns) {
      fail(name, ": line ", line, ": ", n, " columns, but line ", first_row, " has ", columns,
           ": expected the same number of columns on every row");
    }
    for (int k = 0; k < 3; ++k) cloud.xyz.push_back(parse_number(field[k], field_end[k], name, line, k + 1));
    for (int k = 3; k < std::min(columns, 6); ++k)
      cloud.normals.push_back(parse_number(field[k], field_end[k], name, line, k + 1));
    if (columns == 7) {
      const float label = parse_number(field[6], field_end[6], name, line, 7);
      if (label != std::floor(label) || label < 0 || label > static_cast<float>(1 << 24))
        fail(name, ": line ", line, ", column 7: expected a whole, non-negative label, found ",
             quoted(std::string_view(field[6], static_cast<size_t>(field_end[6] - field[6]))));
      cloud.labels.push_back(static_cast<int32_t>(label));
    }
  });
  return cloud;
}

Cloud read_text_cloud(const std::string& path) { return parse_text_cloud(read_file(path), path); }

}  // namespace pointnet
