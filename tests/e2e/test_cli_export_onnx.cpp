// `pointnet export-onnx` as a user runs it: a checkpoint in, an ONNX file out
// (the same bytes as export_onnx() of the loaded model), fixed or dynamic
// dimensions from the flags, and bad flags or files refused with exit 1 and no
// file written.
#include <gtest/gtest.h>

#include "../unit/onnx_reader.h"
#include "cli_helpers.h"
#include "cpu/cpu_backend.h"
#include "export/onnx_graph.h"
#include "train/checkpoint.h"

namespace pointnet::e2e {
namespace {

class CliExportOnnx : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string checkpoint = (tmp.path / "model.safetensors").string();
  std::string onnx_path = (tmp.path / "model.onnx").string();

  void SetUp() override {
    CpuBackend<float> be;
    CheckpointInfo info;
    info.config.task = ModelTask::Segmentation;
    info.config.num_classes = 3;
    info.config.feature_transform = true;
    info.class_names = {"Mug"};
    info.part_offset = {0};
    info.part_count = {3};
    info.class_choice = "Mug";
    PointNet<float> model(info.config, be);
    Rng rng(3);
    model.initialize(rng);
    save_checkpoint(checkpoint, model, nullptr, info);
  }

  RunResult run(const std::vector<std::string>& args) { return run_cli(args, tmp.path); }
};

TEST_F(CliExportOnnx, WritesTheExportOfTheCheckpoint) {
  const RunResult r = run({"export-onnx", "--model", checkpoint, "--out", onnx_path});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const std::string bytes = read_text(onnx_path);
  // The same bytes as exporting the reloaded checkpoint in-process.
  CpuBackend<float> be;
  const Checkpoint ck = load_checkpoint(checkpoint);
  PointNet<float> model(ck.info.config, be);
  restore_model(ck, model);
  EXPECT_EQ(bytes, export_onnx(model, ck.info, {}));
  const auto g = testing::decode_model(bytes);
  EXPECT_EQ(g.metadata.at("class_choice"), "Mug");
  EXPECT_EQ(g.inputs.at(0).dims.at(0).param, "batch");
}

TEST_F(CliExportOnnx, FixedDimensionsAndOpset) {
  const RunResult r = run({"export-onnx", "--model", checkpoint, "--out", onnx_path, "--batch", "4", "--points",
                           "1024", "--opset", "18", "--keep-batchnorm", "--include-normalization"});
  ASSERT_TRUE(r.exited && r.exit_code == 0) << r.describe();
  const auto g = testing::decode_model(read_text(onnx_path));
  EXPECT_EQ(g.opsets.at(""), 18);
  EXPECT_EQ(g.inputs.at(0).dims.at(0).value, 4);
  EXPECT_EQ(g.inputs.at(0).dims.at(2).value, 1024);
  EXPECT_EQ(g.outputs.at(0).dims.at(1).value, 1024);
  int bn = 0;
  for (const auto& n : g.nodes) bn += n.op_type == "BatchNormalization";
  EXPECT_GT(bn, 0);
}

TEST_F(CliExportOnnx, BadInputsExitOneAndWriteNothing) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;  // in stderr
  };
  const Case cases[] = {
      {{"--model", checkpoint, "--batch", "abc"}, "--batch"},
      {{"--model", checkpoint, "--points", "0"}, "--points"},
      {{"--model", checkpoint, "--opset", "12"}, "--opset"},
      {{"--model", (tmp.path / "missing.safetensors").string()}, "missing.safetensors"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"export-onnx", "--out", onnx_path};
    args.insert(args.end(), c.args.begin(), c.args.end());
    const RunResult r = run(args);
    EXPECT_TRUE(r.exited && r.exit_code == 1) << r.describe();
    EXPECT_NE(r.err.find(c.expected), std::string::npos) << r.describe();
    EXPECT_FALSE(fs::exists(onnx_path)) << c.expected;
  }
}

}  // namespace
}  // namespace pointnet::e2e
