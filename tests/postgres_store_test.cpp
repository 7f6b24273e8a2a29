// What only a database server shows: a dry run by a role that may only read,
// `check` naming every missing privilege, two daemons sweeping one database
// at once, a row the application keeps locked, whole partitions dropped, and
// the store's connection string kept out of every message. The guarantees
// shared with SQLite are in conformance_test.cpp.
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <thread>

#include "postgres_server.hpp"
#include "sweep_support.hpp"
#include "util/digest.hpp"

namespace retentiond::test {
namespace {

namespace fs = std::filesystem;

#define SHOW(outcome)                                  \
  INFO("exit " << (outcome).exit_code << "\nstdout:\n" \
               << (outcome).out << "\nstderr:\n"       \
               << (outcome).err)

// A policy folder beside a fresh database with a schema "amo" holding
// `claims`: `expired` rows paid in 2015 (past 5 years on 2026-01-01), 1,000
// paid in 2025 (not), 10 held.
struct PgCase {
  TempDir dir;
  TestDatabase db;
  fs::path policy = dir / "policy.yaml";

  explicit PgCase(int expired = 5000) {
    db.exec(fmt::format(R"(
      CREATE SCHEMA amo;
      CREATE TABLE amo.claims (claim_id bigint PRIMARY KEY, paid_on date NOT NULL, held boolean);
      CREATE INDEX ON amo.claims (paid_on);
      INSERT INTO amo.claims SELECT g, date '2015-01-01' + (g % 300), g <= 10
        FROM generate_series(1, {0}) g;
      INSERT INTO amo.claims SELECT g, date '2025-01-01' + (g % 300), false
        FROM generate_series({0} + 1, {0} + 1000) g;
    )",
                        expired));
  }

  void write_policy(const std::string& dsn, std::string_view extra = "") const {
    dir.write("policy.yaml", fmt::format(R"(version: 1
timezone: Europe/Paris
batch_size: 200
busy_timeout: 1s
stores:
  amo: {{ kind: postgresql, dsn: "{}", schema: amo }}
rules:
  - name: claims
    store: amo
    table: claims
    key: claim_id
    anchor: paid_on
    hold: {{ column: held }}
    keep_for: 5 years
    action: delete
{})",
                                         dsn, extra));
  }

  ProcessOutcome run(std::vector<std::string> args, const fs::path& state = {}) const {
    std::vector<std::string> all{"-c", policy.string(), "--state-dir",
                                 (state.empty() ? dir / "state" : state).string()};
    all.insert(all.end(), args.begin(), args.end());
    return run_retentiond(dir, all);
  }
};

std::int64_t audit_total(const fs::path& state) {
  if (!fs::exists(state / "audit.jsonl")) return 0;
  return audit_affected_total(state);
}

// What the server counts of writes to the schema's tables, once every
// backend has reported (stats are flushed when a session ends).
std::string write_counters(const TestDatabase& db) {
  db.exec("SELECT pg_stat_clear_snapshot()");
  auto rows = db.query_column(
      "SELECT relname || ':' || n_tup_ins || '/' || n_tup_upd || '/' || n_tup_del || '/' || "
      "n_tup_hot_upd FROM pg_stat_user_tables ORDER BY relname");
  std::string out;
  for (const auto& r : rows) out += r + "\n";
  return out;
}

}  // namespace

TEST_CASE("postgresql: a dry run by a role that may only SELECT counts and changes nothing",
          "[postgresql][dry-run]") {
  PgCase c;
  c.db.create_role("rt_reader");
  c.db.exec(
      "GRANT USAGE ON SCHEMA amo TO rt_reader; GRANT SELECT ON ALL TABLES IN SCHEMA amo TO "
      "rt_reader;");
  c.write_policy(c.db.dsn_for("rt_reader"));
  // Stats of the setup are reported once its session has been idle a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds{1200});
  auto before_counters = write_counters(c.db);
  auto before = c.db.dump("amo");

  auto plan = c.run({"plan", "--as-of", "2026-01-01", "--format", "json"});
  SHOW(plan);
  REQUIRE(plan.exit_code == 0);
  auto report = nlohmann::json::parse(plan.out);
  CHECK(report.at("rules").at(0).at("matched") == 4990);
  CHECK(report.at("rules").at(0).at("held") == 10);
  auto dry = c.run({"sweep", "--dry-run", "--as-of", "2026-01-01"});
  SHOW(dry);
  CHECK(dry.exit_code == 0);

  std::this_thread::sleep_for(std::chrono::milliseconds{1200});
  CHECK(c.db.dump("amo") == before);
  CHECK(write_counters(c.db) == before_counters);
  CHECK(c.db.query_int("SELECT count(*) FROM pg_namespace WHERE nspname = 'retentiond'") == 0);

  // `check` says, all at once, what a real sweep would lack.
  auto checked = c.run({"check"});
  SHOW(checked);
  CHECK(checked.exit_code == 69);
  CHECK(checked.err.find("lacks DELETE on TABLE \"amo\".\"claims\"") != std::string::npos);
  CHECK(checked.err.find("lacks UPDATE on TABLE \"amo\".\"claims\"") != std::string::npos);
  CHECK(checked.err.find("lacks CREATE on DATABASE") != std::string::npos);
  // A real sweep by that role fails without changing anything.
  auto swept = c.run({"sweep", "--as-of", "2026-01-01"});
  SHOW(swept);
  CHECK(swept.exit_code == 69);
  CHECK(c.db.dump("amo") == before);
}

