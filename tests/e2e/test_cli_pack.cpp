// `pointnet pack` end to end: training from a pack is the same run as from the
// folder it came from, --test-data picks the evaluation set, and a damaged
// pack is a clear user error.
#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "train/checkpoint.h"

namespace pointnet::e2e {
namespace {

using Args = std::vector<std::string>;

class CliPack : public CliFixture {
 protected:
  std::string synth() {
    ok({"synth", "--task", "cls", "--out", p("data"), "--train-per-class", "8", "--test-per-class", "3", "--points", "64"});
    return p("data");
  }
  RunResult train(const std::string& data, const std::string& out, const Args& extra = {}) {
    Args a = {"train", "--data", data, "--out", out, "--plain", "--points", "64", "--batch-size", "8", "--epochs", "1"};
    a.insert(a.end(), extra.begin(), extra.end());
    return run_cli(a, tmp.path);
  }
};

TEST_F(CliPack, TrainingFromAPackIsTheSameRunAsFromTheFolder) {
  const std::string data = synth();
  RunResult packed = ok({"pack", data, "--out", p("data.pack")});
  EXPECT_NE(packed.out.find("train 96 test 36 shapes"), std::string::npos) << packed.out;
  ASSERT_EQ(train(data, p("folder")).exit_code, 0);
  ASSERT_EQ(train(p("data.pack"), p("pack")).exit_code, 0);
  // Every tensor (weights, BN statistics, Adam state) bit-identical; only the
  // recorded data path differs.
  const Checkpoint a_ckpt = load_checkpoint(p("folder/checkpoint.safetensors"));
  const Checkpoint b_ckpt = load_checkpoint(p("pack/checkpoint.safetensors"));
  ASSERT_EQ(a_ckpt.file.tensors.size(), b_ckpt.file.tensors.size());
  for (const auto& [name, tensor] : a_ckpt.file.tensors)
    EXPECT_TRUE(tensor.bytes == b_ckpt.file.get(name).bytes) << name << " differs between folder and pack training";
  // eval accepts the pack too, and scores the same.
  RunResult a = ok({"eval", "--model", p("folder/checkpoint.safetensors"), "--data", data, "--json"});
  RunResult b = ok({"eval", "--model", p("folder/checkpoint.safetensors"), "--data", p("data.pack"), "--json"});
  auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  EXPECT_EQ(ja["accuracy"], jb["accuracy"]);
  EXPECT_EQ(ja["loss"], jb["loss"]);
  // The finished run's model.safetensors: same model, no optimizer state.
  RunResult c = ok({"eval", "--model", p("folder/model.safetensors"), "--data", data, "--json"});
  EXPECT_EQ(nlohmann::json::parse(c.out)["loss"], ja["loss"]);
  EXPECT_LT(fs::file_size(p("folder/model.safetensors")) * 2, fs::file_size(p("folder/checkpoint.safetensors")));
}

TEST_F(CliPack, TestDataOptionEvaluatesElsewhereOrNotAtAll) {
  const std::string data = synth();
  ok({"pack", data, "--out", p("train.pack"), "--splits", "train", "--dtype", "f16"});
  // A train-only pack has no test split: training from it alone says so...
  RunResult missing = train(p("train.pack"), p("a"));
  EXPECT_EQ(missing.exit_code, 1) << missing.describe();
  EXPECT_NE(missing.err.find("no 'test' split"), std::string::npos) << missing.describe();
  // ...evaluates on the folder's exact test split when asked...
  RunResult with_test = train(p("train.pack"), p("b"), {"--test-data", data});
  ASSERT_EQ(with_test.exit_code, 0) << with_test.describe();
  EXPECT_NE(with_test.out.find("final test accuracy"), std::string::npos) << with_test.out;
  // ...or trains without evaluation.
  RunResult none = train(p("train.pack"), p("c"), {"--test-data", "none"});
  ASSERT_EQ(none.exit_code, 0) << none.describe();
  EXPECT_NE(none.out.find("no test evaluation"), std::string::npos) << none.out;
  const auto log = lines_of(read_text(p("c/metrics.jsonl")));
  ASSERT_EQ(log.size(), 1u);
  EXPECT_FALSE(nlohmann::json::parse(log[0]).contains("test_accuracy"));
}

TEST_F(CliPack, InfoDescribesFoldersAndPacksAlike) {
  const std::string data = synth();
  ok({"pack", data, "--out", p("data.pack"), "--dtype", "f16"});
  for (const std::string& path : {data, p("data.pack")}) {
    const auto j = nlohmann::json::parse(ok({"info", path, "--json"}).out);
    EXPECT_EQ(j["layout"], "modelnet") << path;
    EXPECT_EQ(j["classes"].size(), 12u) << path;
    EXPECT_EQ(j["splits"]["train"], 96) << path;
    EXPECT_EQ(j["splits"]["test"], 36) << path;
    EXPECT_EQ(j["classes"][0]["train"], 8) << path;
    EXPECT_EQ(j["points_per_shape"]["min"], 64) << path;
    EXPECT_TRUE(j["problems"].empty()) << path;
  }
  const auto packed = nlohmann::json::parse(ok({"info", p("data.pack"), "--json"}).out);
  EXPECT_EQ(packed["format"], "pack");
  EXPECT_EQ(packed["dtype"], "f16");
  EXPECT_EQ(packed["source_format"], nlohmann::json::parse(ok({"info", data, "--json"}).out)["format"]);
  EXPECT_EQ(packed["normals"], false);
  // A class folder with no test shapes is a problem worth naming, not an error.
  for (const auto& e : fs::directory_iterator(fs::path(data) / "box" / "test")) fs::remove(e.path());
  const auto j = nlohmann::json::parse(ok({"info", data, "--json"}).out);
  ASSERT_EQ(j["problems"].size(), 1u) << j.dump();
  EXPECT_NE(j["problems"][0].get<std::string>().find("box"), std::string::npos);
  RunResult missing = run_cli({"info", p("nothing")}, tmp.path);
  EXPECT_EQ(missing.exit_code, 1) << missing.describe();
}

// Each split may hold other file types: info and the pack report all of them,
// not only the last (info) or first (pack) split's.
TEST_F(CliPack, FormatCoversEverySplit) {
  for (const char* cls : {"a", "b"}) {
    fs::create_directories(fs::path(p("data")) / cls / "train");
    fs::create_directories(fs::path(p("data")) / cls / "test");
    write_text(fs::path(p("data")) / cls / "train" / "1.txt", "0 0 0\n1 0 0\n0 1 0\n");
    write_text(fs::path(p("data")) / cls / "test" / "2.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n");
  }
  const auto folder = nlohmann::json::parse(ok({"info", p("data"), "--json"}).out);
  EXPECT_EQ(folder["format"], "off+txt") << folder.dump();
  ok({"pack", p("data"), "--out", p("data.pack")});
  const auto packed = nlohmann::json::parse(ok({"info", p("data.pack"), "--json"}).out);
  EXPECT_EQ(packed["source_format"], "off+txt") << packed.dump();
}

TEST_F(CliPack, DamagedPackIsAUserError) {
  const std::string data = synth();
  ok({"pack", data, "--out", p("data.pack")});
  std::string bytes = read_text(p("data.pack"));
  bytes[bytes.size() / 2] ^= 0x01;
  write_text(p("bad.pack"), bytes);
  RunResult r = train(p("bad.pack"), p("run"));
  EXPECT_EQ(r.exit_code, 1) << r.describe();
  EXPECT_NE(r.err.find("bad.pack: checksum mismatch"), std::string::npos) << r.describe();
  EXPECT_FALSE(fs::exists(p("run"))) << "a failed start must not leave a run folder";
  RunResult usage = run_cli({"pack", data, "--out", p("x.pack"), "--dtype", "f64"}, tmp.path);
  EXPECT_EQ(usage.exit_code, 1) << usage.describe();
  EXPECT_FALSE(fs::exists(p("x.pack")));
}

}  // namespace
}  // namespace pointnet::e2e
