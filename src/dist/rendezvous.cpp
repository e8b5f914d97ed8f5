#include "dist/rendezvous.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <thread>

#include "core/errors.h"

namespace pointnet {

namespace {

constexpr uint32_t kMagic = 0x564e5250;  // "PRNV": a pointnet rendezvous, version below
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxBlob = 1 << 20;

using Clock = std::chrono::steady_clock;

// An environment variable as an integer in [lo, hi]; `fallback` when unset.
int env_int(const char* ours, const char* theirs, int fallback, int lo, int hi) {
  const char* name = std::getenv(ours) ? ours : theirs;
  const char* text = std::getenv(name);
  if (!text) return fallback;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi)
    fail(name, "='", text, "': expected a whole number in ", lo, "..", hi);
  return static_cast<int>(v);
}

std::string env_text(const char* ours, const char* theirs, const std::string& fallback) {
  if (const char* v = std::getenv(ours)) return v;
  if (const char* v = std::getenv(theirs)) return v;
  return fallback;
}

struct Socket {
  int fd = -1;
  explicit Socket(int f = -1) : fd(f) {}
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() {
    if (fd >= 0) ::close(fd);
  }
};

double seconds_left(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

// Waits until fd is readable (or writable); false on timeout.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const double left = seconds_left(deadline);
    if (left <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, static_cast<int>(left * 1000) + 1);
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

void send_all(int fd, const void* data, size_t n, Clock::time_point deadline, const std::string& where) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    if (!wait_for(fd, POLLOUT, deadline)) fail(where, ": timed out sending");
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) fail(where, ": send failed (", std::strerror(errno), ")");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

void recv_all(int fd, void* data, size_t n, Clock::time_point deadline, const std::string& where) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    if (!wait_for(fd, POLLIN, deadline)) fail(where, ": timed out waiting for data");
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    if (k == 0) fail(where, ": the other side closed the connection early");
    if (k < 0) fail(where, ": receive failed (", std::strerror(errno), ")");
    p += k;
    n -= static_cast<size_t>(k);
  }
}

