// An application writing to a PostgreSQL store while retentiond sweeps it:
// one autocommit INSERT into a claims table at a steady rate (one row every
// 10 ms by default), on its own connection, as an application would (the
// server's default synchronous_commit: each insert is durable when it
// returns). Prints "ready" once its first row is in, runs until SIGTERM or
// SIGINT, then prints one line of counts and insert latencies:
//   inserted N failed F p50_ms X p99_ms Y max_ms Z
// and exits 1 if any insert failed. bench/postgresql.sh drives it.
#include <fmt/format.h>
#include <libpq-fe.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> stop{false};

void on_signal(int) { stop = true; }

double percentile_ms(const std::vector<double>& sorted_us, double p) {
  if (sorted_us.empty()) return 0;
  auto i = static_cast<std::size_t>(p / 100.0 * static_cast<double>(sorted_us.size()) + 0.999999);
  i = std::clamp<std::size_t>(i, 1, sorted_us.size());
  return sorted_us[i - 1] / 1000.0;
}

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pg_writer: an application inserting into a PostgreSQL table at a steady rate"};
  std::string dsn;
  std::string table = "live.claims";
  int period_ms = 10;
  std::string paid_on;
  std::int64_t first_key = 1'000'000'000'000;
  app.add_option("--dsn", dsn, "libpq connection string of the database")->required();
  app.add_option("--table", table, "schema.table (a bench claims table)")->capture_default_str();
  app.add_option("--period-ms", period_ms, "one insert every this many ms")
      ->capture_default_str()
      ->check(CLI::Range(1, 10'000));
  app.add_option("--paid-on", paid_on, "anchor of the new rows, YYYY-MM-DD (recent: kept)")
      ->required();
  app.add_option("--first-key", first_key, "claim_id of the first row")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);

  PGconn* conn = PQconnectdb(dsn.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::fprintf(stderr, "pg_writer: cannot connect: %s\n", trimmed(PQerrorMessage(conn)).c_str());
    PQfinish(conn);
    return 2;
  }
  const std::string sql = fmt::format(
      "INSERT INTO {} (claim_id, member_id, paid_on, amount_cents, act_code, visitor_id, note) "
      "VALUES ($1::bigint, $1::bigint % 100000, $2::date, 1234, 'C0001', 'w' || $1, 'live "
      "writer')",
      table);
  auto prepare = [&] {
    PGresult* prep = PQprepare(conn, "insert", sql.c_str(), 0, nullptr);
    bool ok = PQresultStatus(prep) == PGRES_COMMAND_OK;
    if (!ok) std::fprintf(stderr, "pg_writer: %s\n", trimmed(PQresultErrorMessage(prep)).c_str());
    PQclear(prep);
    return ok;
  };
  if (!prepare()) {
    PQfinish(conn);
    return 2;
  }

  std::vector<double> latencies_us;
  std::int64_t failed = 0;
  std::string first_error;
  // Inserts are due on a fixed timetable; one that comes late does not shift
  // the ones after it (requests keep arriving).
  const auto period = std::chrono::milliseconds{period_ms};
  auto due = Clock::now();
  bool announced = false;
  for (std::int64_t i = 0; !stop; ++i) {
    std::this_thread::sleep_until(due);
    due += period;
    std::string key = std::to_string(first_key + i);
    const char* values[] = {key.c_str(), paid_on.c_str()};
    auto started = Clock::now();
    PGresult* r = PQexecPrepared(conn, "insert", 2, values, nullptr, nullptr, 0);
    auto took = std::chrono::duration<double, std::micro>(Clock::now() - started).count();
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
      ++failed;
      if (first_error.empty()) first_error = trimmed(PQresultErrorMessage(r));
      if (PQstatus(conn) != CONNECTION_OK) {
        PQreset(conn);  // an application reconnects
        if (PQstatus(conn) == CONNECTION_OK) prepare();
      }
    }
    PQclear(r);
    latencies_us.push_back(took);
    if (!announced && failed == 0) {
      std::printf("ready\n");
      std::fflush(stdout);
      announced = true;
    }
  }
  PQfinish(conn);
  auto inserted = static_cast<std::int64_t>(latencies_us.size()) - failed;
  std::sort(latencies_us.begin(), latencies_us.end());
  std::printf("inserted %lld failed %lld p50_ms %.2f p99_ms %.2f max_ms %.2f\n",
              static_cast<long long>(inserted), static_cast<long long>(failed),
              percentile_ms(latencies_us, 50), percentile_ms(latencies_us, 99),
              latencies_us.empty() ? 0.0 : latencies_us.back() / 1000.0);
  if (!first_error.empty())
    std::fprintf(stderr, "pg_writer: first failed insert: %s\n", first_error.c_str());
  return failed == 0 ? 0 : 1;
}
