// SyncBN's plumbing on the GPU (Backend::set_batchnorm_group): the double sums
// BatchNorm and the wide layer take over their rows are gathered, with the
// rank's row count, into one scratch buffer and all-reduced over the group on
// the backend's stream (NCCL queues there and does not wait; a recorded step
// holds it like the gradient all-reduce).
#include "cuda/cuda_common.cuh"
#include "dist/communicator.h"

namespace pointnet {

void CudaBackend::set_batchnorm_group(Communicator* group) { s_->batchnorm_group = group; }

namespace cuda {

namespace {
__global__ void gather_kernel(double* out, const double* part, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = part[i];
}
__global__ void set_kernel(double* out, double value) { *out = value; }
}  // namespace

bool synchronised(const State& s) { return s.batchnorm_group && s.batchnorm_group->size() > 1; }

double* group_sums(State& s, State::Slot slot, std::initializer_list<std::pair<const double*, int>> parts,
                   int rows) {
  PN_CHECK(slot == State::kGroupSums || slot == State::kGroupSums2);
  size_t total = 1;
  for (const auto& part : parts) total += static_cast<size_t>(part.second);
  double* out = static_cast<double*>(s.scratch(slot, total * sizeof(double)));
  size_t at = 0;
  for (const auto& part : parts) {
    if (part.second > 0) {
      gather_kernel<<<(part.second + kBlock - 1) / kBlock, kBlock, 0, s.stream>>>(out + at, part.first, part.second);
      CUDA_CHECK_LAUNCH();
    }
    at += static_cast<size_t>(part.second);
  }
  set_kernel<<<1, 1, 0, s.stream>>>(out + at, static_cast<double>(rows));
  CUDA_CHECK_LAUNCH();
  s.batchnorm_group->all_reduce_sum(out, total);
  return out;
}

}  // namespace cuda
}  // namespace pointnet
