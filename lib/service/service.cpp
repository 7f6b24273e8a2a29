#include "service/service.hpp"

// <utility> before Asio: Boost 1.74's Asio uses std::exchange without including it.
// clang-format off
#include <utility>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
// clang-format on

#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>

#include "sweep/check.hpp"
#include "util/files.hpp"
#include "service/metrics.hpp"
#include "policy/policy.hpp"
#include "sweep/sweep.hpp"
#include "time/timetable.hpp"

namespace retentiond {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using std::chrono::sys_seconds;

namespace {

// Blocks the daemon's signals in this thread while it lives, so that a thread
// created meanwhile inherits the mask: the sweep thread leaves the signals to
// the loop thread. Asio installs its handlers without SA_RESTART, and a
// store's system calls should not see EINTR because someone sent SIGUSR1.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) sigaddset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &previous_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t previous_;
};

std::string signal_name(int signo) {
  switch (signo) {
    case SIGHUP:
      return "SIGHUP";
    case SIGUSR1:
      return "SIGUSR1";
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return fmt::format("signal {}", signo);
  }
}

// CLOCK_MONOTONIC in microseconds, as RELOADING=1 wants it in MONOTONIC_USEC=.
std::int64_t monotonic_usec() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

sys_seconds to_seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::floor<std::chrono::seconds>(t);
}

enum class Trigger { schedule, catch_up, request };

std::string_view to_string(Trigger t) {
  switch (t) {
    case Trigger::schedule:
      return "scheduled";
    case Trigger::catch_up:
      return "catching up a missed scheduled sweep";
    case Trigger::request:
      return "requested by SIGUSR1";
  }
  return "";
}

std::string rules_text(const Policy& policy) {
  return fmt::format("{} rule{}", policy.rules.size(), policy.rules.size() == 1 ? "" : "s");
}

// "ok, 12 affected (12 matched, 3 held, 2 undated)" and the like.
std::string outcome_summary(const SweepRecord& r) {
  if (r.setup_error) return fmt::format("failed: {}", *r.setup_error);
  Counts t = r.report.totals();
  std::string how = r.interrupted ? "interrupted"
                    : r.success()
                        ? "ok"
                        : fmt::format("failed (exit {}, {} error{})", static_cast<int>(r.code),
                                      r.errors(), r.errors() == 1 ? "" : "s");
  if (r.dry_run) {
    return fmt::format("{}, would act on {} (held {}, undated {})", how, t.matched, t.held,
                       t.undated);
  }
  std::string conflicts = t.conflicts ? fmt::format(", {} conflicts", t.conflicts) : "";
  return fmt::format("{}, {} affected ({} matched, {} held, {} undated{})", how, t.affected,
                     t.matched, t.held, t.undated, conflicts);
}

}  // namespace

struct Service::Impl {
  Impl(const GlobalOptions& g, const RunOptions& o, Io& i, Notifier& n)
      : global(g), options(o), io(i), notifier(n) {
    for (int s : {SIGHUP, SIGUSR1, SIGTERM, SIGINT}) signals.add(s);
  }

  // --- start-up -----------------------------------------------------------

  int run() {
    auto startup = [&]() -> Result<void> {
      auto loaded = load_checked_policy();
      if (!loaded) return std::unexpected(loaded.error());
      if (auto ok = ensure_private_directory(global.state_dir); !ok) return ok;
      if (options.dry_run) {
        if (auto ok = ensure_private_directory(plans_dir()); !ok) return ok;
      }
      policy = std::move(*loaded);
      return {};
    };
    Result<void> started = fail(ExitCode::software, "start-up did not finish");
    try {
      started = startup();
    } catch (const std::exception& e) {
      started = fail(ExitCode::software, fmt::format("internal error at start-up: {}", e.what()));
    }
    if (!started) {
      io.log.error("{}", started.error().message);
      return static_cast<int>(started.error().code);
    }

    auto recorded = read_last_sweep(last_sweep_path(global.state_dir, options.dry_run));
    if (recorded) {
      last_start = *recorded;
    } else {
      io.log.warning("{}; going on as if no sweep had run", recorded.error().message);
    }
    io.log.info(
        "started{}: policy {} ({}, sha256 {}), state directory {}",
        options.dry_run ? " in shadow mode (plans only, nothing is written to any store)" : "",
        policy->file.string(), rules_text(*policy), policy->sha256.substr(0, 12),
        global.state_dir.string());
    if (!policy->schedule) {
      io.log.info("the policy has no schedule: sweeps run only on SIGUSR1");
    }
    arm_schedule(options.catch_up_delay);
    wait_for_signal();
    notifier.notify("READY=1\nSTATUS=" + idle_status());
    start_watchdog();

    io_context.run();
    if (worker.joinable()) worker.join();
    io.log.info("stopped");
    return exit_code;
  }

