// Classification and segmentation metrics against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "core/errors.h"
#include "eval/metrics.h"

using namespace pointnet;

// truth   0 0 0 1 1 2     class 3 has no samples
// pred    0 1 0 1 1 0
// confusion rows (truth): [2 1 0 0] [0 2 0 0] [1 0 0 0] [0 0 0 0]
TEST(MetricsClassification, HandComputedConfusionAndAccuracies) {
  ClassificationReport r = classification_report({0, 0, 0, 1, 1, 2}, {0, 1, 0, 1, 1, 0}, 4);
  EXPECT_EQ(r.num_classes, 4);
  EXPECT_EQ(r.total, 6);
  EXPECT_EQ(r.correct, 4);
  EXPECT_EQ(r.confusion, (std::vector<int64_t>{2, 1, 0, 0, 0, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_DOUBLE_EQ(r.overall_accuracy, 4.0 / 6.0);
  ASSERT_EQ(r.per_class_accuracy.size(), 4u);
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[0], 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[1], 1.0);
  EXPECT_DOUBLE_EQ(r.per_class_accuracy[2], 0.0);
  EXPECT_TRUE(std::isnan(r.per_class_accuracy[3]));
  EXPECT_DOUBLE_EQ(r.mean_class_accuracy, (2.0 / 3.0 + 1.0 + 0.0) / 3.0);  // class 3 excluded
}

TEST(MetricsClassification, RejectsBadInput) {
  EXPECT_THROW(classification_report({0, 1}, {0}, 2), Error);
  EXPECT_THROW(classification_report({0, 2}, {0, 1}, 2), Error);
  EXPECT_THROW(classification_report({0, 1}, {0, -1}, 2), Error);
  EXPECT_THROW(classification_report({}, {}, 0), Error);
}

TEST(MetricsClassification, EmptyInputIsNaNNotACrash) {
  ClassificationReport r = classification_report({}, {}, 3);
  EXPECT_EQ(r.total, 0);
  EXPECT_TRUE(std::isnan(r.overall_accuracy));
  EXPECT_TRUE(std::isnan(r.mean_class_accuracy));
  EXPECT_TRUE(to_json(r, {})["overall_accuracy"].is_null());
  EXPECT_FALSE(format_report(r, {}).empty());
}

TEST(MetricsClassification, JsonAndText) {
  ClassificationReport r = classification_report({0, 0, 0, 1, 1, 2}, {0, 1, 0, 1, 1, 0}, 4);
  nlohmann::json j = to_json(r, {"airplane", "bathtub", "bed"});  // one name short
  EXPECT_EQ(j["total"], 6);
  EXPECT_EQ(j["per_class"][0]["name"], "airplane");
  EXPECT_EQ(j["per_class"][3]["name"], "class_3");
  EXPECT_EQ(j["per_class"][0]["samples"], 3);
  EXPECT_TRUE(j["per_class"][3]["accuracy"].is_null());
  EXPECT_EQ(j["confusion"][0], nlohmann::json({2, 1, 0, 0}));

  std::string text = format_report(r, {"airplane", "bathtub", "bed", "bench"});
  EXPECT_NE(text.find("accuracy 66.67% (4/6)"), std::string::npos) << text;
  EXPECT_NE(text.find("confusion matrix"), std::string::npos) << text;
  EXPECT_NE(text.find("airpl"), std::string::npos) << text;
}

TEST(MetricsClassification, ManyClassesPrintTopConfusions) {
  const int k = 13;
  std::vector<int> truth, pred;
  for (int c = 0; c < k; ++c) {
    truth.push_back(c);
    pred.push_back(c);
  }
  for (int i = 0; i < 3; ++i) {
    truth.push_back(4);
    pred.push_back(7);
  }
  std::vector<std::string> names;
  for (int c = 0; c < k; ++c) names.push_back("shape" + std::to_string(c));
  std::string text = format_report(classification_report(truth, pred, k), names);
  EXPECT_EQ(text.find("confusion matrix"), std::string::npos) << text;
  EXPECT_NE(text.find("top confusions"), std::string::npos) << text;
  EXPECT_NE(text.find("shape4 -> shape7: 3"), std::string::npos) << text;
}

// One category, parts 0..2.  truth 0 0 1 1, pred 0 1 1 1:
// part 0: I 1, U 2 -> 1/2; part 1: I 2, U 3 -> 2/3; part 2 absent everywhere -> 1.
TEST(MetricsSegmentation, IoUWithAbsentPartCountingOne) {
  SegmentationMetrics m({0}, {3});
  std::vector<int32_t> truth = {0, 0, 1, 1}, pred = {0, 1, 1, 1};
  m.add_shape(0, truth.data(), pred.data(), 4);
  SegmentationReport r = m.report();
  double expected = (0.5 + 2.0 / 3.0 + 1.0) / 3.0;
  EXPECT_DOUBLE_EQ(r.instance_miou, expected);
  EXPECT_DOUBLE_EQ(r.class_miou, expected);
  EXPECT_DOUBLE_EQ(r.point_accuracy, 0.75);
  EXPECT_EQ(r.category_shapes, std::vector<int64_t>{1});
}

// Category 0 owns parts 0,1 (two shapes: mIoU 1 and 0); category 1 owns parts 2,3
// (one shape: mIoU 1). Instance mIoU = 2/3, class mIoU = (0.5 + 1) / 2 = 0.75.
TEST(MetricsSegmentation, ClassAndInstanceMiouDiffer) {
  SegmentationMetrics m({0, 2, 4}, {2, 2, 1});  // category 2 never seen
  std::vector<int32_t> a_t = {0, 1}, a_p = {0, 1};
  std::vector<int32_t> b_t = {0, 0}, b_p = {1, 1};
  std::vector<int32_t> c_t = {2, 3}, c_p = {2, 3};
  m.add_shape(0, a_t.data(), a_p.data(), 2);
  m.add_shape(0, b_t.data(), b_p.data(), 2);
  m.add_shape(1, c_t.data(), c_p.data(), 2);
  SegmentationReport r = m.report();
  EXPECT_DOUBLE_EQ(r.instance_miou, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(r.class_miou, 0.75);
  EXPECT_DOUBLE_EQ(r.category_miou[0], 0.5);
  EXPECT_DOUBLE_EQ(r.category_miou[1], 1.0);
  EXPECT_TRUE(std::isnan(r.category_miou[2]));
  EXPECT_EQ(r.category_shapes, (std::vector<int64_t>{2, 1, 0}));
  EXPECT_DOUBLE_EQ(r.point_accuracy, 4.0 / 6.0);

  nlohmann::json j = to_json(r, {"Airplane", "Bag", "Cap"});
  EXPECT_EQ(j["shapes"], 3);
  EXPECT_EQ(j["categories"][1]["name"], "Bag");
  EXPECT_TRUE(j["categories"][2]["miou"].is_null());
  std::string text = format_report(r, {"Airplane", "Bag", "Cap"});
  EXPECT_NE(text.find("instance mIoU 66.67%, class mIoU 75.00%"), std::string::npos) << text;
  EXPECT_NE(text.find("Airplane"), std::string::npos) << text;
}

// Predictions outside the category's parts are wrong but harmless; truth outside is a data error.
TEST(MetricsSegmentation, LabelsOutsideCategory) {
  SegmentationMetrics m({0, 2}, {2, 2});
  std::vector<int32_t> t = {2, 2}, p = {0, 2};
  m.add_shape(1, t.data(), p.data(), 2);  // part 2: I 1, U 2; part 3: absent -> 1
  EXPECT_DOUBLE_EQ(m.report().instance_miou, 0.75);
  std::vector<int32_t> bad = {0, 2};
  EXPECT_THROW(m.add_shape(1, bad.data(), p.data(), 2), Error);
  EXPECT_THROW(m.add_shape(2, t.data(), p.data(), 2), Error);
  EXPECT_THROW(SegmentationMetrics({0}, {0}), Error);
  EXPECT_THROW(SegmentationMetrics({0, 1}, {2}), Error);
}

TEST(MetricsSegmentation, NoShapesIsNaN) {
  SegmentationReport r = SegmentationMetrics({0}, {4}).report();
  EXPECT_TRUE(std::isnan(r.instance_miou));
  EXPECT_TRUE(std::isnan(r.class_miou));
  EXPECT_TRUE(std::isnan(r.point_accuracy));
}
