#include "data/synth.h"

#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <system_error>

#include "core/atomic_file.h"
#include "core/errors.h"
#include "core/parallel_for.h"
#include "core/rng.h"
#include "data/synth_classes.h"
#include "data/synth_mesh.h"
#include "data/synth_parts.h"
#include "io/npy.h"

namespace pointnet {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using synth::Affine;
using synth::Mesh;

constexpr int kFormatVersion = 1;  // bump when the generator's output changes
constexpr float kTwoPi = 6.28318530717958647692f;

// Per-axis scale ranges: wide for classification (so bounding-box proportions
// overlap between classes), mild for segmentation (proportions already vary).
constexpr float kClsScaleLo = 0.6f, kClsScaleHi = 1.4f;
constexpr float kSegScaleLo = 0.85f, kSegScaleHi = 1.15f;

enum TaskTag : uint64_t { kTagClassification = 1, kTagSegmentation = 2, kTagSplitShuffle = 3 };

// A shape's own generator, a function of these numbers only.
Rng shape_rng(uint64_t seed, uint64_t tag, uint64_t group, uint64_t sub, uint64_t index) {
  uint64_t h = splitmix64(seed);
  for (uint64_t v : {tag, group, sub, index}) h = splitmix64(h ^ v);
  return Rng(h, splitmix64(h ^ 0x5851f42d4c957f2dULL));
}

void validate(const SynthOptions& o, int min_points) {
  if (o.points < min_points || o.points > (1 << 20))
    fail("synthetic dataset: points per shape must be in [", min_points, ", ", 1 << 20, "], got ", o.points);
  if (o.train_per_class < 1 || o.train_per_class > 99999)
    fail("synthetic dataset: train shapes per class must be in [1, 99999], got ", o.train_per_class);
  if (o.test_per_class < 0 || o.test_per_class > 99999)
    fail("synthetic dataset: test shapes per class must be in [0, 99999], got ", o.test_per_class);
  if (!(o.noise >= 0.0f) || !std::isfinite(o.noise) || o.noise > 1.0f)
    fail("synthetic dataset: noise sigma must be in [0, 1], got ", o.noise);
}

// The float as its shortest decimal, read back as a double: 0.01f -> 0.01, so
// synth.json says what the user typed.
double shortest(float v) {
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::stod(std::string(buf, r.ptr));
}

json options_json(const char* task, const SynthOptions& o) {
  json j;
  j["generator"] = "pointnet synthetic dataset";
  j["version"] = kFormatVersion;
  j["task"] = task;
  j["seed"] = o.seed;
  j["points"] = o.points;
  j["train_per_class"] = o.train_per_class;
  j["test_per_class"] = o.test_per_class;
  j["noise"] = shortest(o.noise);
  return j;
}

fs::path clean_path(const std::string& dir) {
  if (dir.empty()) fail("synthetic dataset: empty output directory");
  fs::path p = fs::path(dir).lexically_normal();
  if (p.has_parent_path() && p.filename().empty()) p = p.parent_path();  // "a/b/" -> "a/b"
  return p;
}

// What differs between two option records, for the error message.
std::string differences(const json& found, const json& wanted) {
  std::string out;
  for (auto it = wanted.begin(); it != wanted.end(); ++it) {
    if (!found.contains(it.key()) || found[it.key()] != it.value()) {
      if (!out.empty()) out += ", ";
      out += it.key() + " " + (found.contains(it.key()) ? found[it.key()].dump() : "missing") + " (asked for " +
             it.value().dump() + ")";
    }
  }
  return out.empty() ? "its record differs" : out;
}

enum class DirState { Absent, Empty, SameDataset };

// Looks at DIR: absent, empty, or already holding this very dataset; anything else is an error.
DirState inspect(const fs::path& dir, const json& wanted) {
  std::error_code ec;
  fs::file_status st = fs::status(dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory)
    fail(dir.string(), ": cannot inspect: ", ec.message());
  if (!fs::exists(st)) return DirState::Absent;
  if (!fs::is_directory(st)) fail(dir.string(), ": exists and is not a directory; cannot write a synthetic dataset there");
  if (fs::is_empty(dir, ec) && !ec) return DirState::Empty;
  fs::path record = dir / "synth.json";
  if (!fs::exists(record, ec)) {
    fail(dir.string(), ": exists, is not empty and holds no synth.json, so it is not a synthetic dataset; "
         "refusing to write into it (remove it or choose another directory)");
  }
  json found;
  try {
    found = json::parse(read_file(record.string()));
  } catch (const json::exception& e) {
    fail(record.string(), ": not valid JSON (", e.what(), "); remove ", dir.string(), " to regenerate");
  }
  if (found == wanted) return DirState::SameDataset;
  fail(dir.string(), ": holds a synthetic dataset made with other options (", differences(found, wanted),
       "); remove it or choose another directory");
}

void make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) fail(p.string(), ": cannot create directory: ", ec.message());
}

