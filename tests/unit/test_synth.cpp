// The procedural default datasets (data/synth.h): layout, counts, determinism,
// label ranges, the synth.json record, and that the dataset loader reads them.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "../temp_dir.h"
#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/rng.h"
#include "data/dataset.h"
#include "data/synth.h"
#include "data/synth_classes.h"
#include "data/synth_mesh.h"
#include "data/synth_parts.h"
#include "io/npy.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;

SynthOptions small_options() {
  SynthOptions o;
  o.seed = 7;
  o.points = 64;
  o.train_per_class = 3;
  o.test_per_class = 2;
  return o;
}

class SynthTest : public ::testing::Test {
 protected:
  testing::TempDir tmp_;
  const fs::path root_ = tmp_.path;

  // Every regular file under `dir`, relative path -> bytes.
  static std::map<std::string, std::string> snapshot(const fs::path& dir) {
    std::map<std::string, std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir))
      if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_file(e.path().string());
    return out;
  }

  static std::vector<std::string> lines(const std::string& text) {
    std::vector<std::string> out;
    std::istringstream is(text);
    for (std::string line; std::getline(is, line);) out.push_back(line);
    return out;
  }

};

TEST_F(SynthTest, ClassNamesAndCategories) {
  std::vector<std::string> classes = synthetic_class_names();
  EXPECT_GE(classes.size(), 10u);
  EXPECT_TRUE(std::is_sorted(classes.begin(), classes.end()));  // matches a loader's folder order
  EXPECT_EQ(std::set<std::string>(classes.begin(), classes.end()).size(), classes.size());
  std::vector<std::string> cats = synthetic_category_names();
  EXPECT_GE(cats.size(), 4u);
  for (const auto& c : synth::segmentation_categories()) {
    EXPECT_EQ(c.synset.size(), 8u);
    EXPECT_GE(c.parts.size(), 2u);
    EXPECT_LE(c.parts.size(), 4u);
    EXPECT_EQ(synthetic_part_names(c.name), c.parts);
  }
  EXPECT_THROW(synthetic_part_names("Spaceship"), Error);
}

TEST_F(SynthTest, ClassificationLayoutCountsAndFiniteness) {
  SynthOptions o = small_options();
  fs::path dir = root_ / "cls";
  write_synthetic_classification(dir.string(), o);
  for (const std::string& c : synthetic_class_names()) {
    for (int n = 1; n <= o.train_per_class + o.test_per_class; ++n) {
      char name[64];
      std::snprintf(name, sizeof name, "%s_%04d.npy", c.c_str(), n);
      const char* split = n <= o.train_per_class ? "train" : "test";
      fs::path file = dir / c / split / name;
      ASSERT_TRUE(fs::exists(file)) << file;
      NpyArray a = read_npy(file.string());
      ASSERT_EQ(a.shape, (std::vector<int64_t>{o.points, 3})) << file;
      float r2max = 0;
      for (int i = 0; i < o.points; ++i) {
        float r2 = 0;
        for (int k = 0; k < 3; ++k) {
          float v = a.values[3 * i + k];
          ASSERT_TRUE(std::isfinite(v)) << file;
          r2 += v * v;
        }
        r2max = std::max(r2max, r2);
      }
      // Normalised to the unit sphere, plus noise.
      EXPECT_LT(std::sqrt(r2max), 1.1f) << file;
      EXPECT_GT(std::sqrt(r2max), 0.5f) << file;
    }
    size_t train = std::distance(fs::directory_iterator(dir / c / "train"), fs::directory_iterator{});
    size_t test = std::distance(fs::directory_iterator(dir / c / "test"), fs::directory_iterator{});
    EXPECT_EQ(train, static_cast<size_t>(o.train_per_class)) << c;
    EXPECT_EQ(test, static_cast<size_t>(o.test_per_class)) << c;
  }
  EXPECT_TRUE(fs::exists(dir / "synth.json"));
  // Nothing left behind beside it.
  for (const auto& e : fs::directory_iterator(root_)) EXPECT_EQ(e.path().filename(), "cls");
}

