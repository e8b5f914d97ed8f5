#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "core/errors.h"

namespace pointnet {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMaxMatrixClasses = 12;  // beyond this a matrix no longer fits a terminal
constexpr int kTopConfusions = 10;

double ratio(int64_t num, int64_t den) { return den > 0 ? static_cast<double>(num) / den : kNaN; }

double mean_skipping_nan(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  return n > 0 ? sum / n : kNaN;
}

nlohmann::json number_or_null(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

std::string name_of(const std::vector<std::string>& names, size_t i, const char* prefix) {
  return i < names.size() ? names[i] : prefix + std::to_string(i);
}

std::string percent(double v, int decimals = 1) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f%%", decimals, 100.0 * v);
  return buf;
}

std::string abbreviate(const std::string& s, size_t width) { return s.size() <= width ? s : s.substr(0, width); }

std::string pad_left(const std::string& s, size_t width) {
  return s.size() >= width ? s : std::string(width - s.size(), ' ') + s;
}
std::string pad_right(const std::string& s, size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

// ---- classification ------------------------------------------------------------

ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           int num_classes) {
  if (num_classes <= 0) fail("classification_report: num_classes must be positive, got ", num_classes);
  if (truth.size() != predicted.size()) {
    fail("classification_report: ", truth.size(), " labels but ", predicted.size(), " predictions");
  }
  ClassificationReport r;
  r.num_classes = num_classes;
  r.confusion.assign(static_cast<size_t>(num_classes) * num_classes, 0);
  for (size_t i = 0; i < truth.size(); ++i) {
    int t = truth[i], p = predicted[i];
    if (t < 0 || t >= num_classes) fail("classification_report: sample ", i, ": label ", t, " outside [0, ", num_classes, ")");
    if (p < 0 || p >= num_classes) {
      fail("classification_report: sample ", i, ": prediction ", p, " outside [0, ", num_classes, ")");
    }
    ++r.confusion[static_cast<size_t>(t) * num_classes + p];
  }
  r.total = static_cast<int64_t>(truth.size());
  r.per_class_accuracy.resize(num_classes);
  for (int c = 0; c < num_classes; ++c) {
    int64_t row = 0;
    for (int p = 0; p < num_classes; ++p) row += r.confusion[static_cast<size_t>(c) * num_classes + p];
    int64_t hit = r.confusion[static_cast<size_t>(c) * num_classes + c];
    r.correct += hit;
    r.per_class_accuracy[c] = ratio(hit, row);
  }
  r.overall_accuracy = ratio(r.correct, r.total);
  r.mean_class_accuracy = mean_skipping_nan(r.per_class_accuracy);
  return r;
}

nlohmann::json to_json(const ClassificationReport& r, const std::vector<std::string>& class_names) {
  const int k = r.num_classes;
  nlohmann::json per_class = nlohmann::json::array();
  nlohmann::json matrix = nlohmann::json::array();
  for (int c = 0; c < k; ++c) {
    auto first = r.confusion.begin() + static_cast<ptrdiff_t>(c) * k;
    std::vector<int64_t> row(first, first + k);
    int64_t samples = 0;
    for (int64_t v : row) samples += v;
    per_class.push_back({{"name", name_of(class_names, c, "class_")},
                         {"samples", samples},
                         {"correct", row[c]},
                         {"accuracy", number_or_null(r.per_class_accuracy[c])}});
    matrix.push_back(row);
  }
  return {{"num_classes", k},
          {"total", r.total},
          {"correct", r.correct},
          {"overall_accuracy", number_or_null(r.overall_accuracy)},
          {"mean_class_accuracy", number_or_null(r.mean_class_accuracy)},
          {"per_class", per_class},
          {"confusion", matrix}};
}

std::string format_report(const ClassificationReport& r, const std::vector<std::string>& class_names) {
  const int k = r.num_classes;
  std::ostringstream out;
  out << "accuracy " << percent(r.overall_accuracy, 2) << " (" << r.correct << "/" << r.total << "), mean class accuracy "
      << percent(r.mean_class_accuracy, 2) << " over " << k << " classes\n";
  std::vector<std::string> names(k);
  size_t name_width = 5;
  for (int c = 0; c < k; ++c) {
    names[c] = name_of(class_names, c, "class_");
    name_width = std::max(name_width, std::min<size_t>(names[c].size(), 16));
  }
  auto count = [&](int t, int p) { return r.confusion[static_cast<size_t>(t) * k + p]; };
  auto samples = [&](int t) {
    int64_t s = 0;
    for (int p = 0; p < k; ++p) s += count(t, p);
    return s;
  };

  if (k <= kMaxMatrixClasses) {
    int64_t largest = 0;
    for (int64_t v : r.confusion) largest = std::max(largest, v);
    size_t cell = std::max<size_t>(5, std::to_string(largest).size()) + 1;
    out << "confusion matrix (rows: truth, columns: predicted)\n" << std::string(name_width, ' ');
    for (int p = 0; p < k; ++p) out << pad_left(abbreviate(names[p], cell - 1), cell);
    out << pad_left("acc", 9) << "\n";
    for (int t = 0; t < k; ++t) {
      out << pad_right(abbreviate(names[t], name_width), name_width);
      for (int p = 0; p < k; ++p) out << pad_left(std::to_string(count(t, p)), cell);
      out << pad_left(percent(r.per_class_accuracy[t]), 9) << "\n";
    }
    return out.str();
  }

  out << pad_right("class", name_width) << pad_left("samples", 9) << pad_left("accuracy", 10) << "\n";
  for (int t = 0; t < k; ++t) {
    out << pad_right(abbreviate(names[t], name_width), name_width) << pad_left(std::to_string(samples(t)), 9)
        << pad_left(percent(r.per_class_accuracy[t]), 10) << "\n";
  }
  struct Confusion {
    int64_t n;
    int t, p;
  };
  std::vector<Confusion> off_diagonal;
  for (int t = 0; t < k; ++t)
    for (int p = 0; p < k; ++p)
      if (t != p && count(t, p) > 0) off_diagonal.push_back({count(t, p), t, p});
  std::stable_sort(off_diagonal.begin(), off_diagonal.end(), [](const Confusion& a, const Confusion& b) { return a.n > b.n; });
  if (off_diagonal.size() > static_cast<size_t>(kTopConfusions)) off_diagonal.resize(kTopConfusions);
  out << "top confusions (truth -> predicted):" << (off_diagonal.empty() ? " none" : "") << "\n";
  for (const Confusion& c : off_diagonal) {
    out << "  " << names[c.t] << " -> " << names[c.p] << ": " << c.n << "\n";
  }
  return out.str();
}

// ---- segmentation --------------------------------------------------------------

SegmentationMetrics::SegmentationMetrics(std::vector<int> part_offset, std::vector<int> part_count)
    : part_offset_(std::move(part_offset)), part_count_(std::move(part_count)) {
  if (part_offset_.empty() || part_offset_.size() != part_count_.size()) {
    fail("SegmentationMetrics: ", part_offset_.size(), " part offsets for ", part_count_.size(),
         " part counts (need one of each per category)");
  }
  int most = 0;
  for (size_t c = 0; c < part_count_.size(); ++c) {
    if (part_offset_[c] < 0 || part_count_[c] <= 0) {
      fail("SegmentationMetrics: category ", c, ": offset ", part_offset_[c], ", count ", part_count_[c], " is invalid");
    }
    most = std::max(most, part_count_[c]);
  }
  category_iou_sum_.assign(part_count_.size(), 0.0);
  category_shapes_.assign(part_count_.size(), 0);
  inter_.resize(most);
  truth_count_.resize(most);
  pred_count_.resize(most);
}

void SegmentationMetrics::add_shape(int category, const int32_t* truth, const int32_t* predicted, int num_points) {
  if (category < 0 || category >= num_categories()) {
    fail("SegmentationMetrics: category ", category, " outside [0, ", num_categories(), ")");
  }
  if (num_points < 0) fail("SegmentationMetrics: negative point count ", num_points);
  const int first = part_offset_[category], parts = part_count_[category];
  std::fill(inter_.begin(), inter_.begin() + parts, 0);
  std::fill(truth_count_.begin(), truth_count_.begin() + parts, 0);
  std::fill(pred_count_.begin(), pred_count_.begin() + parts, 0);
  int64_t correct = 0;
  for (int i = 0; i < num_points; ++i) {
    // Local part indices (int64 so a label near INT32_MIN cannot overflow).
    int64_t t = static_cast<int64_t>(truth[i]) - first, p = static_cast<int64_t>(predicted[i]) - first;
    if (t < 0 || t >= parts) {
      fail("SegmentationMetrics: point ", i, ": label ", truth[i], " is not a part of category ", category, " (parts ",
           first, "..", first + parts - 1, ")");
    }
    ++truth_count_[t];
    if (p >= 0 && p < parts) ++pred_count_[p];
    if (t == p) {
      ++inter_[t];
      ++correct;
    }
  }
  double sum = 0;
  for (int l = 0; l < parts; ++l) {
    int64_t uni = truth_count_[l] + pred_count_[l] - inter_[l];
    sum += uni == 0 ? 1.0 : static_cast<double>(inter_[l]) / uni;  // absent from both: perfect
  }
  double shape_miou = sum / parts;
  iou_sum_ += shape_miou;
  category_iou_sum_[category] += shape_miou;
  ++category_shapes_[category];
  ++shapes_;
  points_ += num_points;
  correct_points_ += correct;
}

SegmentationReport SegmentationMetrics::report() const {
  SegmentationReport r;
  r.category_shapes = category_shapes_;
  r.category_miou.resize(category_shapes_.size());
  for (size_t c = 0; c < category_shapes_.size(); ++c) {
    r.category_miou[c] = category_shapes_[c] > 0 ? category_iou_sum_[c] / category_shapes_[c] : kNaN;
  }
  r.instance_miou = shapes_ > 0 ? iou_sum_ / shapes_ : kNaN;
  r.class_miou = mean_skipping_nan(r.category_miou);
  r.point_accuracy = ratio(correct_points_, points_);
  return r;
}

nlohmann::json to_json(const SegmentationReport& r, const std::vector<std::string>& category_names) {
  nlohmann::json categories = nlohmann::json::array();
  int64_t shapes = 0;
  for (size_t c = 0; c < r.category_miou.size(); ++c) {
    int64_t n = c < r.category_shapes.size() ? r.category_shapes[c] : 0;
    shapes += n;
    categories.push_back(
        {{"name", name_of(category_names, c, "category_")}, {"shapes", n}, {"miou", number_or_null(r.category_miou[c])}});
  }
  return {{"instance_miou", number_or_null(r.instance_miou)},
          {"class_miou", number_or_null(r.class_miou)},
          {"point_accuracy", number_or_null(r.point_accuracy)},
          {"shapes", shapes},
          {"categories", categories}};
}

std::string format_report(const SegmentationReport& r, const std::vector<std::string>& category_names) {
  int64_t shapes = 0;
  size_t name_width = 8;
  for (size_t c = 0; c < r.category_miou.size(); ++c) {
    shapes += c < r.category_shapes.size() ? r.category_shapes[c] : 0;
    name_width = std::max(name_width, std::min<size_t>(name_of(category_names, c, "category_").size(), 20));
  }
  std::ostringstream out;
  out << "instance mIoU " << percent(r.instance_miou, 2) << ", class mIoU " << percent(r.class_miou, 2)
      << ", point accuracy " << percent(r.point_accuracy, 2) << " over " << shapes << " shapes\n";
  if (r.category_miou.size() > 1) {
    out << pad_right("category", name_width) << pad_left("shapes", 8) << pad_left("mIoU", 8) << "\n";
    for (size_t c = 0; c < r.category_miou.size(); ++c) {
      int64_t n = c < r.category_shapes.size() ? r.category_shapes[c] : 0;
      out << pad_right(abbreviate(name_of(category_names, c, "category_"), name_width), name_width)
          << pad_left(std::to_string(n), 8) << pad_left(percent(r.category_miou[c]), 8) << "\n";
    }
  }
  return out.str();
}

}  // namespace pointnet
