// Ranks as threads of one process, over host memory: data-parallel training
// on CPU backends, and the reference the other transports are tested against.
// Sums are taken in rank order (0, 1, ..., n-1) for every element, so every
// rank gets the same bits and a run is deterministic.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "dist/communicator.h"

namespace pointnet {

class ThreadGroup {
 public:
  // size >= 1 ranks; rank(r) is handed to the thread that plays rank r.
  explicit ThreadGroup(int size);
  ~ThreadGroup();
  ThreadGroup(const ThreadGroup&) = delete;
  ThreadGroup& operator=(const ThreadGroup&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  Communicator& rank(int r);

 private:
  class Member;
  friend class Member;

  // Blocks until every rank has arrived (a reusable barrier).
  void arrive();

  std::vector<std::unique_ptr<Member>> members_;
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int waiting_ = 0;
  long long generation_ = 0;

  // One collective at a time: what each rank published, and the sums.
  std::vector<void*> buffers_;         // (size) each rank's x
  std::vector<size_t> counts_;         // (size) each rank's count
  std::vector<size_t> element_sizes_;  // (size) sizeof each rank's element (float or double)
  std::vector<double> sums_;           // (count) the reduced values
};

}  // namespace pointnet