TEST_F(SynthTest, ClassificationIsDeterministic) {
  SynthOptions o = small_options();
  write_synthetic_classification((root_ / "a").string(), o);
  write_synthetic_classification((root_ / "b").string(), o);
  o.seed = 8;
  write_synthetic_classification((root_ / "c").string(), o);
  auto a = snapshot(root_ / "a"), b = snapshot(root_ / "b"), c = snapshot(root_ / "c");
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), c.size());
  int same = 0;
  for (const auto& [name, bytes] : a)
    if (name != "synth.json") same += c.at(name) == bytes;
  EXPECT_EQ(same, 0);
}

TEST_F(SynthTest, SegmentationLayoutLabelsAndSplits) {
  SynthOptions o = small_options();
  o.points = 256;
  o.train_per_class = 10;
  o.test_per_class = 3;
  fs::path dir = root_ / "seg";
  write_synthetic_segmentation(dir.string(), o);

  const auto& cats = synth::segmentation_categories();
  std::vector<std::string> index = lines(read_file((dir / "synsetoffset2category.txt").string()));
  ASSERT_EQ(index.size(), cats.size());
  for (size_t c = 0; c < cats.size(); ++c) EXPECT_EQ(index[c], cats[c].name + "\t" + cats[c].synset);

  const std::map<std::string, int> expected{{"train", 10}, {"val", 1}, {"test", 3}};
  std::set<std::string> all_ids;
  for (const auto& [split, per_cat] : expected) {
    auto list = nlohmann::json::parse(
        read_file((dir / "train_test_split" / ("shuffled_" + split + "_file_list.json")).string()));
    ASSERT_TRUE(list.is_array());
    EXPECT_EQ(list.size(), cats.size() * per_cat) << split;
    for (const auto& entry : list) {
      std::string s = entry.get<std::string>();
      ASSERT_EQ(s.rfind("shape_data/", 0), 0u) << s;
      EXPECT_TRUE(all_ids.insert(s).second) << "duplicate " << s;
      std::string synset = s.substr(11, 8), id = s.substr(20);
      auto cat = std::find_if(cats.begin(), cats.end(), [&](const auto& c) { return c.synset == synset; });
      ASSERT_NE(cat, cats.end()) << s;
      const int k = static_cast<int>(cat->parts.size());
      std::vector<std::string> pts = lines(read_file((dir / synset / "points" / (id + ".pts")).string()));
      std::vector<std::string> seg = lines(read_file((dir / synset / "points_label" / (id + ".seg")).string()));
      ASSERT_EQ(pts.size(), static_cast<size_t>(o.points)) << s;
      ASSERT_EQ(seg.size(), static_cast<size_t>(o.points)) << s;
      std::vector<int> per_part(k + 1, 0);
      for (int i = 0; i < o.points; ++i) {
        std::istringstream ps(pts[i]);
        float x, y, z;
        ASSERT_TRUE(ps >> x >> y >> z) << s << " line " << i + 1;
        ASSERT_TRUE(std::isfinite(x) && std::isfinite(y) && std::isfinite(z));
        int label = std::stoi(seg[i]);
        ASSERT_GE(label, 1) << s;
        ASSERT_LE(label, k) << s;
        per_part[label] += 1;
      }
      for (int p = 1; p <= k; ++p) EXPECT_GT(per_part[p], 0) << s << " part " << p << " missing";
    }
  }
}

TEST_F(SynthTest, SegmentationIsDeterministic) {
  SynthOptions o = small_options();
  write_synthetic_segmentation((root_ / "a").string(), o);
  write_synthetic_segmentation((root_ / "b").string(), o);
  o.seed = 8;
  write_synthetic_segmentation((root_ / "c").string(), o);
  auto a = snapshot(root_ / "a"), b = snapshot(root_ / "b"), c = snapshot(root_ / "c");
  EXPECT_EQ(a, b);
  int differ = 0;
  for (const auto& [name, bytes] : a)
    if (name.find("/points/") != std::string::npos) differ += c.at(name) != bytes;
  EXPECT_EQ(differ, static_cast<int>(synthetic_category_names().size()) * (3 + 1 + 2));
}

