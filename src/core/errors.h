// Errors: one exception type for everything a user can cause (bad files, bad
// flags, bad checkpoints). The CLI prints what() and exits with status 1.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace pointnet {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename First, typename... Rest>
void append(std::ostringstream& os, const First& first, const Rest&... rest) {
  os << first;
  append(os, rest...);
}
}  // namespace detail

// Builds a message from pieces: fail("file.npy: byte ", 12, ": expected '{'").
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  detail::append(os, parts...);
  throw Error(os.str());
}

// Internal invariant (a bug, not a user error): names the source line.
#define PN_CHECK(cond)                                                              \
  do {                                                                              \
    if (!(cond)) ::pointnet::fail(__FILE__, ":", __LINE__, ": internal check failed: ", #cond); \
  } while (0)

}  // namespace pointnet
