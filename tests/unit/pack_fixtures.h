// Shared by the pack tests: a fixture with synthetic datasets and a folder
// vs pack comparison, and one that crafts damaged or lying packs.
#pragma once
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "../temp_dir.h"
#include "core/errors.h"
#include "data/dataset.h"
#include "data/pack.h"
#include "data/synth.h"

namespace pointnet {

namespace fs = std::filesystem;

class PackTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
  const fs::path root_ = tmp_.path;

  std::string synth(const std::string& task) {
    SynthOptions o;
    o.points = 50;
    o.train_per_class = 3;
    o.test_per_class = 2;
    const std::string dir = (root_ / task).string();
    if (task == "cls") write_synthetic_classification(dir, o);
    else write_synthetic_segmentation(dir, o);
    return dir;
  }
  std::string path(const std::string& name) const { return (root_ / name).string(); }

  static void expect_same(const Dataset& a, const Dataset& b) {
    EXPECT_EQ(a.layout, b.layout);
    EXPECT_EQ(a.class_names, b.class_names);
    EXPECT_EQ(a.up_axis, b.up_axis);
    EXPECT_EQ(a.num_parts, b.num_parts);
    EXPECT_EQ(a.part_offset, b.part_offset);
    EXPECT_EQ(a.part_count, b.part_count);
    EXPECT_EQ(a.has_normals, b.has_normals);
    ASSERT_EQ(a.shapes.size(), b.shapes.size());
    for (size_t i = 0; i < a.shapes.size(); ++i) {
      EXPECT_EQ(a.shapes[i].label, b.shapes[i].label) << i;
      EXPECT_EQ(a.shapes[i].points, b.shapes[i].points) << i;  // bitwise for f32
      EXPECT_EQ(a.shapes[i].parts, b.shapes[i].parts) << i;
      if (a.has_normals) {
        EXPECT_EQ(a.shapes[i].normals, b.shapes[i].normals) << i;  // bitwise for f32
      }
      EXPECT_EQ(fs::path(a.shapes[i].path).filename(), fs::path(b.shapes[i].path).filename()) << i;
    }
  }
};

// Crafted packs that pass the checksum (recomputed) but lie in their header or
// shape table: each must be refused naming the file, without allocating from
// the lie (a fresh-eyes review found these).
class CraftedPack : public PackTest {
 protected:
  // Re-seals the checksum as the writer does (pack_checksum; test_pack_v3.cpp
  // checks it against the format's definition).
  static std::string seal(std::string bytes) {
    const uint64_t sum = pack_checksum(bytes.data(), bytes.size());
    for (int k = 0; k < 8; ++k) bytes[24 + k] = static_cast<char>((sum >> (8 * k)) & 0xff);
    return bytes;
  }
  // Rewrites the JSON header in place (padded with spaces to its length) and re-seals.
  static std::string with_header(std::string bytes, const std::string& from, const std::string& to) {
    const size_t length = static_cast<unsigned char>(bytes[12]) | static_cast<unsigned char>(bytes[13]) << 8 |
                          static_cast<unsigned char>(bytes[14]) << 16;
    std::string json = bytes.substr(32, length);
    const size_t at = json.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    json.replace(at, from.size(), to);
    EXPECT_LE(json.size(), length);
    json.resize(length, ' ');
    bytes.replace(32, length, json);
    return seal(bytes);
  }
  void expect_refused(const std::string& bytes, const std::string& what) {
    std::ofstream(path("crafted.pack"), std::ios::binary | std::ios::trunc) << bytes;
    try {
      load_dataset(path("crafted.pack"), LoadOptions{});
      ADD_FAILURE() << what << ": accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("crafted.pack"), std::string::npos) << what << ": " << e.what();
    }
  }
};

}  // namespace pointnet
