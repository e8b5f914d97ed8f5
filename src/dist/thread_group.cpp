#include "dist/thread_group.h"

#include <algorithm>

#include "core/errors.h"

namespace pointnet {

class ThreadGroup::Member final : public Communicator {
 public:
  Member(ThreadGroup& group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_.size(); }

  void all_reduce_sum(float* x, size_t count) override { sum_in_rank_order(x, count); }
  void all_reduce_sum(double* x, size_t count) override { sum_in_rank_order(x, count); }

  void broadcast(float* x, size_t count, int root) override {
    if (root < 0 || root >= size()) fail("broadcast: root ", root, " is not a rank of a group of ", size());
    publish(x, count, "broadcast");
    const float* from = static_cast<const float*>(group_.buffers_[root]);
    if (rank_ != root) std::copy(from, from + count, x);
    group_.arrive();
  }

 private:
  // Each rank sums its slice of the elements over all ranks, in rank order, in
  // the element type (the sums' double store holds a float exactly).
  template <typename V>
  void sum_in_rank_order(V* x, size_t count) {
    publish(x, count, "all_reduce_sum");
    const int n = size();
    const size_t first = count * rank_ / n, last = count * (rank_ + 1) / n;
    for (size_t i = first; i < last; ++i) {
      V s = static_cast<const V*>(group_.buffers_[0])[i];
      for (int r = 1; r < n; ++r) s += static_cast<const V*>(group_.buffers_[r])[i];
      group_.sums_[i] = s;
    }
    group_.arrive();
    for (size_t i = 0; i < count; ++i) x[i] = static_cast<V>(group_.sums_[i]);
    group_.arrive();  // nobody starts the next collective while a rank still copies
  }

  // Every rank's buffer, count and element size become visible to all; a count
  // or type that differs anywhere fails on every rank alike (they all see the
  // same values).
  template <typename V>
  void publish(V* x, size_t count, const char* what) {
    group_.buffers_[rank_] = x;
    group_.counts_[rank_] = count;
    group_.element_sizes_[rank_] = sizeof(V);
    if (rank_ == 0) group_.sums_.resize(count);  // before the barrier: no rank reads sums_ until after it
    group_.arrive();
    for (int r = 0; r < size(); ++r)
      if (group_.counts_[r] != group_.counts_[0] || group_.element_sizes_[r] != group_.element_sizes_[0]) {
        group_.arrive();  // keep the ranks in step before all of them throw
        fail(what, ": rank ", r, " passed ", group_.counts_[r], " values of ", group_.element_sizes_[r],
             " bytes, rank 0 passed ", group_.counts_[0], " of ", group_.element_sizes_[0],
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
  element_sizes_.assign(size, 0);
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
