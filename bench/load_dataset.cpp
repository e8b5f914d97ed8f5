// Times Dataset loading of one split from a folder and from its pack, side by
// side (the production load_dataset(), never a copy):
//
//   build/bench_load_dataset --folder DIR --pack FILE [--split train[,test]] [--repeat 5] [--cold]
//
// The pack is loaded two ways: "verify", checksumming every byte as a first
// load does (POINTNET_PACK_VERIFY=always), and "stamp", trusting the stamp that
// an earlier load of the unchanged file left (data/pack_stamp.h; the stamps go
// to a temporary POINTNET_CACHE_DIR, primed before timing).
// --split train,test loads both splits into Datasets that stay alive together,
// as `pointnet train` does (a pack is then mapped and verified once).
// Two measurements, each repeat loading the folder and then the pack (the order
// alternates between repeats):
//   fresh   each load in a new process (this program re-run as a child): what
//           `pointnet train` sees, fresh heap and thread pool included;
//   again   loads repeated in this one process (warm heap and thread pool).
// Per load: the load itself, then one pass reading every coordinate (a
// zero-copy pack's page faults would land there). --cold drops the page cache
// before every fresh load (`sync; echo 3 > /proc/sys/vm/drop_caches`, root
// only). Before timing, both sources must hold bitwise the same shapes.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <string>
#include <vector>

#include "core/errors.h"
#include "core/mapped_file.h"
#include "data/dataset.h"
#include "data/pack_format.h"
#include "data/pack_stamp.h"

namespace {

using Clock = std::chrono::steady_clock;
using pointnet::Dataset;

struct Times {
  std::vector<double> load_ms, touch_ms;
};

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

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  for (size_t a = 0; a <= text.size();) {
    const size_t b = std::min(text.find(',', a), text.size());
    out.push_back(text.substr(a, b - a));
    a = b + 1;
  }
  return out;
}

// Loads the splits (kept alive together), then touches them: milliseconds each.
std::pair<double, double> time_load(const std::string& source, const std::string& splits) {
  const auto t0 = Clock::now();
  std::vector<Dataset> loaded;
  for (const std::string& split : split_list(splits)) {
    pointnet::LoadOptions options;
    options.split = split;
    loaded.push_back(pointnet::load_dataset(source, options));
  }
  const auto t1 = Clock::now();
  uint64_t sum = 0;
  for (const Dataset& ds : loaded) sum += touch_every_value(ds);
  volatile uint64_t sink = sum;
  (void)sink;
  const auto t2 = Clock::now();
  return {std::chrono::duration<double, std::milli>(t1 - t0).count(),
          std::chrono::duration<double, std::milli>(t2 - t1).count()};
}

// What is loaded, and how a pack is verified (POINTNET_PACK_VERIFY).
struct Source {
  const char* name;
  std::string path;
  const char* verify;
};

// Runs this program as `--child SOURCE --split S` and reads its two numbers.
std::pair<double, double> time_in_child(const Source& source, const std::string& split) {
  int out[2];
  if (::pipe(out) != 0) pointnet::fail("bench: pipe failed");
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("POINTNET_PACK_VERIFY", source.verify, 1);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(out[0]);
    const char* args[] = {"bench_load_dataset", "--child", source.path.c_str(), "--split", split.c_str(), nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(args));
    std::_Exit(127);
  }
  ::close(out[1]);
  char text[128] = {};
  const ssize_t n = ::read(out[0], text, sizeof text - 1);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  double load = 0, touch = 0;
  if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0 || std::sscanf(text, "%lf %lf", &load, &touch) != 2)
    pointnet::fail("bench: the child loading ", source.path, " failed");
  return {load, touch};
}

bool drop_page_cache() {
  ::sync();
  std::ofstream f("/proc/sys/vm/drop_caches");
  f << "3\n";
  f.flush();
  return static_cast<bool>(f);
}

void check_same(const Dataset& folder, const Dataset& pack) {
  if (folder.shapes.size() != pack.shapes.size() || folder.class_names != pack.class_names)
    pointnet::fail("bench: folder and pack differ in shape count or classes");
  for (size_t i = 0; i < folder.shapes.size(); ++i) {
    const pointnet::Shape &a = folder.shapes[i], &b = pack.shapes[i];
    if (a.label != b.label || a.points != b.points)
      pointnet::fail("bench: shape ", i, " differs between the folder and the pack (an f16 pack?)");
  }
}

