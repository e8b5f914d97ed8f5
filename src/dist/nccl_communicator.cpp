#include "dist/nccl_communicator.h"

#include <cstdlib>
#include <cstring>

#include "core/errors.h"

#if defined(POINTNET_HAS_NCCL) && defined(POINTNET_HAS_CUDA)
#include <cuda_runtime.h>
#include <nccl.h>

#include "cuda/cuda_backend.h"

#define NCCL_CHECK(call)                                                                                  \
  do {                                                                                                    \
    const ncclResult_t pn_nccl_ = (call);                                                                 \
    if (pn_nccl_ != ncclSuccess)                                                                          \
      ::pointnet::fail(__FILE__, ":", __LINE__, ": NCCL error ", ncclGetErrorString(pn_nccl_), " in " #call); \
  } while (0)

namespace pointnet {

namespace {

void keep_nvls_off() { setenv("NCCL_NVLS_ENABLE", "0", 1); }

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(CudaBackend& backend, int rank, int size, const ncclUniqueId& id)
      : stream_(static_cast<cudaStream_t>(backend.stream())), rank_(rank), size_(size) {
    NCCL_CHECK(ncclCommInitRank(&comm_, size, id, rank));
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void all_reduce_sum(float* x, size_t count) override {
    NCCL_CHECK(ncclAllReduce(x, x, count, ncclFloat32, ncclSum, comm_, stream_));
  }
  void all_reduce_sum(double* x, size_t count) override {
    NCCL_CHECK(ncclAllReduce(x, x, count, ncclFloat64, ncclSum, comm_, stream_));
  }
  void broadcast(float* x, size_t count, int root) override {
    if (root < 0 || root >= size_) fail("broadcast: root ", root, " is not a rank of ", size_);
    NCCL_CHECK(ncclBroadcast(x, x, count, ncclFloat32, root, comm_, stream_));
  }

 private:
  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_;
  int rank_, size_;
};

}  // namespace

bool nccl_available(std::string* why) {
  return cuda_device_available(why);
}

std::vector<uint8_t> nccl_unique_id() {
  keep_nvls_off();
  ncclUniqueId id;
  NCCL_CHECK(ncclGetUniqueId(&id));
  return std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(&id), reinterpret_cast<const uint8_t*>(&id) + sizeof id);
}

std::unique_ptr<Communicator> make_nccl_communicator(Backend<float>& backend, int rank, int size,
                                                     const std::vector<uint8_t>& id) {
  auto* cuda = dynamic_cast<CudaBackend*>(&backend);
  if (!cuda) fail("NCCL data parallelism needs --device cuda (the backend is ", backend.name(), ")");
  if (size < 1 || rank < 0 || rank >= size) fail("NCCL: rank ", rank, " of a world of ", size);
  ncclUniqueId nid;
  if (id.size() != sizeof nid) fail("NCCL: a run id of ", id.size(), " bytes, expected ", sizeof nid);
  std::memcpy(&nid, id.data(), sizeof nid);
  keep_nvls_off();
  return std::make_unique<NcclCommunicator>(*cuda, rank, size, nid);
}

}  // namespace pointnet

#else  // no NCCL in this build

namespace pointnet {

namespace {
constexpr const char* kNoNccl =
    "this build has no NCCL (multi-GPU training needs the CUDA toolkit's NCCL, libnccl, found at build time)";
}

bool nccl_available(std::string* why) {
  if (why) *why = kNoNccl;
  return false;
}

std::vector<uint8_t> nccl_unique_id() { fail(kNoNccl); }

std::unique_ptr<Communicator> make_nccl_communicator(Backend<float>&, int, int, const std::vector<uint8_t>&) {
  fail(kNoNccl);
}

}  // namespace pointnet

#endif
