// End to end with pointnet.pytorch .pth files (tests/golden/data/pth): convert,
// then predict and eval on the result equal predict and eval on the .pth
// directly; class names by index or given; bad files fail cleanly.
#include <gtest/gtest.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "io/npy.h"

namespace pointnet::e2e {
namespace {

using Args = std::vector<std::string>;
const std::string kPthDir = std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/";

class CliPth : public CliFixture {
 protected:
  // A fixed, irregular cloud of 200 points.
  std::string cloud() {
    std::vector<float> xyz(200 * 3);
    for (size_t i = 0; i < xyz.size(); ++i) xyz[i] = std::sin(0.37f * static_cast<float>(i)) * (1 + (i % 3));
    write_npy(p("cloud.npy"), {200, 3}, xyz.data());
    return p("cloud.npy");
  }
  // Synthetic ModelNet-style data with its first `classes` classes.
  std::string cls_data(int classes) {
    ok({"synth", "--task", "cls", "--out", p("all"), "--train-per-class", "2", "--test-per-class", "2", "--points",
        "64"});
    std::vector<fs::path> dirs;
    for (const auto& e : fs::directory_iterator(p("all")))
      if (e.is_directory()) dirs.push_back(e.path());
    std::sort(dirs.begin(), dirs.end());
    EXPECT_GE(static_cast<int>(dirs.size()), classes);
    const std::string out = p("cls" + std::to_string(classes));
    fs::create_directories(out);
    for (int c = 0; c < classes; ++c) fs::copy(dirs[c], fs::path(out) / dirs[c].filename(), fs::copy_options::recursive);
    return out;
  }
};

TEST_F(CliPth, ConvertThenPredictEqualsPredictOnThePth) {
  const std::string input = cloud();
  for (const std::string name : {"cls", "cls_ft", "seg_ft", "cls_legacy"}) {
    const std::string pth = kPthDir + name + ".pth", ckpt = p(name + ".safetensors");
    ok({"convert", pth, "--out", ckpt});
    const RunResult direct = ok({"predict", "--model", pth, "--input", input, "--json"});
    const RunResult converted = ok({"predict", "--model", ckpt, "--input", input, "--json"});
    EXPECT_FALSE(direct.out.empty());
    EXPECT_EQ(direct.out, converted.out) << name;
    const auto j = nlohmann::json::parse(lines_of(direct.out).at(0));
    EXPECT_EQ(j["log_probs"].size(), name.rfind("seg", 0) == 0 ? 200u : 5u) << name;
  }
}

TEST_F(CliPth, EvalMatchesClassesByIndexOnlyWhenCountsAgree) {
  const std::string data5 = cls_data(5);
  const RunResult direct = ok({"eval", "--model", kPthDir + "cls.pth", "--data", data5, "--json"});
  EXPECT_NE(direct.err.find("no class names"), std::string::npos) << direct.describe();
  ok({"convert", kPthDir + "cls.pth", "--out", p("cls.safetensors")});
  const RunResult converted = ok({"eval", "--model", p("cls.safetensors"), "--data", data5, "--json"});
  auto a = nlohmann::json::parse(direct.out), b = nlohmann::json::parse(converted.out);
  a.erase("model");
  b.erase("model");
  EXPECT_EQ(a, b);
  expect_user_error(run({"eval", "--model", kPthDir + "cls.pth", "--data", p("all")}), "cls.pth");
}

TEST_F(CliPth, ConvertWithClassNames) {
  const std::string data5 = cls_data(5);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(data5)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string file;
  for (const auto& n : names) file += n + "\n";
  write_text(p("names.txt"), file);
  ok({"convert", kPthDir + "cls.pth", "--out", p("named.safetensors"), "--class-names-file", p("names.txt")});
  const RunResult r = ok({"eval", "--model", p("named.safetensors"), "--data", data5, "--json"});
  EXPECT_EQ(r.err.find("no class names"), std::string::npos) << r.describe();
  const auto j = nlohmann::json::parse(lines_of(ok({"predict", "--model", p("named.safetensors"), "--input", cloud(),
                                                    "--json"}).out).at(0));
  EXPECT_NE(std::find(names.begin(), names.end(), j["class"].get<std::string>()), names.end());
  expect_user_error(run({"convert", kPthDir + "cls.pth", "--out", p("x.safetensors"), "--class-names", "a,b,c"}),
                    "3 class names");
}

TEST_F(CliPth, BadFilesFailCleanly) {
  expect_user_error(run({"convert", kPthDir + "dtypes.pth", "--out", p("x.safetensors")}), "dtypes.pth");
  const std::string bytes = read_text(kPthDir + "cls.pth");
  write_text(p("half.pth"), bytes.substr(0, bytes.size() / 2));
  expect_user_error(run({"convert", p("half.pth"), "--out", p("x.safetensors")}), "half.pth");
  expect_user_error(run({"predict", "--model", p("half.pth"), "--input", cloud()}), "half.pth");
  EXPECT_FALSE(fs::exists(p("x.safetensors")));
  // Random bytes named .pth: the message says it is neither kind of checkpoint.
  write_text(p("noise.pth"), std::string("\x93garbage bytes, not a checkpoint", 32));
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"predict", "--model", p("noise.pth"), "--input", cloud()},
        std::vector<std::string>{"export-onnx", "--model", p("noise.pth"), "--out", p("x.onnx")}}) {
    const RunResult r = run(args);
    expect_user_error(r, "noise.pth");
    EXPECT_NE(r.err.find("nor is it a torch.save file"), std::string::npos) << r.err;
  }
}

}  // namespace
}  // namespace pointnet::e2e
