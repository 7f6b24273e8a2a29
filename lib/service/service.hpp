// `retentiond run`: the long-running service. One event loop (Boost.Asio,
// kept out of this header) receives the signals, runs the schedule timer and
// the watchdog, and talks to systemd; each sweep runs on a worker thread that
// stops between batches when asked and posts its result back to the loop.
//
//   SIGUSR1          sweep now; several during one sweep merge into one more
//   SIGHUP           reload the policy; an invalid one is logged, the old stays
//   SIGTERM, SIGINT  stop after the batch in progress, exit 0
#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>

#include "commands/commands.hpp"
#include "service/notifier.hpp"

namespace retentiond {

struct RunOptions {
  // Shadow mode: plans only, each plan's report written to STATE_DIR/plans.
  bool dry_run = false;
  // Wins over the policy's metrics_file.
  std::optional<std::filesystem::path> metrics_file;
  // How long after start-up (or a reload) a sweep missed while the daemon was
  // down runs: long enough for systemd to see the service up first.
  std::chrono::seconds catch_up_delay{10};
};

class Service {
 public:
  // Signal handlers are installed here, so that a signal sent before the loop
  // runs waits for it instead of killing the process.
  Service(const GlobalOptions& global, const RunOptions& options, Io& io, Notifier& notifier);
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Loads the policy, checks its stores, says READY=1 and runs the loop until
  // a stop. Returns the exit code: 0 after a stop; the policy's or the
  // stores' error code when start-up fails (nothing has been swept then).
  // REQUIRES: called once.
  int run();

  // The signals' effects, for tests and embedders. Thread-safe: each is
  // posted to the loop, and waits there if the loop has not started yet.
  void request_sweep();
  void request_reload();
  void request_stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Service(global, options, io, notifier).run()
int run_daemon(const GlobalOptions& global, const RunOptions& options, Io& io, Notifier& notifier);

}  // namespace retentiond
