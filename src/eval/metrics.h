// Evaluation metrics: classification accuracy and confusion matrix, part
// segmentation IoU exactly as pointnet.pytorch's train_segmentation.py.
//
// Undefined values are NaN (written as null in JSON): the per-class accuracy of a
// class with no samples, a category mIoU with no shapes, any metric over zero
// samples. Means skip them: mean_class_accuracy averages only classes that have
// samples, class_miou only categories that have shapes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pointnet {

struct ClassificationReport {
  int num_classes = 0;
  int64_t total = 0, correct = 0;
  double overall_accuracy = 0;             // correct / total
  double mean_class_accuracy = 0;          // mean of per_class_accuracy over classes with samples
  std::vector<int64_t> confusion;          // (num_classes, num_classes): [true * num_classes + predicted]
  std::vector<double> per_class_accuracy;  // (num_classes), NaN for a class with no samples
};

// Throws pointnet::Error on size mismatch or a label outside [0, num_classes).
ClassificationReport classification_report(const std::vector<int>& truth, const std::vector<int>& predicted,
                                           int num_classes);

struct SegmentationReport {
  double instance_miou = 0;               // mean over shapes of the shape mIoU
  double class_miou = 0;                  // mean over categories (with shapes) of category_miou
  std::vector<double> category_miou;      // (categories) mean shape mIoU, NaN without shapes
  std::vector<int64_t> category_shapes;   // (categories) shapes seen
  double point_accuracy = 0;              // correct points / points
};

// Accumulates shapes one at a time. Category c owns the global part labels
// part_offset[c] .. part_offset[c] + part_count[c] - 1; one model per category is
// part_offset {0}, part_count {k}.
class SegmentationMetrics {
 public:
  SegmentationMetrics(std::vector<int> part_offset, std::vector<int> part_count);

  // Shape mIoU = mean over the category's parts l of I/U, with
  // I = |pred == l and truth == l|, U = |pred == l or truth == l|, and 1 when U == 0
  // (a part absent from both counts as perfect). A prediction outside the category's
  // parts is simply wrong; a truth label outside them throws pointnet::Error.
  void add_shape(int category, const int32_t* truth, const int32_t* predicted, int num_points);

  SegmentationReport report() const;
  int num_categories() const { return static_cast<int>(part_count_.size()); }

 private:
  std::vector<int> part_offset_, part_count_;
  std::vector<double> category_iou_sum_;    // (categories) sum of shape mIoUs
  std::vector<int64_t> category_shapes_;    // (categories)
  double iou_sum_ = 0;
  int64_t shapes_ = 0, points_ = 0, correct_points_ = 0;
  std::vector<int64_t> inter_, truth_count_, pred_count_;  // (max part_count) scratch
};

// JSON for logs and --json output. Names may be fewer than classes (missing ones
// become "class_<i>"); NaN becomes null.
nlohmann::json to_json(const ClassificationReport& report, const std::vector<std::string>& class_names);
nlohmann::json to_json(const SegmentationReport& report, const std::vector<std::string>& category_names);

// Human-readable summaries. Up to 12 classes: the full confusion matrix with
// abbreviated names; more: a per-class accuracy table and the top confusions.
std::string format_report(const ClassificationReport& report, const std::vector<std::string>& class_names);
std::string format_report(const SegmentationReport& report, const std::vector<std::string>& category_names);

}  // namespace pointnet