TEST_F(SynthTest, UpAxesAreZForClassificationAndYForSegmentation) {
  // A table stands on its legs: with y up, the top's points are the highest.
  SynthOptions o = small_options();
  o.points = 512;
  o.noise = 0;
  write_synthetic_segmentation((root_ / "seg").string(), o);
  fs::path pts = root_ / "seg" / "04379243" / "points" / "train_0001.pts";
  fs::path seg = root_ / "seg" / "04379243" / "points_label" / "train_0001.seg";
  std::vector<std::string> p = lines(read_file(pts.string())), l = lines(read_file(seg.string()));
  double top_y = 0, leg_y = 0;
  int tops = 0, legs = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    std::istringstream ps(p[i]);
    float x, y, z;
    ps >> x >> y >> z;
    if (l[i] == "1") top_y += y, ++tops;
    else leg_y += y, ++legs;
  }
  ASSERT_GT(tops, 0);
  ASSERT_GT(legs, 0);
  EXPECT_GT(top_y / tops, leg_y / legs + 0.2);
}

TEST_F(SynthTest, SameOptionsAreIdempotentOthersFail) {
  SynthOptions o = small_options();
  fs::path dir = root_ / "cls";
  write_synthetic_classification(dir.string(), o);
  auto before = snapshot(dir);
  auto stamp = fs::last_write_time(dir / "synth.json");
  write_synthetic_classification(dir.string() + "/", o);  // same options: nothing is rewritten
  EXPECT_EQ(snapshot(dir), before);
  EXPECT_EQ(fs::last_write_time(dir / "synth.json"), stamp);

  SynthOptions other = o;
  other.points = 32;
  try {
    write_synthetic_classification(dir.string(), other);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("other options"), std::string::npos) << what;
    EXPECT_NE(what.find("points 64 (asked for 32)"), std::string::npos) << what;
  }
  // A seg request over a cls dataset is a mismatch too.
  EXPECT_THROW(write_synthetic_segmentation(dir.string(), o), Error);
  EXPECT_EQ(snapshot(dir), before);
}

TEST_F(SynthTest, NonEmptyForeignDirectoryIsAnError) {
  fs::path dir = root_ / "mine";
  fs::create_directories(dir);
  std::ofstream(dir / "notes.txt") << "keep me\n";
  try {
    write_synthetic_classification(dir.string(), small_options());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    std::string what = e.what();
    EXPECT_NE(what.find(dir.string()), std::string::npos) << what;
    EXPECT_NE(what.find("not empty"), std::string::npos) << what;
  }
  EXPECT_THROW(write_synthetic_segmentation(dir.string(), small_options()), Error);
  EXPECT_EQ(read_file((dir / "notes.txt").string()), "keep me\n");
  // A file in the way.
  EXPECT_THROW(write_synthetic_classification((dir / "notes.txt").string(), small_options()), Error);
  // An existing empty folder is fine.
  fs::create_directories(root_ / "empty");
  write_synthetic_classification((root_ / "empty").string(), small_options());
  EXPECT_TRUE(fs::exists(root_ / "empty" / "synth.json"));
}

TEST_F(SynthTest, BadOptionsAreRejected) {
  SynthOptions o = small_options();
  o.points = 0;
  EXPECT_THROW(write_synthetic_classification((root_ / "x").string(), o), Error);
  o = small_options();
  o.points = 3;  // fewer points than the largest category has parts
  EXPECT_THROW(write_synthetic_segmentation((root_ / "x").string(), o), Error);
  o = small_options();
  o.noise = -1;
  EXPECT_THROW(write_synthetic_classification((root_ / "x").string(), o), Error);
  o = small_options();
  o.train_per_class = 0;
  EXPECT_THROW(write_synthetic_classification((root_ / "x").string(), o), Error);
  EXPECT_FALSE(fs::exists(root_ / "x"));
}

