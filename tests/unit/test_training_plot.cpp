// Training curves: metrics.jsonl parsing and where the curves land in the picture.
#include <gtest/gtest.h>

#include <fstream>

#include "../temp_dir.h"
#include "core/errors.h"
#include "render/palette.h"
#include "render/training_plot.h"

namespace pointnet::render {
namespace {

using pointnet::testing::TempDir;

std::string write(const TempDir& tmp, const std::string& text) {
  const std::string path = (tmp / "metrics.jsonl").string();
  std::ofstream(path) << text;
  return path;
}

// Four epochs; test metrics at epochs 2 and 4; a header line without an epoch;
// epoch 3 logged twice (a resumed run): the later record wins.
const char* kMetrics =
    R"({"run": "header", "seed": 1})" "\n"
    R"({"epoch": 1, "train_loss": 2.0, "train_accuracy": 0.2})" "\n"
    R"({"epoch": 2, "train_loss": 1.5, "train_accuracy": 0.4, "test_loss": 1.6, "test_accuracy": 0.5})" "\n"
    R"({"epoch": 3, "train_loss": 9.0, "train_accuracy": 0.9})" "\n"
    R"({"epoch": 3, "train_loss": 1.0, "train_accuracy": 0.66})" "\n"
    R"({"epoch": 4, "train_loss": 0.5, "train_accuracy": 0.8, "test_loss": 1.1, "test_accuracy": 0.7})" "\n";

TEST(TrainingPlot, ReadsEpochRecords) {
  TempDir tmp;
  const TrainingCurves c = read_training_curves(write(tmp, kMetrics));
  EXPECT_EQ(c.epoch, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(c.train_loss, (std::vector<double>{2.0, 1.5, 1.0, 0.5}));
  EXPECT_EQ(c.train_accuracy, (std::vector<double>{0.2, 0.4, 0.66, 0.8}));
  EXPECT_EQ(c.test_epoch, (std::vector<double>{2, 4}));
  EXPECT_EQ(c.test_metric, (std::vector<double>{0.5, 0.7}));
  EXPECT_EQ(c.test_metric_name, "test accuracy");
}

TEST(TrainingPlot, CurvePixelsSitWhereTheValuesSay) {
  TempDir tmp;
  const TrainingCurves c = read_training_curves(write(tmp, kMetrics));
  const TrainingPlot plot = render_training_plot(c, "run", 900, 420);
  const Rgb train = label_color(0), test = label_color(3);
  auto at = [&](float x, float y) { return plot.image.get(static_cast<int>(x), static_cast<int>(y)); };
  // Each value's dot: the series' colour exactly at its centre.
  EXPECT_EQ(at(plot.loss.px(3), plot.loss.py(1.0)), train);
  EXPECT_EQ(at(plot.loss.px(1), plot.loss.py(2.0)), train);
  EXPECT_EQ(at(plot.loss.px(2), plot.loss.py(1.6)), test);
  EXPECT_EQ(at(plot.accuracy.px(3), plot.accuracy.py(66)), train);
  EXPECT_EQ(at(plot.accuracy.px(4), plot.accuracy.py(70)), test);
  // And not where the values are not (the superseded epoch 3 record, loss 9.0, is off the axes).
  EXPECT_NE(at(plot.loss.px(3), plot.loss.py(2.0)), train);
  EXPECT_LT(plot.loss.y1, 9.0);
  EXPECT_NE(at(plot.accuracy.px(2), plot.accuracy.py(80)), test);
  // The panels sit side by side and do not overlap.
  EXPECT_LT(plot.loss.left + plot.loss.width, plot.accuracy.left);
}

// A test loss that climbs into the top-right corner and an accuracy pair that
// ends low on the right (as a short, overfitting run does): the legends go
// elsewhere, and every value's dot stays visible.
TEST(TrainingPlot, LegendsDoNotHideTheCurves) {
  TempDir tmp;
  const TrainingCurves c = read_training_curves(write(tmp,
      R"({"epoch": 1, "train_loss": 2.0, "train_accuracy": 0.39, "test_loss": 2.6, "test_accuracy": 0.26})" "\n"
      R"({"epoch": 2, "train_loss": 1.3, "train_accuracy": 0.67, "test_loss": 2.7, "test_accuracy": 0.265})" "\n"
      R"({"epoch": 3, "train_loss": 1.0, "train_accuracy": 0.73, "test_loss": 3.1, "test_accuracy": 0.27})" "\n"));
  const TrainingPlot plot = render_training_plot(c, "run", 1000, 450);
  const Rgb train = label_color(0), test = label_color(3);
  auto at = [&](float x, float y) { return plot.image.get(static_cast<int>(x), static_cast<int>(y)); };
  for (int e = 1; e <= 3; ++e) {
    EXPECT_EQ(at(plot.loss.px(e), plot.loss.py(c.train_loss[e - 1])), train) << "epoch " << e;
    EXPECT_EQ(at(plot.loss.px(e), plot.loss.py(c.test_loss[e - 1])), test) << "epoch " << e;
    EXPECT_EQ(at(plot.accuracy.px(e), plot.accuracy.py(100 * c.train_accuracy[e - 1])), train) << "epoch " << e;
    EXPECT_EQ(at(plot.accuracy.px(e), plot.accuracy.py(100 * c.test_metric[e - 1])), test) << "epoch " << e;
  }
  // Half-way along the last test-loss segment: line, not legend box.
  EXPECT_EQ(at(plot.loss.px(2.5), plot.loss.py((2.7 + 3.1) / 2)), test);
}

TEST(TrainingPlot, BadFilesAreErrorsNamingTheLine) {
  TempDir tmp;
  auto message = [&](const std::string& text) {
    try {
      read_training_curves(write(tmp, text));
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("{\"epoch\": 1, \"train_loss\": 1}\n{\"epoch\": 2, \"train_lo").find("line 2"),
            std::string::npos);
  EXPECT_NE(message("{\"epoch\": 1, \"train_loss\": \"high\"}\n").find("line 1: \"train_loss\""), std::string::npos);
  EXPECT_NE(message("{\"run\": 1}\n").find("no epoch records"), std::string::npos);
  EXPECT_NE(message("").find("no epoch records"), std::string::npos);
  EXPECT_THROW(read_training_curves((tmp / "missing.jsonl").string()), Error);
}

}  // namespace
}  // namespace pointnet::render