TEST_CASE("postgresql: check accepts a role with what a sweep needs, and names a wrong anchor type",
          "[postgresql][check]") {
  PgCase c;
  c.write_policy(c.db.dsn());
  auto ok = c.run({"check"});
  SHOW(ok);
  CHECK(ok.exit_code == 0);

  c.write_policy(c.db.dsn());
  c.dir.write("policy.yaml", read_file(c.policy) + "    anchor_format: unixepoch\n");
  auto wrong = c.run({"check"});
  SHOW(wrong);
  CHECK(wrong.exit_code == 69);
  CHECK(wrong.err.find("anchor column 'paid_on'") != std::string::npos);
  CHECK(wrong.err.find("of type date") != std::string::npos);
}

TEST_CASE("postgresql: an unreachable server is named without its connection string's secrets",
          "[postgresql][secrets]") {
  PgCase c;
  c.write_policy("host=/nonexistent-socket-dir dbname=nowhere user=rd passfile=/etc/secret.pgpass");
  auto planned = c.run({"plan", "--as-of", "2026-01-01"});
  SHOW(planned);
  CHECK(planned.exit_code == 69);
  CHECK(planned.err.find("cannot connect to store 'amo'") != std::string::npos);
  CHECK(planned.err.find("password") == std::string::npos);
}

TEST_CASE("postgresql: two daemons sweeping one database act on every record exactly once",
          "[postgresql][concurrency]") {
  PgCase c(30000);
  c.write_policy(c.db.dsn());
  std::int64_t expired =
      c.db.query_int("SELECT count(*) FROM amo.claims WHERE paid_on <= '2021-01-01' AND NOT held");
  REQUIRE(expired == 29990);
  // Two hosts: two state directories, two installations, one database.
  fs::path a = c.dir / "host-a", b = c.dir / "host-b";
  auto start = [&](const fs::path& state, const std::string& tag) {
    return spawn_retentiond(
        {"-c", c.policy.string(), "--state-dir", state.string(), "sweep", "--as-of", "2026-01-01"},
        c.dir / (tag + ".out"), c.dir / (tag + ".err"));
  };
  pid_t pa = start(a, "a"), pb = start(b, "b");
  int sa = 0, sb = 0;
  REQUIRE(::waitpid(pa, &sa, 0) == pa);
  REQUIRE(::waitpid(pb, &sb, 0) == pb);
  INFO("a: " << read_file(c.dir / "a.err") << "\nb: " << read_file(c.dir / "b.err"));
  REQUIRE(WIFEXITED(sa));
  REQUIRE(WIFEXITED(sb));
  // The loser of the rule's lock reports it busy (75); nothing is done twice.
  for (int code : {WEXITSTATUS(sa), WEXITSTATUS(sb)}) CHECK((code == 0 || code == 75));
  // The next sweep of the busy host picks up whatever is left.
  for (const auto& state : {a, b}) {
    auto again = c.run({"sweep", "--as-of", "2026-01-01"}, state);
    SHOW(again);
    CHECK(again.exit_code == 0);
  }
  CHECK(c.db.query_int("SELECT count(*) FROM amo.claims WHERE paid_on <= '2021-01-01' AND NOT "
                       "held") == 0);
  CHECK(c.db.query_int("SELECT count(*) FROM amo.claims") == 1000 + 10);
  CHECK(audit_total(a) + audit_total(b) == expired);
  for (const auto& state : {a, b}) {
    if (!fs::exists(state / "audit.jsonl")) continue;
    auto verified = c.run({"audit", "verify"}, state);
    CHECK(verified.exit_code == 0);
  }
  CHECK(c.db.query_int("SELECT count(*) FROM retentiond.outbox") == 0);
}

TEST_CASE("postgresql: a row the application keeps locked is skipped, then ends the sweep busy",
          "[postgresql][locks]") {
  PgCase c(2000);
  c.write_policy(c.db.dsn());
  // The application holds row 500 (expired) in an open transaction.
  c.db.exec("BEGIN; SELECT * FROM amo.claims WHERE claim_id = 500 FOR UPDATE;");
  auto started = std::chrono::steady_clock::now();
  auto swept = c.run({"sweep", "--as-of", "2026-01-01"});
  auto took = std::chrono::steady_clock::now() - started;
  SHOW(swept);
  CHECK(swept.exit_code == 75);
  CHECK(swept.err.find("stayed busy") != std::string::npos);
  // Every other expired row is gone; the held-locked one waits for the next sweep.
  CHECK(c.db.query_int("SELECT count(*) FROM amo.claims WHERE paid_on <= '2021-01-01' AND NOT "
                       "held") == 1);
  CHECK(took < std::chrono::seconds{20});
  c.db.exec("COMMIT");
  auto again = c.run({"sweep", "--as-of", "2026-01-01"});
  SHOW(again);
  CHECK(again.exit_code == 0);
  CHECK(c.db.query_int("SELECT count(*) FROM amo.claims WHERE paid_on <= '2021-01-01' AND NOT "
                       "held") == 0);
  CHECK(audit_total(c.dir / "state") == 1990);
}