TEST_F(SynthTest, SurfaceSamplingIsUniformByArea) {
  // A 2 x 1 x 1 box: the two 1x1 end faces hold 2/10 of the area.
  synth::Mesh m;
  m.add_box({0, 0, 0}, {2, 1, 1}, 0);
  Rng rng(3);
  const int n = 20000;
  std::vector<float> xyz(3 * n);
  synth::sample_surface(m, n, rng, xyz.data(), nullptr);
  int on_ends = 0;
  for (int i = 0; i < n; ++i) {
    float x = xyz[3 * i];
    on_ends += (x < 1e-5f || x > 2 - 1e-5f);
  }
  EXPECT_NEAR(on_ends / double(n), 0.2, 0.015);

  // Parts get points in proportion to area: part 1 has 3x part 0's area.
  synth::Mesh two;
  two.add_quad({0, 0, 0}, {1, 0, 0}, {1, 1, 0}, {0, 1, 0}, 0);
  two.add_quad({0, 0, 1}, {3, 0, 1}, {3, 1, 1}, {0, 1, 1}, 1);
  std::vector<int32_t> parts(100);
  std::vector<float> p2(300);
  synth::sample_surface(two, 100, rng, p2.data(), parts.data());
  EXPECT_EQ(std::count(parts.begin(), parts.end(), 0), 25);
  EXPECT_EQ(std::count(parts.begin(), parts.end(), 1), 75);
}

TEST_F(SynthTest, EveryClassShapeIsAProperSurface) {
  for (int c = 0; c < static_cast<int>(synthetic_class_names().size()); ++c) {
    Rng rng(static_cast<uint64_t>(c));
    synth::Mesh m = synth::build_classification_shape(c, rng);
    ASSERT_FALSE(m.tris.empty());
    EXPECT_GT(m.part_area(0), 0.5) << synthetic_class_names()[c];
    m.normalize_unit();
    EXPECT_NEAR(m.radius_about({0, 0, 0}), 1.0f, 1e-4f);
  }
}

TEST_F(SynthTest, LoaderReadsBothDatasets) {
  SynthOptions o = small_options();
  write_synthetic_classification((root_ / "cls").string(), o);
  write_synthetic_segmentation((root_ / "seg").string(), o);

  LoadOptions lo;
  lo.split = "train";
  Dataset cls = load_dataset((root_ / "cls").string(), lo);
  EXPECT_EQ(cls.layout, "modelnet");
  EXPECT_EQ(cls.class_names, synthetic_class_names());
  EXPECT_EQ(cls.shapes.size(), synthetic_class_names().size() * o.train_per_class);
  for (const Shape& s : cls.shapes) EXPECT_EQ(s.num_points(), o.points);
  lo.split = "test";
  EXPECT_EQ(load_dataset((root_ / "cls").string(), lo).shapes.size(),
            synthetic_class_names().size() * o.test_per_class);

  LoadOptions so;
  so.with_parts = true;
  for (const auto& [split, per_cat] : std::map<std::string, int>{{"train", 3}, {"val", 1}, {"test", 2}, {"trainval", 4}}) {
    so.split = split;
    Dataset seg = load_dataset((root_ / "seg").string(), so);
    EXPECT_EQ(seg.layout, "shapenet_part");
    EXPECT_EQ(seg.up_axis, 1);
    EXPECT_EQ(seg.class_names, synthetic_category_names());
    EXPECT_EQ(seg.shapes.size(), synthetic_category_names().size() * per_cat) << split;
    const auto& cats = synth::segmentation_categories();
    ASSERT_EQ(seg.part_count.size(), cats.size());
    int total = 0;
    for (size_t c = 0; c < cats.size(); ++c) {
      EXPECT_EQ(seg.part_count[c], static_cast<int>(cats[c].parts.size())) << cats[c].name;
      total += seg.part_count[c];
    }
    EXPECT_EQ(seg.num_parts, total);
    for (const Shape& s : seg.shapes) {
      EXPECT_EQ(s.num_points(), o.points);
      EXPECT_EQ(s.parts.size(), static_cast<size_t>(o.points));
    }
  }
  so.split = "train";
  so.class_choice = "Mug";
  Dataset mug = load_dataset((root_ / "seg").string(), so);
  EXPECT_EQ(mug.shapes.size(), 3u);
}

}  // namespace
}  // namespace pointnet
