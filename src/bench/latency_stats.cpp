#include "bench/latency_stats.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>

#include "core/errors.h"

namespace pointnet {

double percentile(std::vector<double> samples, double q) {
  if (samples.empty()) fail("percentile: no samples");
  if (!(q >= 0.0 && q <= 1.0)) fail("percentile: q must be in [0, 1], got ", q);
  std::sort(samples.begin(), samples.end());
  const double position = q * static_cast<double>(samples.size() - 1);
  const size_t below = static_cast<size_t>(std::floor(position));
  const size_t above = std::min(below + 1, samples.size() - 1);
  const double fraction = position - static_cast<double>(below);
  return samples[below] + fraction * (samples[above] - samples[below]);
}

LatencyStats summarize_latencies(const std::vector<double>& samples) {
  if (samples.empty()) fail("summarize_latencies: no samples");
  for (double s : samples)
    if (!std::isfinite(s)) fail("summarize_latencies: a sample is ", s);
  LatencyStats r;
  r.count = samples.size();
  r.median = percentile(samples, 0.5);
  r.p99 = percentile(samples, 0.99);
  r.min = *std::min_element(samples.begin(), samples.end());
  r.max = *std::max_element(samples.begin(), samples.end());
  double sum = 0.0;
  for (double s : samples) sum += s;
  r.mean = sum / static_cast<double>(r.count);
  if (r.count > 1) {
    double squares = 0.0;  // two-pass: no cancellation for tightly clustered samples
    for (double s : samples) squares += (s - r.mean) * (s - r.mean);
    r.stddev = std::sqrt(squares / static_cast<double>(r.count - 1));
  }
  r.cv = r.mean > 0.0 ? r.stddev / r.mean : 0.0;
  return r;
}

std::vector<std::vector<double>> time_phases(const TimingPlan& plan,
                                             const std::vector<std::function<void()>>& phases,
                                             const std::function<void()>& sync) {
  using Clock = std::chrono::steady_clock;
  if (phases.empty()) fail("time_phases: no phases");
  if (plan.warmup < 0 || plan.min_iters < 1 || plan.max_iters < plan.min_iters || !(plan.min_seconds >= 0.0))
    fail("time_phases: bad plan (warmup ", plan.warmup, ", min_iters ", plan.min_iters, ", max_iters ",
         plan.max_iters, ", min_seconds ", plan.min_seconds, ")");
  auto wait = [&] {
    if (sync) sync();
  };
  wait();  // nothing queued before us is timed
  for (int i = 0; i < plan.warmup; ++i)
    for (const auto& phase : phases) {
      phase();
      wait();
    }
  std::vector<std::vector<double>> samples(phases.size());
  const Clock::time_point start = Clock::now();
  for (int i = 0; i < plan.max_iters; ++i) {
    if (i >= plan.min_iters && std::chrono::duration<double>(Clock::now() - start).count() >= plan.min_seconds)
      break;
    for (size_t p = 0; p < phases.size(); ++p) {
      const Clock::time_point t0 = Clock::now();
      phases[p]();
      wait();
      samples[p].push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    }
  }
  return samples;
}

std::vector<double> time_iterations(const TimingPlan& plan, const std::function<void()>& iteration,
                                    const std::function<void()>& sync) {
  return time_phases(plan, {iteration}, sync)[0];
}

double peak_rss_mb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    double kib = 0.0;
    fields >> kib;  // "VmHWM:   123456 kB"
    return kib / 1024.0;
  }
  return 0.0;
}

}  // namespace pointnet
