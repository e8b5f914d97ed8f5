// End-to-end helpers: run the real `pointnet` binary (fork + exec) with a
// timeout guard, capture its stdout, stderr and exit status, in a fresh temp
// folder per test.
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "../temp_dir.h"

#ifndef POINTNET_BINARY
#error "POINTNET_BINARY must be defined (path to the built pointnet command)"
#endif

namespace pointnet::e2e {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_text(const fs::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

using pointnet::testing::TempDir;

struct RunResult {
  bool timed_out = false;
  bool exited = false;   // ended by exit() (not by a signal)
  int exit_code = -1;    // valid when exited
  int term_signal = 0;   // valid when !exited
  std::string out, err;
  std::string describe() const {
    std::ostringstream s;
    if (timed_out) s << "TIMED OUT; ";
    if (exited) s << "exit " << exit_code;
    else s << "killed by signal " << term_signal;
    s << "\n--- stdout ---\n" << out.substr(0, 4000) << "\n--- stderr ---\n" << err.substr(0, 4000);
    return s.str();
  }
};

// The --threads every run gets: $POINTNET_E2E_THREADS, default 1 ("0": the
// command's own default, all cores). One thread because on a busy 2-core box
// (a build beside the tests) OpenMP's spinning threads make a 0.7 s training
// take 10+ s; checkpoints are the same bytes for any thread count.
inline std::string e2e_threads() {
  const char* env = std::getenv("POINTNET_E2E_THREADS");
  return env && *env ? env : "1";
}

// A started `pointnet` process whose stdout/stderr go to files.
class Process {
 public:
  Process(const std::vector<std::string>& args, const fs::path& log_dir) {
    static std::atomic<int> counter{0};
    const int id = counter++;
    out_path_ = log_dir / ("proc" + std::to_string(id) + ".stdout");
    err_path_ = log_dir / ("proc" + std::to_string(id) + ".stderr");
    std::vector<std::string> argv_s;
    argv_s.push_back(POINTNET_BINARY);
    const std::string threads = e2e_threads();
    const bool has_threads = std::find(args.begin(), args.end(), "--threads") != args.end();
    if (threads != "0" && !has_threads) argv_s.insert(argv_s.end(), {"--threads", threads});
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    const std::string out_s = out_path_.string(), err_s = err_path_.string();
    pid_ = ::fork();
    if (pid_ == 0) {
      int in = ::open("/dev/null", O_RDONLY);
      int o = ::open(out_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int e = ::open(err_s.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || o < 0 || e < 0) ::_exit(126);
      ::dup2(in, 0);
      ::dup2(o, 1);
      ::dup2(e, 2);
      ::setpgid(0, 0);  // its own process group: a stray SIGINT to ours never reaches it
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
  }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }

  pid_t pid() const { return pid_; }
  bool started() const { return pid_ > 0; }
  void signal(int sig) { if (pid_ > 0 && !reaped_) ::kill(pid_, sig); }

  // Reaps the process if it has ended; true if it has.
  bool poll() {
    if (reaped_) return true;
    if (::waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
    return reaped_;
  }

  // Waits up to `timeout`; on timeout kills the process (SIGKILL) and marks timed_out.
  RunResult wait(std::chrono::milliseconds timeout) {
    RunResult r;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!poll()) {
      if (std::chrono::steady_clock::now() > deadline) {
        r.timed_out = true;
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status_, 0);
        break;
      }
      std::this_thread::sleep_for(5ms);
    }
    reaped_ = true;
    if (WIFEXITED(status_)) {
      r.exited = true;
      r.exit_code = WEXITSTATUS(status_);
    } else if (WIFSIGNALED(status_)) {
      r.term_signal = WTERMSIG(status_);
    }
    r.out = read_text(out_path_);
    r.err = read_text(err_path_);
    return r;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  fs::path out_path_, err_path_;
};

// Runs `pointnet args...` to completion (or the timeout) and returns what it did.
inline RunResult run_cli(const std::vector<std::string>& args, const fs::path& log_dir,
                         std::chrono::milliseconds timeout = 60s) {
  Process p(args, log_dir);
  if (!p.started()) {
    RunResult r;
    r.err = "fork failed";
    return r;
  }
  return p.wait(timeout);
}

// A test with its own temp folder: p() names files in it, run() runs the
// command there, ok() expects exit 0.
class CliFixture : public ::testing::Test {
 protected:
  TempDir tmp;
  std::string p(const std::string& rel) const { return (tmp.path / rel).string(); }
  RunResult run(const std::vector<std::string>& args) { return run_cli(args, tmp.path); }
  RunResult ok(const std::vector<std::string>& args) {
    RunResult r = run(args);
    EXPECT_TRUE(r.exited && r.exit_code == 0 && !r.timed_out) << r.describe();
    return r;
  }
  // The bad-input contract: exit status 1 (not a crash), an "error:" line naming `must_name`.
  static void expect_user_error(const RunResult& r, const std::string& must_name) {
    ASSERT_TRUE(r.exited) << "crashed: " << r.describe();
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("error:"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find(must_name), std::string::npos) << "stderr should name '" << must_name << "'\n"
                                                        << r.describe();
  }
  // Runs the command and expects a clean refusal: exit status 1, an "error:" line.
  RunResult fails(const std::vector<std::string>& args) {
    RunResult r = run_cli(args, tmp.path);
    EXPECT_TRUE(r.exited && r.exit_code == 1 && !r.timed_out) << r.describe();
    EXPECT_NE(r.err.find("error:"), std::string::npos) << r.describe();
    return r;
  }
};

inline bool files_equal(const fs::path& a, const fs::path& b) {
  if (!fs::exists(a) || !fs::exists(b)) return false;
  return read_text(a) == read_text(b);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// The first "<Category> <synset>" line of a ShapeNet part folder's
// synsetoffset2category.txt; empty strings when there is none.
inline std::pair<std::string, std::string> first_category(const fs::path& data) {
  std::pair<std::string, std::string> out;
  const auto lines = lines_of(read_text(data / "synsetoffset2category.txt"));
  if (!lines.empty()) std::istringstream(lines[0]) >> out.first >> out.second;
  return out;
}

}  // namespace pointnet::e2e
