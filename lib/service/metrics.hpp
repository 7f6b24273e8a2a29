// The Prometheus textfile the daemon writes after each sweep, for
// node_exporter's textfile collector: when the last sweep ran, how long,
// whether it succeeded, and its counts per rule, stage, action and store.
#pragma once

#include <chrono>
#include <optional>
#include <string>

#include "util/error.hpp"
#include "report/report.hpp"

namespace retentiond {

// What the daemon knows of one finished sweep.
struct SweepRecord {
  std::chrono::system_clock::time_point started;
  std::chrono::duration<double> duration{};
  bool dry_run = false;
  bool interrupted = false;                // stopped between batches at shutdown
  ExitCode code = ExitCode::ok;            // the worst failure, or ok
  std::optional<std::string> setup_error;  // the sweep did not start (no report)
  Report report;

  // Ended with nothing failed and nothing left undone.
  bool success() const { return code == ExitCode::ok && !interrupted && !setup_error; }
  // Entries that failed, plus one for a sweep that did not start.
  int errors() const;
};

// The text exposition format, one metric family per count.
std::string render_metrics(const SweepRecord& record);

}  // namespace retentiond
