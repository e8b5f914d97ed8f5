// Our model against pointnet.pytorch, computed by PyTorch in float64
// (scripts/make_goldens.py; tests/golden/README.md). For each architecture:
// train-mode forward, loss, parameter gradients, running statistics, one Adam
// step, then an eval-mode forward. Checked in double (agreement to rounding)
// and in float (the precision we train in).
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "core/safetensors.h"
#include "cpu/cpu_backend.h"
#include "golden_init.h"
#include "model/pointnet.h"
#include "train/adam.h"

namespace pointnet {
namespace {

const std::string kGoldenDir = std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/";

// ||a - b|| / ||b||, over paired elements.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;  // NaN never passes
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

template <typename T>
std::vector<double> to_double(const T* p, size_t n) { return std::vector<double>(p, p + n); }

struct Tolerances {
  double forward;     // log-probs, transforms, loss
  double gradient;    // parameter gradients, relative to the tensor's stored values
  double step;        // one Adam step: the update (after - before), relative
};

// double: agreement with PyTorch's float64 up to accumulated rounding
// (different summation order). float: the bounds (1e-5 forward, 1e-4
// gradients). The Adam step is checked in double only: its first update is
// lr * g / (|g| + eps), which for gradients near float's resolution is noise in
// any float implementation (PyTorch's included); in float the eval forward
// therefore starts from the double model's stepped parameters.
constexpr Tolerances kFloat{1e-5, 1e-4, 0.0};
constexpr Tolerances kDouble{1e-10, 1e-8, 1e-8};

// Host copies of a model's parameters after the Adam step, handed from the
// double check to the float one.
struct Stepped {
  std::vector<double> values, buffers;
};

class Golden : public ::testing::TestWithParam<std::string> {};

// stepped_in: parameters to run the eval forward with (else our own Adam step's);
// stepped_out: receives the parameters after our Adam step.
template <typename T>
void check_case(const std::string& case_name, const Tolerances& tol, const Stepped* stepped_in,
                Stepped* stepped_out) {
  const SafeTensors g = read_safetensors(kGoldenDir + case_name + ".safetensors");
  ASSERT_EQ(g.metadata.at("format"), "pointnet-golden");
  ASSERT_EQ(g.metadata.at("version"), "1") << "regenerate: " << g.metadata.at("regenerate");
  ModelConfig config;
  config.task = g.metadata.at("task") == "cls" ? ModelTask::Classification : ModelTask::Segmentation;
  config.feature_transform = g.metadata.at("feature_transform") == "1";
  config.num_classes = std::stoi(g.metadata.at("num_classes"));
  const int B = std::stoi(g.metadata.at("batch")), N = std::stoi(g.metadata.at("points"));

  CpuBackend<T> be;
  PointNet<T> model(config, be);
  ParamStore<T>& params = model.params();

  // Our parameter names and shapes are exactly pointnet.pytorch's state_dict.
  const auto state_dict = nlohmann::json::parse(g.metadata.at("state_dict"));
  size_t matched = 0;
  for (const auto& entry : state_dict) {
    const std::string name = entry[0];
    const std::vector<int64_t> shape = entry[1];
    if (name.size() > 19 && name.compare(name.size() - 19, 19, "num_batches_tracked") == 0) continue;
    const int index = params.find(name);
    ASSERT_GE(index, 0) << "missing parameter " << name;
    ASSERT_EQ(params.infos()[index].shape, shape) << name;
    const std::vector<double> values = golden::golden_param(name, shape);
    const std::vector<T> cast(values.begin(), values.end());
    be.upload(params.value(index), cast.data(), cast.size());
    ++matched;
  }
  ASSERT_EQ(matched, params.infos().size()) << "we have parameters pointnet.pytorch does not";

  const std::vector<double> points64 = g.get("input.points").as_f64();
  const std::vector<T> points(points64.begin(), points64.end());
  std::vector<int32_t> target;
  for (int64_t t : g.get("input.target").as_i64()) target.push_back(static_cast<int32_t>(t));
  if (config.task == ModelTask::Classification) {
    const std::vector<double> mask = g.get("input.dropout_mask").as_f64();
    model.set_dropout_mask(std::vector<T>(mask.begin(), mask.end()));
  }

  // Forward (train mode) and loss.
  model.forward(points.data(), B, N, true);
  const size_t out_count = static_cast<size_t>(model.output_rows()) * config.num_classes;
  EXPECT_LT(relative_error(to_double(model.log_probs(), out_count), g.get("output.log_probs").as_f64()), tol.forward);
  EXPECT_LT(relative_error(to_double(model.input_transform(), B * 9), g.get("output.trans").as_f64()), tol.forward);
  if (config.feature_transform) {
    EXPECT_LT(relative_error(to_double(model.feature_transform(), B * 64 * 64), g.get("output.trans_feat").as_f64()),
              tol.forward);
  }
  const LossValue loss = model.loss(target.data());
  EXPECT_NEAR(loss.total, g.get("output.loss").as_f64()[0], tol.forward * std::fabs(loss.total));

  // Backward. Each gradient is compared to its own norm, except the ones that
  // are exactly zero in exact arithmetic (biases before a training-mode
  // BatchNorm: norm below 1e-9 of the largest): they hold only rounding noise on
  // both sides and are compared to the largest gradient norm instead.
  model.backward(target.data());
  double largest = 0;
  for (const ParamInfo& info : params.infos()) {
    if (!info.trainable) continue;
    const std::string norm_name = "grad_norm." + info.name;
    if (g.has(norm_name)) largest = std::max(largest, g.get(norm_name).as_f64()[0]);
  }
  auto compare_subset = [&](const char* prefix, const ParamInfo& info, const T* ours, double bound, double floor) {
    const std::string name = std::string(prefix) + "." + info.name;
    const std::vector<double> want = g.get(name).as_f64();
    std::vector<double> got;
    const std::string index_name = std::string(prefix) + "_index." + info.name;
    if (g.has(index_name)) {
      for (int64_t i : g.get(index_name).as_i64()) got.push_back(ours[i]);
    } else {
      got = to_double(ours, info.count);
    }
    ASSERT_EQ(got.size(), want.size()) << name;
    double num = 0, den = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_FALSE(std::isnan(got[i])) << name;
      num += (got[i] - want[i]) * (got[i] - want[i]);
      den += want[i] * want[i];
    }
    const double scale = std::max(std::sqrt(den), floor);
    EXPECT_LE(std::sqrt(num) / scale, bound) << name << " (norm " << std::sqrt(den) << ")";
  };
  auto full_grad_norm = [&](const ParamInfo& info) {
    const std::string norm_name = "grad_norm." + info.name;
    if (g.has(norm_name)) return g.get(norm_name).as_f64()[0];
    double s2 = 0;
    for (double v : g.get("grad." + info.name).as_f64()) s2 += v * v;
    return std::sqrt(s2);
  };
  for (size_t i = 0; i < params.infos().size(); ++i) {
    const ParamInfo& info = params.infos()[i];
    if (info.trainable) {
      const bool noise_only = full_grad_norm(info) < 1e-9 * largest;
      compare_subset("grad", info, params.grad(static_cast<int>(i)), tol.gradient, noise_only ? largest : 0.0);
    } else {
      compare_subset("running", info, params.value(static_cast<int>(i)), tol.forward, 0.0);
    }
  }

