"""Timing and statistics of the peers, as src/bench/latency_stats.{h,cpp} does
them for `pointnet bench`, so both print comparable figures under the same JSON
field names: warm-up iterations, then each iteration timed on its own; quantiles
by linear interpolation between the nearest ranks (NumPy's default).
"""
import math
import time


def percentile(samples, q):
    """Position q (n - 1) in the sorted samples, interpolated (latency_stats.cpp)."""
    s = sorted(samples)
    position = q * (len(s) - 1)
    below = int(math.floor(position))
    above = min(below + 1, len(s) - 1)
    return s[below] + (position - below) * (s[above] - s[below])


def time_iterations(step, warmup=3, iters=0, seconds=0.0, sync=lambda: None):
    """Seconds per iteration. As `pointnet bench`: exactly `iters` when given, else
    until `seconds` have passed (at least one), else at least 10 and at least 3 s."""
    if iters > 0:
        min_iters, max_iters, min_seconds = iters, iters, 0.0
    elif seconds > 0:
        min_iters, max_iters, min_seconds = 1, 1 << 30, seconds
    else:
        min_iters, max_iters, min_seconds = 10, 1 << 30, 3.0
    sync()
    for _ in range(warmup):
        step()
        sync()
    samples = []
    start = time.perf_counter()
    while len(samples) < max_iters:
        if len(samples) >= min_iters and time.perf_counter() - start >= min_seconds:
            break
        t0 = time.perf_counter()
        step()
        sync()
        samples.append(time.perf_counter() - t0)
    return samples


def summary(samples, batch):
    """The statistics fields of `pointnet bench --json` (latencies in ms)."""
    n = len(samples)
    mean = sum(samples) / n
    stddev = math.sqrt(sum((t - mean) ** 2 for t in samples) / (n - 1)) if n > 1 else 0.0
    median = percentile(samples, 0.5)
    return {"iters": n, "clouds_per_s": batch / median,
            "latency_ms": {"median": 1e3 * median, "p99": 1e3 * percentile(samples, 0.99),
                           "min": 1e3 * min(samples), "mean": 1e3 * mean, "max": 1e3 * max(samples)},
            "cv": stddev / mean if mean > 0 else 0.0}


def _status_mb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return float(line.split()[1]) / 1024.0  # "VmHWM:   123456 kB"
    except OSError:
        pass
    return 0.0


def peak_rss_mb():
    """Peak resident memory (VmHWM) in MiB, as `pointnet bench` reports it; 0 off Linux."""
    return _status_mb("VmHWM")


def rss_mb():
    """Resident memory now (VmRSS) in MiB: e.g. the interpreter and libraries alone."""
    return _status_mb("VmRSS")
