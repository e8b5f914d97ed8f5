#include "dist/thread_group.h"

#include <algorithm>

#include "core/errors.h"

namespace pointnet {

class ThreadGroup::Member final : public Communicator {
 public:
  Member(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }

  void all_reduce_sum(float* x, size_t count) override {
    publish(x, count, "all_reduce_sum");
    // Each rank sums its slice of the elements over all ranks, in rank order.
    const int n = size();
    const size_t first = count * rank_ / n, last = count * (rank_ + 1) / n;
    for (size_t i = first; i < last; ++i) {
      float s = group_.buffers_[0][i];
      for (int r = 1; r < n; ++r) s += group_.buffers_[r][i];
      group_.sums_[i] = s;
    }
    group_.arrive();
    std::copy(group_.sums_.begin(), group_.sums_.begin() + static_cast<std::ptrdiff_t>(count), x);
    group_.arrive();  // nobody starts the next collective while a rank still copies
  }

  void broadcast(float* x, size_t count, int root) override {
    if (root < 0 || root >= size()) fail("broadcast: root ", root, " is not a rank of a group of ", size());
    publish(x, count, "broadcast");
    if (rank_ != root) std::copy(group_.buffers_[root], group_.buffers_[root] + count, x);
    group_.arrive();
  }

 private:
  // Every rank's buffer and count become visible to all; a count that differs
  // anywhere fails on every rank alike (they all see the same counts).
  void publish(float* x, size_t count, const char* what) {
    group_.buffers_[rank_] = x;
    group_.counts_[rank_] = count;
    if (rank_ == 0) group_.sums_.resize(count);  // before the barrier: no rank reads sums_ until after it
    group_.arrive();
    for (int r = 0; r < size(); ++r)
      if (group_.counts_[r] != group_.counts_[0]) {
        group_.arrive();  // keep the ranks in step before all of them throw
        fail(what, ": rank ", r, " passed ", group_.counts_[r], " values, rank 0 passed ", group_.counts_[0],
             " (every rank must call the same collectives with the same counts)");
      }
  }

  ThreadGroup& group_;
  int rank_;
};

ThreadGroup::ThreadGroup(int size) {
  if (size < 1) fail("ThreadGroup: needs at least one rank, got ", size);
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<Member>(*this, r));
  buffers_.assign(size, nullptr);
  counts_.assign(size, 0);
}

ThreadGroup::~ThreadGroup() = default;

Communicator& ThreadGroup::rank(int r) {
  if (r < 0 || r >= size()) fail("ThreadGroup: rank ", r, " of a group of ", size());
  return *members_[r];
}

void ThreadGroup::arrive() {
  std::unique_lock<std::mutex> lock(mutex_);
  const long long generation = generation_;
  if (++waiting_ == size()) {
    waiting_ = 0;
    ++generation_;
    all_arrived_.notify_all();
    return;
  }
  all_arrived_.wait(lock, [&] { return generation_ != generation; });
}

}  // namespace pointnet
