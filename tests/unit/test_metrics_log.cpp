// metrics.jsonl writing and truncation on resume.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "train/metrics_log.h"

namespace fs = std::filesystem;
using namespace pointnet;
using nlohmann::json;

namespace {

class MetricsLogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = (fs::temp_directory_path() / "pn_log_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    path_ = (fs::path(dir_) / "metrics.jsonl").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<json> records() const {
    std::vector<json> out;
    std::istringstream in(read_file(path_));
    for (std::string line; std::getline(in, line);) out.push_back(json::parse(line));
    return out;
  }

  std::string dir_, path_;
};

}  // namespace

TEST_F(MetricsLogTest, WritesOneObjectPerLineAndFlushes) {
  MetricsLog log(path_, false);
  log.write({{"epoch", 1}, {"loss", 0.5}});
  log.write({{"epoch", 2}, {"loss", 0.25}, {"split", "train"}});
  // Readable while the log is still open: each write is flushed.
  std::vector<json> r = records();
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[1]["split"], "train");
  EXPECT_EQ(read_file(path_).find("\n"), read_file(path_).find("}") + 1) << "compact, one line per record";
  EXPECT_THROW(log.write(json::array({1, 2})), Error);
}

TEST_F(MetricsLogTest, AppendKeepsAndFreshTruncates) {
  { MetricsLog(path_, false).write({{"epoch", 1}}); }
  { MetricsLog(path_, true).write({{"epoch", 2}}); }
  EXPECT_EQ(records().size(), 2u);
  { MetricsLog(path_, false).write({{"epoch", 1}}); }
  EXPECT_EQ(records().size(), 1u);
}

TEST_F(MetricsLogTest, OpenFailureNamesPath) {
  std::string bad = (fs::path(dir_) / "missing" / "metrics.jsonl").string();
  try {
    MetricsLog log(bad, true);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

TEST_F(MetricsLogTest, TruncateAfterEpochKeepsEarlierAndHeaders) {
  std::ofstream(path_) << R"({"event":"start","config":{"lr":0.001}})" "\n"
                       << R"({"epoch":1,"loss":0.9})" "\n"
                       << R"({"epoch":2,"loss":0.7})" "\n"
                       << R"({"epoch":3,"loss":0.6})" "\n"
                       << R"({"epoch":4,"lo)";  // torn by a crash
  MetricsLog::truncate_after_epoch(path_, 2);
  std::vector<json> r = records();
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0]["event"], "start");
  EXPECT_EQ(r[1]["epoch"], 1);
  EXPECT_EQ(r[2]["epoch"], 2);

  MetricsLog(path_, true).write({{"epoch", 3}, {"loss", 0.55}});
  r = records();
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[3]["loss"], 0.55);

  MetricsLog::truncate_after_epoch(path_, 0);
  EXPECT_EQ(records().size(), 1u);
}

TEST_F(MetricsLogTest, TruncateMissingFileDoesNothing) {
  MetricsLog::truncate_after_epoch(path_, 3);
  EXPECT_FALSE(fs::exists(path_));
}
