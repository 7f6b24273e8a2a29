#include "sweep/sweep.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "audit/audit_log.hpp"
#include "audit/receipts.hpp"
#include "stores/store.hpp"
#include "sweep/batch_pacer.hpp"
#include "util/files.hpp"

namespace retentiond {
namespace {

namespace fs = std::filesystem;

// Serialises real sweeps sharing a state directory (the daemon and a manual
// `retentiond sweep`): two at once would interleave their audit entries.
class SweepLock {
 public:
  static Result<SweepLock> acquire(const fs::path& state_dir) {
    SweepLock lock;
    fs::path path = state_dir / "sweep.lock";
    lock.fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock.fd_ < 0)
      return fail(ExitCode::cant_create, fmt::format("cannot create {}", path.string()));
    if (::flock(lock.fd_, LOCK_EX | LOCK_NB) != 0) {
      return fail(
          ExitCode::temp_fail,
          fmt::format("another sweep is running on the state directory {}; try again when it ends",
                      state_dir.string()));
    }
    return lock;
  }
  SweepLock(SweepLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  SweepLock& operator=(SweepLock&&) = delete;
  ~SweepLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the lock
  }

 private:
  SweepLock() = default;
  int fd_ = -1;
};

// One entry of the report and the work behind it.
struct Task {
  const Rule* rule;
  const Stage* stage;
  DayWindow window;
  Place place;
  std::string store;  // where the stage acts
  bool count_undated;
};

// The stages of a rule as tasks. Stage i acts on anchors in
// (cutoff of stage i+1, cutoff of stage i]: the latest stage a record has
// reached wins. Stages after an archive stage act on the live store and on
// the archive.
std::vector<Task> tasks_of(const Rule& rule, Day as_of) {
  std::vector<Day> cutoffs;
  for (const auto& s : rule.stages) cutoffs.push_back(cutoff_for(as_of, s.after));
  std::vector<Task> tasks;
  const Stage* archive = rule.archive_stage();
  bool archive_undated_counted = false;
  for (std::size_t i = 0; i < rule.stages.size(); ++i) {
    DayWindow w{i + 1 < cutoffs.size() ? std::optional<Day>(cutoffs[i + 1]) : std::nullopt,
                cutoffs[i]};
    tasks.push_back({&rule, &rule.stages[i], w, Place::live, rule.store, i == 0});
    if (archive && rule.stages[i].number > archive->number) {
      tasks.push_back(
          {&rule, &rule.stages[i], w, Place::archive, archive->to, !archive_undated_counted});
      archive_undated_counted = true;
    }
  }
  return tasks;
}

class Sweeper {
 public:
  Sweeper(const Policy& policy, const SweepOptions& options, const Clock& clock, Logger& log,
          const SweepControl& control, AuditLog* audit, const ReceiptLeaves* receipts,
          std::string owner)
      : policy_(policy),
        options_(options),
        clock_(clock),
        log_(log),
        control_(control),
        audit_(audit),
        receipts_(receipts),
        owner_(std::move(owner)) {}

  SweepOutcome run() {
    SweepOutcome outcome;
    Report& report = outcome.report;
    report.as_of = format_day(options_.as_of);
    report.timezone = policy_.timezone;
    report.dry_run = options_.dry_run;
    report.policy_sha256 = policy_.sha256;

    if (audit_ && !settle_outboxes(outcome)) return outcome;

    for (const auto& rule : policy_.rules) {
      if (!options_.rules.empty() && std::find(options_.rules.begin(), options_.rules.end(),
                                               rule.name) == options_.rules.end()) {
        continue;
      }
      bool rule_failed = false;
      bool store_busy = false;
      for (const auto& task : tasks_of(rule, options_.as_of)) {
        ReportEntry entry;
        entry.rule = rule.name;
        entry.category = rule.category;
        entry.basis = rule.basis;
        entry.stage = task.stage->number;
        entry.action = std::string(to_string(task.stage->action));
        entry.store = task.store;
        entry.table = rule.table;
        entry.cutoff = format_day(task.window.through);
        if (!rule_failed && !outcome.interrupted) {
          claimed_elsewhere_ = false;
          auto error = run_task(task, entry, outcome);
          if (error) {
            entry.error = error->message;
            rule_failed = true;
            // A store that stayed locked ends the sweep; a rule another
            // daemon is sweeping only ends that rule.
            store_busy = error->code == ExitCode::temp_fail && !claimed_elsewhere_;
            raise(outcome, error->code);
            log_.error("rule '{}' stage {} on store '{}': {}", rule.name, entry.stage, task.store,
                       error->message);
          }
        }
        report.entries.push_back(std::move(entry));
        tidy_outboxes(outcome);
        if (store_busy) return outcome;  // busy: the sweep ends; the next one resumes
      }
    }
    tidy_outboxes(outcome);
    if (report.totals().conflicts > 0) raise(outcome, ExitCode::data_error);
    return outcome;
  }

