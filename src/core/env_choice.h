// Run-time switches from the environment (kernel variants to compare on a
// machine, features to turn off): one of a few named values. Unset or empty
// gives the first; anything else is an error naming the variable and its
// values, so a typo never silently keeps the default.
#pragma once
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "core/errors.h"

namespace pointnet {

inline std::string env_choice(const char* name, std::initializer_list<const char*> choices) {
  const char* value = std::getenv(name);
  if (!value || !*value) return *choices.begin();
  std::string listed;
  for (const char* c : choices) {
    if (value == std::string(c)) return c;
    listed += (listed.empty() ? "" : ", ") + std::string(c);
  }
  fail(name, "='", value, "': expected one of ", listed);
}

}  // namespace pointnet
