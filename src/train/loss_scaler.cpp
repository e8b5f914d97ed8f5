#include "train/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "core/errors.h"

namespace pointnet {

namespace {
bool positive_finite(double x) { return std::isfinite(x) && x > 0.0; }
}  // namespace

LossScaler::LossScaler(const LossScalerConfig& config) : enabled_(true), config_(config) {
  const LossScalerConfig& c = config;
  if (!positive_finite(c.min_scale) || !positive_finite(c.max_scale) || c.min_scale > c.max_scale)
    fail("loss scaler: the scale range [", c.min_scale, ", ", c.max_scale, "] is not a range of positive numbers");
  if (!(c.init_scale >= c.min_scale && c.init_scale <= c.max_scale))
    fail("loss scaler: initial scale ", c.init_scale, " is outside [", c.min_scale, ", ", c.max_scale, "]");
  if (!(c.growth_factor > 1.0) || !std::isfinite(c.growth_factor))
    fail("loss scaler: growth factor ", c.growth_factor, " must be above 1");
  if (!(c.backoff_factor > 0.0 && c.backoff_factor < 1.0))
    fail("loss scaler: backoff factor ", c.backoff_factor, " must be in (0, 1)");
  if (c.growth_interval < 1) fail("loss scaler: growth interval ", c.growth_interval, " must be at least 1");
  scale_ = c.init_scale;
}

LossScaler LossScaler::disabled() { return LossScaler(); }

void LossScaler::update(bool finite) {
  PN_CHECK(enabled_);
  if (!finite) {
    ++skipped_steps_;
    good_steps_ = 0;
    scale_ = std::max(scale_ * config_.backoff_factor, config_.min_scale);
    return;
  }
  if (++good_steps_ >= config_.growth_interval) {
    good_steps_ = 0;
    scale_ = std::min(scale_ * config_.growth_factor, config_.max_scale);
  }
}

nlohmann::json LossScaler::to_json() const {
  return {{"scale", scale_}, {"good_steps", good_steps_}, {"skipped_steps", skipped_steps_}};
}

void LossScaler::restore(const nlohmann::json& state) {
  PN_CHECK(enabled_);
  double scale = 0.0;
  int64_t good = 0, skipped = 0;
  try {
    scale = state.at("scale").get<double>();
    good = state.at("good_steps").get<int64_t>();
    skipped = state.at("skipped_steps").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    fail("loss scaler state is incomplete or mistyped (", e.what(), ")");
  }
  if (!(scale >= config_.min_scale && scale <= config_.max_scale))
    fail("loss scaler state: scale ", scale, " is outside [", config_.min_scale, ", ", config_.max_scale, "]");
  if (good < 0 || good >= config_.growth_interval)
    fail("loss scaler state: good_steps ", good, " is outside [0, ", config_.growth_interval, ")");
  if (skipped < 0) fail("loss scaler state: skipped_steps ", skipped, " is negative");
  scale_ = scale;
  good_steps_ = good;
  skipped_steps_ = skipped;
}

}  // namespace pointnet
