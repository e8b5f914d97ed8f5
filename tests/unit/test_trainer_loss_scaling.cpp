// The trainer with dynamic loss scaling, in process on the CPU: fp16 runs only
// on a GPU, so the tests force scaling on (TrainOptions::loss_scaling) in fp32
// from 2^130, where fp32 gradients overflow as fp16 ones do from far lower.
// Checked: the skipped steps and the scale in metrics.jsonl and on stderr, the
// scaler's state and Adam's step count in the checkpoint, an exact --resume
// (which needs the scale restored: from 2^130 again it would skip again), the
// fatal error at the floor, and that runs without scaling save no scaler state.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "data/synth.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<json> metrics(const fs::path& run) {
  std::vector<json> records;
  std::istringstream in(read_all(run / "metrics.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) records.push_back(json::parse(line));
  return records;
}

// std::cerr goes to a string while this lives (the trainer's progress and summaries).
struct CaptureCerr {
  std::ostringstream text;
  std::streambuf* old = std::cerr.rdbuf(text.rdbuf());
  ~CaptureCerr() { std::cerr.rdbuf(old); }
};

class TrainerLossScaling : public ::testing::Test {
 protected:
  fs::path root = fs::temp_directory_path() / ("pointnet_trainer_scaling_" + std::to_string(::getpid()) + "_" +
                                               ::testing::UnitTest::GetInstance()->current_test_info()->name());
  void SetUp() override {
    fs::remove_all(root);
    SynthOptions synth;  // 12 classes x 8 = 96 training clouds: 12 batches of 8
    synth.points = 64;
    synth.train_per_class = 8;
    synth.test_per_class = 2;
    write_synthetic_classification((root / "data").string(), synth);
  }
  void TearDown() override { fs::remove_all(root); }

  TrainOptions options(const std::string& run, int epochs) const {
    TrainOptions o;
    o.data_dir = (root / "data").string();
    o.out_dir = (root / run).string();
    o.epochs = epochs;
    o.batch_size = 8;
    o.points = 64;
    o.eval_every = 0;
    o.plain_output = true;
    return o;
  }
  static LossScalerConfig huge() {
    LossScalerConfig c;
    c.init_scale = c.max_scale = std::ldexp(1.0, 130);
    return c;
  }
};

TEST_F(TrainerLossScaling, HugeScaleSkipsBacksOffAndResumesExactly) {
  TrainOptions straight = options("A", 2);
  straight.loss_scaling = huge();
  CaptureCerr err;
  const TrainResult a = train(straight);
  ASSERT_EQ(a.epochs_done, 2);

  const std::vector<json> records = metrics(root / "A");
  ASSERT_EQ(records.size(), 2u);
  const int skipped1 = records[0].at("skipped_steps"), skipped2 = records[1].at("skipped_steps");
  EXPECT_GE(skipped1, 3) << records[0].dump();
  const int total = skipped1 + skipped2;
  std::cout << "[ info     ] from 2^130: " << skipped1 << " steps skipped in epoch 1, " << skipped2
            << " in epoch 2 (12 batches each)\n";
  EXPECT_EQ(records[0].at("loss_scale").get<double>(), std::ldexp(1.0, 130 - skipped1));
  EXPECT_EQ(records[1].at("loss_scale").get<double>(), std::ldexp(1.0, 130 - total));
  EXPECT_TRUE(std::isfinite(records[1].at("train_loss").get<double>()));
  EXPECT_NE(err.text.str().find(std::to_string(skipped1) + " steps skipped (fp16 overflow), loss scale"),
            std::string::npos)
      << err.text.str();

  const Checkpoint ck = load_checkpoint((root / "A" / "checkpoint.safetensors").string());
  const json& state = ck.info.trainer.at("loss_scaler");
  EXPECT_EQ(state.at("scale").get<double>(), std::ldexp(1.0, 130 - total));
  EXPECT_EQ(state.at("skipped_steps").get<int>(), total);
  EXPECT_EQ(ck.file.get("optimizer.step").as_i64().at(0), 2 * 12 - total)
      << "skipped steps must not advance Adam's step count";

  // 1 epoch, then --resume to 2: the same bytes, with no second round of skips.
  TrainOptions first = options("B", 1), resumed = options("B", 2);
  first.loss_scaling = resumed.loss_scaling = huge();
  resumed.resume = true;
  train(first);
  train(resumed);
  // EXPECT_TRUE, not EXPECT_EQ: gtest would diff megabytes of binary on failure.
  EXPECT_TRUE(read_all(root / "A" / "checkpoint.safetensors") == read_all(root / "B" / "checkpoint.safetensors"))
      << "1 epoch + --resume differs from 2 epochs in one go";
  const std::vector<json> resumed_records = metrics(root / "B");
  ASSERT_EQ(resumed_records.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(resumed_records[i].at("skipped_steps"), records[i].at("skipped_steps")) << "epoch " << i + 1;
    EXPECT_EQ(resumed_records[i].at("loss_scale"), records[i].at("loss_scale")) << "epoch " << i + 1;
    EXPECT_EQ(resumed_records[i].at("train_loss"), records[i].at("train_loss")) << "epoch " << i + 1;
  }
}

// At the floor there is no lower scale to try: the run stops with an error
// that says so, as a NaN loss stops an fp32 run.
TEST_F(TrainerLossScaling, OverflowAtTheFloorStopsTheRun) {
  TrainOptions o = options("run", 1);
  LossScalerConfig floor = huge();
  floor.min_scale = floor.init_scale;
  o.loss_scaling = floor;
  CaptureCerr err;
  try {
    train(o);
    FAIL() << "an overflow at the smallest scale must stop the run";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("overflowed at epoch 1, batch 1 even at the smallest loss scale"), std::string::npos) << what;
    EXPECT_NE(what.find("checkpoint"), std::string::npos) << what;
  }
}

// Without scaling (fp32 here) nothing about it is saved: the checkpoint's
// metadata is what it was before loss scaling existed; the log says 0 and 1.
TEST_F(TrainerLossScaling, RunsWithoutScalingSaveNoScalerState) {
  CaptureCerr err;
  train(options("run", 1));
  const Checkpoint ck = load_checkpoint((root / "run" / "checkpoint.safetensors").string());
  EXPECT_FALSE(ck.info.trainer.contains("loss_scaler")) << ck.info.trainer.dump();
  EXPECT_FALSE(ck.info.trainer.at("totals").contains("skipped")) << ck.info.trainer.dump();
  const std::vector<json> records = metrics(root / "run");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].at("skipped_steps"), 0);
  EXPECT_EQ(records[0].at("loss_scale"), 1.0);
  EXPECT_EQ(err.text.str().find("skipped"), std::string::npos) << err.text.str();
}

}  // namespace
}  // namespace pointnet
