// Data-parallel training's collective operations (issue 8), one interface over
// the transports: ranks as threads of one process (ThreadGroup: the CPU's,
// and the reference every transport must agree with) and NCCL across GPUs and
// hosts (make_nccl_communicator, CUDA builds with NCCL).
//
// Every rank calls the same collectives in the same order with the same
// counts (as NCCL requires); a rank that calls with another count is an error
// on every rank, never a hang or a silent partial sum.
#pragma once
#include <cstddef>

namespace pointnet {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x(count) = the sum over ranks of every rank's x(count), in place, on every
  // rank (OVERWRITES x). x lives in the memory of the rank's backend; a CUDA
  // communicator queues the sum on that backend's stream and returns at once.
  virtual void all_reduce_sum(float* x, size_t count) = 0;
  // The same in double (SyncBN's statistics: sums of many rows that float
  // would round).
  virtual void all_reduce_sum(double* x, size_t count) = 0;
  // x(count) = root's x(count) on every rank (OVERWRITES x on the others).
  virtual void broadcast(float* x, size_t count, int root) = 0;
};

}  // namespace pointnet
