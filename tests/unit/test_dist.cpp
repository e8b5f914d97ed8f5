// Data-parallel groundwork (src/dist): the in-process group's collectives
// (sums in rank order, the same bits on every rank; a count mismatch fails on
// every rank instead of hanging), the TCP hand-out of NCCL's id from rank 0,
// the environment a launcher sets, and NCCL with one rank where a GPU is.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/errors.h"
#include "core/rng.h"
#include "dist/nccl_communicator.h"
#include "dist/rendezvous.h"
#include "dist/thread_group.h"
#include "model/make_backend.h"
#include "../scoped_env.h"

namespace pointnet {
namespace {

// Runs fn(rank) on one thread per rank and waits for all.
template <typename Fn>
void on_every_rank(int n, Fn fn) {
  std::vector<std::thread> threads;
  for (int r = 0; r < n; ++r) threads.emplace_back(fn, r);
  for (std::thread& t : threads) t.join();
}

TEST(ThreadGroup, AllReduceSumsInRankOrderOnEveryRank) {
  const int n = 3;
  const size_t count = 1001;  // not a multiple of the ranks: uneven slices
  std::vector<std::vector<float>> x(n, std::vector<float>(count));
  Rng rng(4);
  for (auto& v : x)
    for (float& e : v) e = rng.uniform(-1e3f, 1e3f);
  std::vector<float> want(count);
  for (size_t i = 0; i < count; ++i) want[i] = (x[0][i] + x[1][i]) + x[2][i];
  ThreadGroup group(n);
  on_every_rank(n, [&](int r) {
    group.rank(r).all_reduce_sum(x[r].data(), count);
    group.rank(r).all_reduce_sum(x[r].data(), 0);  // an empty one, in step
  });
  for (int r = 0; r < n; ++r) EXPECT_EQ(std::memcmp(x[r].data(), want.data(), count * sizeof(float)), 0) << "rank " << r;
}

// In double (SyncBN's statistics): sums in rank order in double, every rank
// the same bits; a rank that passes floats where the others pass doubles fails
// on every rank.
TEST(ThreadGroup, AllReduceSumsDoublesAndRefusesMixedTypes) {
  const int n = 3;
  const size_t count = 257;
  std::vector<std::vector<double>> x(n, std::vector<double>(count));
  Rng rng(5);
  for (auto& v : x)
    for (double& e : v) e = rng.uniform(-1e3f, 1e3f) * (1.0 + 1e-12);  // bits below float's
  std::vector<double> want(count);
  for (size_t i = 0; i < count; ++i) want[i] = (x[0][i] + x[1][i]) + x[2][i];
  ThreadGroup group(n);
  on_every_rank(n, [&](int r) { group.rank(r).all_reduce_sum(x[r].data(), count); });
  for (int r = 0; r < n; ++r) EXPECT_EQ(std::memcmp(x[r].data(), want.data(), count * sizeof(double)), 0) << "rank " << r;

  std::atomic<int> failed{0};
  std::vector<float> as_float(count);
  on_every_rank(n, [&](int r) {
    try {
      if (r == 2) group.rank(r).all_reduce_sum(as_float.data(), count);
      else group.rank(r).all_reduce_sum(x[r].data(), count);
    } catch (const Error& e) {
      if (std::string(e.what()).find("rank 2 passed 257 values of 4 bytes") != std::string::npos) ++failed;
    }
  });
  EXPECT_EQ(failed.load(), n);
}

TEST(ThreadGroup, BroadcastCopiesTheRootsValues) {
  const int n = 4;
  std::vector<std::vector<float>> x(n);
  for (int r = 0; r < n; ++r) x[r].assign(17, static_cast<float>(r));
  ThreadGroup group(n);
  on_every_rank(n, [&](int r) { group.rank(r).broadcast(x[r].data(), 17, 2); });
  for (int r = 0; r < n; ++r) EXPECT_EQ(x[r], std::vector<float>(17, 2.0f)) << "rank " << r;
}

TEST(ThreadGroup, MismatchedCountsFailOnEveryRank) {
  const int n = 3;
  ThreadGroup group(n);
  std::atomic<int> failed{0};
  std::vector<float> buffers[3] = {std::vector<float>(8), std::vector<float>(8), std::vector<float>(8)};
  on_every_rank(n, [&](int r) {
    try {
      group.rank(r).all_reduce_sum(buffers[r].data(), r == 1 ? 7 : 8);
    } catch (const Error& e) {
      if (std::string(e.what()).find("rank 1 passed 7 values") != std::string::npos) ++failed;
    }
  });
  EXPECT_EQ(failed.load(), n);
  // The group is still usable afterwards.
  on_every_rank(n, [&](int r) { group.rank(r).all_reduce_sum(buffers[r].data(), 8); });
}

int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(Rendezvous, RankZeroHandsItsBlobToEveryRank) {
  const int n = 4;
  std::vector<uint8_t> blob(128);
  for (size_t i = 0; i < blob.size(); ++i) blob[i] = static_cast<uint8_t>(i * 37 + 11);
  const int port = free_port();
  std::vector<std::vector<uint8_t>> got(n);
  std::vector<std::string> errors(n);
  on_every_rank(n, [&](int r) {
    DistEnv env;
    env.rank = r;
    env.world_size = n;
    env.master_port = port;
    try {
      got[r] = share_from_rank0(env, r == 0 ? blob : std::vector<uint8_t>{}, 20.0);
    } catch (const Error& e) {
      errors[r] = e.what();
    }
  });
  for (int r = 0; r < n; ++r) {
    EXPECT_EQ(errors[r], "") << "rank " << r;
    EXPECT_EQ(got[r], blob) << "rank " << r;
  }
}

TEST(Rendezvous, NoRankZeroIsAClearErrorAfterTheTimeout) {
  DistEnv env;
  env.rank = 1;
  env.world_size = 2;
  env.master_port = free_port();  // nobody listens there
  try {
    share_from_rank0(env, {}, 0.3);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("127.0.0.1:" + std::to_string(env.master_port)), std::string::npos) << m;
    EXPECT_NE(m.find("nobody answered"), std::string::npos) << m;
  }
}

using testing::ScopedEnv;

TEST(DistEnv, ReadsOursThenTorchrunsNames) {
  {
    ScopedEnv env;
    const DistEnv e = dist_env_from_environment();
    EXPECT_EQ(e.rank, 0);
    EXPECT_EQ(e.world_size, 1);
  }
  {
    ScopedEnv env;
    env.set("POINTNET_WORLD_SIZE", "4");
    env.set("POINTNET_RANK", "3");
    env.set("WORLD_SIZE", "8");  // ours win where both are set
    env.set("LOCAL_RANK", "1");
    env.set("MASTER_ADDR", "10.0.0.7");
    env.set("POINTNET_MASTER_PORT", "12345");
    const DistEnv e = dist_env_from_environment();
    EXPECT_EQ(e.world_size, 4);
    EXPECT_EQ(e.rank, 3);
    EXPECT_EQ(e.local_rank, 1);
    EXPECT_EQ(e.master_address, "10.0.0.7");
    EXPECT_EQ(e.master_port, 12345);
  }
  {
    ScopedEnv env;
    env.set("RANK", "1");  // a stray rank without a world size: still one process
    env.set("MASTER_PORT", "not a port");
    const DistEnv e = dist_env_from_environment();
    EXPECT_EQ(e.world_size, 1);
    EXPECT_EQ(e.rank, 0);
  }
  for (const auto& [name, value] : std::vector<std::pair<const char*, const char*>>{
           {"POINTNET_RANK", "2"}, {"POINTNET_WORLD_SIZE", "two"}, {"POINTNET_MASTER_PORT", "70000"}}) {
    ScopedEnv env;
    env.set("POINTNET_WORLD_SIZE", "2");
    env.set(name, value);
    try {
      dist_env_from_environment();
      ADD_FAILURE() << name << "=" << value << " was accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  }
}

// One rank on one GPU: the sum over one rank is the values themselves, read
// back after the stream (NCCL queues on the backend's stream).
TEST(Nccl, OneRankAllReduceAndBroadcast) {
  std::string why;
  if (!nccl_available(&why)) GTEST_SKIP() << "no CUDA device: " << why;
  std::unique_ptr<Backend<float>> be = make_backend("cuda", "fp32");
  std::unique_ptr<Communicator> comm = make_nccl_communicator(*be, 0, 1, nccl_unique_id());
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  const std::vector<float> host = {1.5f, -2.0f, 3.25f, 1e-30f};
  float* x = be->allocate(host.size());
  be->upload(x, host.data(), host.size());
  comm->all_reduce_sum(x, host.size());
  comm->broadcast(x, host.size(), 0);
  std::vector<float> back(host.size());
  be->download(back.data(), x, back.size());
  EXPECT_EQ(back, host);
  // Doubles: two floats' worth of device memory per value.
  const std::vector<double> host_d = {1.0 + 1e-12, -3.5};
  double* xd = reinterpret_cast<double*>(x);
  be->upload(x, reinterpret_cast<const float*>(host_d.data()), 2 * host_d.size());
  comm->all_reduce_sum(xd, host_d.size());
  std::vector<double> back_d(host_d.size());
  be->download(reinterpret_cast<float*>(back_d.data()), x, 2 * host_d.size());
  be->release(x);
  EXPECT_EQ(back_d, host_d);
}

}  // namespace
}  // namespace pointnet
