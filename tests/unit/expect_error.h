// Runs a callable that must throw pointnet::Error whose message contains every
// given piece (the file, the byte offset, what was wrong).
#pragma once
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>

#include "core/errors.h"

namespace pointnet::testing {

template <typename F>
void expect_error_containing(F f, std::initializer_list<std::string> pieces) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& p : pieces)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << "'" << p << "' not in: " << e.what();
  }
}

}  // namespace pointnet::testing
