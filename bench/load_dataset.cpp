// Times Dataset loading of one split from a folder and from its pack, side by
// side in one process (the production load_dataset(), never a copy):
//
//   build/bench_load_dataset --folder DIR --pack FILE [--split train] [--repeat 5] [--cold]
//
// Each repeat loads the folder, then the pack (the order alternates between
// repeats), and reports per source: the load itself, then one pass reading every
// coordinate (a zero-copy pack defers page faults to that pass; the sum keeps
// it from being optimised away). --cold drops the page cache before every load
// (`sync; echo 3 > /proc/sys/vm/drop_caches`, root only). Before timing, the
// two sources must hold bitwise the same shapes (house rule 7).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/errors.h"
#include "data/dataset.h"

namespace {

using Clock = std::chrono::steady_clock;
using pointnet::Dataset;

struct Timing {
  std::vector<double> load_s, touch_s;
};

bool drop_page_cache() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

// Reads every coordinate once: integer adds of the bits vectorise, so this
// costs about what reaching the memory costs (page faults included).
uint64_t touch_every_value(const Dataset& ds) {
  uint64_t sum = 0;
  for (const pointnet::Shape& s : ds.shapes) {
    const float* p = s.points.data();
    for (size_t i = 0, n = s.points.size(); i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, p + i, 4);
      sum += bits;
    }
  }
  return sum;
}

void check_same(const Dataset& folder, const Dataset& pack) {
  if (folder.shapes.size() != pack.shapes.size() || folder.class_names != pack.class_names)
    pointnet::fail("bench: folder and pack differ in shape count or classes");
  for (size_t i = 0; i < folder.shapes.size(); ++i) {
    const pointnet::Shape &a = folder.shapes[i], &b = pack.shapes[i];
    if (a.label != b.label || a.points.size() != b.points.size() ||
        std::memcmp(a.points.data(), b.points.data(), a.points.size() * sizeof(float)) != 0)
      pointnet::fail("bench: shape ", i, " differs between the folder and the pack (an f16 pack?)");
  }
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void report(const char* name, const Timing& t) {
  std::printf("%-6s load  ms:", name);
  for (double s : t.load_s) std::printf(" %8.1f", 1e3 * s);
  std::printf("   median %8.1f\n%-6s touch ms:", 1e3 * median(t.load_s), name);
  for (double s : t.touch_s) std::printf(" %8.1f", 1e3 * s);
  std::printf("   median %8.1f\n", 1e3 * median(t.touch_s));
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, pack;
  pointnet::LoadOptions options;
  int repeat = 5;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--folder") folder = value();
    else if (a == "--pack") pack = value();
    else if (a == "--split") options.split = value();
    else if (a == "--repeat") repeat = std::max(1, std::atoi(value().c_str()));
    else if (a == "--cold") cold = true;
    else {
      std::fprintf(stderr, "usage: %s --folder DIR --pack FILE [--split S] [--repeat N] [--cold]\n", argv[0]);
      return 2;
    }
  }
  if (folder.empty() || pack.empty()) {
    std::fprintf(stderr, "bench_load_dataset: --folder and --pack are required\n");
    return 2;
  }
  try {
    {
      const auto a = Clock::now();
      const Dataset f = pointnet::load_dataset(folder, options);
      const auto b = Clock::now();
      const Dataset p = pointnet::load_dataset(pack, options);
      const auto c = Clock::now();
      std::printf("first loads in this process: folder %.1f ms, pack %.1f ms\n",
                  1e3 * std::chrono::duration<double>(b - a).count(), 1e3 * std::chrono::duration<double>(c - b).count());
      check_same(f, p);
    }
    Timing timing[2];  // 0 folder, 1 pack
    uint64_t keep = 0;
    for (int r = 0; r < repeat; ++r) {
      for (int k = 0; k < 2; ++k) {
        const int which = r % 2 ? 1 - k : k;
        if (cold && !drop_page_cache()) pointnet::fail("bench: --cold needs root (cannot write /proc/sys/vm/drop_caches)");
        const auto t0 = Clock::now();
        const Dataset ds = pointnet::load_dataset(which == 0 ? folder : pack, options);
        const auto t1 = Clock::now();
        keep += touch_every_value(ds);
        const auto t2 = Clock::now();
        timing[which].load_s.push_back(std::chrono::duration<double>(t1 - t0).count());
        timing[which].touch_s.push_back(std::chrono::duration<double>(t2 - t1).count());
      }
    }
    std::printf("split %s, %s page cache, %d repeats (sum of value bits %llu)\n", options.split.c_str(),
                cold ? "cold" : "warm", repeat, static_cast<unsigned long long>(keep));
    report("folder", timing[0]);
    report("pack", timing[1]);
    const double f = median(timing[0].load_s), p = median(timing[1].load_s);
    const double ft = f + median(timing[0].touch_s), pt = p + median(timing[1].touch_s);
    std::printf("pack vs folder: load %.1fx faster, load + touch %.1fx faster\n", f / p, ft / pt);
  } catch (const pointnet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
