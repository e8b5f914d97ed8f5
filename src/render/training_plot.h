// Training curves from a run's metrics.jsonl (src/train/metrics_log.h): loss
// and accuracy per epoch, two chart panels in one image.
#pragma once
#include <string>
#include <vector>

#include "render/chart.h"
#include "render/image.h"

namespace pointnet::render {

// Per-epoch values; a record without a field leaves that series without the epoch.
struct TrainingCurves {
  std::vector<double> epoch, train_loss, train_accuracy;  // every epoch record
  std::vector<double> test_epoch, test_loss, test_metric;  // evaluated epochs
  std::string test_metric_name;  // "test accuracy" (cls) or "test mIoU (instance)" (seg)
};

// Reads metrics.jsonl: lines that are JSON objects with a numeric "epoch" and
// "train_loss" are epoch records (a later record of the same epoch replaces an
// earlier one, as after --resume). Throws pointnet::Error naming the file and
// line for a line that is not a JSON object or has a non-numeric field, and
// when no epoch record is found.
TrainingCurves read_training_curves(const std::string& path);

struct TrainingPlot {
  Image image;
  PlotArea loss, accuracy;  // where each panel's data went
};

// Two panels (loss; accuracy in percent), side by side when the image is wider than tall.
TrainingPlot render_training_plot(const TrainingCurves& curves, const std::string& title, int width, int height);

}  // namespace pointnet::render
