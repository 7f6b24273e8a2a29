// When the daemon sweeps next: from the policy's schedule, the start of the
// last sweep (kept in the state directory across restarts) and now. Pure
// functions of their arguments, so that catch-up after downtime is tested
// with a fake clock.
#pragma once

#include <date/tz.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "util/error.hpp"
#include "time/schedule.hpp"

namespace retentiond {

struct NextSweep {
  // When to sweep; sys_seconds::max() when the schedule never runs.
  std::chrono::sys_seconds at = std::chrono::sys_seconds::max();
  // A scheduled time passed since the last sweep (the daemon was down, or a
  // sweep ran past it): `at` is `now + delay`, not a time of the schedule.
  bool catch_up = false;
  // The scheduled time that was missed (catch_up), or `at`.
  std::chrono::sys_seconds due = std::chrono::sys_seconds::max();
};

// The next sweep after one that started at `last_start`. When a scheduled
// time fell in (last_start, now], it was missed: the sweep is due `delay`
// after now, once, however many times were missed. Without a last sweep (a
// first start, or the record was lost) nothing is known to be missed: the
// next scheduled time after now.
NextSweep next_sweep(const Schedule& schedule, const date::time_zone& zone,
                     std::optional<std::chrono::sys_seconds> last_start,
                     std::chrono::sys_seconds now, std::chrono::seconds delay);

// STATE_DIR/last-sweep (real sweeps) or STATE_DIR/last-plan (the shadow
// mode's plans): the start of the last sweep that ran to its end, one line
// "YYYY-MM-DDTHH:MM:SSZ".
std::filesystem::path last_sweep_path(const std::filesystem::path& state_dir, bool dry_run);

// The recorded start, or nullopt when there is no record. A record that
// cannot be read or parsed is an error (the caller logs it and goes on as if
// there were none).
Result<std::optional<std::chrono::sys_seconds>> read_last_sweep(const std::filesystem::path& file);

// Records `start`, atomically.
Result<void> write_last_sweep(const std::filesystem::path& file, std::chrono::sys_seconds start);

// "2025-03-30T03:15:00Z"
std::string format_utc(std::chrono::sys_seconds t);
// "2025-03-30 05:15:00 CEST", in `zone`.
std::string format_local(std::chrono::sys_seconds t, const date::time_zone& zone);

}  // namespace retentiond
