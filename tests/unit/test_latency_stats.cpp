// Benchmark statistics against hand-computed values, and the timing loop's
// contract (warm-up untimed, a sync before every clock read, stopping rules).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "bench/latency_stats.h"
#include "core/errors.h"

using namespace pointnet;

namespace {
// 1, 2, ..., n in a fixed shuffled order (the statistics must not assume sorted input).
std::vector<double> shuffled_one_to(int n) {
  std::vector<double> v(n);
  std::iota(v.begin(), v.end(), 1.0);
  std::shuffle(v.begin(), v.end(), std::mt19937(7));
  return v;
}
}  // namespace

TEST(LatencyStats, PercentileInterpolatesBetweenRanks) {
  const std::vector<double> v = shuffled_one_to(100);
  // Position q * 99 in 1..100.
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 50.5);
  EXPECT_DOUBLE_EQ(percentile(v, 0.99), 99.01);  // 99 + 0.01 * (100 - 99)
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 100.0);
  EXPECT_DOUBLE_EQ(percentile({3.0, 1.0, 2.0}, 0.5), 2.0);      // odd count: the middle one
  EXPECT_DOUBLE_EQ(percentile({4.0, 1.0, 3.0, 2.0}, 0.5), 2.5);  // even count: mean of the middle two
  EXPECT_DOUBLE_EQ(percentile({10.0, 20.0}, 0.99), 19.9);
  EXPECT_DOUBLE_EQ(percentile({5.0}, 0.99), 5.0);
}

TEST(LatencyStats, PercentileRejectsBadInput) {
  EXPECT_THROW(percentile({}, 0.5), Error);
  EXPECT_THROW(percentile({1.0}, -0.1), Error);
  EXPECT_THROW(percentile({1.0}, 1.5), Error);
  EXPECT_THROW(percentile({1.0}, std::nan("")), Error);
}

TEST(LatencyStats, SummaryOfOneToHundred) {
  const LatencyStats s = summarize_latencies(shuffled_one_to(100));
  EXPECT_EQ(s.count, 100u);
  EXPECT_DOUBLE_EQ(s.median, 50.5);
  EXPECT_DOUBLE_EQ(s.p99, 99.01);
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 100.0);
  EXPECT_DOUBLE_EQ(s.mean, 50.5);
  // Sample variance of 1..n is n (n + 1) / 12.
  const double stddev = std::sqrt(100.0 * 101.0 / 12.0);
  EXPECT_NEAR(s.stddev, stddev, 1e-12);
  EXPECT_NEAR(s.cv, stddev / 50.5, 1e-12);  // 0.57437...
}

TEST(LatencyStats, SummaryOfSmallSets) {
  // {2, 4, 4, 4, 5, 5, 7, 9}: mean 5, squared deviations sum to 32, sample stddev sqrt(32/7).
  const LatencyStats s = summarize_latencies({9, 4, 5, 2, 4, 7, 4, 5});
  EXPECT_DOUBLE_EQ(s.median, 4.5);
  EXPECT_DOUBLE_EQ(s.mean, 5.0);
  EXPECT_NEAR(s.stddev, std::sqrt(32.0 / 7.0), 1e-12);
  EXPECT_NEAR(s.cv, std::sqrt(32.0 / 7.0) / 5.0, 1e-12);
  EXPECT_NEAR(s.p99, 9 - 0.07 * 2, 1e-12);  // position 6.93: 7 + 0.93 * (9 - 7)

  const LatencyStats one = summarize_latencies({0.25});
  EXPECT_EQ(one.count, 1u);
  EXPECT_DOUBLE_EQ(one.median, 0.25);
  EXPECT_DOUBLE_EQ(one.p99, 0.25);
  EXPECT_DOUBLE_EQ(one.stddev, 0.0);
  EXPECT_DOUBLE_EQ(one.cv, 0.0);

  const LatencyStats flat = summarize_latencies({0.003, 0.003, 0.003});
  EXPECT_NEAR(flat.cv, 0.0, 1e-12);  // the mean of three 0.003s rounds, so not exactly 0
}

TEST(LatencyStats, SummaryRejectsNoSamplesAndNaN) {
  EXPECT_THROW(summarize_latencies({}), Error);
  EXPECT_THROW(summarize_latencies({1.0, std::nan("")}), Error);
  EXPECT_THROW(summarize_latencies({1.0, INFINITY}), Error);
}

TEST(LatencyTiming, WarmupIsUntimedAndEveryPhaseIsSynced) {
  int calls_a = 0, calls_b = 0, syncs = 0;
  TimingPlan plan;
  plan.warmup = 2;
  plan.min_iters = 5;
  const auto samples = time_phases(
      plan, {[&] { ++calls_a; }, [&] {
               ++calls_b;
               std::this_thread::sleep_for(std::chrono::milliseconds(1));
             }},
      [&] { ++syncs; });
  ASSERT_EQ(samples.size(), 2u);
  EXPECT_EQ(samples[0].size(), 5u);
  EXPECT_EQ(samples[1].size(), 5u);
  EXPECT_EQ(calls_a, 7);
  EXPECT_EQ(calls_b, 7);
  EXPECT_EQ(syncs, 1 + 2 * 7);  // once before anything, then after every phase
  for (double t : samples[1]) EXPECT_GE(t, 0.001);
  for (double t : samples[0]) EXPECT_GE(t, 0.0);
}

TEST(LatencyTiming, SyncIsInsideTheTimedInterval) {
  // A step that queues nothing but whose "device work" takes 2 ms in sync().
  TimingPlan plan;
  plan.warmup = 0;
  plan.min_iters = 3;
  const auto samples = time_iterations(plan, [] {}, [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
  ASSERT_EQ(samples.size(), 3u);
  for (double t : samples) EXPECT_GE(t, 0.002);
}

TEST(LatencyTiming, RunsForAtLeastMinSecondsAndMinIters) {
  TimingPlan plan;
  plan.warmup = 0;
  plan.min_iters = 2;
  plan.min_seconds = 0.03;
  const auto start = std::chrono::steady_clock::now();
  const auto samples = time_iterations(plan, [] { std::this_thread::sleep_for(std::chrono::milliseconds(5)); }, {});
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_GE(elapsed, 0.03);
  EXPECT_GE(samples.size(), 2u);
  const double timed = std::accumulate(samples.begin(), samples.end(), 0.0);
  EXPECT_GE(timed, 0.03 - 1e-9 - 0.006);  // the last iteration starts before the 30 ms mark
  // max_iters bounds a --seconds run whose iterations are too fast to count.
  plan.min_seconds = 1e9;
  plan.max_iters = 4;
  EXPECT_EQ(time_iterations(plan, [] {}, {}).size(), 4u);
}

TEST(LatencyTiming, RejectsBadPlans) {
  TimingPlan plan;
  plan.min_iters = 0;
  EXPECT_THROW(time_iterations(plan, [] {}, {}), Error);
  plan = TimingPlan();
  plan.warmup = -1;
  EXPECT_THROW(time_iterations(plan, [] {}, {}), Error);
}

TEST(LatencyTiming, PeakRssIsReported) {
  // Linux: VmHWM covers at least this test binary's own pages.
  EXPECT_GT(peak_rss_mb(), 1.0);
}
