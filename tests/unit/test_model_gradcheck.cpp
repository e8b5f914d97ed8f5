// The whole model's loss gradient against finite differences, in double, for
// the four architectures, and with normals as extra input channels. Every parameter tensor is probed at a few elements.
#include <gtest/gtest.h>

#include "cpu/cpu_backend.h"
#include "gradcheck.h"
#include "model/pointnet.h"

namespace pointnet {
namespace {

struct Case {
  ModelTask task;
  bool feature_transform;
  const char* name;
  int channels = 3;  // 6: xyz + normals
};

// Test names and logs show the case's name, not its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ModelGradcheck : public ::testing::TestWithParam<Case> {};

TEST_P(ModelGradcheck, LossGradientMatchesFiniteDifferences) {
  const Case c = GetParam();
  CpuBackend<double> be;
  ModelConfig config;
  config.task = c.task;
  config.num_classes = c.task == ModelTask::Classification ? 5 : 3;
  config.feature_transform = c.feature_transform;
  config.input_channels = c.channels;
  PointNet<double> model(config, be);
  Rng rng(11);
  model.initialize(rng);
  // Keep the T-Nets' transforms near the identity, as after a little training
  // (and as the PyTorch goldens do): at raw init the feature transform
  // amplifies so much that most probes cross a kink.
  for (const char* name : {"feat.stn.fc3.weight", "feat.fstn.fc3.weight"}) {
    const int index = model.params().find(name);
    if (index < 0) continue;
    double* w = model.params().value(index);
    for (size_t i = 0; i < model.params().infos()[index].count; ++i) w[i] *= 0.1;
  }

  const int B = 3, N = 12;
  std::vector<double> points = testing::random_vector(static_cast<size_t>(B) * N * c.channels, rng);
  const int rows = c.task == ModelTask::Classification ? B : B * N;
  std::vector<int32_t> target(rows);
  for (int32_t& t : target) t = static_cast<int32_t>(rng.below(config.num_classes));
  std::vector<double> mask(static_cast<size_t>(B) * 256);
  for (double& m : mask) m = rng.uniform() < 0.3 ? 0.0 : 1.0 / 0.7;
  // A channel dropped for every cloud sits exactly on the ReLU kink after
  // BatchNorm (all inputs 0 -> output beta = 0): keep one cloud per channel.
  for (int c = 0; c < 256; ++c) mask[c] = 1.0 / 0.7;
  model.set_dropout_mask(mask);

  auto loss = [&] {
    model.forward(points.data(), B, N, true);
    return model.loss(target.data()).total;
  };
  loss();
  model.backward(target.data());
  const size_t total = model.params().trainable_count();
  std::vector<double> grads(model.params().grads(), model.params().grads() + total);

  // Probe parameters through a host copy that we write back before each forward.
  std::vector<double> values(model.params().values(), model.params().values() + total);
  auto loss_at = [&] {
    be.upload(model.params().values(), values.data(), total);
    return loss();
  };
  int checked = 0, kinks = 0;
  for (const ParamInfo& info : model.params().infos()) {
    if (!info.trainable) continue;
    for (int probe = 0; probe < 2; ++probe) {
      const size_t i = info.offset + rng.below(static_cast<uint32_t>(info.count));
      // Central differences at two step sizes. Where they disagree, the step
      // crossed a ReLU or max-pool kink (the loss is only piecewise smooth), and
      // the probe says nothing about the gradient: it is counted and skipped.
      const double numeric = testing::numeric_derivative(values, i, loss_at, 1e-6);
      const double numeric_half = testing::numeric_derivative(values, i, loss_at, 5e-7);
      if (testing::gradient_mismatch(numeric, numeric_half, 1e-3) > 1e-5) {
        ++kinks;
        continue;
      }
      // Floor 1e-3 (an absolute error of 1e-7 for gradients near zero): biases
      // that feed a training-mode BatchNorm have an exact gradient of 0, and the
      // numeric one is rounding noise of ~1e-8.
      EXPECT_LT(testing::gradient_mismatch(grads[i], numeric, 1e-3), 1e-4)
          << info.name << " at " << (i - info.offset) << ": analytic " << grads[i] << " numeric " << numeric;
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
  EXPECT_LT(kinks, checked / 5) << "too many probes near a kink to trust the check";
}

INSTANTIATE_TEST_SUITE_P(AllArchitectures, ModelGradcheck,
                         ::testing::Values(Case{ModelTask::Classification, false, "cls"},
                                           Case{ModelTask::Classification, true, "cls_ft"},
                                           Case{ModelTask::Segmentation, false, "seg"},
                                           Case{ModelTask::Segmentation, true, "seg_ft"},
                                           Case{ModelTask::Classification, false, "cls_normals", 6}),
                         [](const ::testing::TestParamInfo<Case>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace pointnet
