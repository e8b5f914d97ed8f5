// A unique folder per test (pid + test name + counter) under the system's temp
// folder, removed when the test ends. Shared by the unit and e2e tests.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <system_error>

#include <gtest/gtest.h>

namespace pointnet::testing {

struct TempDir {
  std::filesystem::path path;
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = info ? std::string(info->test_suite_name()) + "_" + info->name() : "none";
    for (char& c : name)
      if (c == '/') c = '_';
    path = std::filesystem::temp_directory_path() /
           ("pointnet_test_" + std::to_string(::getpid()) + "_" + name + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::filesystem::path operator/(const std::string& rel) const { return path / rel; }
};

}  // namespace pointnet::testing
