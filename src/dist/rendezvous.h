// How the ranks of a multi-process run find each other: where rank 0 is and
// who each process is (from the environment the launcher or the user sets),
// and a TCP hand-out of one blob from rank 0 to every other rank (NCCL's
// unique id: every rank must start from the same one).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pointnet {

struct DistEnv {
  int rank = 0;           // this process, 0 .. world_size - 1
  int world_size = 1;     // processes in the run (one per GPU)
  int local_rank = 0;     // this process's GPU on its host
  std::string master_address = "127.0.0.1";  // where rank 0 listens
  int master_port = 29500;
};

// Reads POINTNET_RANK, POINTNET_WORLD_SIZE, POINTNET_LOCAL_RANK,
// POINTNET_MASTER_ADDR and POINTNET_MASTER_PORT, or where one is unset the
// name torchrun uses (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
// MASTER_PORT); unset everywhere: one process (the defaults above). With a
// world size of 1 the other variables are not read. A value that is not a
// number, or out of range, is an error naming the variable.
DistEnv dist_env_from_environment();

// CUDA_VISIBLE_DEVICES as a list of GPU ids (empty when unset or empty).
std::vector<std::string> cuda_visible_devices();
// The rank's GPU from that list: ids[rank]; an error naming the variable when
// the list is too short.
std::string gpu_of_rank(const std::vector<std::string>& ids, int rank);

// Rank 0 listens on env.master_port (every interface) and sends `blob` to
// each of the other world_size - 1 ranks; the others connect to
// master_address:master_port, retrying until `timeout_seconds`, and receive
// it. Returns the blob on every rank (rank 0's own `blob`; the others pass
// an empty one). Errors name the address, port and rank, and what was
// expected: no hang past the timeout.
std::vector<uint8_t> share_from_rank0(const DistEnv& env, const std::vector<uint8_t>& blob,
                                      double timeout_seconds = 300.0);

}  // namespace pointnet
