// pointnet.pytorch .pth files (scripts/make_pth_goldens.py) read without
// Python: the imported model's eval forward on fixed clouds against PyTorch's
// (float32 to 1e-5, and the same weights in float64 to 1e-9), the legacy
// format against the zip one, and every storage type and a few strided views.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "core/safetensors.h"
#include "cpu/cpu_backend.h"
#include "io/torch_file.h"
#include "model/pth_import.h"

namespace pointnet {
namespace {

const std::string kPthDir = std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/";

// Our eval forward in T with the checkpoint's weights (converted from its float32).
template <typename T>
std::vector<double> eval_log_probs(const Checkpoint& ck, const std::vector<float>& points, int B, int N) {
  CpuBackend<T> be;
  PointNet<T> model(ck.info.config, be);
  ParamStore<T>& store = model.params();
  for (size_t i = 0; i < store.infos().size(); ++i) {
    const ParamInfo& p = store.infos()[i];
    const std::vector<double> v = ck.file.get(p.name).as_f64();
    const std::vector<T> cast(v.begin(), v.end());
    be.upload(store.value(static_cast<int>(i)), cast.data(), cast.size());
  }
  const std::vector<T> input(points.begin(), points.end());
  model.forward(input.data(), B, N, false);
  const T* lp = model.log_probs();
  return std::vector<double>(lp, lp + static_cast<size_t>(model.output_rows()) * ck.info.config.num_classes);
}

// ||a - b|| / ||b||, as tests/golden/test_golden.cpp compares forwards.
double relative_error(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (std::isnan(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return std::sqrt(num) / std::max(std::sqrt(den), 1e-300);
}

struct PthCase {
  const char* file;      // .pth
  const char* expected;  // .expected.safetensors
  ModelTask task;
  bool feature_transform;
  int k;
};

// Test names and logs show the file, not the struct's bytes (pointers).
void PrintTo(const PthCase& c, std::ostream* os) { *os << c.file; }

class PthGolden : public ::testing::TestWithParam<PthCase> {};

TEST_P(PthGolden, ImportedModelMatchesPyTorch) {
  const PthCase& c = GetParam();
  const Checkpoint ck = import_pth(kPthDir + c.file);
  EXPECT_EQ(ck.info.config.task, c.task);
  EXPECT_EQ(ck.info.config.feature_transform, c.feature_transform);
  EXPECT_EQ(ck.info.config.num_classes, c.k);
  const SafeTensors want = read_safetensors(kPthDir + c.expected);
  const auto meta = [&](const char* key) { return want.metadata.count(key) ? want.metadata.at(key) : "(none)"; };
  ASSERT_TRUE(meta("format") == "pointnet-pth-golden" && meta("version") == "1")
      << c.expected << ": format '" << meta("format") << "' version " << meta("version")
      << ", expected pointnet-pth-golden version 1; regenerate with "
         "/work/venv-peers/bin/python scripts/make_pth_goldens.py --out tests/golden/data/pth";
  const TensorData& pts = want.get("input.points");
  ASSERT_EQ(pts.shape.size(), 3u);
  const int B = static_cast<int>(pts.shape[0]), N = static_cast<int>(pts.shape[1]);
  const std::vector<float> points = pts.as_f32();

  const std::vector<double> ours32 = eval_log_probs<float>(ck, points, B, N);
  const double err32 = relative_error(ours32, want.get("log_probs_f32").as_f64());
  EXPECT_LE(err32, 1e-5) << "float forward vs PyTorch float32";
  const double err64 = relative_error(eval_log_probs<double>(ck, points, B, N), want.get("log_probs_f64").as_f64());
  EXPECT_LE(err64, 1e-9) << "double forward vs PyTorch float64";
  std::printf("%s: relative error float %.2e, double %.2e; float vs float64 %.2e\n", c.file, err32, err64,
              relative_error(ours32, want.get("log_probs_f64").as_f64()));
  // The file's BatchNorm batch count comes through (the script ran 3 batches).
  EXPECT_EQ(ck.file.get("feat.bn1.num_batches_tracked").as_i64().at(0), 3);
}

INSTANTIATE_TEST_SUITE_P(
    PointNetPyTorch, PthGolden,
    ::testing::Values(PthCase{"cls.pth", "cls.expected.safetensors", ModelTask::Classification, false, 5},
                      PthCase{"cls_ft.pth", "cls_ft.expected.safetensors", ModelTask::Classification, true, 5},
                      PthCase{"seg.pth", "seg.expected.safetensors", ModelTask::Segmentation, false, 4},
                      PthCase{"seg_ft.pth", "seg_ft.expected.safetensors", ModelTask::Segmentation, true, 4},
                      PthCase{"cls_legacy.pth", "cls.expected.safetensors", ModelTask::Classification, false, 5}),
    [](const ::testing::TestParamInfo<PthCase>& info) {
      std::string name = info.param.file;
      name = name.substr(0, name.find('.'));
      return name;
    });

TEST(PthGoldenFormats, LegacyAndZipGiveTheSameTensors) {
  const Checkpoint zip = import_pth(kPthDir + "cls.pth");
  const Checkpoint legacy = import_pth(kPthDir + "cls_legacy.pth");
  ASSERT_EQ(zip.file.tensors.size(), legacy.file.tensors.size());
  for (const auto& [name, t] : zip.file.tensors) {
    ASSERT_TRUE(legacy.file.has(name)) << name;
    EXPECT_EQ(legacy.file.get(name).shape, t.shape) << name;
    EXPECT_EQ(legacy.file.get(name).bytes, t.bytes) << name;
  }
}

// dtypes.pth: element (i, j) of each 3x4 tensor is (i * 4 + j) * 0.5 - 1 (exact
// in every type); "_t" ones are saved transposed, so element (j, i) of a 4x3.
TEST(PthGoldenFormats, EveryStorageTypeAndStridedViews) {
  const TorchFile file = read_torch_file(kPthDir + "dtypes.pth");
  ASSERT_EQ(file.root->kind, PickleValue::Kind::Dict);
  int checked = 0;
  for (const auto& [key, value] : file.root->dict) {
    const std::string name = key->text;
    ASSERT_EQ(value->kind, PickleValue::Kind::Tensor) << name;
    const TensorData t = materialize(file, value->tensor, name);
    if (name == "scalar_i64") {
      EXPECT_TRUE(t.shape.empty());
      EXPECT_EQ(t.as_i64(), std::vector<int64_t>{7});
      ++checked;
      continue;
    }
    const bool transposed = name.size() > 2 && name.compare(name.size() - 2, 2, "_t") == 0;
    const bool integer = name[0] == 'i';
    EXPECT_EQ(t.dtype, integer ? "I64" : "F32") << name;
    EXPECT_EQ(t.shape, (transposed ? std::vector<int64_t>{4, 3} : std::vector<int64_t>{3, 4})) << name;
    const std::vector<double> got = integer ? [&] {
      std::vector<double> d;
      for (int64_t v : t.as_i64()) d.push_back(static_cast<double>(v));
      return d;
    }() : t.as_f64();
    ASSERT_EQ(got.size(), 12u) << name;
    for (int r = 0; r < (transposed ? 4 : 3); ++r)
      for (int c = 0; c < (transposed ? 3 : 4); ++c) {
        const int i = transposed ? c : r, j = transposed ? r : c;  // index in the 3x4 grid
        const double want = integer ? (i * 4 + j) - 3 : (i * 4 + j) * 0.5 - 1;
        EXPECT_EQ(got[r * (transposed ? 3 : 4) + c], want) << name << " (" << r << ", " << c << ")";
      }
    ++checked;
  }
  EXPECT_EQ(checked, 12);
}

}  // namespace
}  // namespace pointnet