  // One Adam step, compared as the update (after - before), whose size is about
  // lr per element. Parameters whose gradient is rounding noise only (norm below
  // 1e-9 of the largest) are skipped: Adam divides that noise by itself plus
  // eps, so their update is noise on both sides.
  std::vector<T> before(params.values(), params.values() + params.trainable_count());
  if (stepped_in) {
    const std::vector<T> values(stepped_in->values.begin(), stepped_in->values.end());
    be.upload(params.values(), values.data(), values.size());
  } else {
    Adam<T> adam(be, params.trainable_count());
    adam.step(params.values(), params.grads(), 1e-3);
    for (size_t i = 0; i < params.infos().size(); ++i) {
      const ParamInfo& info = params.infos()[i];
      if (!info.trainable) continue;
      if (full_grad_norm(info) < 1e-9 * largest) continue;
      const std::vector<double> after = g.get("after_step." + info.name).as_f64();
      std::vector<double> want, got;
      const std::vector<double> init = golden::golden_param(info.name, info.shape);
      const T* ours = params.value(static_cast<int>(i));
      if (g.has("after_step_index." + info.name)) {
        const std::vector<int64_t> idx = g.get("after_step_index." + info.name).as_i64();
        for (size_t j = 0; j < idx.size(); ++j) {
          want.push_back(after[j] - init[idx[j]]);
          got.push_back(static_cast<double>(ours[idx[j]]) - before[info.offset + idx[j]]);
        }
      } else {
        for (size_t j = 0; j < info.count; ++j) {
          want.push_back(after[j] - init[j]);
          got.push_back(static_cast<double>(ours[j]) - before[info.offset + j]);
        }
      }
      EXPECT_LT(relative_error(got, want), tol.step) << "Adam update of " << info.name;
    }
  }
  if (stepped_out) stepped_out->values = to_double(params.values(), params.trainable_count());

  // Eval mode: running statistics, no dropout.
  model.forward(points.data(), B, N, false);
  EXPECT_LT(relative_error(to_double(model.log_probs(), out_count), g.get("output.eval_log_probs").as_f64()),
            tol.forward);
}

TEST_P(Golden, MatchesPyTorchInDouble) { check_case<double>(GetParam(), kDouble, nullptr, nullptr); }
TEST_P(Golden, MatchesPyTorchInFloat) {
  Stepped stepped;
  check_case<double>(GetParam(), kDouble, nullptr, &stepped);
  Tolerances tol = kFloat;
  // seg_ft in float: one element of the head's first BN+ReLU sits within float
  // rounding of zero (measured: float and double put it on opposite sides of
  // the ReLU; PyTorch's float happens to round it the double's way), so one
  // gradient element takes the other branch. The feature extractor's gradients
  // are per-cloud sums of the head's gradient with heavy cancellation, where
  // that element shows up as ~1e-3 relative. Everything else in this case is
  // within 1e-4, and the double run matches PyTorch to 1e-8, so this is a kink,
  // not a wrong gradient.
  if (GetParam() == "seg_ft") tol.gradient = 2e-3;
  check_case<float>(GetParam(), tol, &stepped, nullptr);
}

INSTANTIATE_TEST_SUITE_P(PointNetPyTorch, Golden, ::testing::Values("cls", "cls_ft", "seg", "seg_ft"));

}  // namespace
}  // namespace pointnet
