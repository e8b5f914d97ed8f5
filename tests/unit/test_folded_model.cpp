// BatchNorm folding: the folded reference forward equals the training code's
// eval forward (CPU backend) for every architecture the engine accepts.
#include <gtest/gtest.h>

#include <cmath>

#include "../engine_fixtures.h"
#include "engine/folded_model.h"

namespace pointnet {
namespace {

using testing::engine_config;

struct FoldCase {
  ModelConfig config;
  int points;
};

class FoldedModelTest : public ::testing::TestWithParam<FoldCase> {};

TEST_P(FoldedModelTest, ReferenceForwardMatchesTheTrainingModel) {
  const FoldCase& c = GetParam();
  testing::TempDir dir;
  const Checkpoint ckpt = testing::make_random_checkpoint(c.config, 7, dir);
  const int B = 3;
  const std::vector<float> points = testing::random_clouds(B, c.points, c.config.input_channels, 11);
  const std::vector<float> expected = testing::model_log_probs(ckpt, points, B, c.points);
  const FoldedModel folded = fold_model(ckpt);
  const std::vector<float> got = folded_forward_reference(folded, points.data(), B, c.points);
  ASSERT_EQ(got.size(), expected.size());
  double worst = 0.0;
  for (size_t i = 0; i < got.size(); ++i)
    worst = std::max(worst, std::abs(static_cast<double>(got[i]) - expected[i]) / (1.0 + std::abs(expected[i])));
  // fp32 sums of up to 1088 terms in a different order: a few ulps of the
  // activations' magnitude, amplified through 8-11 layers.
  EXPECT_LT(worst, 2e-4) << "worst relative difference";
}

INSTANTIATE_TEST_SUITE_P(
    Architectures, FoldedModelTest,
    ::testing::Values(FoldCase{engine_config(ModelTask::Classification, 5, false), 64},
                      FoldCase{engine_config(ModelTask::Classification, 7, true), 50},
                      FoldCase{engine_config(ModelTask::Classification, 4, false, 6), 40},
                      FoldCase{engine_config(ModelTask::Segmentation, 6, false), 33},
                      FoldCase{engine_config(ModelTask::Segmentation, 4, true, 6), 48}));

TEST(FoldedModel, IdentityIsInTheTransformBias) {
  testing::TempDir dir;
  const Checkpoint ckpt = testing::make_random_checkpoint(engine_config(ModelTask::Classification, 3, true), 1, dir);
  const std::vector<float> raw = ckpt.file.get("feat.fstn.fc3.bias").as_f32();
  const FoldedModel m = fold_model(ckpt);
  ASSERT_EQ(m.fstn.fc3.bias.size(), 64u * 64u);
  EXPECT_FLOAT_EQ(m.fstn.fc3.bias[0], raw[0] + 1.0f);
  EXPECT_FLOAT_EQ(m.fstn.fc3.bias[1], raw[1]);
  EXPECT_FLOAT_EQ(m.fstn.fc3.bias[65], raw[65] + 1.0f);
}

}  // namespace
}  // namespace pointnet