  // The policy in the file, if it loads and its stores, tables and columns
  // are there; what `retentiond check` checks.
  Result<std::shared_ptr<const Policy>> load_checked_policy() {
    auto loaded = load_policy(global.config, LoadOptions{global.credentials_directory});
    if (!loaded) return loaded;
    auto checked = check_stores(**loaded);
    if (!checked) return std::unexpected(checked.error());
    for (const auto& w : checked->warnings) io.log.warning("{}", w.message);
    return loaded;
  }

  fs::path plans_dir() const { return global.state_dir / "plans"; }

  // --- signals -------------------------------------------------------------

  void wait_for_signal() {
    signals.async_wait([this](const boost::system::error_code& ec, int signo) {
      if (ec) return;  // cancelled: the loop is ending
      guarded([&] { on_signal(signo); });
      if (!finished) wait_for_signal();
    });
  }

  void on_signal(int signo) {
    switch (signo) {
      case SIGUSR1:
        io.log.info("SIGUSR1: sweep requested");
        sweep_now();
        break;
      case SIGHUP:
        io.log.info("SIGHUP: reloading the policy {}", global.config.string());
        reload();
        break;
      default:
        stop(signal_name(signo));
        break;
    }
  }

  // Runs `body` in a completion handler: nothing escapes into
  // io_context::run(). An exception is a bug of ours; the daemon stops.
  template <class F>
  void guarded(F&& body) {
    try {
      body();
    } catch (const std::exception& e) {
      io.log.error("internal error: {}; stopping", e.what());
      exit_code = static_cast<int>(ExitCode::software);
      if (!stopping) stop("an internal error");
    }
  }

  // --- sweeps --------------------------------------------------------------

  void sweep_now() {
    if (stopping) return;
    if (sweeping) {
      if (!sweep_again) io.log.info("a sweep is running: one more follows it");
      sweep_again = true;
      return;
    }
    start_sweep(Trigger::request);
  }

  void start_sweep(Trigger trigger) {
    sweep_again = false;
    ++schedule_generation;  // a pending schedule wake-up is void now
    schedule_timer.cancel();
    auto now = io.clock.now();
    SweepOptions sweep_options;
    sweep_options.dry_run = options.dry_run;
    sweep_options.as_of = today(*policy, io.clock);
    sweep_options.state_dir = global.state_dir;
    io.log.info("{} as of {} ({})", options.dry_run ? "plan" : "sweep",
                format_day(sweep_options.as_of), to_string(trigger));
    progress.clear();
    notifier.notify(fmt::format("STATUS={} ({}), as of {}", verb(), to_string(trigger),
                                format_day(sweep_options.as_of)));
    SignalsBlocked blocked;
    worker = std::jthread([this, snapshot = policy, sweep_options, now] {
      SweepRecord record;
      record.started = now;
      record.dry_run = sweep_options.dry_run;
      auto began = std::chrono::steady_clock::now();
      SweepControl control;
      control.stop = &stop_requested;
      control.on_batch = [this](const SweepProgress& p) {
        asio::post(io_context, [this, p] { on_progress(p); });
      };
      try {
        auto outcome = run_sweep(*snapshot, sweep_options, io.clock, io.log, control);
        if (outcome) {
          record.report = std::move(outcome->report);
          record.code = outcome->code;
          record.interrupted = outcome->interrupted;
        } else {
          record.code = outcome.error().code;
          record.setup_error = outcome.error().message;
        }
      } catch (const std::exception& e) {
        record.code = ExitCode::software;
        record.setup_error = fmt::format("internal error: {}", e.what());
      }
      record.duration = std::chrono::steady_clock::now() - began;
      asio::post(io_context, [this, record = std::move(record)]() mutable {
        guarded([&] { on_sweep_done(std::move(record)); });
      });
    });
    sweeping = true;  // only now: a result will be posted
  }

  std::string_view verb() const { return options.dry_run ? "planning" : "sweeping"; }

  void on_progress(const SweepProgress& p) {
    if (!sweeping) return;
    progress =
        fmt::format("rule {} stage {} on store {}, batch {}", p.rule, p.stage, p.store, p.batch);
    notifier.notify(fmt::format("STATUS={}: {}", verb(), progress));
  }

  void on_sweep_done(SweepRecord record) {
    worker.join();  // it has posted this as its last act
    sweeping = false;
    last_start = to_seconds(record.started);
    if (!record.interrupted && !record.setup_error) {
      auto file = last_sweep_path(global.state_dir, options.dry_run);
      if (auto ok = write_last_sweep(file, *last_start); !ok) {
        io.log.warning("{}: the next start may repeat this sweep", ok.error().message);
      }
    }
    report(record);
    last_record = std::move(record);
    if (stopping) {
      finish();
      return;
    }
    if (sweep_again) {
      start_sweep(Trigger::request);
      return;
    }
    arm_schedule(std::chrono::seconds{0});
    notifier.notify("STATUS=" + idle_status());
  }