TEST_CASE("postgresql: expired partitions are dropped whole, partly expired ones swept row by row",
          "[postgresql][partitions]") {
  TempDir dir;
  TestDatabase db;
  db.exec(R"(
    CREATE SCHEMA amo;
    CREATE TABLE amo.visits (id bigint, visited_at date NOT NULL, held boolean DEFAULT false)
      PARTITION BY RANGE (visited_at);
    CREATE TABLE amo.visits_2019 PARTITION OF amo.visits FOR VALUES FROM ('2019-01-01') TO ('2020-01-01');
    CREATE TABLE amo.visits_2020 PARTITION OF amo.visits FOR VALUES FROM ('2020-01-01') TO ('2021-01-01');
    CREATE TABLE amo.visits_2021 PARTITION OF amo.visits FOR VALUES FROM ('2021-01-01') TO ('2022-01-01');
    CREATE TABLE amo.visits_2022 PARTITION OF amo.visits FOR VALUES FROM ('2022-01-01') TO ('2023-01-01');
    CREATE INDEX ON amo.visits (visited_at);
    INSERT INTO amo.visits SELECT g, date '2019-01-01' + (g % 1460), false FROM generate_series(1, 8000) g;
    UPDATE amo.visits SET held = true WHERE id = 7;  -- a 2019 row: that partition stays
  )");
  auto in_partition = [&](std::string_view p) {
    return db.query_int(fmt::format("SELECT count(*) FROM amo.{}", p));
  };
  std::int64_t p2020 = in_partition("visits_2020");
  std::int64_t expired =
      db.query_int("SELECT count(*) FROM amo.visits WHERE visited_at <= '2021-06-30' AND NOT held");
  dir.write("policy.yaml", fmt::format(R"(version: 1
timezone: Europe/Paris
stores:
  amo: {{ kind: postgresql, dsn: "{}", schema: amo }}
rules:
  - name: visits
    store: amo
    table: visits
    key: id
    anchor: visited_at
    hold: {{ column: held }}
    keep_for: 1 year
    action: delete
)",
                                       db.dsn()));
  std::vector<std::string> base{"-c", (dir / "policy.yaml").string(), "--state-dir",
                                (dir / "state").string()};
  auto with = [&](std::vector<std::string> more) {
    auto all = base;
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  auto plan = run_retentiond(dir, with({"plan", "--as-of", "2022-06-30", "--format", "json"}));
  SHOW(plan);
  REQUIRE(plan.exit_code == 0);
  CHECK(nlohmann::json::parse(plan.out).at("totals").at("matched") == expired);

  auto swept = run_retentiond(dir, with({"sweep", "--as-of", "2022-06-30", "--format", "json"}));
  SHOW(swept);
  REQUIRE(swept.exit_code == 0);
  auto report = nlohmann::json::parse(swept.out);
  CHECK(report.at("totals").at("matched") == expired);
  CHECK(report.at("totals").at("affected") == expired);
  CHECK(report.at("totals").at("held") == 1);
  // 2020 is gone as a table; 2019 (a held row) and 2021 (partly expired) stay.
  auto partitions = db.query_set(
      "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE "
      "i.inhparent = 'amo.visits'::regclass");
  CHECK(partitions == std::set<std::string>{"visits_2019", "visits_2021", "visits_2022"});
  CHECK(db.query_int("SELECT count(*) FROM amo.visits WHERE visited_at <= '2021-06-30'") == 1);
  // The partition's audit entry covers its keys, in key order.
  auto lines = audit_lines(dir / "state");
  std::int64_t total = 0;
  bool found = false;
  for (const auto& l : lines) {
    total += l.at("affected").get<std::int64_t>();
    if (l.at("affected") == p2020) {
      std::vector<std::string> keys;
      for (int k = 1; k <= 8000; ++k)
        if (date::sys_days{date::year{2019} / 1 / 1} + date::days{k % 1460} >=
                date::sys_days{date::year{2020} / 1 / 1} &&
            date::sys_days{date::year{2019} / 1 / 1} + date::days{k % 1460} <
                date::sys_days{date::year{2021} / 1 / 1})
          keys.push_back(std::to_string(k));
      found = found || l.at("keys_sha256") == keys_root(dir / "state", keys);
    }
  }
  CHECK(found);
  CHECK(total == expired);
  auto verified = run_retentiond(dir, with({"audit", "verify"}));
  CHECK(verified.exit_code == 0);
}

}  // namespace retentiond::test
