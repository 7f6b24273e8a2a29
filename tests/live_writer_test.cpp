// "Live writers keep working" (CONTRACT.md): an application process keeps
// inserting into a WAL-mode store, with a 5 s busy timeout, while a sweep
// deletes ~50,000 rows of it in batches of 1,000. Not one insert may fail.
#include <fmt/format.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "sweep_support.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;

namespace {

constexpr int kOldRows = 50'000;

struct WriterReport {
  long inserted = 0;
  long failed = 0;
  long slowest_ms = 0;
};

// The application: inserts one row per transaction until `stop_fd` becomes
// readable, writes "started" once its first insert committed, and at the end
// its counts, on `report_fd`. Runs in a forked child: no Catch2 here, and
// no exception may leave it.
[[noreturn]] void run_writer(const fs::path& db_file, int stop_fd, int report_fd) {
  WriterReport r;
  try {
    sqlite::Database db(db_file, sqlite::OpenMode::read_write, std::chrono::seconds{5});
    sqlite::Statement insert(db,
                             "INSERT INTO events (source, on_day) VALUES ('writer', '2026-06-14')");
    bool announced = false;
    while (true) {
      pollfd p{stop_fd, POLLIN, 0};
      if (::poll(&p, 1, 0) > 0) break;
      auto started = std::chrono::steady_clock::now();
      try {
        insert.step();
        ++r.inserted;
      } catch (const sqlite::SqliteError&) {
        ++r.failed;
      }
      insert.reset();
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - started)
                      .count();
      if (took > r.slowest_ms) r.slowest_ms = took;
      if (!announced && r.inserted > 0) {
        announced = ::write(report_fd, "started\n", 8) == 8;
      }
      // An application's pace, not a benchmark's: the sweep gets the CPU too.
      ::usleep(200);
    }
  } catch (const std::exception&) {
    r.failed = -1;  // could not even open the store
  }
  std::string text = fmt::format("{} {} {}\n", r.inserted, r.failed, r.slowest_ms);
  bool ok = ::write(report_fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::_exit(ok ? 0 : 1);
}

std::string read_some(int fd) {
  std::string out;
  char buf[256];
  while (out.find('\n') == std::string::npos) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

}  // namespace

TEST_CASE("an application writing to the store during a sweep is never locked out", "[sqlite]") {
  TempDir dir;
  auto db = dir / "events.db";
  {
    auto conn = open_db(db);
    conn.exec("PRAGMA journal_mode = WAL");
  }
  exec(db, fmt::format(R"(
    CREATE TABLE events (id INTEGER PRIMARY KEY, source TEXT, on_day TEXT);
    CREATE INDEX events_on_day ON events (on_day);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
      INSERT INTO events (source, on_day) SELECT 'old', date('2015-01-01', printf('+%d days', i % 1000)) FROM n;
    INSERT INTO events (source, on_day) VALUES ('recent', '2026-01-01');
  )",
                       kOldRows));
  REQUIRE(query_column(db, "PRAGMA journal_mode").at(0) == "wal");
  auto policy = write_policy(dir, R"(version: 1
timezone: Europe/Paris
batch_size: 1000
stores:
  events: { kind: sqlite, path: events.db }
rules:
  - name: events
    store: events
    table: events
    key: id
    anchor: on_day
    keep_for: 1 year
    action: delete
)");

  int stop[2], report[2];
  REQUIRE(::pipe(stop) == 0);
  REQUIRE(::pipe(report) == 0);
  pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    ::close(stop[1]);
    ::close(report[0]);
    run_writer(db, stop[0], report[1]);
  }
  ::close(stop[0]);
  ::close(report[1]);
  REQUIRE(read_some(report[0]) == "started\n");

  Sweep sweep(dir);
  sweep.busy_timeout = std::chrono::seconds{5};
  auto written = [&] {
    return query_int(db, "SELECT count(*) FROM events WHERE source = 'writer'");
  };
  auto before = written();
  auto started = std::chrono::steady_clock::now();
  auto done = sweep.run(*policy, "2026-06-15");
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  auto during = written() - before;

  REQUIRE(::write(stop[1], "x", 1) == 1);
  ::close(stop[1]);
  WriterReport w;
  auto counts = read_some(report[0]);
  ::close(report[0]);
  int status = 0;
  REQUIRE(::waitpid(writer, &status, 0) == writer);
  REQUIRE(std::sscanf(counts.c_str(), "%ld %ld %ld", &w.inserted, &w.failed, &w.slowest_ms) == 3);
  INFO("the sweep took " << took.count() << " ms; the writer inserted " << during
                         << " rows meanwhile");
  INFO("writer: " << w.inserted << " inserted, " << w.failed << " failed, slowest insert "
                  << w.slowest_ms << " ms");
  CHECK(WIFEXITED(status));
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "events").counts.affected == kOldRows);
  // Batches sized by time, none past the policy's batch_size of 1000.
  std::int64_t logged = 0;
  for (const auto& line : audit_lines(sweep.state_dir())) {
    CHECK(line.at("affected").get<std::int64_t>() <= 1000);
    logged += line.at("affected").get<std::int64_t>();
  }
  CHECK(logged == kOldRows);

  CHECK(w.failed == 0);
  // Locked out for a batch at most: far from the writer's 5 s timeout.
  CHECK(w.slowest_ms < 2000);
  CHECK(during > 0);  // it did write while the sweep ran
  CHECK(query_int(db, "SELECT count(*) FROM events WHERE source = 'old'") == 0);
  CHECK(query_int(db, "SELECT count(*) FROM events WHERE source = 'recent'") == 1);
  CHECK(query_int(db, "SELECT count(*) FROM events WHERE source = 'writer'") == w.inserted);
}