 private:
  static void raise(SweepOutcome& outcome, ExitCode code) {
    auto rank = [](ExitCode c) {
      switch (c) {
        case ExitCode::ok:
          return 0;
        case ExitCode::data_error:
          return 1;
        case ExitCode::unavailable:
          return 2;
        case ExitCode::cant_create:
          return 3;
        case ExitCode::temp_fail:
          return 4;
        default:
          return 2;
      }
    };
    if (rank(code) > rank(outcome.code)) outcome.code = code;
  }

  enum class IfMissing { fail, skip, create };

  // The store, opened on first use (read-only in a dry run). A missing store
  // is an error for a live store; an archive that does not exist yet holds
  // nothing, and is created only to archive into (never by a dry run).
  Store* store(const std::string& name, IfMissing if_missing = IfMissing::fail) {
    if (auto it = stores_.find(name); it != stores_.end() && it->second) return it->second.get();
    const StoreSpec& spec = *policy_.find_store(name);
    bool create = if_missing == IfMissing::create && !options_.dry_run;
    if (if_missing != IfMissing::fail && !create && !store_exists(spec)) return nullptr;
    StoreOptions o;
    o.dry_run = options_.dry_run;
    o.create = create;
    o.busy_timeout = options_.busy_timeout.value_or(policy_.busy_timeout);
    o.cache_mib = policy_.cache_mib;
    o.zone = policy_.zone;
    o.hmac_key = policy_.hmac_key;
    o.owner = owner_;
    o.receipts = receipts_;
    if (!options_.dry_run) o.state_dir = options_.state_dir;
    return (stores_[name] = open_store(spec, o)).get();
  }

  // Before anything else: entries that a crash left in the stores' outboxes
  // go into the audit log, so that it accounts for every committed change.
  // The entries appended so far become durable; then their outbox rows go.
  // Runs after each stage, so a long sweep syncs the log once per stage and
  // not once per batch.
  void tidy_outboxes(SweepOutcome& outcome) {
    if (!audit_) return;
    if (receipts_) {
      // Leaves lost to a power cut only cost receipts, never the log: a
      // warning, and the sweep goes on.
      if (auto synced = receipts_->sync(); !synced) log_.warning("{}", synced.error().message);
    }
    if (auto synced = audit_->sync(); !synced) {
      // The outbox rows stay: the next sweep writes the entries again if needed.
      log_.error("{}", synced.error().message);
      raise(outcome, synced.error().code);
      return;
    }
    for (auto& [name, store] : stores_) {
      if (!store) continue;
      try {
        store->forget_outbox_rows();
      } catch (const StoreError& e) {
        // Harmless: settled at the start of the next sweep.
        log_.warning("store '{}': could not tidy the outbox: {}", name, e.what());
      }
    }
  }

  bool settle_outboxes(SweepOutcome& outcome) {
    std::vector<std::string> names;
    for (const auto& rule : policy_.rules) {
      names.push_back(rule.store);
      if (const Stage* a = rule.archive_stage()) names.push_back(a->to);
    }
    for (const auto& name : names) {
      if (stores_.count(name)) continue;
      try {
        Store* s = store(name, IfMissing::skip);
        if (!s) continue;
        auto appended = s->settle_outbox(*audit_);
        if (!appended) {
          log_.error("{}", appended.error().message);
          raise(outcome, appended.error().code);
          return false;
        }
        if (*appended > 0) {
          log_.warning(
              "store '{}': {} audit entr{} of an interrupted sweep written to the audit log", name,
              *appended, *appended == 1 ? "y" : "ies");
        }
      } catch (const StoreError& e) {
        // The rules on this store fail with this error when they reach it;
        // the other rules still run.
        stores_.erase(name);
        log_.debug("store '{}' not settled: {}", name, e.what());
      }
    }
    return true;
  }

