#include "dist/host_collectives.h"

namespace pointnet {

namespace {
bool alone(Communicator* comm) { return !comm || comm->size() == 1; }
}  // namespace

std::vector<double> sum_over_ranks(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                                   const std::vector<double>& values) {
  if (alone(comm)) return values;
  std::vector<float> host(values.begin(), values.end());
  float* device = scratch.reserve(host.size());
  be.upload(device, host.data(), host.size());
  comm->all_reduce_sum(device, host.size());
  be.download(host.data(), device, host.size());
  return std::vector<double>(host.begin(), host.end());
}

std::vector<int64_t> sum_counts_over_ranks(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                                           const std::vector<int64_t>& counts) {
  std::vector<double> halves;
  for (int64_t c : counts) {
    halves.push_back(static_cast<double>(c >> 20));
    halves.push_back(static_cast<double>(c & ((int64_t(1) << 20) - 1)));
  }
  halves = sum_over_ranks(comm, be, scratch, halves);
  std::vector<int64_t> sums;
  for (size_t i = 0; i < counts.size(); ++i)
    sums.push_back((static_cast<int64_t>(halves[2 * i]) << 20) + static_cast<int64_t>(halves[2 * i + 1]));
  return sums;
}

bool all_ranks_agree(Communicator* comm, Backend<float>& be, Buffer<float>& scratch, bool ok) {
  return sum_over_ranks(comm, be, scratch, {ok ? 0.0 : 1.0})[0] == 0.0;  // ranks against
}

bool ranks_agree_with_rank0(Communicator* comm, Backend<float>& be, Buffer<float>& scratch,
                            const std::vector<float>& values) {
  if (alone(comm)) return true;
  float* device = scratch.reserve(values.size());
  be.upload(device, values.data(), values.size());
  comm->broadcast(device, values.size(), 0);
  std::vector<float> rank0(values.size());
  be.download(rank0.data(), device, values.size());
  return all_ranks_agree(comm, be, scratch, rank0 == values);
}

}  // namespace pointnet
