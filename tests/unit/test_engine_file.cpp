// Engine files: a round trip keeps everything (weights bit for bit, int8
// weights and scales, metadata), and a damaged, truncated, foreign or
// future-version file is refused with an error naming the file and the problem.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <functional>

#include "../engine_fixtures.h"
#include "core/atomic_file.h"
#include "core/sealed_file.h"
#include "engine/builder.h"
#include "engine/engine_file.h"
#include "expect_error.h"

namespace pointnet {
namespace {

using testing::engine_config;
using testing::expect_error_containing;

struct EngineFileTest : ::testing::Test {
  testing::TempDir dir;
  std::string path = (dir.path / "model.engine").string();

  EnginePlan int8_plan(const ModelConfig& config) {
    const Checkpoint ckpt = testing::make_random_checkpoint(config, 3, dir);
    BuildOptions options;
    options.precision = EnginePrecision::INT8;
    options.max_batch = 8;
    options.max_points = 500;
    const int count = 4, N = 64;
    const std::vector<float> clouds = testing::random_clouds(count, N, config.input_channels, 1);
    EnginePlan plan = build_plan(fold_model(ckpt), options, clouds, count, N);
    describe_plan(plan, ckpt.info);
    return plan;
  }

  // Rewrites the file with `mutate` applied to its bytes, the checksum re-sealed.
  void reseal(const std::function<void(std::string&)>& mutate) {
    std::string bytes = read_file(path);
    mutate(bytes);
    put_le(bytes, 24, sealed_checksum(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 24), 8);
    write_file_atomic(path, bytes);
  }
};

TEST_F(EngineFileTest, RoundTripKeepsEverything) {
  for (const ModelConfig& config : {engine_config(ModelTask::Classification, 4, true, 6),
                                    engine_config(ModelTask::Segmentation, 5, false)}) {
    const EnginePlan plan = int8_plan(config);
    write_engine(path, plan);
    EXPECT_TRUE(is_engine_file(path));
    const EnginePlan back = read_engine(path);
    EXPECT_EQ(back.precision, EnginePrecision::INT8);
    EXPECT_EQ(back.max_batch, 8);
    EXPECT_EQ(back.max_points, 500);
    EXPECT_EQ(back.class_names, plan.class_names);
    EXPECT_EQ(back.part_count, plan.part_count);
    EXPECT_EQ(back.model.config.task, config.task);
    EXPECT_EQ(back.model.config.input_channels, config.input_channels);
    EXPECT_EQ(back.activation_scales, plan.activation_scales);
    EXPECT_EQ(back.build, plan.build);
    const auto a = named_layers(plan.model), b = named_layers(back.model);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_EQ(a[i].second->weight, b[i].second->weight) << a[i].first;
      EXPECT_EQ(a[i].second->bias, b[i].second->bias) << a[i].first;
    }
    ASSERT_EQ(back.int8_weights.size(), plan.int8_weights.size());
    for (const auto& [name, w] : plan.int8_weights) {
      EXPECT_EQ(back.int8_weights.at(name).q, w.q) << name;
      EXPECT_EQ(back.int8_weights.at(name).scale, w.scale) << name;
    }
  }
}

TEST_F(EngineFileTest, EveryFlippedByteIsCaught) {
  write_engine(path, int8_plan(engine_config(ModelTask::Classification, 3, false)));
  const std::string good = read_file(path);
  // A byte in the fixed header, the JSON, and several places in the tensors.
  for (size_t at : {size_t{9}, size_t{40}, size_t{200}, good.size() / 2, good.size() - 1}) {
    std::string bad = good;
    bad[at] = static_cast<char>(bad[at] ^ 0x10);
    write_file_atomic(path, bad);
    expect_error_containing([&] { read_engine(path); }, {path});
  }
}

TEST_F(EngineFileTest, TruncatedForeignAndFutureFilesAreRefused) {
  write_engine(path, int8_plan(engine_config(ModelTask::Classification, 3, false)));
  const std::string good = read_file(path);
  write_file_atomic(path, good.substr(0, good.size() - 100));
  expect_error_containing([&] { read_engine(path); }, {path, "checksum"});
  write_file_atomic(path, good.substr(0, 20));
  expect_error_containing([&] { read_engine(path); }, {path});
  write_file_atomic(path, "PK\x03\x04 this is a zip, not an engine");
  EXPECT_FALSE(is_engine_file(path));
  expect_error_containing([&] { read_engine(path); }, {path, "not a pointnet engine", "pointnet build"});
  write_file_atomic(path, good);
  reseal([](std::string& b) { put_le(b, 8, 7, 4); });
  expect_error_containing([&] { read_engine(path); }, {path, "version 7", "rebuild"});
  EXPECT_FALSE(is_engine_file((dir.path / "missing.engine").string()));
}

TEST_F(EngineFileTest, CraftedHeadersAreRefused) {
  write_engine(path, int8_plan(engine_config(ModelTask::Classification, 3, false)));
  const std::string good = read_file(path);
  const size_t header_bytes = get_le(reinterpret_cast<const unsigned char*>(good.data()) + 16, 8);
  const std::string header = good.substr(32, header_bytes);
  // Same-length edits of the JSON (so offsets stay valid), each re-sealed.
  const auto edit = [&](const std::string& from, const std::string& to) {
    ASSERT_EQ(from.size(), to.size());
    write_file_atomic(path, good);
    reseal([&](std::string& b) {
      const size_t at = b.find(from, 32);
      ASSERT_NE(at, std::string::npos) << from;
      b.replace(at, from.size(), to);
    });
  };
  edit("\"precision\":\"int8\"", "\"precision\":\"int9\"");
  expect_error_containing([&] { read_engine(path); }, {"int9", "fp32, tf32, fp16, bf16 or int8"});
  edit("\"task\":\"cls\"", "\"task\":\"xyz\"");
  expect_error_containing([&] { read_engine(path); }, {path, "task 'xyz'"});
  edit("\"conv3.weight\"", "\"conv9.weight\"");
  expect_error_containing([&] { read_engine(path); }, {path, "conv3.weight"});
  edit("\"dtype\":\"i8\"", "\"dtype\":\"f8\"");
  expect_error_containing([&] { read_engine(path); }, {path, "expected i8"});
  // The last tensor's offset, same digit count, all nines: past the end of the file.
  const size_t key = header.rfind("\"offset\":");
  ASSERT_NE(key, std::string::npos);
  size_t digits = 0;
  while (std::isdigit(static_cast<unsigned char>(header[key + 9 + digits]))) ++digits;
  edit(header.substr(key, 9 + digits), "\"offset\":" + std::string(digits, '9'));
  expect_error_containing([&] { read_engine(path); }, {path, "runs past the end"});
}

}  // namespace
}  // namespace pointnet
