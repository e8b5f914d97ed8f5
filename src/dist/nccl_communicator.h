// NCCL communicators over CUDA backends: one process per GPU, the collectives
// queued on the rank's backend stream (so they order with its kernels and can
// sit inside a recorded step). Rank 0 makes the run's id with
// nccl_unique_id(); share_from_rank0 (rendezvous.h) hands it to the others.
// NVLink multicast (NVLS) stays off: NCCL_NVLS_ENABLE=0 is set before NCCL
// starts (on shared hosts it can take the GPUs out of service).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dist/communicator.h"
#include "model/backend.h"

namespace pointnet {

// True when this build has NCCL and a GPU is present; else false with the
// reason in `why`. Never throws.
bool nccl_available(std::string* why = nullptr);

// A new id for one run (rank 0 only). Throws pointnet::Error without NCCL.
std::vector<uint8_t> nccl_unique_id();

// Rank `rank` of `size`, on `backend` (a CUDA backend: its device and stream),
// joined through `id` (nccl_unique_id's bytes, the same on every rank).
// Blocks until every rank has joined. Throws pointnet::Error naming the cause.
std::unique_ptr<Communicator> make_nccl_communicator(Backend<float>& backend, int rank, int size,
                                                     const std::vector<uint8_t>& id);

}  // namespace pointnet
