// "Nothing is lost" (CONTRACT.md): the real binary archives rows in small
// batches and is killed with SIGKILL at random moments. After every kill each
// row is in the live store, in the archive, or in both (the same row: an
// interrupted move); once the next sweep has run, the audit log verifies and
// accounts for exactly the rows that left the live store; after a final
// complete sweep every row is in exactly one place.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "sweep_support.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;

namespace {

constexpr int kRows = 300;
constexpr int kBatch = 5;

// Every claim: id -> its content. Read through a read-write connection, as
// the next sweep would: it rolls back what a killed transaction left in a
// hot journal.
std::map<std::int64_t, std::string> rows_of(const fs::path& file) {
  std::map<std::int64_t, std::string> rows;
  if (!fs::exists(file)) return rows;
  sqlite::Database db(file, sqlite::OpenMode::read_write);
  if (!db.table_exists("claims")) return rows;
  sqlite::Statement s(
      db, "SELECT claim_id, member || '|' || amount_cents || '|' || paid_on FROM claims");
  while (s.step()) {
    auto [it, fresh] = rows.emplace(s.column_int(0), s.column_text(1));
    if (!fresh) FAIL("claim " << s.column_int(0) << " is twice in " << file);
  }
  return rows;
}

std::uint64_t seed_for_this_run() {
  if (const char* env = std::getenv("RETENTIOND_CRASH_SEED"); env && *env) {
    return std::strtoull(env, nullptr, 10);
  }
  return std::random_device{}();
}

}  // namespace

