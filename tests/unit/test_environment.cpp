// Every test process keeps pack verification stamps (data/pack_stamp.h) in a
// temporary folder of its own rather than the user's ~/.cache; the CLI
// processes the end-to-end tests start inherit it.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace {

class PrivateCacheFolder : public ::testing::Environment {
 public:
  void SetUp() override {
    char dir[] = "/tmp/pointnet_test_cache_XXXXXX";
    ASSERT_NE(::mkdtemp(dir), nullptr) << "cannot make a temporary cache folder";
    path_ = dir;
    ::setenv("POINTNET_CACHE_DIR", dir, 1);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }

 private:
  std::string path_;
};

[[maybe_unused]] const auto* const kPrivateCache = ::testing::AddGlobalTestEnvironment(new PrivateCacheFolder);

}  // namespace