  std::optional<Error> run_task(const Task& task, ReportEntry& entry, SweepOutcome& outcome) {
    const Rule& rule = *task.rule;
    const StoreSpec& spec = *policy_.find_store(task.store);
    try {
      Store* s =
          store(task.store, task.place == Place::archive ? IfMissing::skip : IfMissing::fail);
      if (!s) return std::nullopt;  // dry run of an archive not created yet: nothing there
      if (!s->has_table(rule)) {
        if (task.place == Place::archive) return std::nullopt;
        return Error{ExitCode::unavailable,
                     fmt::format("{}: table '{}' does not exist", s->label(), rule.table)};
      }
      Action action = task.stage->action;
      if (auto refused = s->refusal(rule, action)) {
        return Error{ExitCode::unavailable, fmt::format("{}: refused: {}", s->label(), *refused)};
      }
      SweepProgress progress{rule.name, task.stage->number, task.store, 0};
      bool matched_known = true;  // not while a store that counts as it acts acts
      auto report_progress = [&](SweepProgress::Phase phase) {
        progress.phase = phase;
        progress.matched = matched_known ? entry.counts.matched : SweepProgress::kUnknown;
        progress.done = entry.counts.affected;
        if (control_.on_progress) control_.on_progress(progress);
      };
      report_progress(SweepProgress::Phase::counting);
      StageWork work;
      work.rule = &rule;
      work.window = task.window;
      work.action = action;
      work.place = task.place;
      work.live = task.place == Place::archive ? store(rule.store) : nullptr;
      if (options_.dry_run) {
        entry.counts = s->count(work, task.count_undated);
        report_progress(SweepProgress::Phase::finished);
        return std::nullopt;
      }
      work.archive = action == Action::archive ? store(task.stage->to, IfMissing::create) : nullptr;
      // Daemons on several hosts sharing the store: one acts on a rule's
      // stage at a time; the other reports it busy and the next sweep resumes.
      auto claim = s->claim(work);
      const bool count_first = !s->counts_while_acting();
      if (count_first) entry.counts = s->count(work, task.count_undated);
      if (!claim) {
        claimed_elsewhere_ = true;
        return Error{ExitCode::temp_fail,
                     fmt::format("{}: rule '{}' stage {} is being swept by another retentiond; "
                                 "nothing was done here, the next sweep resumes",
                                 s->label(), rule.name, task.stage->number)};
      }
      auto batches = s->batches(work, entry.counts.matched);
      // What the batches of a store that counts while acting found so far.
      auto take_seen = [&] {
        if (count_first) return;
        matched_known = true;
        Counts seen = batches->seen();
        entry.counts.matched = seen.matched;
        entry.counts.held = seen.held;
        entry.counts.undated = task.count_undated ? seen.undated : 0;
      };
      matched_known = count_first;
      BatchPacer pacer(policy_.max_transaction, policy_.batch_size);
      report_progress(SweepProgress::Phase::acting);
      while (true) {
        if (control_.stop && control_.stop->load()) {
          take_seen();
          outcome.interrupted = true;
          log_.info("stopping between batches (rule '{}', stage {})", rule.name,
                    task.stage->number);
          return std::nullopt;
        }
        AuditEntry audit_entry{utc_timestamp(clock_.now()),
                               rule.name,
                               task.stage->number,
                               std::string(to_string(action)),
                               task.store,
                               rule.table,
                               format_day(options_.as_of),
                               entry.cutoff,
                               0,
                               "",
                               policy_.sha256,
                               options_.plan_sha256,
                               options_.approved_by};
        int limit = pacer.next_limit();
        BatchResult batch = batches->next(limit, std::move(audit_entry));
        pacer.record(limit, batch.affected + batch.conflicts, batch.write_lock_held,
                     batch.others_writing);
        log_.debug(
            "rule '{}' stage {} on '{}': batch of {} rows ({} conflicts, limit {}), write lock "
            "held {:.1f} ms",
            rule.name, task.stage->number, task.store, batch.affected, batch.conflicts, limit,
            std::chrono::duration<double, std::milli>(batch.write_lock_held).count());
        entry.counts.affected += batch.affected;
        entry.counts.conflicts += batch.conflicts;
        if (batch.entry) {
          auto seq = audit_->append(*batch.entry);
          if (!seq) return seq.error();  // the entry stays in the outbox for the next sweep
          s->outbox_entry_logged();
          ++progress.batch;
          if (control_.on_batch) control_.on_batch(progress);
          report_progress(SweepProgress::Phase::acting);
        }
        if (!batch.more) {
          take_seen();
          break;
        }
        // An application waiting for the lock gets it now: SQLite's busy
        // handler sleeps and retries, and would find the next batch holding
        // the lock again if it began at once.
        if (pacer.pause() > std::chrono::microseconds{0})
          std::this_thread::sleep_for(pacer.pause());
      }
      if (entry.counts.conflicts > 0) {
        log_.warning(
            "rule '{}': {} row(s) not archived: store '{}' already holds a different row with the "
            "same key",
            rule.name, entry.counts.conflicts, task.stage->to);
      }
      report_progress(SweepProgress::Phase::finished);
      return std::nullopt;
    } catch (const StoreError& e) {
      return explain_store_error(spec, e);
    }
  }

