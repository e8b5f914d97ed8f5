// Benchmark timing and statistics (used by `pointnet bench`): run a few
// warm-up iterations, then time every iteration separately, synchronising the
// device before each clock read, and summarise the per-iteration latencies.
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

namespace pointnet {

// Summary of per-iteration latencies, in the unit of the samples.
struct LatencyStats {
  size_t count = 0;
  double median = 0.0;
  double p99 = 0.0;     // 99th percentile (see percentile())
  double min = 0.0;
  double max = 0.0;
  double mean = 0.0;
  double stddev = 0.0;  // sample standard deviation (divides by count - 1); 0 for one sample
  double cv = 0.0;      // coefficient of variation: stddev / mean (a fraction, not a percent)
};

// The q-quantile (0 <= q <= 1) by linear interpolation between the two
// nearest ranks: position q * (n - 1) in the sorted samples (NumPy's default,
// "linear"). So the median of an even count is the mean of the middle two, and
// q = 0 / 1 give the min / max. Throws pointnet::Error on no samples or q
// outside [0, 1].
double percentile(std::vector<double> samples, double q);

// Throws pointnet::Error on no samples or a non-finite sample.
LatencyStats summarize_latencies(const std::vector<double>& samples);

// How long to time: `warmup` untimed iterations, then timed ones until at
// least `min_iters` are done AND at least `min_seconds` of timed iterations
// have passed (whichever comes last), but never more than `max_iters`.
struct TimingPlan {
  int warmup = 3;
  int min_iters = 10;
  double min_seconds = 0.0;
  int max_iters = 1000000;
};

// Runs iterations made of one or more phases. In every iteration, each phase
// runs, then `sync` (e.g. Backend::synchronize: waits for queued device work),
// then the clock is read (std::chrono::steady_clock), so each phase's sample
// is its own duration including the device work it queued. Returns
// samples[phase][iteration] in seconds. Warm-up iterations run the same way
// but are not recorded.
std::vector<std::vector<double>> time_phases(const TimingPlan& plan,
                                             const std::vector<std::function<void()>>& phases,
                                             const std::function<void()>& sync);

// One phase: samples[iteration] in seconds.
std::vector<double> time_iterations(const TimingPlan& plan, const std::function<void()>& iteration,
                                    const std::function<void()>& sync);

// The process's peak resident set size ("VmHWM" in /proc/self/status) in MiB
// (2^20 bytes); 0 where that file is not available (not Linux).
double peak_rss_mb();

}  // namespace pointnet
