// Helpers for the .ply/.pcd reader tests: encode values of any scalar type in
// either byte order, and check that an error names the file and a detail.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "core/errors.h"
#include "io/scalar_types.h"

namespace pointnet::testing {

// Appends `v` converted to type `t`, in little- or big-endian byte order.
inline void put_scalar(std::string& out, ScalarType t, double v, bool big_endian = false) {
  unsigned char b[8];
  switch (t) {
    case ScalarType::I8: { int8_t x = static_cast<int8_t>(v); std::memcpy(b, &x, 1); break; }
    case ScalarType::U8: { uint8_t x = static_cast<uint8_t>(v); std::memcpy(b, &x, 1); break; }
    case ScalarType::I16: { int16_t x = static_cast<int16_t>(v); std::memcpy(b, &x, 2); break; }
    case ScalarType::U16: { uint16_t x = static_cast<uint16_t>(v); std::memcpy(b, &x, 2); break; }
    case ScalarType::I32: { int32_t x = static_cast<int32_t>(v); std::memcpy(b, &x, 4); break; }
    case ScalarType::U32: { uint32_t x = static_cast<uint32_t>(v); std::memcpy(b, &x, 4); break; }
    case ScalarType::I64: { int64_t x = static_cast<int64_t>(v); std::memcpy(b, &x, 8); break; }
    case ScalarType::U64: { uint64_t x = static_cast<uint64_t>(v); std::memcpy(b, &x, 8); break; }
    case ScalarType::F32: { float x = static_cast<float>(v); std::memcpy(b, &x, 4); break; }
    case ScalarType::F64: { std::memcpy(b, &v, 8); break; }
  }
  const size_t n = scalar_size(t);
  for (size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(b[big_endian ? n - 1 - i : i]));
}

// Runs `read`, expecting a pointnet::Error whose message contains every one of `details`.
inline void expect_error(const std::function<void()>& read, std::initializer_list<std::string> details) {
  try {
    read();
    ADD_FAILURE() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& d : details) EXPECT_NE(msg.find(d), std::string::npos) << "'" << d << "' not in: " << msg;
  }
}

}  // namespace pointnet::testing
