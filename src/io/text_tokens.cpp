#include "io/text_tokens.h"

#include <charconv>

namespace pointnet {
namespace {
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }
}  // namespace

bool TextTokens::next(std::string_view* token) {
  while (pos_ < text_.size() && is_space(text_[pos_])) {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  token_line_ = line_;
  if (pos_ >= text_.size()) return false;
  const size_t start = pos_;
  while (pos_ < text_.size() && !is_space(text_[pos_])) ++pos_;
  *token = text_.substr(start, pos_ - start);
  return true;
}

bool TextTokens::next_line(std::vector<std::string_view>* tokens) {
  tokens->clear();
  while (pos_ < text_.size()) {
    token_line_ = line_;
    size_t end = text_.find('\n', pos_);
    if (end == std::string_view::npos) end = text_.size();
    size_t i = pos_;
    while (i < end) {
      while (i < end && is_space(text_[i])) ++i;
      const size_t start = i;
      while (i < end && !is_space(text_[i])) ++i;
      if (i > start) tokens->push_back(text_.substr(start, i - start));
    }
    pos_ = end + 1;
    ++line_;
    if (!tokens->empty()) return true;
  }
  token_line_ = line_;
  return false;
}

bool parse_number(std::string_view token, double* out, bool as_float) {
  if (!token.empty() && token[0] == '+') token.remove_prefix(1);  // from_chars refuses '+'
  if (token.empty()) return false;
  const char* end = token.data() + token.size();
  if (as_float) {
    float f = 0;
    auto result = std::from_chars(token.data(), end, f);
    *out = f;
    return result.ec == std::errc() && result.ptr == end;
  }
  auto result = std::from_chars(token.data(), end, *out);
  return result.ec == std::errc() && result.ptr == end;
}

}  // namespace pointnet
