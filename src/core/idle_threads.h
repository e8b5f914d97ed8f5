// How many threads a short pass that waits for all of them (a barrier) should
// use now: the OpenMP thread count, less the cores other processes keep busy
// (the 1-minute load average, as libgomp's OMP_DYNAMIC reckons it), at least
// one. Where another process holds a core, the thread sharing it finishes
// last and the pass waits: verifying a 152 MB pack took 7 ms on one thread
// and 12-16 ms on two on this project's 2-core VM with a busy neighbour
// (4.8 vs 3.8 ms, checksum only, in a quieter moment; docs/benchmarks.md).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdlib>

#include <omp.h>

namespace pointnet {

inline int idle_threads() {
  const int threads = omp_get_max_threads();
  double load[1] = {0};
  if (getloadavg(load, 1) != 1) return threads;
  const int busy = static_cast<int>(std::lround(load[0]));
  return std::clamp(omp_get_num_procs() - busy, 1, threads);
}

}  // namespace pointnet