// A hidden sibling of DIR that the dataset is written into, renamed to DIR once
// complete; removed if generation fails part way.
class Staging {
 public:
  explicit Staging(const fs::path& dir) : dir_(dir) {
    fs::path parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
    make_dirs(parent);
    tmp_ = parent / ("." + dir.filename().string() + ".partial-" + std::to_string(::getpid()));
    std::error_code ec;
    fs::remove_all(tmp_, ec);  // leftovers of an earlier process with our pid
    make_dirs(tmp_);
  }
  ~Staging() {
    if (!committed_) {
      std::error_code ec;
      fs::remove_all(tmp_, ec);
    }
  }
  Staging(const Staging&) = delete;
  Staging& operator=(const Staging&) = delete;

  const fs::path& path() const { return tmp_; }

  // Moves the finished dataset to DIR (replacing an empty DIR). If another
  // process finished the same dataset first, keeps theirs.
  void commit(const json& wanted) {
    std::error_code ec;
    fs::rename(tmp_, dir_, ec);
    if (!ec) {
      committed_ = true;
      return;
    }
    if (inspect(dir_, wanted) == DirState::SameDataset) return;  // destructor removes ours
    fail(dir_.string(), ": cannot move the generated dataset into place from ", tmp_.string(), ": ", ec.message());
  }

 private:
  fs::path dir_, tmp_;
  bool committed_ = false;
};

// Runs body(i) for i in [0, n) on OpenMP threads; rethrows the error of the lowest
// failing i (so the message does not depend on scheduling). The work is mostly
// waiting on fsync (one per file, from write_file_atomic), so it runs at least
// kWriterThreads threads, more than the cores: concurrent fsyncs share journal
// commits (3000 files: ~1.1 s with 8 threads against ~2.5 s with 2 on 2 cores).
// Output bytes do not depend on the thread count.
constexpr int kWriterThreads = 8;

template <typename Body>
void write_in_parallel(int n, const Body& body) {
  parallel_for(static_cast<size_t>(n), [&](size_t i) { body(static_cast<int>(i)); },
               std::max(kWriterThreads, omp_get_max_threads()), 4);
}

// The common finish: random per-axis scale and rotation about z, unit sphere,
// area-weighted sampling, Gaussian noise. Writes (n, 3) and optionally (n) parts.
void finish_shape(Mesh& mesh, Rng& rng, float scale_lo, float scale_hi, const SynthOptions& o, float* xyz,
                  int32_t* parts) {
  float sx = rng.uniform(scale_lo, scale_hi), sy = rng.uniform(scale_lo, scale_hi);
  float sz = rng.uniform(scale_lo, scale_hi);
  float angle = rng.uniform(0.0f, kTwoPi);
  mesh.transform(synth::compose({Affine::rotate_z(angle), Affine::scale(sx, sy, sz)}));
  mesh.normalize_unit();
  synth::sample_surface(mesh, o.points, rng, xyz, parts);
  for (int i = 0; i < 3 * o.points; ++i) xyz[i] += o.noise * rng.normal();
}

std::string numbered(const std::string& prefix, int number) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04d", number);
  return prefix + buf;
}

void write_record(const fs::path& dir, const json& wanted) {
  write_file_atomic((dir / "synth.json").string(), wanted.dump(2) + "\n");
}

}  // namespace

std::vector<std::string> synthetic_class_names() { return synth::classification_classes(); }

std::vector<std::string> synthetic_category_names() {
  std::vector<std::string> out;
  for (const synth::Category& c : synth::segmentation_categories()) out.push_back(c.name);
  return out;
}

std::vector<std::string> synthetic_part_names(const std::string& category) {
  for (const synth::Category& c : synth::segmentation_categories())
    if (c.name == category) return c.parts;
  fail("synthetic dataset: unknown category '", category, "'");
}

void write_synthetic_classification(const std::string& dir_in, const SynthOptions& o) {
  validate(o, 1);
  const fs::path dir = clean_path(dir_in);
  const std::vector<std::string>& classes = synth::classification_classes();
  json wanted = options_json("classification", o);
  wanted["classes"] = classes;
  if (inspect(dir, wanted) == DirState::SameDataset) return;

  Staging staging(dir);
  for (const std::string& c : classes) {
    make_dirs(staging.path() / c / "train");
    make_dirs(staging.path() / c / "test");
  }
  const int per_class = o.train_per_class + o.test_per_class;
  const int jobs = static_cast<int>(classes.size()) * per_class;
  write_in_parallel(jobs, [&](int job) {
    const int cls = job / per_class;
    const int number = job % per_class + 1;  // 1-based, train first then test
    const char* split = number <= o.train_per_class ? "train" : "test";
    Rng rng = shape_rng(o.seed, kTagClassification, static_cast<uint64_t>(cls), 0, static_cast<uint64_t>(number));
    Mesh mesh = synth::build_classification_shape(cls, rng);
    std::vector<float> xyz(3 * static_cast<size_t>(o.points));
    finish_shape(mesh, rng, kClsScaleLo, kClsScaleHi, o, xyz.data(), nullptr);
    fs::path file = staging.path() / classes[cls] / split / (numbered(classes[cls] + "_", number) + ".npy");
    write_npy(file.string(), {o.points, 3}, xyz.data());
  });
  write_record(staging.path(), wanted);
  staging.commit(wanted);
}

