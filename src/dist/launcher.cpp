#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>

#include "core/errors.h"
#include "dist/rendezvous.h"

namespace pointnet {

namespace {

// A TCP port nobody listens on now, for rank 0's rendezvous.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) fail("--gpus: cannot open a socket to find a free port (", std::strerror(errno), ")");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) fail("--gpus: cannot find a free port for the ranks to meet on (", std::strerror(errno), ")");
  return ntohs(addr.sin_port);
}

// The GPU of rank r: the r-th of CUDA_VISIBLE_DEVICES when the user narrowed
// them, else GPU r.
std::string device_of(int r) {
  const std::vector<std::string> ids = cuda_visible_devices();
  return ids.empty() ? std::to_string(r) : gpu_of_rank(ids, r);
}

// The ranks, for the signal handler: Ctrl-C (or a scheduler's SIGTERM) sent
// to the launcher is passed on once to each rank, which saves and stops. The
// ranks run in their own process group, so a terminal's Ctrl-C reaches them
// only this way (twice would make them quit without saving).
constexpr int kMaxRanks = 1024;
volatile sig_atomic_t forwarded_count = 0;
pid_t forwarded_pids[kMaxRanks];

extern "C" void forward_signal(int sig) {
  for (int i = 0; i < forwarded_count; ++i)
    if (forwarded_pids[i] > 0) ::kill(forwarded_pids[i], sig);
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

std::vector<std::string> without_gpus_option(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--gpus") {
      ++i;  // and its value
      continue;
    }
    if (argv[i].rfind("--gpus=", 0) == 0) continue;
    out.push_back(argv[i]);
  }
  return out;
}

int launch_local_ranks(int ranks, const std::vector<std::string>& argv) {
  if (ranks < 2) fail("--gpus: launching needs at least 2 ranks, got ", ranks);
  if (std::getenv("POINTNET_WORLD_SIZE")) fail("--gpus inside a run that already has ranks (POINTNET_WORLD_SIZE is set)");
  const int port = free_port();
  std::vector<std::string> devices;
  for (int r = 0; r < ranks; ++r) devices.push_back(device_of(r));
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::cerr << "train: " << ranks << " ranks on GPUs " << [&] {
    std::string s;
    for (const std::string& d : devices) s += (s.empty() ? "" : ",") + d;
    return s;
  }() << ", meeting on 127.0.0.1:" << port << "\n";

  if (ranks > kMaxRanks) fail("--gpus: at most ", kMaxRanks, " ranks on one host");
  struct sigaction forward {};
  forward.sa_handler = forward_signal;
  sigemptyset(&forward.sa_mask);
  ::sigaction(SIGINT, &forward, nullptr);
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGHUP, &forward, nullptr);
  std::vector<pid_t> children;
  for (int r = 0; r < ranks; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) fail("--gpus: fork failed (", std::strerror(errno), ")");
    if (pid == 0) {  // the rank: its environment, then this program again
      ::signal(SIGINT, SIG_DFL);
      ::signal(SIGTERM, SIG_DFL);
      ::signal(SIGHUP, SIG_DFL);
      ::setpgid(0, 0);                       // Ctrl-C comes through the launcher, once
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);    // a launcher that dies takes its ranks with it
      setenv("POINTNET_RANK", std::to_string(r).c_str(), 1);
      setenv("POINTNET_WORLD_SIZE", std::to_string(ranks).c_str(), 1);
      setenv("POINTNET_LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("POINTNET_MASTER_ADDR", "127.0.0.1", 1);
      setenv("POINTNET_MASTER_PORT", std::to_string(port).c_str(), 1);
      setenv("CUDA_VISIBLE_DEVICES", devices[r].c_str(), 1);
      setenv("NCCL_NVLS_ENABLE", "0", 1);
      ::execv("/proc/self/exe", args.data());
      std::cerr << "error: --gpus: cannot run /proc/self/exe for rank " << r << " (" << std::strerror(errno) << ")\n";
      ::_exit(127);
    }
    children.push_back(pid);
    forwarded_pids[r] = pid;
    forwarded_count = r + 1;
  }
  int result = 0;
  size_t running = children.size();
  // After a failure the others get SIGTERM, and SIGKILL 10 s later: a rank
  // waits in the next collective for the failed one and never stops by itself
  // (rank 0's last checkpoint, written atomically, is the one to resume from).
  std::chrono::steady_clock::time_point kill_at{};
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid < 0 && errno != EINTR) break;
    if (pid <= 0) {
      if (result == 1 && std::chrono::steady_clock::now() >= kill_at)
        for (pid_t other : children)
          if (other > 0) ::kill(other, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int r = 0;
    while (r < ranks && children[r] != pid) ++r;
    if (r == ranks) continue;
    children[r] = 0;
    forwarded_pids[r] = 0;
    --running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const bool stopped = WIFEXITED(status) && WEXITSTATUS(status) == 130;
    if (stopped && result == 0) result = 130;
    if (!ok && !stopped && result != 1) {
      std::cerr << "error: rank " << r << " " << describe(status) << "; stopping the other ranks\n";
      // (Their SIGTERM asks them to stop after the batch; one blocked in a
      // collective with the failed rank never gets there: SIGKILL follows.)
      result = 1;
      kill_at = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      for (pid_t other : children)
        if (other > 0) ::kill(other, SIGTERM);
    }
  }
  return result;
}

}  // namespace pointnet
