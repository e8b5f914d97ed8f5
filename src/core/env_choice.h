// Run-time switches from the environment (kernel variants to compare on a
// machine, features to turn off): one of a few named values. Unset or empty
// gives the first; anything else is an error naming the variable and its
// values, so a typo never silently keeps the default. A switch that was
// removed is refused too while it is set (refuse_retired_switches), so a
// script that still sets it learns that it no longer does anything.
#pragma once
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "core/errors.h"

namespace pointnet {

// Switches that were measured, found no faster and removed (the session
// that removed them: docs/kernel-switches.md, "Removed").
inline void refuse_retired_switches() {
  for (const char* name : {"POINTNET_PER_CLOUD_GEMMS", "POINTNET_ENGINE_FIRST_SLICE", "POINTNET_ENGINE_SPLIT_CONV2"}) {
    const char* value = std::getenv(name);
    if (value && *value)
      fail(name, "='", value, "': this switch was removed (measured no faster; docs/kernel-switches.md, \"Removed\"); "
           "unset it");
  }
}

inline std::string env_choice(const char* name, std::initializer_list<const char*> choices) {
  // Once per process: the first switch read checks for removed ones.
  static const bool retired_checked = (refuse_retired_switches(), true);
  (void)retired_checked;
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
