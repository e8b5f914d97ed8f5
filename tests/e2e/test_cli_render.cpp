// End to end: `pointnet show` and `pointnet plot` write PNGs a person can look
// at, and refuse bad input with exit status 1.
#include <cmath>
#include <cstdlib>

#include <gtest/gtest.h>

#include "../png_reader.h"
#include "cli_helpers.h"
#include "render/palette.h"

namespace pointnet::e2e {
namespace {

using Args = std::vector<std::string>;
using pointnet::testing::decode_png_file;

class CliRender : public CliFixture {
 protected:

  // A helix of n points in three parts (.seg labels 1, 2, 3 by height); returns the .pts path.
  std::string write_helix(int n, int labels_written) {
    std::string pts, seg;
    for (int i = 0; i < n; ++i) {
      const double t = 6.0 * i / n;
      pts += std::to_string(std::cos(3 * t)) + " " + std::to_string(t - 3) + " " + std::to_string(std::sin(3 * t)) + "\n";
      if (i < labels_written) seg += std::to_string(1 + 3 * i / n) + "\n";
    }
    write_text(p("helix.pts"), pts);
    write_text(p("helix.seg"), seg);
    return p("helix.pts");
  }
};

// How many pixels are within `tol` of `c` on every channel.
int pixels_near(const pointnet::testing::DecodedPng& png, render::Rgb c, int tol) {
  int count = 0;
  for (int y = 0; y < png.height; ++y)
    for (int x = 0; x < png.width; ++x) {
      const uint8_t* q = png.at(x, y);
      count += std::abs(q[0] - c.r) <= tol && std::abs(q[1] - c.g) <= tol && std::abs(q[2] - c.b) <= tol;
    }
  return count;
}

TEST_F(CliRender, ShowColoursEveryPart) {
  const std::string pts = write_helix(600, 600);
  RunResult r = ok({"show", "--input", pts, "--labels", p("helix.seg"), "--out", p("helix.png"), "--views", "4",
                    "--size", "500x460", "--up", "y"});
  EXPECT_NE(r.out.find("helix.png"), std::string::npos) << r.describe();
  const auto png = decode_png_file(p("helix.png"));
  ASSERT_TRUE(png.ok) << png.message;
  EXPECT_EQ(png.width, 500);
  EXPECT_EQ(png.height, 460);
  for (int part = 0; part < 3; ++part)
    EXPECT_GT(pixels_near(png, render::label_color(part), 30), 50) << "part " << part << "'s colour is missing";
  EXPECT_LT(pixels_near(png, render::label_color(3), 30), 10) << "a part the labels do not have";
}

TEST_F(CliRender, ShowRefusesBadInput) {
  const std::string pts = write_helix(100, 99);
  expect_user_error(run({"show", "--input", pts, "--labels", p("helix.seg"), "--out", p("x.png")}), "99 labels");
  expect_user_error(run({"show", "--input", p("missing.npy"), "--out", p("x.png")}), "missing.npy");
  expect_user_error(run({"show", "--input", pts, "--out", p("x.png"), "--size", "10x10"}), "--size");
  expect_user_error(run({"show", "--input", pts, "--out", p("x.png"), "--size", "big"}), "--size");
  expect_user_error(run({"show", "--input", pts, "--out", "/nonexistent_pointnet_dir/x.png"}),
                    "/nonexistent_pointnet_dir/x.png");
  EXPECT_FALSE(fs::exists(p("x.png")));
}

TEST_F(CliRender, ShowWithModels) {
  ok({"synth", "--task", "seg", "--out", p("seg"), "--train-per-class", "4", "--test-per-class", "1", "--points",
      "64"});
  const auto [category, synset] = first_category(p("seg"));
  ASSERT_FALSE(category.empty());
  ok({"train", "--data", p("seg"), "--out", p("run_one"), "--plain", "--task", "seg", "--class-choice", category,
      "--epochs", "1", "--points", "64", "--batch-size", "4", "--test-data", "none"});
  std::vector<std::string> pts;
  for (const auto& e : fs::directory_iterator(fs::path(p("seg")) / synset / "points")) pts.push_back(e.path());
  ASSERT_FALSE(pts.empty());
  const std::string seg = (fs::path(p("seg")) / synset / "points_label" / fs::path(pts[0]).stem()).string() + ".seg";
  const std::string ckpt = p("run_one/checkpoint.safetensors");

  // Truth beside prediction: two tiles side by side at the default size.
  ok({"show", "--input", pts[0], "--labels", seg, "--model", ckpt, "--out", p("both.png")});
  const auto both = decode_png_file(p("both.png"));
  ASSERT_TRUE(both.ok) << both.message;
  EXPECT_GT(both.width, both.height) << "two panels side by side";

  // A model for all categories needs the shape's category to compare.
  ok({"train", "--data", p("seg"), "--out", p("run_all"), "--plain", "--task", "seg", "--epochs", "1", "--points",
      "64", "--batch-size", "4", "--test-data", "none"});
  const std::string all = p("run_all/checkpoint.safetensors");
  expect_user_error(run({"show", "--input", pts[0], "--labels", seg, "--model", all, "--out", p("all.png")}),
                    "--category");
  ok({"show", "--input", pts[0], "--labels", seg, "--model", all, "--category", category, "--out", p("all.png")});
  EXPECT_TRUE(decode_png_file(p("all.png")).ok);

  // A classifier titles its prediction; it cannot be compared with part labels.
  ok({"synth", "--task", "cls", "--out", p("cls"), "--train-per-class", "2", "--test-per-class", "1", "--points",
      "64"});
  ok({"train", "--data", p("cls"), "--out", p("run_cls"), "--plain", "--epochs", "1", "--points", "64",
      "--batch-size", "4", "--test-data", "none"});
  ok({"show", "--input", pts[0], "--model", p("run_cls/checkpoint.safetensors"), "--out", p("cls.png")});
  EXPECT_TRUE(decode_png_file(p("cls.png")).ok);
  expect_user_error(run({"show", "--input", pts[0], "--labels", seg, "--model", p("run_cls/checkpoint.safetensors"),
                         "--out", p("cls.png")}),
                    "classifier");
}

TEST_F(CliRender, PlotWritesCurvesAndRefusesBadMetrics) {
  fs::create_directories(p("run"));
  write_text(p("run/metrics.jsonl"),
             "{\"epoch\": 1, \"train_loss\": 2.0, \"train_accuracy\": 0.3}\n"
             "{\"epoch\": 2, \"train_loss\": 1.0, \"train_accuracy\": 0.6, \"test_accuracy\": 0.5}\n");
  ok({"plot", p("run"), "--out", p("curves.png"), "--size", "640x300"});
  const auto png = decode_png_file(p("curves.png"));
  ASSERT_TRUE(png.ok) << png.message;
  EXPECT_EQ(png.width, 640);
  EXPECT_EQ(png.height, 300);
  EXPECT_GT(pixels_near(png, render::label_color(0), 0), 20) << "the train curves";
  EXPECT_GT(pixels_near(png, render::label_color(3), 0), 5) << "the test accuracy";

  write_text(p("run/metrics.jsonl"), "{\"epoch\": 1, \"train_loss\": 2.0}\nnot json\n");
  expect_user_error(run({"plot", p("run"), "--out", p("bad.png")}), "line 2");
  expect_user_error(run({"plot", p("nowhere"), "--out", p("bad.png")}), "nowhere");
  EXPECT_FALSE(fs::exists(p("bad.png")));
}

}  // namespace
}  // namespace pointnet::e2e
