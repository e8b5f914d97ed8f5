// Shared by the libFuzzer targets: pointnet::Error is the expected answer to
// bad input; anything else (a crash, a sanitizer report, another exception,
// a broken invariant) is a bug the fuzzer reports.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "core/errors.h"
#include "io/cloud_file.h"

namespace pointnet::fuzz {

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// Traps (a reported crash) when a reader returns a cloud that breaks Cloud's contract.
inline void check_cloud(const Cloud& c, bool all_finite) {
  const size_t n = c.xyz.size() / 3;
  if (c.xyz.size() != 3 * n || (!c.normals.empty() && c.normals.size() != 3 * n) ||
      (!c.labels.empty() && c.labels.size() != n))
    __builtin_trap();
  if (all_finite)
    for (float v : c.xyz)
      if (!(v - v == 0)) __builtin_trap();
}

}  // namespace pointnet::fuzz

// Runs `body`, swallowing only pointnet::Error.
#define POINTNET_FUZZ_TARGET(body)                                              \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {     \
    try {                                                                       \
      body;                                                                     \
    } catch (const pointnet::Error&) {                                          \
    }                                                                           \
    return 0;                                                                   \
  }
