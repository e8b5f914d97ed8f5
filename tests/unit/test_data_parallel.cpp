// Data-parallel training on the CPU, ranks as threads (dist/thread_group.h):
// every rank trains on its slice of each global batch, the gradients are
// summed over the ranks before Adam, so every rank must end with the same
// parameters, bit for bit; rank 0 alone writes the run folder; the run is
// deterministic. (The NCCL transport is the same TrainStep code over another
// Communicator; it needs GPUs.)
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/synth.h"
#include "dist/thread_group.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

class DataParallel : public ::testing::Test {
 protected:
  fs::path root = fs::temp_directory_path() / ("pointnet_data_parallel_" + std::to_string(::getpid()));
  void SetUp() override {
    fs::remove_all(root);
    SynthOptions synth;  // 12 classes x 8 = 96 training clouds
    synth.points = 64;
    synth.train_per_class = 8;
    synth.test_per_class = 1;
    write_synthetic_classification((root / "data").string(), synth);
  }
  void TearDown() override { fs::remove_all(root); }

  // Trains `ranks` ranks on threads, rank r into root/<name>-<r>; errors[r]
  // gets rank r's error, if any (expected empty unless `expect_errors`).
  std::vector<TrainResult> run(const std::string& name, int ranks, std::vector<std::string>* errors_out = nullptr,
                               int rank1_batch = 4, bool sync_batchnorm = false, uint64_t rank1_seed = 1) {
    ThreadGroup group(ranks);
    std::vector<TrainResult> results(ranks);
    std::vector<std::string> errors(ranks);
    std::vector<std::thread> threads;
    for (int r = 0; r < ranks; ++r)
      threads.emplace_back([&, r] {
        TrainOptions o;
        o.data_dir = (root / "data").string();
        o.out_dir = (root / (name + "-" + std::to_string(r))).string();
        o.epochs = 2;
        o.batch_size = r == 1 ? rank1_batch : 4;  // per rank
        o.points = 64;
        o.eval_every = 0;
        o.plain_output = true;
        o.communicator = &group.rank(r);
        o.sync_batchnorm = sync_batchnorm;
        if (r == 1) o.seed = rank1_seed;
        try {
          results[r] = train(o);
        } catch (const std::exception& e) {
          errors[r] = e.what();
        }
      });
    for (std::thread& t : threads) t.join();
    if (errors_out) *errors_out = errors;
    else
      for (int r = 0; r < ranks; ++r) EXPECT_EQ(errors[r], "") << "rank " << r;
    return results;
  }
};

TEST_F(DataParallel, RanksStayInStepAndOnlyRankZeroWrites) {
  const std::vector<TrainResult> a = run("a", 2);
  ASSERT_EQ(a.size(), 2u);
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(a[r].rank, r);
    EXPECT_EQ(a[r].ranks, 2);
    EXPECT_EQ(a[r].epochs_done, 2);
  }
  EXPECT_EQ(a[0].parameters_checksum, a[1].parameters_checksum) << "the ranks' parameters drifted apart";
  EXPECT_TRUE(fs::exists(root / "a-0" / "checkpoint.safetensors"));
  EXPECT_TRUE(fs::exists(root / "a-0" / "model.safetensors"));
  EXPECT_FALSE(fs::exists(root / "a-1")) << "a rank other than 0 wrote files";
  // Two epochs of 96 / (2 x 4) = 12 global batches, logged once, over both ranks' shards.
  std::ifstream log(root / "a-0" / "metrics.jsonl");
  std::vector<nlohmann::json> records;
  for (std::string line; std::getline(log, line);) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].at("ranks"), 2);
  EXPECT_TRUE(std::isfinite(records[1].at("train_loss").get<double>()));

  // Deterministic, and not a copy of a one-rank run with the same per-rank batch.
  const std::vector<TrainResult> again = run("b", 2);
  EXPECT_EQ(again[0].parameters_checksum, a[0].parameters_checksum);
  const std::vector<TrainResult> alone = run("c", 1);
  EXPECT_NE(alone[0].parameters_checksum, a[0].parameters_checksum);
}

// SyncBN: the ranks normalise with the global batch's statistics and still
// end bit-identical; the run is not the one without it, and its checkpoint
// says how it was trained.
TEST_F(DataParallel, SyncBatchNormKeepsRanksInStep) {
  const std::vector<TrainResult> synced = run("s", 2, nullptr, 4, true);
  ASSERT_EQ(synced.size(), 2u);
  EXPECT_EQ(synced[0].parameters_checksum, synced[1].parameters_checksum) << "the ranks' parameters drifted apart";
  const std::vector<TrainResult> plain = run("p", 2);
  EXPECT_NE(plain[0].parameters_checksum, synced[0].parameters_checksum) << "SyncBN changed nothing";
  const Checkpoint synced_checkpoint = load_checkpoint((root / "s-0" / "checkpoint.safetensors").string());
  EXPECT_EQ(synced_checkpoint.info.trainer.at("recipe").value("sync_batchnorm", false), true);
  const Checkpoint plain_checkpoint = load_checkpoint((root / "p-0" / "checkpoint.safetensors").string());
  EXPECT_FALSE(plain_checkpoint.info.trainer.at("recipe").contains("sync_batchnorm"));
}

// Every rank starts from rank 0's parameters (broadcast after the vote): a
// rank initialised from another seed still ends bit-identical to rank 0.
TEST_F(DataParallel, RanksStartFromRankZerosParameters) {
  const std::vector<TrainResult> r = run("i", 2, nullptr, 4, false, 99);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].parameters_checksum, r[1].parameters_checksum) << "rank 1 kept its own initial parameters";
}

// Ranks that would run different loops (here another --batch-size, so other
// batch counts) all stop at the start with the same error; none hangs.
TEST_F(DataParallel, RanksThatDisagreeAllStopAtTheStart) {
  std::vector<std::string> errors;
  run("d", 2, &errors, 8);
  for (int r = 0; r < 2; ++r) EXPECT_NE(errors[r].find("the ranks disagree on the run"), std::string::npos) << errors[r];
  EXPECT_FALSE(fs::exists(root / "d-0" / "checkpoint.safetensors"));
}

}  // namespace
}  // namespace pointnet
