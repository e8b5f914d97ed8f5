// `pointnet build` as a user runs it: a trained checkpoint becomes fp32 and
// int8 engines that eval, predict and bench accept in its place (and CUDA
// engines, which run on a GPU only); bad requests and damaged engines are
// refused with exit 1.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "cuda/cuda_backend.h"  // cuda_device_available

namespace pointnet::e2e {
namespace {

class CliBuild : public CliFixture {
 protected:
  // A classifier trained for one epoch on a tiny synthetic set, and that set.
  void SetUp() override {
    ok({"synth", "--task", "cls", "--out", p("data"), "--train-per-class", "6", "--test-per-class", "3", "--points",
        "128"});
    ok({"train", "--data", p("data"), "--out", p("run"), "--plain", "--points", "128", "--batch-size", "8",
        "--epochs", "1"});
  }
  std::string model() const { return p("run/model.safetensors"); }

  nlohmann::json eval_json(const std::string& model_path) {
    const RunResult r = ok({"eval", "--model", model_path, "--data", p("data"), "--json"});
    return nlohmann::json::parse(r.out);
  }
};

TEST_F(CliBuild, Fp32EngineScoresExactlyAsTheCheckpoint) {
  ok({"build", "--model", model(), "--out", p("m.engine")});
  const auto want = eval_json(model()), got = eval_json(p("m.engine"));
  EXPECT_EQ(got["overall_accuracy"], want["overall_accuracy"]);
  EXPECT_NEAR(got["loss"].get<double>(), want["loss"].get<double>(), 1e-4 * (1.0 + want["loss"].get<double>()));
  // predict on one file: the same log-probs within fp32 rounding.
  std::string cloud;
  for (const auto& e : fs::recursive_directory_iterator(p("data")))
    if (e.path().extension() == ".npy" && cloud.empty()) cloud = e.path().string();
  ASSERT_FALSE(cloud.empty());
  const auto a = nlohmann::json::parse(ok({"predict", "--model", model(), "--input", cloud, "--json"}).out);
  const auto b = nlohmann::json::parse(ok({"predict", "--model", p("m.engine"), "--input", cloud, "--json"}).out);
  EXPECT_EQ(a["class"], b["class"]);
  ASSERT_EQ(a["log_probs"].size(), b["log_probs"].size());
  for (size_t k = 0; k < a["log_probs"].size(); ++k)
    EXPECT_NEAR(a["log_probs"][k].get<double>(), b["log_probs"][k].get<double>(), 1e-4);
}

TEST_F(CliBuild, Int8EngineIsCalibratedAndClose) {
  const RunResult r = ok({"build", "--model", model(), "--precision", "int8", "--calib", p("data"), "--calib-clouds",
                          "32", "--out", p("q.engine"), "--json"});
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["precision"], "int8");
  EXPECT_EQ(j["build"]["calibration"]["clouds"], 32);
  EXPECT_EQ(j["build"]["layers"]["conv3"], "int8");
  EXPECT_EQ(j["build"]["layers"]["conv1"], "fp32");   // 3 inputs: stays fp32
  EXPECT_EQ(j["build"]["layers"]["head.2"], "fp32");  // the logits stay fp32
  for (const char* a : {"stn.h1", "stn.h2", "h1", "h2"}) EXPECT_GT(j["activation_scales"][a].get<double>(), 0.0) << a;
  const auto want = eval_json(model()), got = eval_json(p("q.engine"));
  // A one-epoch model on a tiny set: int8 moves the loss a little, not the picture.
  EXPECT_NEAR(got["loss"].get<double>(), want["loss"].get<double>(), 0.05 * (1.0 + want["loss"].get<double>()));
  EXPECT_NEAR(got["overall_accuracy"].get<double>(), want["overall_accuracy"].get<double>(), 0.15);
  const RunResult b = ok({"bench", "--model", p("q.engine"), "--batch", "2", "--points", "128", "--iters", "2", "--json"});
  const auto bj = nlohmann::json::parse(b.out);
  EXPECT_EQ(bj["runner"], "engine");
  EXPECT_EQ(bj["precision"], "int8");
}

TEST_F(CliBuild, BadRequestsAndDamagedEnginesAreRefused) {
  EXPECT_NE(fails({"build", "--model", model(), "--precision", "int8", "--out", p("q.engine")}).err.find("--calib"),
            std::string::npos);
  EXPECT_NE(fails({"build", "--model", model(), "--precision", "fp16", "--out", p("h.engine")}).err.find("fp16"),
            std::string::npos);
  EXPECT_FALSE(fs::exists(p("q.engine")) || fs::exists(p("h.engine")));
  // A CUDA engine builds anywhere (the plan needs no GPU), with the CUDA
  // runner's layer precisions in its record, and runs only on a GPU.
  const auto c = nlohmann::json::parse(
      ok({"build", "--model", model(), "--device", "cuda", "--precision", "fp16", "--out", p("c.engine"), "--json"}).out);
  EXPECT_EQ(c["build"]["layers"]["conv3"], "fp16");
  EXPECT_EQ(c["build"]["layers"]["conv1"], "fp32");
  // The wide per-cloud layers take TF32 products; the logits layer stays fp32.
  EXPECT_EQ(c["build"]["layers"]["head.0"].get<std::string>().rfind("tf32 products", 0), 0u) << c["build"]["layers"];
  EXPECT_EQ(c["build"]["layers"]["head.2"], "fp32 (per cloud)");
  if (!cuda_device_available()) {
    EXPECT_NE(fails({"eval", "--model", p("c.engine"), "--data", p("data")}).err.find("a CUDA engine needs a CUDA GPU"),
              std::string::npos);
  }
  ok({"build", "--model", model(), "--out", p("m.engine"), "--max-points", "100"});
  // An engine is not a checkpoint for export, its precision is fixed, and its limits hold.
  EXPECT_NE(fails({"export-onnx", "--model", p("m.engine"), "--out", p("m.onnx")}).err.find("engine"), std::string::npos);
  EXPECT_NE(fails({"eval", "--model", p("m.engine"), "--data", p("data"), "--precision", "bf16"}).err.find("fp32"),
            std::string::npos);
  EXPECT_NE(fails({"eval", "--model", p("m.engine"), "--data", p("data")}).err.find("--max-points"), std::string::npos);
  // A flipped byte: refused, naming the file.
  std::string bytes = read_text(p("m.engine"));
  bytes[bytes.size() / 2] ^= 0x01;
  write_text(p("m.engine"), bytes);
  EXPECT_NE(fails({"eval", "--model", p("m.engine"), "--data", p("data")}).err.find("m.engine"), std::string::npos);
}

}  // namespace
}  // namespace pointnet::e2e
