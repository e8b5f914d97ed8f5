// Run-time switches (core/env_choice.h): unset or empty gives the default,
// a listed value is taken, anything else is refused naming the variable and
// the accepted values; a removed switch is refused while it is set.
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "../scoped_env.h"
#include "core/env_choice.h"

namespace pointnet {
namespace {

constexpr const char* kName = "POINTNET_TEST_SWITCH";

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(EnvChoice, UnsetOrEmptyGivesTheFirstValue) {
  testing::ScopedEnv env;
  env.set(kName, "");
  EXPECT_EQ(env_choice(kName, {"on", "off"}), "on");
  unsetenv(kName);
  EXPECT_EQ(env_choice(kName, {"off", "on"}), "off");
}

TEST(EnvChoice, ListedValuesAreTaken) {
  testing::ScopedEnv env;
  env.set(kName, "8");
  EXPECT_EQ(env_choice(kName, {"4", "2", "8"}), "8");
}

TEST(EnvChoice, ATypoIsRefusedWithTheAcceptedValues) {
  testing::ScopedEnv env;
  env.set(kName, "fuesd");
  const std::string error = error_of([] { env_choice(kName, {"fused", "chunked"}); });
  EXPECT_NE(error.find(kName), std::string::npos) << error;
  EXPECT_NE(error.find("fuesd"), std::string::npos) << error;
  EXPECT_NE(error.find("fused, chunked"), std::string::npos) << error;
}

TEST(EnvChoice, RemovedSwitchesAreRefusedWhileSet) {
  EXPECT_EQ(error_of(refuse_retired_switches), "");
  for (const char* name : {"POINTNET_PER_CLOUD_GEMMS", "POINTNET_ENGINE_FIRST_SLICE", "POINTNET_ENGINE_SPLIT_CONV2"}) {
    testing::ScopedEnv env;
    env.set(name, "tf32");
    const std::string error = error_of(refuse_retired_switches);
    EXPECT_NE(error.find(name), std::string::npos) << error;
    EXPECT_NE(error.find("removed"), std::string::npos) << error;
  }
  EXPECT_EQ(error_of(refuse_retired_switches), "");
}

}  // namespace
}  // namespace pointnet
