// Helpers the folder layouts share (data/layouts.h).
#include <algorithm>
#include <cctype>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "data/layouts.h"
#include "io/text_lines.h"

namespace pointnet::layouts {

std::vector<std::string> sorted_entries(const fs::path& dir, bool want_dirs) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.empty() || name[0] == '.') continue;  // hidden files, editor droppings
    bool is_dir = it->is_directory(ec);
    if (want_dirs ? is_dir : it->is_regular_file(ec)) names.push_back(name);
  }
  if (ec) fail(dir.string(), ": cannot list directory: ", ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::string lower_extension(const std::string& name) {
  std::string ext = fs::path(name).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

std::vector<ListEntry> read_list_file(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<ListEntry> entries;
  for_each_text_line(text, [&](const char* a, const char* b, int line) {
    while (a < b && std::isspace(static_cast<unsigned char>(*a))) ++a;
    while (b > a && std::isspace(static_cast<unsigned char>(b[-1]))) --b;
    if (b > a) entries.push_back({line, std::string(a, b)});
  });
  return entries;
}

void check_classification_options(const std::string& dir, const LoadOptions& opt, const std::string& kind) {
  if (opt.split != "train" && opt.split != "test")
    fail(dir, ": unknown split '", opt.split, "' for a ", kind, ": expected 'train' or 'test'");
  if (opt.with_parts) fail(dir, ": part labels requested, but a ", kind, " has none (expected ShapeNet part)");
  if (!opt.class_choice.empty())
    fail(dir, ": --class-choice '", opt.class_choice, "' selects a ShapeNet part category, but this is a ", kind);
}

int index_of(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

}  // namespace pointnet::layouts
