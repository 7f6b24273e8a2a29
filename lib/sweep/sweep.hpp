// The sweep: for every rule and stage, what is past its period (a plan), and
// in a real sweep acting on it batch by batch, each batch committed with its
// audit entry. Written once over the stores; see sqlite_store.hpp for what
// differs per kind.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "report/report.hpp"
#include "stores/store.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace retentiond {

struct SweepOptions {
  bool dry_run = true;
  std::vector<std::string> rules;  // empty: every rule
  Day as_of;
  std::filesystem::path state_dir;
  // The policy's busy_timeout unless set here.
  std::optional<std::chrono::milliseconds> busy_timeout;
  // Set by an approved sweep (approval/approved_plan.hpp): named in every
  // audit entry. A policy with require_approval refuses a real sweep without.
  std::string plan_sha256;
  std::string approved_by;
};

struct SweepProgress {
  enum class Phase { counting, acting, finished };
  std::string rule;
  int stage = 0;
  std::string store;
  std::int64_t batch = 0;  // batches committed so far in this entry
  Phase phase = Phase::counting;
  // What the entry acts on, known once counted; kUnknown while a store that
  // counts as it acts (files) acts.
  static constexpr std::int64_t kUnknown = -1;
  std::int64_t matched = 0;
  std::int64_t done = 0;  // records changed so far
};

// How the daemon steers a sweep from another thread.
struct SweepControl {
  const std::atomic<bool>* stop = nullptr;  // checked between batches
  std::function<void(const SweepProgress&)> on_batch;
  // Every step of every report entry: counting, each batch, finished.
  std::function<void(const SweepProgress&)> on_progress;
};

struct SweepOutcome {
  Report report;
  ExitCode code = ExitCode::ok;  // the worst failure, or ok
  bool interrupted = false;      // stopped between batches by `stop`
};

// The day `clock` shows in the policy's zone.
Day today(const Policy& policy, const Clock& clock);

// Checks that `as_of` may be used: a real sweep refuses a day after today.
Result<void> check_as_of(const Policy& policy, Day as_of, bool dry_run, const Clock& clock);

// One entry of a plan before any store is opened: a rule's stage in one
// place, and the anchor days it acts on at the plan's as_of.
struct StageTask {
  const Stage* stage = nullptr;
  DayWindow window;
  Place place = Place::live;
  std::string store;  // where the stage acts
};

// The entries a plan at `as_of` has for `rule`, in report order: each stage
// in the live store and, after an archive stage, in the archive as well.
std::vector<StageTask> stage_tasks(const Rule& rule, Day as_of);

// Runs a plan (dry_run) or a sweep. Setup failures that happen before any
// store is touched (the state directory or audit log not writable, another
// sweep running) are returned as an Error; failures of single rules are in
// the report and in SweepOutcome::code.
Result<SweepOutcome> run_sweep(const Policy& policy, const SweepOptions& options,
                               const Clock& clock, Logger& log, const SweepControl& control = {});

}  // namespace retentiond