void write_synthetic_segmentation(const std::string& dir_in, const SynthOptions& o) {
  const std::vector<synth::Category>& cats = synth::segmentation_categories();
  size_t max_parts = 0;
  for (const synth::Category& c : cats) max_parts = std::max(max_parts, c.parts.size());
  validate(o, static_cast<int>(max_parts));
  const fs::path dir = clean_path(dir_in);
  const int val_per_class = std::max(1, static_cast<int>(std::lround(0.1 * o.train_per_class)));
  json wanted = options_json("segmentation", o);
  wanted["val_per_class"] = val_per_class;
  wanted["categories"] = json::array();
  for (const synth::Category& c : cats)
    wanted["categories"].push_back({{"name", c.name}, {"synset", c.synset}, {"parts", c.parts}});
  if (inspect(dir, wanted) == DirState::SameDataset) return;

  Staging staging(dir);
  std::string index;
  for (const synth::Category& c : cats) {
    index += c.name + "\t" + c.synset + "\n";
    make_dirs(staging.path() / c.synset / "points");
    make_dirs(staging.path() / c.synset / "points_label");
  }
  write_file_atomic((staging.path() / "synsetoffset2category.txt").string(), index);

  const char* splits[3] = {"train", "val", "test"};
  const int counts[3] = {o.train_per_class, val_per_class, o.test_per_class};
  const int per_class = counts[0] + counts[1] + counts[2];
  const int jobs = static_cast<int>(cats.size()) * per_class;
  write_in_parallel(jobs, [&](int job) {
    const int cat = job / per_class;
    int k = job % per_class, s = 0;
    while (k >= counts[s]) k -= counts[s++];
    const std::string id = numbered(std::string(splits[s]) + "_", k + 1);
    Rng rng = shape_rng(o.seed, kTagSegmentation, static_cast<uint64_t>(cat), static_cast<uint64_t>(s),
                        static_cast<uint64_t>(k));
    Mesh mesh = synth::build_segmentation_shape(cat, rng);
    std::vector<float> xyz(3 * static_cast<size_t>(o.points));
    std::vector<int32_t> parts(static_cast<size_t>(o.points));
    finish_shape(mesh, rng, kSegScaleLo, kSegScaleHi, o, xyz.data(), parts.data());
    std::string pts, seg;
    pts.reserve(32 * static_cast<size_t>(o.points));
    seg.reserve(3 * static_cast<size_t>(o.points));
    char line[96];
    for (int i = 0; i < o.points; ++i) {
      // z up -> y up: (x, y, z) -> (x, z, -y), a rotation about x.
      int len = std::snprintf(line, sizeof line, "%.6f %.6f %.6f\n", xyz[3 * i], xyz[3 * i + 2], -xyz[3 * i + 1]);
      pts.append(line, static_cast<size_t>(len));
      len = std::snprintf(line, sizeof line, "%d\n", parts[i] + 1);
      seg.append(line, static_cast<size_t>(len));
    }
    const fs::path base = staging.path() / cats[cat].synset;
    write_file_atomic((base / "points" / (id + ".pts")).string(), pts);
    write_file_atomic((base / "points_label" / (id + ".seg")).string(), seg);
  });

  make_dirs(staging.path() / "train_test_split");
  for (int s = 0; s < 3; ++s) {
    std::vector<std::string> list;
    for (const synth::Category& c : cats)
      for (int k = 0; k < counts[s]; ++k)
        list.push_back("shape_data/" + c.synset + "/" + numbered(std::string(splits[s]) + "_", k + 1));
    Rng rng = shape_rng(o.seed, kTagSplitShuffle, static_cast<uint64_t>(s), 0, 0);
    for (size_t i = list.size(); i > 1; --i) std::swap(list[i - 1], list[rng.below(static_cast<uint32_t>(i))]);
    write_file_atomic(
        (staging.path() / "train_test_split" / ("shuffled_" + std::string(splits[s]) + "_file_list.json")).string(),
        json(list).dump());
  }
  write_record(staging.path(), wanted);
  staging.commit(wanted);
}

}  // namespace pointnet