uint64_t stored_checksum(const std::string& pack) { return pointnet::pack::stored_checksum(pointnet::MappedFile(pack)); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

void print_row(const char* name, const char* what, const std::vector<double>& ms) {
  std::printf("  %-12s %-5s ms:", name, what);
  for (double t : ms) std::printf(" %7.1f", t);
  std::printf("   median %7.1f  min %7.1f\n", median(ms), *std::min_element(ms.begin(), ms.end()));
}

void report(const char* title, const std::vector<Source>& sources, const std::vector<Times>& times) {
  std::printf("%s\n", title);
  for (size_t k = 0; k < sources.size(); ++k) {
    print_row(sources[k].name, "load", times[k].load_ms);
    print_row(sources[k].name, "touch", times[k].touch_ms);
  }
  const double f = median(times[0].load_ms), ft = median(times[0].touch_ms);
  for (size_t k = 1; k < sources.size(); ++k) {
    const double p = median(times[k].load_ms), pt = median(times[k].touch_ms);
    std::printf("  %s vs folder (medians): load %.1fx faster, load + touch %.1fx faster\n", sources[k].name, f / p,
                (f + ft) / (p + pt));
  }
}

// The stamps in a temporary cache folder (never the user's), removed at the end.
struct PrivateCacheFolder {
  std::string path;
  PrivateCacheFolder() {
    char dir[] = "/tmp/bench_load_dataset_XXXXXX";
    if (!::mkdtemp(dir)) pointnet::fail("bench: cannot make a temporary folder");
    path = dir;
    ::setenv("POINTNET_CACHE_DIR", dir, 1);
  }
  ~PrivateCacheFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// The stamp primed by one load.
void prime_stamp(const std::string& pack) {
  ::setenv("POINTNET_PACK_VERIFY", "stamp", 1);
  pointnet::load_dataset(pack, {});
  if (!pointnet::pack::stamp_says_verified(pointnet::MappedFile(pack), stored_checksum(pack)))
    std::printf("note: no stamp was written (the pack changed under 2 s ago?): 'pack stamp' rows verify too\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string folder, pack, child, splits = "train";
  int repeat = 5;
  bool cold = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const bool has_value = i + 1 < argc;
    if (a == "--folder" && has_value) folder = argv[++i];
    else if (a == "--pack" && has_value) pack = argv[++i];
    else if (a == "--split" && has_value) splits = argv[++i];
    else if (a == "--repeat" && has_value) repeat = std::max(1, std::atoi(argv[++i]));
    else if (a == "--child" && has_value) child = argv[++i];
    else if (a == "--cold") cold = true;
    else {
      std::fprintf(stderr, "usage: %s --folder DIR --pack FILE [--split S[,S]] [--repeat N] [--cold]\n", argv[0]);
      return 2;
    }
  }
  try {
    if (!child.empty()) {
      const auto [load, touch] = time_load(child, splits);
      std::printf("%.3f %.3f\n", load, touch);
      return 0;
    }
    if (folder.empty() || pack.empty()) {
      std::fprintf(stderr, "bench_load_dataset: --folder and --pack are required\n");
      return 2;
    }
    const PrivateCacheFolder cache;  // before any load of the pack
    ::setenv("POINTNET_PACK_VERIFY", "always", 1);
    for (const std::string& split : split_list(splits)) {
      pointnet::LoadOptions options;
      options.split = split;
      check_same(pointnet::load_dataset(folder, options), pointnet::load_dataset(pack, options));
    }
    prime_stamp(pack);
    const std::vector<Source> sources = {{"folder", folder, "stamp"}, {"pack verify", pack, "always"},
                                         {"pack stamp", pack, "stamp"}};
    const size_t n = sources.size();
    std::vector<Times> fresh(n), again(n);
    for (int r = 0; r < repeat; ++r) {
      for (size_t k = 0; k < n; ++k) {
        const size_t which = r % 2 ? n - 1 - k : k;  // the order alternates between repeats
        if (cold && !drop_page_cache()) pointnet::fail("bench: --cold needs root (cannot write /proc/sys/vm/drop_caches)");
        const auto [load, touch] = time_in_child(sources[which], splits);
        fresh[which].load_ms.push_back(load);
        fresh[which].touch_ms.push_back(touch);
      }
    }
    std::printf("split %s, %s page cache, %d repeats\n", splits.c_str(), cold ? "cold" : "warm", repeat);
    report("fresh process per load:", sources, fresh);
    if (cold) return 0;  // repeated loads in one process are warm by definition
    for (int r = 0; r < repeat; ++r)
      for (size_t k = 0; k < n; ++k) {
        const size_t which = r % 2 ? n - 1 - k : k;
        ::setenv("POINTNET_PACK_VERIFY", sources[which].verify, 1);
        const auto [load, touch] = time_load(sources[which].path, splits);
        again[which].load_ms.push_back(load);
        again[which].touch_ms.push_back(touch);
      }
    report("again in this process:", sources, again);
  } catch (const pointnet::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
