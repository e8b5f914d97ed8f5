// RUN_DIR/metrics.jsonl: one JSON object per line, one line per event
// (epoch summaries, evaluations), flushed at once so `tail -f` and plotting
// scripts see it live.
#pragma once
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

namespace pointnet {

class MetricsLog {
 public:
  // append = false starts a fresh file. Throws pointnet::Error if it cannot be opened.
  MetricsLog(std::string path, bool append);

  // `record` must be a JSON object; written compactly on one line, then flushed.
  void write(const nlohmann::json& record);

  const std::string& path() const { return path_; }

  // For resuming from a checkpoint of `epoch`: keeps records whose numeric
  // "epoch" is <= epoch and records without one (run headers); drops later
  // epochs and lines that are not JSON objects (a line torn by a crash).
  // Rewrites atomically; a missing file is left missing.
  static void truncate_after_epoch(const std::string& path, int epoch);

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace pointnet
