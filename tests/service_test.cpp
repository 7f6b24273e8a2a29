// The daemon's loop in this process, on a fake clock: catch-up after
// downtime, merged requests, shadow mode, metrics, start-up failures. Tests
// wait for the loop's notifications, never for time to pass.
#include "service/service.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "sweep_support.hpp"
#include "time/timetable.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using namespace retentiond::test;
using Catch::Contains;

namespace {

// Records every notification; a test waits for the one it expects.
class RecordingNotifier final : public Notifier {
 public:
  void notify(std::string_view state) override {
    std::lock_guard lock(mutex_);
    messages_.emplace_back(state);
    changed_.notify_all();
  }
  std::optional<std::chrono::microseconds> watchdog_timeout() const override { return watchdog; }

  // The index of the first message from `from` on that contains `text`;
  // fails the test after a generous timeout (the loop hangs).
  std::size_t wait_for(std::string_view text, std::size_t from = 0) {
    std::unique_lock lock(mutex_);
    std::size_t found = 0;
    bool ok = changed_.wait_for(lock, std::chrono::seconds{30}, [&] {
      for (std::size_t i = from; i < messages_.size(); ++i) {
        if (messages_[i].find(text) != std::string::npos) {
          found = i;
          return true;
        }
      }
      return false;
    });
    if (!ok) FAIL("no notification containing '" << text << "'; got:\n" << joined(lock));
    return found;
  }

  std::vector<std::string> messages() {
    std::lock_guard lock(mutex_);
    return messages_;
  }

  std::size_t count(std::string_view text) {
    std::size_t n = 0;
    for (const auto& m : messages()) n += m.find(text) != std::string::npos;
    return n;
  }

  std::optional<std::chrono::microseconds> watchdog;

 private:
  std::string joined(const std::unique_lock<std::mutex>&) const {
    std::string out;
    for (const auto& m : messages_) out += m + "\n";
    return out;
  }

  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> messages_;
};

// A store with one table of dated events and a policy deleting those older
// than 5 years, in Europe/Paris. The fake clock stands at noon on 2026-06-15.
struct Fixture {
  TempDir dir;
  std::filesystem::path db = dir / "events.db";
  std::ostringstream log_text;
  Logger log{log_text, LogLevel::debug, false};
  FakeClock clock{noon_utc("2026-06-15")};
  std::ostringstream out;
  Io io{out, log, clock};
  RecordingNotifier notifier;
  GlobalOptions global;
  RunOptions options;

  explicit Fixture(std::string_view extra_policy = "") {
    exec(db,
         "CREATE TABLE events (id INTEGER PRIMARY KEY, happened_on TEXT);"
         "CREATE INDEX events_on ON events (happened_on);"
         "INSERT INTO events (happened_on) VALUES ('2001-02-03'), ('2022-01-01'), "
         "('2026-01-01')");
    dir.write("policy.yaml", policy_text(extra_policy));
    global.config = dir / "policy.yaml";
    global.state_dir = dir / "state";
    options.catch_up_delay = std::chrono::seconds{0};
  }

  static std::string policy_text(std::string_view extra) {
    return fmt::format(
        "version: 1\n"
        "timezone: Europe/Paris\n"
        "{}"
        "stores:\n"
        "  events: {{ kind: sqlite, path: events.db }}\n"
        "rules:\n"
        "  - name: old-events\n"
        "    store: events\n"
        "    table: events\n"
        "    key: id\n"
        "    anchor: happened_on\n"
        "    keep_for: 5 years\n"
        "    action: delete\n",
        extra);
  }

  std::int64_t rows() { return query_int(db, "SELECT count(*) FROM events"); }
  std::string logged() { return log_text.str(); }
};

// Service::run() on a thread of its own; stopped and joined at the end.
class Running {
 public:
  explicit Running(Fixture& f) : Running(f, f.io) {}
  Running(Fixture& f, Io& io) : service_(f.global, f.options, io, f.notifier) {}
  ~Running() {
    if (thread_.joinable()) {
      service_.request_stop();
      thread_.join();
    }
  }
  Service& service() { return service_; }
  void start() {
    thread_ = std::thread([this] { code_ = service_.run(); });
  }
  int stop() {
    service_.request_stop();
    thread_.join();
    return code_;
  }
  int wait() {
    thread_.join();
    return code_;
  }
  std::thread::id thread_id() const { return thread_.get_id(); }