  const Policy& policy_;
  const SweepOptions& options_;
  const Clock& clock_;
  Logger& log_;
  const SweepControl& control_;
  AuditLog* audit_;
  const ReceiptLeaves* receipts_;
  bool claimed_elsewhere_ = false;  // the last task's rule is being swept by another daemon
  std::string owner_;               // this installation, as the stores' outboxes know it
  std::map<std::string, std::unique_ptr<Store>> stores_;
};

}  // namespace

Day today(const Policy& policy, const Clock& clock) {
  return local_day(std::chrono::floor<std::chrono::seconds>(clock.now()), *policy.zone);
}

Result<void> check_as_of(const Policy& policy, Day as_of, bool dry_run, const Clock& clock) {
  Day now = today(policy, clock);
  if (!dry_run && as_of > now) {
    return fail(ExitCode::usage,
                fmt::format("--as-of {} is after today ({} in {}): a real sweep would delete "
                            "early; use plan or --dry-run to look ahead",
                            format_day(as_of), format_day(now), policy.timezone));
  }
  return {};
}

std::vector<StageTask> stage_tasks(const Rule& rule, Day as_of) {
  std::vector<StageTask> out;
  for (const auto& t : tasks_of(rule, as_of)) out.push_back({t.stage, t.window, t.place, t.store});
  return out;
}

Result<SweepOutcome> run_sweep(const Policy& policy, const SweepOptions& options,
                               const Clock& clock, Logger& log, const SweepControl& control) {
  if (auto ok = check_as_of(policy, options.as_of, options.dry_run, clock); !ok)
    return std::unexpected(ok.error());
  if (!options.dry_run && policy.require_approval && options.plan_sha256.empty()) {
    return fail(
        ExitCode::no_perm,
        fmt::format("{} says require_approval: true: a sweep acts only on an approved "
                    "plan (retentiond plan --out FILE, signed with ssh-keygen -Y sign, then "
                    "retentiond sweep --plan FILE); nothing was done",
                    policy.file.string()));
  }
  std::optional<AuditLog> audit;
  std::optional<ReceiptLeaves> receipts;
  std::optional<SweepLock> lock;
  std::string owner;
  if (!options.dry_run) {
    // Everything that could stop the audit trail is checked before a store is touched.
    // The lock comes first: opening the log cuts off a partly written last
    // line, which in another running sweep's log is a line being written.
    if (auto made = ensure_private_directory(options.state_dir); !made)
      return std::unexpected(made.error());
    auto locked = SweepLock::acquire(options.state_dir);
    if (!locked) return std::unexpected(locked.error());
    lock.emplace(std::move(*locked));
    auto opened = AuditLog::open(options.state_dir);
    if (!opened) return std::unexpected(opened.error());
    audit.emplace(std::move(*opened));
    if (audit->warning()) log.warning("{}", *audit->warning());
    auto id = installation_id(options.state_dir);
    if (!id) return std::unexpected(id.error());
    owner = std::move(*id);
    auto opened_receipts = ReceiptLeaves::open(options.state_dir);
    if (!opened_receipts) return std::unexpected(opened_receipts.error());
    receipts.emplace(std::move(*opened_receipts));
  }
  Sweeper sweeper(policy, options, clock, log, control, audit ? &*audit : nullptr,
                  receipts ? &*receipts : nullptr, std::move(owner));
  return sweeper.run();
}

}  // namespace retentiond
