// State_dict import (model/pth_import.h): the golden cls.pth, edited in memory
// into what users actually hand us: missing, extra and misshapen keys, wrapped
// or DataParallel checkpoints, non-state_dicts, broken tensor views.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/atomic_file.h"
#include "expect_error.h"
#include "model/pth_import.h"

namespace pointnet {
namespace {

using Kind = PickleValue::Kind;
using testing::expect_error_containing;

const std::string kPthDir = std::string(POINTNET_SOURCE_DIR) + "/tests/golden/data/pth/";

TorchFile golden(const std::string& name) { return read_torch_file(kPthDir + name); }

PickleValue& entry(TorchFile& f, const std::string& key) {
  for (auto& [k, v] : f.root->dict)
    if (k->text == key) return *v;
  throw std::runtime_error("no key " + key);
}

void erase(TorchFile& f, const std::string& key) {
  auto& d = f.root->dict;
  for (auto it = d.begin(); it != d.end(); ++it)
    if (it->first->text == key) {
      d.erase(it);
      return;
    }
  FAIL() << "no key " << key;
}

PickleRef str(const std::string& s) {
  auto v = std::make_shared<PickleValue>();
  v->kind = Kind::String;
  v->text = s;
  return v;
}

TEST(PthImport, ReadsTheGoldenClassifier) {
  const Checkpoint ck = import_pth(golden("cls.pth"));
  EXPECT_EQ(ck.info.config.task, ModelTask::Classification);
  EXPECT_EQ(ck.info.config.num_classes, 5);
  EXPECT_FALSE(ck.info.config.feature_transform);
  EXPECT_EQ(ck.info.class_names, placeholder_class_names(5));
  EXPECT_EQ(ck.file.get("fc3.weight").shape, (std::vector<int64_t>{5, 256}));
  EXPECT_EQ(ck.file.get("feat.conv1.weight").shape, (std::vector<int64_t>{64, 3, 1}));
}

TEST(PthImport, MissingKeyIsNamed) {
  TorchFile f = golden("cls.pth");
  erase(f, "feat.conv1.bias");
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "PointNetCls(k=5)", "missing 1: feat.conv1.bias"});
}

TEST(PthImport, ManyMissingKeysShowTheFirstFew) {
  TorchFile f = golden("cls.pth");
  auto& d = f.root->dict;
  size_t before = d.size();
  d.erase(std::remove_if(d.begin(), d.end(), [](const auto& kv) { return kv.first->text.rfind("feat.stn.", 0) == 0; }),
          d.end());
  const size_t gone = before - d.size();  // num_batches_tracked is optional, so not all are reported
  ASSERT_GT(gone, 20u);
  expect_error_containing([&] { import_pth(f); }, {"missing ", "feat.stn.conv1.weight", " more"});
}

TEST(PthImport, ExtraKeyIsNamed) {
  TorchFile f = golden("cls.pth");
  f.root->dict.emplace_back(str("feat.conv9.weight"), f.root->dict[0].second);
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "unexpected 1: feat.conv9.weight"});
}

TEST(PthImport, WrongShapeIsNamed) {
  TorchFile f = golden("cls.pth");
  entry(f, "feat.conv1.bias").tensor.sizes = {32};
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "wrong shape or type 1: feat.conv1.bias (32,), expected float (64,)"});
}

TEST(PthImport, IntegerWeightIsNamedAsATypeError) {
  TorchFile f = golden("cls.pth");
  entry(f, "fc3.bias").tensor.storage.type = "LongStorage";
  expect_error_containing([&] { import_pth(f); }, {"wrong shape or type 1: fc3.bias integer (5,), expected float (5,)"});
}

TEST(PthImport, OtherModelsAndNonStateDictsAreRefused) {
  expect_error_containing([&] { import_pth(golden("dtypes.pth")); },
                          {"dtypes.pth", "neither fc3.weight nor conv4.weight", "bf16"});
  TorchFile f = golden("cls.pth");
  auto epoch = std::make_shared<PickleValue>();
  epoch->kind = Kind::Int;
  f.root->dict.emplace_back(str("epoch"), epoch);
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "not a state_dict", "epoch (int)"});
  TorchFile list = golden("cls.pth");
  list.root = std::make_shared<PickleValue>();
  list.root->kind = Kind::List;
  expect_error_containing([&] { import_pth(list); }, {"cls.pth", "holds a list, not a state_dict"});
}

TEST(PthImport, WrappedCheckpointAndDataParallelPrefix) {
  const Checkpoint plain = import_pth(golden("cls.pth"));
  for (const char* wrapper : {"model_state_dict", "state_dict", "model"}) {
    TorchFile f = golden("cls.pth");
    for (auto& [k, v] : f.root->dict) k = str("module." + k->text);
    auto outer = std::make_shared<PickleValue>();
    outer->kind = Kind::Dict;
    outer->dict.emplace_back(str(wrapper), f.root);
    f.root = outer;
    const Checkpoint ck = import_pth(f);
    ASSERT_EQ(ck.file.tensors.size(), plain.file.tensors.size()) << wrapper;
    for (const auto& [name, t] : plain.file.tensors) EXPECT_EQ(ck.file.get(name).bytes, t.bytes) << name;
  }
}