 private:
  Service service_;
  int code_ = -1;
  std::thread thread_;
};

}  // namespace

TEST_CASE("a sweep missed while the daemon was down runs right after start-up", "[daemon]") {
  Fixture f("schedule: \"03:15\"\n");
  auto last = last_sweep_path(f.global.state_dir, false);
  std::filesystem::create_directories(f.global.state_dir);
  // Last swept 2026-06-13 at 03:15 CEST: the one of the 14th and the 15th were missed.
  REQUIRE(write_last_sweep(last, std::chrono::floor<std::chrono::seconds>(noon_utc("2026-06-13")) -
                                     std::chrono::hours{10} - std::chrono::minutes{45}));
  Running daemon(f);
  daemon.start();
  f.notifier.wait_for("READY=1");
  f.notifier.wait_for("last sweep");
  CHECK(daemon.stop() == 0);
  INFO(f.logged());
  CHECK(f.rows() == 2);  // the 2001 event is gone
  CHECK_THAT(f.logged(), Contains("the sweep scheduled for 2026-06-14 03:15:00 CEST was missed"));
  CHECK(f.notifier.count("STATUS=sweeping (catching up a missed scheduled sweep)") == 1);
  // Recorded with the clock's time, and the schedule resumes tomorrow.
  CHECK(read_file(last) == "2026-06-15T12:00:00Z\n");
  CHECK(f.notifier.count("next sweep 2026-06-16 03:15:00 CEST") >= 1);
}

TEST_CASE("without a record of a last sweep, start-up waits for the schedule", "[daemon]") {
  Fixture f("schedule: \"03:15\"\n");
  Running daemon(f);
  daemon.start();
  auto ready = f.notifier.wait_for("READY=1");
  CHECK_THAT(f.notifier.messages()[ready],
             Contains("STATUS=idle; next sweep 2026-06-16 03:15:00 CEST"));
  CHECK(daemon.stop() == 0);
  CHECK(f.rows() == 3);
  CHECK(f.notifier.count("sweeping") == 0);
  CHECK_FALSE(std::filesystem::exists(last_sweep_path(f.global.state_dir, false)));
}

TEST_CASE("sweep requests during a sweep merge into one more", "[daemon]") {
  Fixture f;
  Running daemon(f);
  // Queued before the loop runs: the first starts a sweep, the next two find
  // it running.
  daemon.service().request_sweep();
  daemon.service().request_sweep();
  daemon.service().request_sweep();
  daemon.start();
  auto first = f.notifier.wait_for("STATUS=sweeping (requested");
  auto second = f.notifier.wait_for("STATUS=sweeping (requested", first + 1);
  f.notifier.wait_for("last sweep", second + 1);
  CHECK(daemon.stop() == 0);
  INFO(f.logged());
  CHECK(f.notifier.count("STATUS=sweeping (requested") == 2);
  CHECK_THAT(f.logged(), Contains("a sweep is running: one more follows it"));
  CHECK(f.rows() == 2);
  CHECK_THAT(f.logged(), Contains("no schedule: sweeps run only on SIGUSR1"));
}

