// Runs fn(i) for i in [0, n) over OpenMP threads. An exception cannot leave an
// OpenMP region (the program would terminate), so each is caught inside, and
// the one from the lowest index is rethrown afterwards: the reported error does
// not depend on thread timing. `threads` > 0 overrides the thread count (the
// synthetic writer oversubscribes: its work waits on fsync).
#pragma once
#include <cstddef>
#include <exception>
#include <limits>

#include <omp.h>

namespace pointnet {

template <typename Fn>
void parallel_for(size_t n, Fn fn, int threads = 0, int chunk = 1) {
  std::exception_ptr first;
  size_t first_index = std::numeric_limits<size_t>::max();
  const int team = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for num_threads(team) schedule(dynamic, chunk)
  for (long long i = 0; i < static_cast<long long>(n); ++i) {
    try {
      fn(static_cast<size_t>(i));
    } catch (...) {
#pragma omp critical(pointnet_parallel_for_error)
      if (static_cast<size_t>(i) < first_index) {
        first_index = static_cast<size_t>(i);
        first = std::current_exception();
      }
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace pointnet