  // The log line, the shadow mode's plan file and the metrics file.
  void report(const SweepRecord& record) {
    std::string summary = outcome_summary(record);
    std::string where;
    if (record.dry_run && !record.setup_error) {
      auto written = write_plan(record);
      if (written) {
        where = fmt::format("; report {}", written->string());
      } else {
        io.log.error("{}", written.error().message);
      }
    }
    auto level = record.success() || record.interrupted ? LogLevel::info : LogLevel::error;
    std::string what = record.dry_run ? "plan" : "sweep";
    if (!record.report.as_of.empty()) what += " as of " + record.report.as_of;
    io.log.log(level,
               fmt::format("{} {} in {:.1f} s{}", what, summary, record.duration.count(), where));
    if (auto file = metrics_file()) {
      if (auto ok = write_file_atomically(*file, render_metrics(record), 0644); !ok) {
        io.log.error("metrics not written: {}", ok.error().message);
      }
    }
  }

  std::optional<fs::path> metrics_file() const {
    if (options.metrics_file) return options.metrics_file;
    return policy->metrics_file;
  }

  // STATE_DIR/plans/plan-20250110T031500Z.json: the report, as `plan --format json` prints it.
  Result<fs::path> write_plan(const SweepRecord& record) {
    std::string stamp = date::format("%Y%m%dT%H%M%SZ", to_seconds(record.started));
    fs::path file = plans_dir() / fmt::format("plan-{}.json", stamp);
    std::error_code ec;
    for (int n = 2; fs::exists(file, ec); ++n) {
      file = plans_dir() / fmt::format("plan-{}-{}.json", stamp, n);
    }
    std::string json =
        record.report.to_json().dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
    if (auto ok = write_file_atomically(file, json + "\n", 0600); !ok) {
      return std::unexpected(ok.error());
    }
    return file;
  }

  // --- the schedule --------------------------------------------------------

  // Works out the next scheduled sweep and waits for it. `delay`: how soon a
  // missed one runs.
  void arm_schedule(std::chrono::seconds delay) {
    ++schedule_generation;
    schedule_timer.cancel();
    if (!policy->schedule) {
      next.reset();
      return;
    }
    auto now = to_seconds(io.clock.now());
    next = next_sweep(*policy->schedule, *policy->zone, last_start, now, delay);
    if (next->catch_up) {
      io.log.info("the sweep scheduled for {} was missed (last sweep {}): sweeping at {}",
                  local(next->due), last_start ? local(*last_start) : "never", local(next->at));
    } else if (next->at == sys_seconds::max()) {
      io.log.warning("the schedule '{}' never runs: sweeps run only on SIGUSR1",
                     policy->schedule->text);
    }
    wait_for_schedule();
  }

  // Wakes at most a minute apart and compares with the clock, so that a
  // wall-clock step (NTP, a suspended machine) moves the sweep with it.
  void wait_for_schedule() {
    if (!next || next->at == sys_seconds::max()) return;
    auto remaining = next->at - to_seconds(io.clock.now());
    auto wait = std::clamp<std::chrono::seconds>(remaining, std::chrono::seconds{0},
                                                 std::chrono::minutes{1});
    schedule_timer.expires_after(wait);
    schedule_timer.async_wait(
        [this, generation = schedule_generation](const boost::system::error_code& ec) {
          if (ec || generation != schedule_generation || stopping || sweeping) return;
          guarded([&] {
            if (to_seconds(io.clock.now()) >= next->at) {
              start_sweep(next->catch_up ? Trigger::catch_up : Trigger::schedule);
            } else {
              wait_for_schedule();
            }
          });
        });
  }

  std::string local(sys_seconds t) const { return format_local(t, *policy->zone); }

  std::string idle_status() const {
    std::string text = "idle; ";
    if (!policy->schedule) {
      text += "no schedule, sweeps on SIGUSR1 only";
    } else if (!next || next->at == sys_seconds::max()) {
      text += fmt::format("the schedule '{}' never runs", policy->schedule->text);
    } else {
      text += fmt::format("next {} {}", options.dry_run ? "plan" : "sweep", local(next->at));
    }
    if (last_record) {
      text += fmt::format("; last {} {}: {}", options.dry_run ? "plan" : "sweep",
                          local(to_seconds(last_record->started)), outcome_summary(*last_record));
    }
    if (!reload_error.empty()) text += "; " + reload_error;
    return text;
  }

  // --- reload --------------------------------------------------------------

