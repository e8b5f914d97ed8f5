#include "render/training_plot.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/errors.h"
#include "render/bitmap_font.h"
#include "render/cloud_figure.h"
#include "render/palette.h"

namespace pointnet::render {

namespace {

// The value of `key` in `record`: NaN when absent; an error when present but not a number.
double number_field(const nlohmann::json& record, const char* key, const std::string& path, int line) {
  const auto it = record.find(key);
  if (it == record.end() || it->is_null()) return NAN;
  if (!it->is_number()) fail(path, ": line ", line, ": \"", key, "\" is ", it->dump(), ": expected a number");
  return it->get<double>();
}

}  // namespace

TrainingCurves read_training_curves(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot open (expected RUN_DIR/metrics.jsonl from `pointnet train`)");
  struct Row {
    double loss, acc, test_loss, test_acc, test_miou;
  };
  std::map<int, Row> rows;  // by epoch
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record = nlohmann::json::parse(text, nullptr, false);
    if (record.is_discarded() || !record.is_object())
      fail(path, ": line ", line, ": expected one JSON object per line, found '", text.substr(0, 60), "'");
    const double epoch = number_field(record, "epoch", path, line);
    const double loss = number_field(record, "train_loss", path, line);
    if (std::isnan(epoch) || std::isnan(loss)) continue;  // a header or another event
    rows[static_cast<int>(epoch)] = {loss, number_field(record, "train_accuracy", path, line),
                                     number_field(record, "test_loss", path, line),
                                     number_field(record, "test_accuracy", path, line),
                                     number_field(record, "test_instance_miou", path, line)};
  }
  if (rows.empty()) fail(path, ": no epoch records (expected lines with numeric \"epoch\" and \"train_loss\")");
  TrainingCurves c;
  for (const auto& [epoch, r] : rows) {
    c.epoch.push_back(epoch);
    c.train_loss.push_back(r.loss);
    c.train_accuracy.push_back(r.acc);
    const double metric = !std::isnan(r.test_acc) ? r.test_acc : r.test_miou;
    if (!std::isnan(metric) || !std::isnan(r.test_loss)) {
      c.test_epoch.push_back(epoch);
      c.test_loss.push_back(r.test_loss);
      c.test_metric.push_back(metric);
      if (c.test_metric_name.empty() && !std::isnan(metric))
        c.test_metric_name = !std::isnan(r.test_acc) ? "test accuracy" : "test mIoU (instance)";
    }
  }
  return c;
}

namespace {

// The finite (x, y) pairs, y times `factor`.
Series series(const std::string& name, const std::vector<double>& x, const std::vector<double>& y, double factor,
              Rgb color) {
  Series s{name, {}, {}, color};
  for (size_t i = 0; i < x.size(); ++i)
    if (std::isfinite(y[i])) {
      s.x.push_back(x[i]);
      s.y.push_back(y[i] * factor);
    }
  return s;
}

}  // namespace

TrainingPlot render_training_plot(const TrainingCurves& c, const std::string& title, int width, int height) {
  TrainingPlot plot{Image(width, height, kBackground), {}, {}};
  const int scale = font_scale_for(width, height);
  const int pad = 4 * scale;
  int top = 0;
  if (!title.empty()) {
    int title_scale = scale;
    const std::string fitted = fit_text(title, width - 2 * pad, &title_scale);
    draw_text(plot.image, (width - text_width(fitted, title_scale)) / 2, pad, fitted, kInk, title_scale);
    top = text_height(scale) + 2 * pad;
  }
  const Rgb train_color = label_color(0), test_color = label_color(3);
  ChartSpec loss{"loss", "epoch", "loss", {}, true};
  loss.series.push_back(series("train", c.epoch, c.train_loss, 1, train_color));
  Series test_loss = series("test", c.test_epoch, c.test_loss, 1, test_color);
  if (!test_loss.x.empty()) loss.series.push_back(test_loss);
  loss.y_floor = 0;

  ChartSpec acc{"accuracy", "epoch", "%", {}, true};
  Series train_acc = series("train accuracy", c.epoch, c.train_accuracy, 100, train_color);
  if (!train_acc.x.empty()) acc.series.push_back(train_acc);
  Series test_metric = series(c.test_metric_name, c.test_epoch, c.test_metric, 100, test_color);
  if (!test_metric.x.empty()) acc.series.push_back(test_metric);
  acc.y_floor = 0;
  acc.y_ceiling = 100;
  acc.legend_at_top = false;  // accuracy rises: the lower right is where the curves are not

  const bool side_by_side = width >= height;
  const int h = height - top;
  if (side_by_side) {
    plot.loss = draw_chart(plot.image, 0, top, width / 2, h, loss, scale);
    plot.accuracy = draw_chart(plot.image, width / 2, top, width - width / 2, h, acc, scale);
  } else {
    plot.loss = draw_chart(plot.image, 0, top, width, h / 2, loss, scale);
    plot.accuracy = draw_chart(plot.image, 0, top + h / 2, width, h - h / 2, acc, scale);
  }
  return plot;
}

}  // namespace pointnet::render