TEST(PthImport, ClassNames) {
  const std::vector<std::string> names = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(import_pth(golden("cls.pth"), names).info.class_names, names);
  expect_error_containing([&] { import_pth(golden("cls.pth"), {"a", "b", "c"}); },
                          {"3 class names given for a classifier with 5 classes"});
  const Checkpoint seg = import_pth(golden("seg.pth"), {"Chair"});
  EXPECT_EQ(seg.info.class_choice, "Chair");
  EXPECT_EQ(seg.info.part_count, std::vector<int>{4});
  expect_error_containing([&] { import_pth(golden("seg.pth"), {"Chair", "Lamp"}); }, {"one category", "2 category"});
  expect_error_containing([&] { import_pth(golden("cls.pth"), {"a", "b", "a", "d", "e"}); }, {"class name 3 ('a')"});
  expect_error_containing([&] { import_pth(golden("cls.pth"), {"a", "", "c", "d", "e"}); }, {"class name 2 ('')"});
}

TEST(PthImport, BrokenTensorViewsAreRefused) {
  TorchFile f = golden("cls.pth");
  entry(f, "fc1.weight").tensor.offset = 1 << 20;
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "tensor 'fc1.weight'", "reach element"});
  TorchFile g = golden("cls.pth");
  entry(g, "fc1.bias").tensor.storage.key = "nope";
  expect_error_containing([&] { import_pth(g); }, {"tensor 'fc1.bias'", "storage 'nope' is not in the file"});
  TorchFile h = golden("cls.pth");
  entry(h, "fc1.bias").tensor.strides = {-1};
  expect_error_containing([&] { import_pth(h); }, {"tensor 'fc1.bias'", "negative size or stride"});
  // A huge size is refused by the shape check before anything is allocated...
  TorchFile i = golden("cls.pth");
  entry(i, "fc1.bias").tensor.sizes = {int64_t{1} << 40};
  entry(i, "fc1.bias").tensor.strides = {0};
  expect_error_containing([&] { import_pth(i); }, {"wrong shape or type 1: fc1.bias (1099511627776,)"});
  // ... and by materialize() itself, for any tensor.
  TorchFile d = golden("dtypes.pth");
  PickledTensor& f32 = entry(d, "f32").tensor;
  f32.sizes = {int64_t{1} << 20, int64_t{1} << 20};
  f32.strides = {0, 0};
  expect_error_containing([&] { materialize(d, f32, "f32"); }, {"tensor 'f32'", "more than"});
}

// Writes value over element `index` of the tensor's own storage (fc3.bias has one).
void poke_f32(TorchFile& f, const std::string& key, int64_t index, float value) {
  const PickledTensor& t = entry(f, key).tensor;
  ASSERT_EQ(t.storage.type, "FloatStorage");
  const TorchFile::Span span = f.storages.at(t.storage.key);
  ASSERT_LT(static_cast<size_t>((t.offset + index + 1) * 4), span.size + 1);
  std::memcpy(&f.bytes[span.offset + static_cast<size_t>(t.offset + index) * 4], &value, 4);
}

TEST(PthImport, NonFiniteWeightsAreRefusedWithTheirPosition) {
  TorchFile f = golden("cls.pth");
  poke_f32(f, "fc3.bias", 3, std::nanf(""));
  expect_error_containing([&] { import_pth(f); }, {"cls.pth", "tensor 'fc3.bias' element (3) is NaN"});
  TorchFile g = golden("cls.pth");
  poke_f32(g, "bn2.running_var", 7, -INFINITY);
  expect_error_containing([&] { import_pth(g); }, {"cls.pth", "tensor 'bn2.running_var' element (7) is infinite"});
  // Prefixed keys are named as in the file.
  TorchFile h = golden("cls.pth");
  poke_f32(h, "fc3.bias", 0, INFINITY);
  for (auto& [k, v] : h.root->dict) k = str("module." + k->text);
  expect_error_containing([&] { import_pth(h); }, {"tensor 'module.fc3.bias' element (0) is infinite"});
}

TEST(PthImport, LegacyFileTruncatedAnywhereIsAnError) {
  const std::string bytes = read_file(kPthDir + "cls_legacy.pth");
  for (size_t cut = 0; cut < bytes.size(); cut += 1009)
    expect_error_containing([&] { import_pth(parse_torch_file(bytes.substr(0, cut), "cut.pth")); }, {"cut.pth"});
  // The end: the last storage's bytes.
  expect_error_containing([&] { parse_torch_file(bytes.substr(0, bytes.size() - 1), "cut.pth"); },
                          {"cut.pth", "truncated"});
}

TEST(PthImport, DetectsTorchFilesByContent) {
  EXPECT_TRUE(is_torch_checkpoint(kPthDir + "cls.pth"));
  EXPECT_TRUE(is_torch_checkpoint(kPthDir + "cls_legacy.pth"));
  EXPECT_FALSE(is_torch_checkpoint(kPthDir + "cls.expected.safetensors"));
  EXPECT_FALSE(is_torch_checkpoint(kPthDir + "no_such_file.pth"));
}

}  // namespace
}  // namespace pointnet
