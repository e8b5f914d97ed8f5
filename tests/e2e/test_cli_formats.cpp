// `pointnet predict` on .ply and .pcd files: the same cloud in every format
// and encoding gets the same prediction, bit for bit, and a .pcd's NaN
// points are dropped with one line on stderr.
#include <cmath>
#include <nlohmann/json.hpp>

#include "cli_helpers.h"
#include "io/npy.h"
#include "io/pcd.h"
#include "io/ply.h"

namespace pointnet::e2e {
namespace {

using Args = std::vector<std::string>;

TEST(CliFormats, PredictGivesTheSameAnswerForEveryFormat) {
  TempDir tmp;
  auto p = [&](const std::string& rel) { return (tmp.path / rel).string(); };
  auto ok = [&](const Args& args) {
    RunResult r = run_cli(args, tmp.path);
    EXPECT_TRUE(r.exited && r.exit_code == 0 && !r.timed_out) << r.describe();
    return r;
  };
  ok({"synth", "--task", "cls", "--out", p("data"), "--train-per-class", "2", "--test-per-class", "1", "--points", "32"});
  ok({"train", "--data", p("data"), "--out", p("run"), "--plain", "--points", "32", "--batch-size", "4", "--epochs", "1",
      "--test-data", "none"});

  Cloud cloud;
  for (int i = 0; i < 100; ++i)
    cloud.xyz.insert(cloud.xyz.end(), {std::sin(0.3f * i), std::cos(0.7f * i), 0.01f * i - 0.5f});
  write_npy(p("c.npy"), {100, 3}, cloud.xyz.data());
  write_ply(p("c_binary.ply"), cloud, PlyEncoding::BinaryLittleEndian);
  write_ply(p("c_ascii.ply"), cloud, PlyEncoding::Ascii);
  write_pcd(p("c_ascii.pcd"), cloud, PcdEncoding::Ascii);
  write_pcd(p("c_binary.pcd"), cloud, PcdEncoding::Binary);
  write_pcd(p("c_compressed.pcd"), cloud, PcdEncoding::BinaryCompressed);
  Cloud with_nan = cloud;  // an organised scan's "no return" points, inserted among the others
  for (int k = 0; k < 3; ++k) with_nan.xyz.insert(with_nan.xyz.begin() + 30 * k, {NAN, NAN, NAN});
  write_pcd(p("c_nan.pcd"), with_nan, PcdEncoding::Binary);

  const Args files = {p("c.npy"), p("c_binary.ply"), p("c_ascii.ply"), p("c_ascii.pcd"), p("c_binary.pcd"),
                      p("c_compressed.pcd"), p("c_nan.pcd")};
  Args args = {"predict", "--model", p("run/checkpoint.safetensors"), "--json", "--input"};
  args.insert(args.end(), files.begin(), files.end());
  RunResult r = ok(args);
  const std::vector<std::string> lines = lines_of(r.out);
  ASSERT_EQ(lines.size(), files.size()) << r.describe();
  const nlohmann::json first = nlohmann::json::parse(lines[0]);
  for (size_t i = 1; i < lines.size(); ++i)
    EXPECT_EQ(nlohmann::json::parse(lines[i])["log_probs"], first["log_probs"]) << files[i];
  EXPECT_NE(r.err.find("c_nan.pcd: dropped 3 points with non-finite coordinates (kept 100)"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("c_binary.pcd"), std::string::npos) << r.err;  // nothing dropped, nothing said
}

}  // namespace
}  // namespace pointnet::e2e