TEST_CASE("after each sweep the metrics file says how it went", "[daemon]") {
  Fixture f("metrics_file: metrics/retentiond.prom\n");
  std::filesystem::create_directories(f.dir / "metrics");
  auto policy_metrics = f.dir / "metrics" / "retentiond.prom";

  SECTION("at the policy's metrics_file") {
    Running daemon(f);
    daemon.service().request_sweep();
    daemon.start();
    f.notifier.wait_for("last sweep");
    CHECK(daemon.stop() == 0);
    auto text = read_file(policy_metrics);
    CHECK_THAT(text, Contains("\nretentiond_last_sweep_success 1\n"));
    CHECK_THAT(text, Contains("retentiond_last_sweep_affected_records{rule=\"old-events\","
                              "stage=\"1\",action=\"delete\",store=\"events\"} 1\n"));
    CHECK_THAT(text, Contains("\nretentiond_last_sweep_start_timestamp_seconds 1781524800.000\n"));
  }
  SECTION("--metrics-file wins over the policy") {
    f.options.metrics_file = f.dir / "elsewhere.prom";
    Running daemon(f);
    daemon.service().request_sweep();
    daemon.start();
    f.notifier.wait_for("last sweep");
    CHECK(daemon.stop() == 0);
    CHECK_THAT(read_file(f.dir / "elsewhere.prom"),
               Contains("\nretentiond_last_sweep_success 1\n"));
    CHECK_FALSE(std::filesystem::exists(policy_metrics));
  }
}

TEST_CASE("shadow mode plans, writes nothing to any store, and keeps each plan's report",
          "[daemon]") {
  Fixture f;
  f.options.dry_run = true;
  auto before = dump(f.db);
  Running daemon(f);
  daemon.service().request_sweep();
  daemon.start();
  f.notifier.wait_for("STATUS=planning (requested by SIGUSR1)");
  f.notifier.wait_for("last plan");
  CHECK(daemon.stop() == 0);
  INFO(f.logged());
  CHECK(dump(f.db) == before);
  CHECK_FALSE(std::filesystem::exists(f.global.state_dir / "audit.jsonl"));
  CHECK_FALSE(std::filesystem::exists(last_sweep_path(f.global.state_dir, false)));
  CHECK(std::filesystem::exists(last_sweep_path(f.global.state_dir, true)));

  std::vector<std::filesystem::path> plans;
  for (const auto& e : std::filesystem::directory_iterator(f.global.state_dir / "plans")) {
    plans.push_back(e.path());
  }
  REQUIRE(plans.size() == 1);
  CHECK(plans[0].filename() == "plan-20260615T120000Z.json");
  auto report = nlohmann::json::parse(read_file(plans[0]));
  CHECK(report["dry_run"] == true);
  CHECK(report["as_of"] == "2026-06-15");
  CHECK(report["totals"]["matched"] == 1);
  CHECK(report["totals"]["affected"] == 0);
  CHECK_THAT(f.logged(), Contains("would act on 1"));
  CHECK_THAT(f.logged(), Contains(plans[0].string()));
}

TEST_CASE("a reload with a broken policy keeps the old one in force", "[daemon]") {
  Fixture f;
  Running daemon(f);
  daemon.start();
  f.notifier.wait_for("READY=1");
  f.dir.write("policy.yaml", Fixture::policy_text("").replace(
                                 Fixture::policy_text("").find("keep_for"), 8, "keep_fro"));
  daemon.service().request_reload();
  auto reloading = f.notifier.wait_for("RELOADING=1\nMONOTONIC_USEC=");
  auto ready = f.notifier.wait_for("READY=1", reloading + 1);
  CHECK_THAT(f.notifier.messages()[ready], Contains("the last reload failed"));
  daemon.service().request_sweep();
  f.notifier.wait_for("last sweep", ready + 1);
  CHECK(daemon.stop() == 0);
  INFO(f.logged());
  CHECK_THAT(f.logged(), Contains("policy.yaml:11:5: unknown key 'keep_fro'"));
  CHECK_THAT(f.logged(), Contains("policy not reloaded"));
  CHECK(f.rows() == 2);  // swept with the old rule
}

// Stands still, like FakeClock; the sweep thread reads it before each batch.
// At its third reading from that thread (the second batch), it asks the
// service to stop and waits until the loop has said STOPPING=1: the batch in
// progress then goes on, and the sweep stops before the next one.
class StopDuringSweep final : public Clock {
 public:
  StopDuringSweep(Fixture& f, std::chrono::system_clock::time_point t) : f_(f), now_(t) {}
  std::chrono::system_clock::time_point now() const override {
    if (std::this_thread::get_id() != loop && service && ++sweep_readings_ == 3) {
      service->request_stop();
      f_.notifier.wait_for("STOPPING=1");
    }
    return now_;
  }
  std::thread::id loop;  // the thread that runs the loop
  Service* service = nullptr;

