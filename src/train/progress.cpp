#include "train/progress.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace pointnet {
namespace {

constexpr double kRedrawSeconds = 0.1;      // terminal: ~10 redraws per second
constexpr double kPlainSeconds = 30.0;      // plain: at least this often...
constexpr int64_t kPlainSteps = 10;         // ...or every tenth of the total
constexpr int kBarWidth = 24;

// Columns of the terminal on stderr, or 0 when unknown (not a terminal).
size_t terminal_columns() {
  struct winsize ws {};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds > 1e9) return "?";  // keeps the integer conversion below in range
  int64_t s = std::llround(seconds);
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  }
  return buf;
}

Progress::Progress(std::string label, int64_t total, std::ostream& out)
    : label_(std::move(label)), total_(total), out_(out), start_(Clock::now()), last_print_(start_) {
  // Only stderr can be probed; any other stream (a file, a test buffer) gets plain lines.
  interactive_ = &out == &std::cerr && ::isatty(STDERR_FILENO) == 1;
}

double Progress::elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

std::string Progress::status_text(int64_t done, const std::string& stats, bool with_eta) const {
  std::string s = std::to_string(done);
  if (total_ > 0) {
    char pct[16];
    std::snprintf(pct, sizeof pct, " (%d%%)", static_cast<int>(100.0 * std::min(done, total_) / total_));
    s += "/" + std::to_string(total_) + pct;
  }
  if (!stats.empty()) s += " " + stats;
  double t = elapsed();
  s += " | " + format_duration(t);
  if (with_eta && total_ > 0 && done > 0 && done < total_) {
    s += ", ETA " + format_duration(t * static_cast<double>(total_ - done) / static_cast<double>(done));
  }
  return s;
}

void Progress::update(int64_t done, const std::string& stats) {
  if (finished_) return;
  done_ = done;
  Clock::time_point now = Clock::now();
  double since_print = std::chrono::duration<double>(now - last_print_).count();

  if (interactive_) {
    bool complete = total_ > 0 && done >= total_;
    if (printed_ && since_print < kRedrawSeconds && !complete) return;
    std::string line = label_;
    if (total_ > 0) {
      int filled = static_cast<int>(kBarWidth * std::clamp<double>(static_cast<double>(done) / total_, 0.0, 1.0));
      line += " [" + std::string(filled, '#') + std::string(kBarWidth - filled, '.') + "]";
    }
    line += " " + status_text(done, stats, true);
    // A line wider than the terminal wraps, and '\r' would then redraw only its last row.
    size_t columns = terminal_columns();
    if (columns > 1 && line.size() > columns - 1) line.resize(columns - 1);
    size_t width = line.size();
    if (width < last_width_) line += std::string(last_width_ - width, ' ');  // blank the old tail
    out_ << '\r' << line << std::flush;
    last_width_ = width;
  } else {
    int64_t step = total_ > 0 ? std::max<int64_t>(1, (total_ + kPlainSteps - 1) / kPlainSteps) : 0;
    bool progressed = step > 0 && done - last_done_ >= step;
    if (!progressed && since_print < kPlainSeconds) return;
    out_ << label_ << ": " << status_text(done, stats, true) << "\n" << std::flush;
    last_done_ = done;
  }
  printed_ = true;
  last_print_ = now;
}

void Progress::finish(const std::string& summary) {
  if (finished_) return;
  finished_ = true;
  std::string line = label_ + ": done " + std::to_string(done_);
  if (total_ > 0) line += "/" + std::to_string(total_);
  line += " in " + format_duration(elapsed());
  if (!summary.empty()) line += ", " + summary;
  if (interactive_) {
    if (line.size() < last_width_) line += std::string(last_width_ - line.size(), ' ');
    out_ << '\r';
  }
  out_ << line << "\n" << std::flush;
}

}  // namespace pointnet