TEST_CASE("a sweep killed at any moment loses nothing and its log accounts for every move",
          "[crash]") {
  TempDir dir;
  auto live = dir / "live.db";
  auto archive = dir / "archive.db";
  auto state = dir / "state";
  auto policy = dir.write("policy.yaml", fmt::format(R"(version: 1
timezone: Europe/Paris
batch_size: {}
stores:
  live: {{ kind: sqlite, path: live.db }}
  archive: {{ kind: sqlite, path: archive.db }}
rules:
  - name: claims
    store: live
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: archive
    to: archive
)",
                                                     kBatch));
  exec(live, R"(
    CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member TEXT, amount_cents INTEGER, paid_on TEXT);
    CREATE INDEX claims_paid_on ON claims (paid_on);
  )");
  // Every row ever put in the live store: claim_id -> content.
  std::map<std::int64_t, std::string> original;
  // Puts kRows more rows in the live store, with keys never used before (a
  // reused key would be an archive conflict).
  auto stock = [&] {
    auto first = original.empty() ? 1 : original.rbegin()->first + 1;
    exec(live, fmt::format(R"(
      WITH RECURSIVE n(i) AS (SELECT {0} UNION ALL SELECT i + 1 FROM n WHERE i < {1})
        INSERT INTO claims (claim_id, member, amount_cents, paid_on)
        SELECT i, printf('M%05d', i), i * 37 % 10000, date('2001-01-01', printf('+%d days', i / 3)) FROM n;
    )",
                           first, first + kRows - 1));
    for (auto& [id, content] : rows_of(live)) original.emplace(id, content);
  };
  stock();
  REQUIRE(original.size() == kRows);

  const std::uint64_t seed = seed_for_this_run();
  std::cout << "sweep_crash_test: seed " << seed << " (RETENTIOND_CRASH_SEED=" << seed
            << " replays it)\n";
  INFO("seed " << seed << " (set RETENTIOND_CRASH_SEED to replay)");
  std::mt19937_64 random(seed);
  // Kills land up to this long after the start; adjusted as the loop learns
  // how fast sweeps run on this machine.
  int max_delay_ms = 100;

  const std::vector<std::string> sweep_args{"-c",    policy.string(), "--state-dir", state.string(),
                                            "sweep", "--as-of",       "2024-01-01"};
  // Nothing is due on this day: a sweep that only settles what a killed one
  // left behind.
  const std::vector<std::string> settle_args{
      "-c", policy.string(), "--state-dir", state.string(), "sweep", "--as-of", "1990-01-01"};
  const std::vector<std::string> verify_args{"--state-dir", state.string(), "audit", "verify"};

  // Each row is in one place or both, and unchanged wherever it is.
  auto check_rows = [&](bool both_allowed) {
    auto in_live = rows_of(live);
    auto in_archive = rows_of(archive);
    std::size_t in_both = 0;
    for (const auto& [id, content] : original) {
      INFO("claim " << id);
      auto l = in_live.find(id);
      auto a = in_archive.find(id);
      CHECK((l != in_live.end() || a != in_archive.end()));
      if (l != in_live.end()) CHECK(l->second == content);
      if (a != in_archive.end()) CHECK(a->second == content);
      if (l != in_live.end() && a != in_archive.end()) ++in_both;
    }
    CHECK(in_live.size() + in_archive.size() - in_both == original.size());
    if (!both_allowed) CHECK(in_both == 0);
    return std::pair{in_live.size(), in_both};
  };
  auto check_log = [&](std::size_t live_rows) {
    auto verified = run_retentiond(dir, verify_args);
    INFO("audit verify: " << verified.err);
    CHECK(verified.exit_code == 0);
    CHECK(audit_affected_total(state) == static_cast<std::int64_t>(original.size() - live_rows));
    for (const auto& line : audit_lines(state)) {
      CHECK(line.at("rule") == "claims");
      CHECK(line.at("action") == "archive");
      CHECK(line.at("affected").get<int>() <= kBatch);
    }
  };

  int kills_mid_sweep = 0;  // killed after some rows moved and before the last
  int seen_in_both = 0;
  for (int i = 0; i < 60; ++i) {
    if (i >= 15 && kills_mid_sweep >= 8) break;
    INFO("kill " << i + 1 << ", at most " << max_delay_ms << " ms after the start");
    if (rows_of(live).size() < 4 * kBatch) stock();
    auto live_before = rows_of(live).size();
    auto archive_before = rows_of(archive).size();
    pid_t child = spawn_retentiond(sweep_args, dir / "sweep.stdout", dir / "sweep.stderr");
    std::this_thread::sleep_for(
        std::chrono::milliseconds{std::uniform_int_distribution<int>(0, max_delay_ms)(random)});
    int status = 0;
    bool finished = ::waitpid(child, &status, WNOHANG) == child;
    if (!finished) {
      REQUIRE(::kill(child, SIGKILL) == 0);
      REQUIRE(::waitpid(child, &status, 0) == child);
    }
    if (WIFEXITED(status)) {
      INFO(read_file(dir / "sweep.stderr"));
      CHECK(WEXITSTATUS(status) == 0);
    }
    auto [live_rows, in_both] = check_rows(true);
    if (in_both > 0) ++seen_in_both;
    if (finished || live_rows == 0) {
      max_delay_ms = std::max(5, max_delay_ms * 2 / 3);  // too late: the sweep was done
    } else if (live_rows == live_before && rows_of(archive).size() == archive_before) {
      max_delay_ms = std::min(2000, max_delay_ms * 3 / 2);  // too early: nothing had moved
    } else {
      ++kills_mid_sweep;
    }
    if (i % 2 == 1) {
      // The next sweep starts by writing what the killed one committed but
      // had not logged yet.
      auto settled = run_retentiond(dir, settle_args);
      INFO("settling sweep: " << settled.err);
      CHECK(settled.exit_code == 0);
      check_log(rows_of(live).size());
    }
  }
  std::cout << "sweep_crash_test: " << kills_mid_sweep << " kills mid-sweep, " << seen_in_both
            << " left rows in both stores, " << original.size() << " rows in all\n";
  // Otherwise the kills never hit a sweep at work and this test showed nothing.
  CHECK(kills_mid_sweep >= 3);

  auto last = run_retentiond(dir, sweep_args);
  INFO("final sweep: " << last.err);
  REQUIRE(last.exit_code == 0);
  auto [live_rows, in_both] = check_rows(false);
  CHECK(live_rows == 0);
  CHECK(in_both == 0);
  CHECK(rows_of(archive) == original);
  check_log(0);
}