std::vector<uint8_t> serve(const DistEnv& env, const std::vector<uint8_t>& blob, Clock::time_point deadline) {
  const std::string where = "rendezvous (rank 0 listening on port " + std::to_string(env.master_port) + ")";
  if (blob.empty() || blob.size() > kMaxBlob) fail(where, ": a blob of ", blob.size(), " bytes, expected 1..", kMaxBlob);
  Socket listener(::socket(AF_INET, SOCK_STREAM, 0));
  if (listener.fd < 0) fail(where, ": socket failed (", std::strerror(errno), ")");
  const int yes = 1;
  ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = htons(static_cast<uint16_t>(env.master_port));
  if (::bind(listener.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    fail(where, ": cannot listen there (", std::strerror(errno), "); set POINTNET_MASTER_PORT to a free port");
  if (::listen(listener.fd, env.world_size) != 0) fail(where, ": listen failed (", std::strerror(errno), ")");
  std::vector<bool> served(env.world_size, false);
  for (int done = 1; done < env.world_size;) {
    if (!wait_for(listener.fd, POLLIN, deadline))
      fail(where, ": timed out with ", done - 1, " of ", env.world_size - 1, " other ranks connected");
    Socket peer(::accept(listener.fd, nullptr, nullptr));
    if (peer.fd < 0) continue;
    // A stray connection that says nothing must not hold the others up for long.
    const auto hello_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
    uint32_t hello[3];  // magic, version, rank
    try {
      recv_all(peer.fd, hello, sizeof hello, hello_deadline, where);
    } catch (const Error&) {
      continue;  // a stray connection: not one of ours
    }
    if (hello[0] != kMagic) continue;
    if (hello[1] != kVersion)
      fail(where, ": a rank speaks rendezvous version ", hello[1], ", this one ", kVersion, " (mixed pointnet builds?)");
    const uint32_t r = hello[2];
    if (r < 1 || r >= static_cast<uint32_t>(env.world_size) || served[r])
      fail(where, ": a process says it is rank ", r, ", expected each of 1..", env.world_size - 1, " once");
    const uint32_t reply[2] = {kMagic, static_cast<uint32_t>(blob.size())};
    send_all(peer.fd, reply, sizeof reply, deadline, where);
    send_all(peer.fd, blob.data(), blob.size(), deadline, where);
    served[r] = true;
    ++done;
  }
  return blob;
}

std::vector<uint8_t> fetch(const DistEnv& env, Clock::time_point deadline) {
  const std::string where = "rendezvous (rank " + std::to_string(env.rank) + " connecting to " + env.master_address +
                            ":" + std::to_string(env.master_port) + ")";
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int g = ::getaddrinfo(env.master_address.c_str(), std::to_string(env.master_port).c_str(), &hints, &found);
  if (g != 0) fail(where, ": cannot resolve the address (", ::gai_strerror(g), ")");
  sockaddr_in addr;
  std::memcpy(&addr, found->ai_addr, sizeof addr);
  ::freeaddrinfo(found);
  // Rank 0 may not be listening yet: retry until the deadline.
  for (;;) {
    Socket s(::socket(AF_INET, SOCK_STREAM, 0));
    if (s.fd < 0) fail(where, ": socket failed (", std::strerror(errno), ")");
    if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      const uint32_t hello[3] = {kMagic, kVersion, static_cast<uint32_t>(env.rank)};
      send_all(s.fd, hello, sizeof hello, deadline, where);
      uint32_t reply[2];
      recv_all(s.fd, reply, sizeof reply, deadline, where);
      if (reply[0] != kMagic || reply[1] == 0 || reply[1] > kMaxBlob)
        fail(where, ": the answer is not a pointnet rendezvous (is another program on that port?)");
      std::vector<uint8_t> blob(reply[1]);
      recv_all(s.fd, blob.data(), blob.size(), deadline, where);
      return blob;
    }
    if (seconds_left(deadline) <= 0)
      fail(where, ": nobody answered (", std::strerror(errno), "); is rank 0 running, and are POINTNET_MASTER_ADDR ",
           "and POINTNET_MASTER_PORT the same for every rank?");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace

std::vector<std::string> cuda_visible_devices() {
  std::vector<std::string> ids;
  const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
  if (!visible || !*visible) return ids;
  std::stringstream in(visible);
  for (std::string id; std::getline(in, id, ',');) ids.push_back(id);
  return ids;
}

std::string gpu_of_rank(const std::vector<std::string>& ids, int rank) {
  if (rank < 0 || rank >= static_cast<int>(ids.size()))
    fail("rank ", rank, " needs a GPU, but CUDA_VISIBLE_DEVICES='", std::getenv("CUDA_VISIBLE_DEVICES"), "' lists ",
         ids.size());
  return ids[rank];
}

DistEnv dist_env_from_environment() {
  DistEnv e;
  e.world_size = env_int("POINTNET_WORLD_SIZE", "WORLD_SIZE", 1, 1, 65536);
  // One process: nothing else is read (a stray RANK or MASTER_PORT from
  // another tool must not turn a plain run into a rank that waits).
  if (e.world_size == 1) return e;
  e.rank = env_int("POINTNET_RANK", "RANK", 0, 0, e.world_size - 1);
  e.local_rank = env_int("POINTNET_LOCAL_RANK", "LOCAL_RANK", 0, 0, 1023);
  e.master_address = env_text("POINTNET_MASTER_ADDR", "MASTER_ADDR", e.master_address);
  e.master_port = env_int("POINTNET_MASTER_PORT", "MASTER_PORT", e.master_port, 1, 65535);
  return e;
}

std::vector<uint8_t> share_from_rank0(const DistEnv& env, const std::vector<uint8_t>& blob, double timeout_seconds) {
  if (env.world_size < 1 || env.rank < 0 || env.rank >= env.world_size)
    fail("rendezvous: rank ", env.rank, " of a world of ", env.world_size);
  if (env.world_size == 1) return blob;
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(timeout_seconds));
  return env.rank == 0 ? serve(env, blob, deadline) : fetch(env, deadline);
}

}  // namespace pointnet
