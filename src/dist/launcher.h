// `pointnet train --gpus N`: one process per GPU of this host, each the same
// command with the rank's environment (rendezvous.h: POINTNET_RANK,
// POINTNET_WORLD_SIZE, POINTNET_LOCAL_RANK, POINTNET_MASTER_ADDR/PORT) and
// CUDA_VISIBLE_DEVICES naming its one GPU. Waits for all of them; the first
// that fails stops the others. POSIX (fork + exec of /proc/self/exe).
#pragma once
#include <string>
#include <vector>

namespace pointnet {

// argv: the command line to run in every rank (argv[0] first, --gpus
// removed). Returns the exit status for the launcher: 0 when every rank
// succeeded, 130 when they stopped on Ctrl-C (rank 0 saved a checkpoint),
// else 1 after saying which rank failed and how.
int launch_local_ranks(int ranks, const std::vector<std::string>& argv);

// argv without "--gpus N" / "--gpus=N".
std::vector<std::string> without_gpus_option(const std::vector<std::string>& argv);

}  // namespace pointnet
