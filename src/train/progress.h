// Progress reporting for long loops (epochs, evaluation, packing).
//
// On a terminal: one line redrawn in place with '\r' (label, bar, done/total,
// stats, elapsed, ETA), at most ~10 redraws a second. Elsewhere (logs, pipes,
// CI): plain lines, at most one per ~10% of progress or 30 seconds, plus the
// final line, so log files stay short.
#pragma once
#include <chrono>
#include <cstdint>
#include <iostream>
#include <string>

namespace pointnet {

// "12s", "1m05s", "2h03m"; "?" for a negative or non-finite value.
std::string format_duration(double seconds);

class Progress {
 public:
  // total <= 0: unknown; no bar, percentage or ETA. The terminal mode is chosen
  // only when `out` is std::cerr and stderr is a terminal.
  Progress(std::string label, int64_t total, std::ostream& out = std::cerr);

  // For tests and --log-format: always (true) or never (false) use plain lines.
  void force_plain(bool plain) { interactive_ = !plain; }

  void update(int64_t done, const std::string& stats);
  // Prints the final line (with elapsed time and `summary`); later calls do nothing.
  void finish(const std::string& summary);

 private:
  using Clock = std::chrono::steady_clock;
  double elapsed() const;
  std::string status_text(int64_t done, const std::string& stats, bool with_eta) const;

  std::string label_;
  int64_t total_;
  std::ostream& out_;
  bool interactive_ = false;
  bool finished_ = false;
  Clock::time_point start_;
  Clock::time_point last_print_;
  bool printed_ = false;
  int64_t last_done_ = 0;           // done at the last plain line
  int64_t done_ = 0;                // latest update
  size_t last_width_ = 0;           // length of the last in-place line, to blank leftovers
};

}  // namespace pointnet