  void reload() {
    if (stopping) return;
    notifier.notify(fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS=reloading the policy",
                                monotonic_usec()));
    auto loaded = load_checked_policy();
    if (!loaded) {
      io.log.error("{}", loaded.error().message);
      io.log.error("policy not reloaded: the previous policy (sha256 {}) stays in force",
                   policy->sha256.substr(0, 12));
      reload_error = fmt::format("the last reload failed, the previous policy is in force");
    } else {
      bool same = (*loaded)->sha256 == policy->sha256;
      policy = std::move(*loaded);
      reload_error.clear();
      io.log.info("policy reloaded{}: {}, sha256 {}{}", same ? " (unchanged)" : "",
                  rules_text(*policy), policy->sha256.substr(0, 12),
                  sweeping ? "; the sweep in progress finishes with the previous one" : "");
      if (!policy->schedule) io.log.info("the policy has no schedule: sweeps run only on SIGUSR1");
      if (!sweeping) arm_schedule(options.catch_up_delay);
    }
    std::string status = sweeping
                             ? fmt::format("{}{}{}", verb(), progress.empty() ? "" : ": ", progress)
                             : idle_status();
    notifier.notify("READY=1\nSTATUS=" + status);
  }

  // --- stop ----------------------------------------------------------------

  void stop(const std::string& why) {
    if (stopping) {
      io.log.info("{}: already stopping", why);
      return;
    }
    stopping = true;
    stop_requested = true;
    ++schedule_generation;
    schedule_timer.cancel();
    notifier.notify(fmt::format("STOPPING=1\nSTATUS=stopping{}",
                                sweeping ? ": finishing the batch in progress" : ""));
    io.log.info("{}: stopping{}", why, sweeping ? " after the batch in progress" : "");
    if (!sweeping) finish();
  }

  // Cancels what keeps the loop busy, so that run() returns.
  void finish() {
    finished = true;
    signals.cancel();
    schedule_timer.cancel();
    watchdog_timer.cancel();
  }

  // --- watchdog ------------------------------------------------------------

  void start_watchdog() {
    auto timeout = notifier.watchdog_timeout();
    if (!timeout) return;
    watchdog_interval =
        std::max<std::chrono::microseconds>(*timeout / 2, std::chrono::milliseconds{1});
    io.log.debug("watchdog: WATCHDOG=1 every {} ms", watchdog_interval.count() / 1000);
    ping_watchdog();
  }

  // From the loop thread: a loop that hangs stops pinging, even while a sweep
  // thread is busy.
  void ping_watchdog() {
    notifier.notify("WATCHDOG=1");
    watchdog_timer.expires_after(watchdog_interval);
    watchdog_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || finished) return;
      ping_watchdog();
    });
  }

  GlobalOptions global;
  RunOptions options;
  Io& io;
  Notifier& notifier;

  asio::io_context io_context;
  asio::signal_set signals{io_context};  // SIGHUP, SIGUSR1, SIGTERM, SIGINT: see Impl()
  asio::steady_timer schedule_timer{io_context};
  asio::steady_timer watchdog_timer{io_context};
  std::chrono::microseconds watchdog_interval{0};

  std::shared_ptr<const Policy> policy;
  std::optional<sys_seconds> last_start;  // of the last sweep, whatever its outcome
  std::optional<NextSweep> next;          // none without a schedule
  std::uint64_t schedule_generation = 0;  // a wake-up from an older arm_schedule is ignored
  std::optional<SweepRecord> last_record;
  std::string progress;      // of the sweep in progress
  std::string reload_error;  // kept in STATUS= until a reload succeeds

  bool sweeping = false;
  bool sweep_again = false;  // a SIGUSR1 came during the sweep
  bool stopping = false;
  bool finished = false;
  int exit_code = 0;
  std::atomic<bool> stop_requested{false};  // read by the sweep between batches
  std::jthread worker;                      // declared last: joined first
};

Service::Service(const GlobalOptions& global, const RunOptions& options, Io& io, Notifier& notifier)
    : impl_(std::make_unique<Impl>(global, options, io, notifier)) {}

Service::~Service() = default;

int Service::run() { return impl_->run(); }

void Service::request_sweep() {
  asio::post(impl_->io_context, [impl = impl_.get()] {
    impl->guarded([&] {
      impl->io.log.info("sweep requested");
      impl->sweep_now();
    });
  });
}

void Service::request_reload() {
  asio::post(impl_->io_context, [impl = impl_.get()] { impl->guarded([&] { impl->reload(); }); });
}

void Service::request_stop() {
  asio::post(impl_->io_context,
             [impl = impl_.get()] { impl->guarded([&] { impl->stop("stop requested"); }); });
}

int run_daemon(const GlobalOptions& global, const RunOptions& options, Io& io, Notifier& notifier) {
  Service service(global, options, io, notifier);
  return service.run();
}

}  // namespace retentiond