 private:
  Fixture& f_;
  std::chrono::system_clock::time_point now_;
  mutable int sweep_readings_ = 0;
};

TEST_CASE("a stop during a sweep lets the batch in progress finish, then exits 0", "[daemon]") {
  Fixture f("batch_size: 1\nmetrics_file: metrics.prom\n");
  exec(f.db,
       "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20) "
       "INSERT INTO events (happened_on) SELECT '2001-01-01' FROM n");
  auto before = f.rows();
  StopDuringSweep clock(f, f.clock.now());
  Io io{f.out, f.log, clock};
  Running daemon(f, io);
  daemon.start();
  f.notifier.wait_for("READY=1");
  clock.loop = daemon.thread_id();
  clock.service = &daemon.service();
  daemon.service().request_sweep();
  f.notifier.wait_for("STOPPING=1");
  int code = daemon.wait();
  INFO(f.logged());
  CHECK(code == 0);
  auto deleted = before - f.rows();
  CHECK(deleted >= 1);
  CHECK(deleted < 21);
  CHECK(audit_affected_total(f.global.state_dir) == deleted);  // every batch whole, and logged
  CHECK_THAT(f.logged(), Contains("stopping between batches"));
  CHECK_THAT(read_file(f.dir / "metrics.prom"),
             Contains("\nretentiond_last_sweep_interrupted 1\n"));
  // Not recorded as done: the next start catches it up.
  CHECK_FALSE(std::filesystem::exists(last_sweep_path(f.global.state_dir, false)));
}

TEST_CASE("a stop says STOPPING=1 and exits 0", "[daemon]") {
  Fixture f;
  f.notifier.watchdog = std::chrono::milliseconds{20};
  Running daemon(f);
  daemon.start();
  auto ready = f.notifier.wait_for("READY=1");
  f.notifier.wait_for("WATCHDOG=1", ready + 1);
  CHECK(daemon.stop() == 0);
  CHECK_THAT(f.notifier.messages().back(), Contains("WATCHDOG=1") || Contains("STOPPING=1"));
  CHECK(f.notifier.count("STOPPING=1") == 1);
}

TEST_CASE("start-up fails with the policy's or the stores' exit code, never READY", "[daemon]") {
  Fixture f;
  SECTION("an invalid policy: 78") {
    f.dir.write("policy.yaml", "version: 1\ntimezone: Mars/Olympus\n");
    Running daemon(f);
    daemon.start();
    CHECK(daemon.wait() == 78);
  }
  SECTION("a missing policy: 66") {
    f.global.config = f.dir / "nowhere.yaml";
    Running daemon(f);
    daemon.start();
    CHECK(daemon.wait() == 66);
  }
  SECTION("a missing table: 69") {
    exec(f.db, "DROP TABLE events");
    Running daemon(f);
    daemon.start();
    CHECK(daemon.wait() == 69);
  }
  CHECK(f.notifier.count("READY=1") == 0);
}

TEST_CASE("require_approval: the daemon's sweeps are refused and logged, nothing changed",
          "[daemon][approval]") {
  Fixture f;
  f.dir.write("allowed_signers", "");
  f.dir.write("policy.yaml", Fixture::policy_text("approval: { allowed_signers: allowed_signers }\n"
                                                  "require_approval: true\n"));
  std::string before = sha256_hex(read_file(f.db));
  Running daemon(f);
  daemon.service().request_sweep();
  daemon.start();
  f.notifier.wait_for("last sweep");
  CHECK(daemon.stop() == 0);
  INFO(f.logged());
  CHECK_THAT(f.logged(), Contains("require_approval: true: a sweep acts only on an approved plan"));
  CHECK(f.rows() == 3);
  CHECK(sha256_hex(read_file(f.db)) == before);
}
