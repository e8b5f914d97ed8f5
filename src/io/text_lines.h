// Line iteration for the text readers (clouds, .seg labels, file lists), so
// every one numbers lines the same way in its errors.
#pragma once
#include <string>

namespace pointnet {

// Calls fn(begin, end, line) for each '\n'-ended line of `text` (the last may
// lack it), with 1-based line numbers; a '\r' before the '\n' stays in the
// range for the caller's white-space trimming.
template <typename Fn>
void for_each_text_line(const std::string& text, Fn fn) {
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    fn(text.data() + pos, text.data() + end, ++line);
    pos = end + 1;
  }
}

}  // namespace pointnet
