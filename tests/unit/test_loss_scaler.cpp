// The loss scaler's state machine (GradScaler's rules: back off on overflow,
// grow after an interval of good steps, kept within its range) and its state's
// round trip through JSON and a checkpoint.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <string>

#include "core/errors.h"
#include "cpu/cpu_backend.h"
#include "train/checkpoint.h"
#include "train/loss_scaler.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

LossScalerConfig small_config() {  // short interval, so tests can walk through it
  LossScalerConfig c;
  c.init_scale = 1024.0;
  c.growth_interval = 3;
  c.min_scale = 1.0;
  c.max_scale = 4096.0;
  return c;
}

TEST(LossScaler, DefaultsArePyTorchGradScalers) {
  const LossScaler s{LossScalerConfig{}};
  EXPECT_TRUE(s.enabled());
  EXPECT_EQ(s.scale(), 65536.0);
  EXPECT_EQ(s.config().growth_factor, 2.0);
  EXPECT_EQ(s.config().backoff_factor, 0.5);
  EXPECT_EQ(s.config().growth_interval, 2000);
  EXPECT_EQ(s.good_steps(), 0);
  EXPECT_EQ(s.skipped_steps(), 0);
}

TEST(LossScaler, DisabledScalesByOne) {
  const LossScaler s = LossScaler::disabled();
  EXPECT_FALSE(s.enabled());
  EXPECT_EQ(s.scale(), 1.0);
  EXPECT_EQ(s.skipped_steps(), 0);
}

TEST(LossScaler, OverflowHalvesTheScaleAndRestartsTheRun) {
  LossScaler s(small_config());
  s.update(true);
  s.update(true);  // 2 of the 3 good steps needed to grow
  ASSERT_EQ(s.good_steps(), 2);
  s.update(false);
  EXPECT_EQ(s.scale(), 512.0);
  EXPECT_EQ(s.good_steps(), 0);
  EXPECT_EQ(s.skipped_steps(), 1);
  // The run restarted: two more good steps do not grow it yet, the third does.
  s.update(true);
  s.update(true);
  EXPECT_EQ(s.scale(), 512.0);
  s.update(true);
  EXPECT_EQ(s.scale(), 1024.0);
  EXPECT_EQ(s.good_steps(), 0);
  EXPECT_EQ(s.skipped_steps(), 1);
}

TEST(LossScaler, GrowsAfterExactlyTheDefaultInterval) {
  LossScaler s{LossScalerConfig{}};
  for (int i = 0; i < 1999; ++i) s.update(true);
  EXPECT_EQ(s.scale(), 65536.0);
  EXPECT_EQ(s.good_steps(), 1999);
  s.update(true);
  EXPECT_EQ(s.scale(), 131072.0);
  EXPECT_EQ(s.good_steps(), 0);
}

TEST(LossScaler, StaysWithinItsRange) {
  LossScaler s(small_config());
  for (int i = 0; i < 12; ++i) s.update(false);  // 1024 -> 1 after 10, then stays
  EXPECT_EQ(s.scale(), 1.0);
  EXPECT_TRUE(s.at_floor());
  EXPECT_EQ(s.skipped_steps(), 12);
  for (int i = 0; i < 3 * 20; ++i) s.update(true);  // 20 growths: 1 -> 4096 after 12, then stays
  EXPECT_EQ(s.scale(), 4096.0);
  EXPECT_FALSE(s.at_floor());
  EXPECT_EQ(s.good_steps(), 0);
}

TEST(LossScaler, RejectsAnInsaneConfig) {
  auto with = [](auto change) {
    LossScalerConfig c;
    change(c);
    return c;
  };
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.init_scale = 0.5; })), Error);  // below min 1
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.init_scale = 1e9; })), Error);  // above max 2^24
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.min_scale = -1; })), Error);
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.max_scale = INFINITY; })), Error);
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.growth_factor = 1.0; })), Error);
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.backoff_factor = 1.0; })), Error);
  EXPECT_THROW(LossScaler(with([](LossScalerConfig& c) { c.growth_interval = 0; })), Error);
}

TEST(LossScaler, JsonRoundTripContinuesIdentically) {
  LossScaler a(small_config());
  a.update(false);
  a.update(true);
  a.update(true);  // scale 512, 2 good steps, 1 skipped
  LossScaler b(small_config());
  b.restore(a.to_json());
  EXPECT_EQ(b.scale(), 512.0);
  EXPECT_EQ(b.good_steps(), 2);
  EXPECT_EQ(b.skipped_steps(), 1);
  // The next good step completes the interval on both.
  a.update(true);
  b.update(true);
  EXPECT_EQ(a.scale(), 1024.0);
  EXPECT_EQ(b.scale(), 1024.0);
  EXPECT_EQ(a.to_json(), b.to_json());
}

TEST(LossScaler, RestoreRejectsBadState) {
  LossScaler s(small_config());
  const nlohmann::json good = s.to_json();
  auto broken = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json j = good;
    if (value.is_null()) j.erase(key);
    else j[key] = value;
    return j;
  };
  EXPECT_THROW(s.restore(broken("scale", nullptr)), Error);
  EXPECT_THROW(s.restore(broken("scale", "big")), Error);
  EXPECT_THROW(s.restore(broken("scale", 0.25)), Error);   // below the floor
  EXPECT_THROW(s.restore(broken("scale", 1e30)), Error);   // above the cap
  EXPECT_THROW(s.restore(broken("good_steps", -1)), Error);
  EXPECT_THROW(s.restore(broken("good_steps", 3)), Error);  // a full interval would have grown already
  EXPECT_THROW(s.restore(broken("skipped_steps", -2)), Error);
  EXPECT_THROW(s.restore(broken("skipped_steps", nullptr)), Error);
  // A failed restore leaves the state as it was.
  EXPECT_EQ(s.to_json(), good);
}

// The trainer keeps the state in the checkpoint's trainer JSON: it must come
// back from the file exactly (a power of two survives JSON's decimal text).
TEST(LossScaler, CheckpointRoundTrip) {
  const fs::path dir = fs::temp_directory_path() / ("pointnet_scaler_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string path = (dir / "checkpoint.safetensors").string();

  LossScalerConfig config;  // the trainer's defaults
  LossScaler scaler(config);
  for (int i = 0; i < 5; ++i) scaler.update(false);
  for (int i = 0; i < 1234; ++i) scaler.update(true);
  ASSERT_EQ(scaler.scale(), 2048.0);

  CpuBackend<float> be;
  ModelConfig model_config;
  model_config.num_classes = 3;
  PointNet<float> model(model_config, be);
  Rng rng(3);
  model.initialize(rng);
  CheckpointInfo info;
  info.config = model_config;
  info.class_names = {"a", "b", "c"};
  info.trainer = {{"loss_scaler", scaler.to_json()}};
  save_checkpoint(path, model, nullptr, info);

  const Checkpoint loaded = load_checkpoint(path);
  LossScaler restored(config);
  restored.restore(loaded.info.trainer.at("loss_scaler"));
  EXPECT_EQ(restored.scale(), 2048.0);
  EXPECT_EQ(restored.good_steps(), 1234);
  EXPECT_EQ(restored.skipped_steps(), 5);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pointnet
