// An application writing to a store while retentiond sweeps it: one
// autocommit INSERT into claims at a steady rate (500 rows/s by default), on
// its own connection in WAL mode with a 5 s busy timeout, as an application
// would. Prints "ready" once its first row is in, runs until SIGTERM or
// SIGINT, then prints one line of counts and insert latencies:
//   inserted N failed F p50_ms X p99_ms Y max_ms Z
// and exits 1 if any insert failed. bench/live_writer.sh drives it.
#include <fmt/format.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "stores/sqlite/sqlite.hpp"

using namespace retentiond;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> stop{false};

void on_signal(int) { stop = true; }

double percentile_ms(std::vector<double> sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted_us.size()) + 0.999999);
  i = std::clamp<std::size_t>(i, 1, sorted_us.size());
  return sorted_us[i - 1] / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"live_writer: an application inserting into a store at a steady rate"};
  std::filesystem::path db_file;
  int rate = 500;
  int busy_timeout_ms = 5000;
  std::string paid_on = "2026-06-14";
  int autocheckpoint = -1;
  int slowest = 0;
  app.add_option("--db", db_file, "the store (a bench_data claims table)")->required();
  app.add_option("--rate", rate, "inserts per second")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  app.add_option("--busy-timeout-ms", busy_timeout_ms, "SQLite busy timeout")
      ->capture_default_str();
  app.add_option("--paid-on", paid_on, "anchor of the new rows (recent: the sweep leaves them)")
      ->capture_default_str();
  app.add_option(
      "--wal-autocheckpoint", autocheckpoint,
      "PRAGMA wal_autocheckpoint for the writer's connection (default: SQLite's, 1000 pages)");
  app.add_option("--slowest", slowest, "also print the N slowest inserts, with when they started");
  CLI11_PARSE(app, argc, argv);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  std::vector<double> latencies_us;
  std::vector<double> started_ms;  // since the first insert
  std::int64_t failed = 0;
  std::string first_error;
  try {
    sqlite::Database db(db_file, sqlite::OpenMode::read_write,
                        std::chrono::milliseconds{busy_timeout_ms});
    db.exec("PRAGMA journal_mode = WAL");
    if (autocheckpoint >= 0) db.exec(fmt::format("PRAGMA wal_autocheckpoint = {}", autocheckpoint));
    sqlite::Statement insert(
        db,
        "INSERT INTO claims (member_id, paid_on, amount_cents, act_code, visitor_id, note) "
        "VALUES (?1, ?2, ?3, 'C0001', ?4, 'live writer')");
    // Inserts are due on a fixed timetable; one that comes late does not
    // shift the ones after it (requests keep arriving).
    const auto period = std::chrono::nanoseconds{1'000'000'000 / rate};
    auto due = Clock::now();
    const auto first = due;
    bool announced = false;
    for (std::int64_t i = 0; !stop; ++i) {
      std::this_thread::sleep_until(due);
      due += period;
      auto started = Clock::now();
      try {
        insert.bind(1, i).bind(2, paid_on).bind(3, i % 100000).bind(4, fmt::format("w{:016x}", i));
        insert.step();
      } catch (const sqlite::SqliteError& e) {
        ++failed;
        if (first_error.empty()) first_error = e.what();
      }
      insert.reset();
      latencies_us.push_back(
          std::chrono::duration<double, std::micro>(Clock::now() - started).count());
      started_ms.push_back(std::chrono::duration<double, std::milli>(started - first).count());
      if (!announced && failed == 0) {
        std::printf("ready\n");
        std::fflush(stdout);
        announced = true;
      }
    }
  } catch (const sqlite::SqliteError& e) {
    std::fprintf(stderr, "live_writer: %s\n", e.what());
    return 2;
  }
  auto inserted = static_cast<std::int64_t>(latencies_us.size()) - failed;
  if (slowest > 0) {
    std::vector<std::size_t> order(latencies_us.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](auto a, auto b) { return latencies_us[a] > latencies_us[b]; });
    for (std::size_t k = 0; k < order.size() && k < static_cast<std::size_t>(slowest); ++k) {
      std::fprintf(stderr, "live_writer: insert %zu at %.1f ms took %.2f ms\n", order[k],
                   started_ms[order[k]], latencies_us[order[k]] / 1000.0);
    }
  }
  std::sort(latencies_us.begin(), latencies_us.end());
  std::printf("inserted %lld failed %lld p50_ms %.2f p99_ms %.2f max_ms %.2f\n",
              static_cast<long long>(inserted), static_cast<long long>(failed),
              percentile_ms(latencies_us, 50), percentile_ms(latencies_us, 99),
              latencies_us.empty() ? 0.0 : latencies_us.back() / 1000.0);
  if (!first_error.empty())
    std::fprintf(stderr, "live_writer: first failed insert: %s\n", first_error.c_str());
  return failed == 0 ? 0 : 1;
}
