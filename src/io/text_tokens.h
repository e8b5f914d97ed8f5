// Whitespace-separated tokens of a text body with the line each came from,
// and number parsing that accepts exactly one whole token. Shared by the
// ASCII forms of .ply and .pcd.
#pragma once
#include <cstddef>
#include <string_view>
#include <vector>

namespace pointnet {

class TextTokens {
 public:
  // `first_line` is the 1-based line number of text[0] in the file.
  TextTokens(std::string_view text, size_t first_line) : text_(text), line_(first_line) {}

  // The next token, across line ends; false at the end of the text.
  bool next(std::string_view* token);
  // The tokens of the next non-blank line (comments are not stripped); false at the end.
  bool next_line(std::vector<std::string_view>* tokens);
  // The line of the last token returned (or where the text ended).
  size_t line() const { return token_line_; }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  size_t line_;
  size_t token_line_ = 0;
};

// Parses a whole token as a number (decimal, optional sign, exponent, "nan",
// "inf"); false if any character is left over. `as_float` rounds the decimal
// straight to the nearest float (through double it could round twice and
// miss a float written with its shortest exact form).
bool parse_number(std::string_view token, double* out, bool as_float = false);

}  // namespace pointnet
