// The progress of a sweep or plan at a terminal: one line per rule and
// stage on stderr, rewritten in place ("\r" and erase-line) as batches
// commit, ended with a newline when the entry is done:
//
//   amo-health-data stage 1 archive on amo: 412,000 / 1,000,000 (41%)  88,500/s  6s left
//
// Only for people at a terminal: the command decides whether to show it
// (not when stderr is not a terminal, with --format json, under systemd, or
// with --quiet).
#pragma once

#include <chrono>
#include <functional>
#include <iosfwd>
#include <string>

#include "sweep/sweep.hpp"

namespace retentiond {

class ProgressLine {
 public:
  using SteadyNow = std::function<std::chrono::steady_clock::time_point()>;
  // `verb` is "sweep" or "plan".
  ProgressLine(
      std::ostream& err, std::string verb,
      SteadyNow now = [] { return std::chrono::steady_clock::now(); });
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  void update(const SweepProgress& progress);
  // Ends the line in progress, if any.
  void finish();

  // The text of one update, without the terminal's control characters.
  static std::string text(const SweepProgress& progress, std::chrono::duration<double> elapsed);

 private:
  std::ostream& err_;
  std::string verb_;
  SteadyNow now_;
  std::string current_;  // rule/stage/store of the line being rewritten
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_drawn_;
  bool open_ = false;
};

// Whether stderr is a terminal a person watches, outside systemd.
bool stderr_is_interactive();

}  // namespace retentiond
