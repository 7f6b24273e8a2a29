// The sweep's guarantees (CONTRACT.md, "What a sweep guarantees"), each shown
// on SQLite files built here and swept through run_sweep on a fake clock.
#include <date/date.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "sweep_support.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;
using Strings = std::set<std::string>;

namespace {

// The head every policy below shares; rules follow.
std::string policy_head(int batch_size = 1000) {
  return fmt::format(R"(version: 1
timezone: Europe/Paris
batch_size: {}
max_transaction: 1 min  # batch_size alone sizes the batches the tests count
hmac_key_file: hmac.key
stores:
  main: {{ kind: sqlite, path: main.db }}
  archive: {{ kind: sqlite, path: archive.db }}
rules:
)",
                     batch_size);
}

std::int64_t epoch_of(date::sys_seconds t) { return t.time_since_epoch().count(); }

std::string hmac_hex(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", out[i]);
  return hex;
}

constexpr std::string_view kClaimsDdl =
    "CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member TEXT NOT NULL, amount_cents "
    "INTEGER, paid_on TEXT, scan BLOB)";

}  // namespace

TEST_CASE("a record is past its period from the day anchor + period, in the policy's zone",
          "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE d (id INTEGER PRIMARY KEY, tag TEXT, on_day TEXT);
    INSERT INTO d (tag, on_day) VALUES ('feb-27', '2024-02-27'), ('feb-28', '2024-02-28'),
      ('leap-day', '2024-02-29'), ('mar-01', '2024-03-01'), ('next-year', '2025-01-01');
    CREATE TABLE dt (id INTEGER PRIMARY KEY, tag TEXT, at TEXT);
    INSERT INTO dt (tag, at) VALUES
      ('utc-27-paris-28', '2024-02-27T23:30:00Z'),
      ('paris-29-2359', '2024-02-29 22:59:59'),
      ('offset-paris-29', '2024-03-01T00:30:00+02:00'),
      ('paris-mar-01-0000', '2024-02-29T23:00:00Z'),
      ('fraction-paris-mar-01', '2024-02-29 23:00:00.000');
    CREATE TABLE ue (id INTEGER PRIMARY KEY, tag TEXT, at INTEGER);
  )");
  using namespace std::chrono;
  date::sys_seconds paris_midnight_mar_01 = date::sys_days{date::year{2024} / 3 / 1} - hours{1};
  {
    auto conn = open_db(db);
    sqlite::Statement ins(conn, "INSERT INTO ue (tag, at) VALUES (?1, ?2)");
    ins.bind(1, std::string_view("paris-29-2359"))
        .bind(2, epoch_of(paris_midnight_mar_01 - seconds{1}))
        .step();
    ins.reset();
    ins.bind(1, std::string_view("paris-mar-01-0000"))
        .bind(2, epoch_of(paris_midnight_mar_01))
        .step();
  }
  auto policy = write_policy(dir, policy_head() + R"(
  - name: by-date
    store: main
    table: d
    key: id
    anchor: on_day
    anchor_format: date
    keep_for: 1 year
    action: delete
  - name: by-datetime
    store: main
    table: dt
    key: id
    anchor: at
    anchor_format: datetime
    keep_for: 1 year
    action: delete
  - name: by-unixepoch
    store: main
    table: ue
    key: id
    anchor: at
    anchor_format: unixepoch
    keep_for: 12 months
    action: delete
)");
  Sweep sweep(dir, "2025-02-27");

  // The day before 2024-02-28's expiry: only 2024-02-27 has run out; a UTC
  // instant late on the 27th is already the 28th in Paris.
  auto first = sweep.run(*policy, "2025-02-27");
  CHECK(first.code == ExitCode::ok);
  CHECK(entry(first.report, "by-date").cutoff == "2024-02-27");
  CHECK(query_set(db, "SELECT tag FROM d") == Strings{"feb-28", "leap-day", "mar-01", "next-year"});
  CHECK(query_set(db, "SELECT tag FROM dt") == Strings{"utc-27-paris-28", "paris-29-2359",
                                                       "offset-paris-29", "paris-mar-01-0000",
                                                       "fraction-paris-mar-01"});

  // 2024-02-28 + 1 year is 2025-02-28; 2024-02-29 + 1 year does not exist and
  // is the last day of February 2025: both run out on 2025-02-28, 2024-03-01
  // does not.
  sweep.clock.set(noon_utc("2025-02-28"));
  auto second = sweep.run(*policy, "2025-02-28");
  CHECK(second.code == ExitCode::ok);
  CHECK(entry(second.report, "by-date").cutoff == "2024-02-29");
  CHECK(entry(second.report, "by-date").counts.affected == 2);
  CHECK(query_set(db, "SELECT tag FROM d") == Strings{"mar-01", "next-year"});
  CHECK(query_set(db, "SELECT tag FROM dt") ==
        Strings{"paris-mar-01-0000", "fraction-paris-mar-01"});
  CHECK(entry(second.report, "by-datetime").counts.affected == 3);
  CHECK(query_set(db, "SELECT tag FROM ue") == Strings{"paris-mar-01-0000"});
  CHECK(entry(second.report, "by-unixepoch").counts.affected == 1);

  sweep.clock.set(noon_utc("2025-03-01"));
  auto third = sweep.run(*policy, "2025-03-01");
  CHECK(third.code == ExitCode::ok);
  CHECK(query_set(db, "SELECT tag FROM d") == Strings{"next-year"});
  CHECK(query_int(db, "SELECT count(*) FROM dt") == 0);
  CHECK(query_int(db, "SELECT count(*) FROM ue") == 0);
}

TEST_CASE("undated records are counted and never touched", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE t (id INTEGER PRIMARY KEY, tag TEXT, on_day);
    INSERT INTO t (tag, on_day) VALUES ('null', NULL), ('empty', ''), ('garbage', 'garbage'),
      ('feb-30', '2015-02-30'), ('slashes', '2021/01/01'), ('dated', '2015-01-01');
    INSERT INTO t (tag, on_day) VALUES ('number', 20150101);
    CREATE TABLE v (id INTEGER PRIMARY KEY, tag TEXT, at TEXT);
    INSERT INTO v (tag, at) VALUES ('month-13', '2020-13-01 00:00:00'), ('feb-30', '2020-02-30T10:00:00'),
      ('bad-offset', '2020-01-01T10:00:00+25:00'), ('null', NULL), ('dated', '2020-01-01 10:00:00');
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: dates
    store: main
    table: t
    key: id
    anchor: on_day
    keep_for: 1 year
    action: delete
  - name: datetimes
    store: main
    table: v
    key: id
    anchor: at
    anchor_format: datetime
    keep_for: 1 year
    action: delete
)");
  Sweep sweep(dir);
  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "dates").counts.undated == 6);
  CHECK(entry(plan.report, "dates").counts.matched == 1);
  CHECK(entry(plan.report, "datetimes").counts.undated == 4);

  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "dates").counts.undated == 6);
  CHECK(entry(done.report, "dates").counts.affected == 1);
  CHECK(entry(done.report, "datetimes").counts.undated == 4);
  CHECK(entry(done.report, "datetimes").counts.affected == 1);
  CHECK(done.report.totals().undated == 10);
  CHECK(query_set(db, "SELECT tag FROM t") ==
        Strings{"null", "empty", "garbage", "feb-30", "slashes", "number"});
  CHECK(query_set(db, "SELECT tag FROM v") == Strings{"month-13", "feb-30", "bad-offset", "null"});
  // Untouched means unchanged, too.
  CHECK(query_set(db, "SELECT quote(on_day) FROM t") ==
        Strings{"NULL", "''", "'garbage'", "'2015-02-30'", "'2021/01/01'", "20150101"});
}

TEST_CASE("rows another connection writes during a stage are judged one by one", "[sweep]") {
  // The batches find a window's rows by comparing the anchor with the values
  // the count read (stores/sqlite/anchor_census.hpp). An application that
  // commits an impossible date, or a new day, after the count must not be
  // judged by that stale list.
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE t (id INTEGER PRIMARY KEY, tag TEXT, on_day TEXT);
    CREATE INDEX t_on_day ON t (on_day);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
      INSERT INTO t (tag, on_day) SELECT 'old', '2015-02-28' FROM n;
    INSERT INTO t (tag, on_day) VALUES ('recent', '2026-01-01');
  )");
  auto policy = write_policy(dir, policy_head(5) + R"(
  - name: dates
    store: main
    table: t
    key: id
    anchor: on_day
    keep_for: 1 year
    action: delete
)");
  Sweep sweep(dir);
  sqlite::Database other(db, sqlite::OpenMode::read_write);
  int batches = 0;
  SweepControl control;
  control.on_batch = [&](const SweepProgress&) {
    if (++batches != 1) return;
    // After the first batch: an impossible date and a text that is no date,
    // both inside the index range of the window, and a day in the window.
    other.exec(
        "INSERT INTO t (tag, on_day) VALUES ('feb-29', '2015-02-29'), ('feb-28x', "
        "'2015-02-28x'), ('new-old', '2015-03-01')");
  };
  SweepOptions o;
  o.dry_run = false;
  o.as_of = day("2026-06-15");
  o.state_dir = sweep.state_dir();
  auto done = run_sweep(*policy, o, sweep.clock, sweep.log, control);
  REQUIRE(done.has_value());
  CHECK(done->code == ExitCode::ok);
  CHECK(batches > 1);
  CHECK(query_set(db, "SELECT tag FROM t") == Strings{"recent", "feb-29", "feb-28x"});
}

TEST_CASE("the WAL is checkpointed between batches and not left to grow", "[sweep]") {
  // The sweep's connections checkpoint after a batch's commit rather than
  // inside it (sqlite::Database::checkpoint_when_asked); they must still do
  // it, or an application's open connection keeps a WAL as large as the
  // whole sweep.
  TempDir dir;
  auto db = dir / "main.db";
  open_db(db).exec("PRAGMA journal_mode = WAL");
  exec(db, R"(
    CREATE TABLE t (id INTEGER PRIMARY KEY, on_day TEXT, note TEXT);
    CREATE INDEX t_on_day ON t (on_day);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 60000)
      INSERT INTO t (on_day, note) SELECT '2015-01-01', printf('%.100c', 'x') FROM n;
  )");
  auto policy = write_policy(dir, policy_head(2000) + R"(
  - name: dates
    store: main
    table: t
    key: id
    anchor: on_day
    keep_for: 1 year
    action: delete
)");
  sqlite::Database application(db, sqlite::OpenMode::read_write);  // keeps the WAL open
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "dates").counts.affected == 60000);
  auto wal = fs::file_size(dir / "main.db-wal");
  auto database = fs::file_size(db);
  INFO("WAL " << wal << " bytes, database " << database << " bytes");
  // Checkpointed every 1000 pages or so: a few MiB, where the sweep's pages
  // add up to several times the database.
  CHECK(wal < 6u * 1024 * 1024);
}

TEST_CASE("held records are counted and never touched, whatever their age", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  Sweep sweep(dir, "2100-01-01");

  SECTION("held by a column while it is truthy") {
    exec(db, R"(
      CREATE TABLE m (id INTEGER PRIMARY KEY, tag TEXT, closed_on TEXT, litigation);
      INSERT INTO m (tag, closed_on, litigation) VALUES
        ('one', '1950-01-01', 1), ('yes', '1950-01-01', 'yes'), ('true', '1950-01-01', 'true'),
        ('zero', '1950-01-01', 0), ('null', '1950-01-01', NULL), ('empty', '1950-01-01', ''),
        ('no', '1950-01-01', 'no'), ('recent-held', '2099-06-01', 1);
    )");
    auto policy = write_policy(dir, policy_head() + R"(
  - name: members
    store: main
    table: m
    key: id
    anchor: closed_on
    hold: { column: litigation }
    keep_for: 5 years
    action: delete
)");
    auto plan = sweep.run(*policy, "2100-01-01", true);
    CHECK(entry(plan.report, "members").counts.held == 3);
    CHECK(entry(plan.report, "members").counts.matched == 4);
    auto done = sweep.run(*policy, "2100-01-01");
    CHECK(done.code == ExitCode::ok);
    CHECK(entry(done.report, "members").counts.held == 3);
    CHECK(entry(done.report, "members").counts.affected == 4);
    CHECK(query_set(db, "SELECT tag FROM m") == Strings{"one", "yes", "true", "recent-held"});
  }

  SECTION("held by a table listing the key, until the listing goes") {
    exec(db, R"(
      CREATE TABLE members (id INTEGER PRIMARY KEY, tag TEXT, left_on TEXT);
      INSERT INTO members (id, tag, left_on) VALUES (1, 'a', '1950-01-01'), (2, 'b', '1950-01-01'),
        (3, 'c', '1950-01-01'), (4, 'd', '1950-01-01');
      CREATE TABLE litigation (case_no TEXT, member_id INTEGER);
      INSERT INTO litigation VALUES ('L1', 2), ('L2', 4), ('L3', 99);
    )");
    auto policy = write_policy(dir, policy_head() + R"(
  - name: members
    store: main
    table: members
    key: id
    anchor: left_on
    hold: { table: litigation, key: member_id }
    keep_for: 5 years
    action: delete
)");
    auto done = sweep.run(*policy, "2100-01-01");
    CHECK(done.code == ExitCode::ok);
    CHECK(entry(done.report, "members").counts.held == 2);
    CHECK(entry(done.report, "members").counts.affected == 2);
    CHECK(query_set(db, "SELECT tag FROM members") == Strings{"b", "d"});

    exec(db, "DELETE FROM litigation WHERE member_id = 2");
    auto after = sweep.run(*policy, "2100-01-01");
    CHECK(entry(after.report, "members").counts.held == 1);
    CHECK(entry(after.report, "members").counts.affected == 1);
    CHECK(query_set(db, "SELECT tag FROM members") == Strings{"d"});
  }

  SECTION("rows in the archive are held by the list in the live store") {
    auto archive = dir / "archive.db";
    exec(db, std::string(kClaimsDdl) + R"(;
      CREATE TABLE litigation (claim_id INTEGER);
      INSERT INTO litigation VALUES (10);
    )");
    exec(archive, std::string(kClaimsDdl) + R"(;
      INSERT INTO claims (claim_id, member, paid_on) VALUES (10, 'M-held', '1950-01-01'),
        (11, 'M-free', '1950-01-01');
    )");
    auto policy = write_policy(dir, policy_head() + R"(
  - name: claims
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    hold: { table: litigation, key: claim_id }
    stages:
      - { after: 3 years, action: archive, to: archive }
      - { after: 13 years, action: delete }
)");
    auto done = sweep.run(*policy, "2100-01-01");
    CHECK(done.code == ExitCode::ok);
    const auto& in_archive = entry(done.report, "claims", 2, "archive");
    CHECK(in_archive.counts.held == 1);
    CHECK(in_archive.counts.affected == 1);
    CHECK(query_set(archive, "SELECT claim_id FROM claims") == Strings{"10"});
    // Reading the live store's list must not leave files behind.
    for (const auto& f : fs::directory_iterator(dir.path())) {
      CHECK(f.path().filename().string().rfind("file:", 0) != 0);
    }
    for (const auto& f : fs::directory_iterator(fs::current_path())) {
      CHECK(f.path().filename().string().rfind("file:", 0) != 0);
    }
  }
}

TEST_CASE("where selects the rows a rule covers, by one value or a list", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE a (id INTEGER PRIMARY KEY, tag TEXT, regime TEXT, kind INTEGER, closed_on TEXT);
    INSERT INTO a (tag, regime, kind, closed_on) VALUES
      ('amo', 'AMO', 1, '2000-01-01'), ('rc', 'RC', 2, '2000-01-01'), ('msa', 'MSA', 2, '2000-01-01'),
      ('none', NULL, 3, '2000-01-01'), ('amo-recent', 'AMO', 1, '2026-01-01'),
      ('rc-undated', 'RC', 2, NULL);
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: one-value
    store: main
    table: a
    key: id
    anchor: closed_on
    where: { regime: AMO }
    keep_for: 5 years
    action: delete
  - name: a-list
    store: main
    table: a
    key: id
    anchor: closed_on
    where: { regime: [MSA, RC] }
    keep_for: 5 years
    action: delete
  - name: two-columns
    store: main
    table: a
    key: id
    anchor: closed_on
    where: { kind: 3, regime: [null, AMO] }
    keep_for: 5 years
    action: delete
)");
  Sweep sweep(dir);
  auto one = sweep.run(*policy, "2026-06-15", false, {"one-value"});
  CHECK(entry(one.report, "one-value").counts.affected == 1);
  CHECK(entry(one.report, "one-value").counts.undated == 0);  // the undated row is not AMO
  CHECK(query_set(db, "SELECT tag FROM a") ==
        Strings{"rc", "msa", "none", "amo-recent", "rc-undated"});

  auto list = sweep.run(*policy, "2026-06-15", false, {"a-list"});
  CHECK(entry(list.report, "a-list").counts.affected == 2);
  CHECK(entry(list.report, "a-list").counts.undated == 1);
  CHECK(query_set(db, "SELECT tag FROM a") == Strings{"none", "amo-recent", "rc-undated"});

  auto two = sweep.run(*policy, "2026-06-15", false, {"two-columns"});
  CHECK(entry(two.report, "two-columns").counts.affected == 1);
  CHECK(query_set(db, "SELECT tag FROM a") == Strings{"amo-recent", "rc-undated"});
}

TEST_CASE("stages: the latest stage a record has reached wins", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  auto archive = dir / "archive.db";
  // At 2026-06-15 the archive stage's cutoff is 2023-06-15, the delete
  // stage's 2013-06-15.
  exec(db, std::string(kClaimsDdl) + R"(;
    INSERT INTO claims (claim_id, member, amount_cents, paid_on, scan) VALUES
      (1, 'M1', 100, '2010-01-01', x'00ff'), (2, 'M2', 200, '2013-06-15', NULL),
      (3, 'M3', 300, '2013-06-16', x'0102'), (4, 'M4', 400, '2023-06-15', NULL),
      (5, 'M5', 500, '2023-06-16', NULL), (6, 'M6', 600, NULL, NULL);
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: health
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    stages:
      - after: 3 years
        action: archive
        to: archive
      - after: 13 years
        action: delete
)");
  Sweep sweep(dir);
  auto live_rows = [&] { return query_set(db, "SELECT claim_id FROM claims"); };
  auto archived_rows = [&] { return query_set(archive, "SELECT claim_id FROM claims"); };
  auto row_text = [](const fs::path& file, int id) {
    return query_column(file, fmt::format("SELECT claim_id || '|' || member || '|' || amount_cents "
                                          "|| '|' || paid_on || '|' || quote(scan) FROM claims "
                                          "WHERE claim_id = {}",
                                          id));
  };
  auto before3 = row_text(db, 3), before4 = row_text(db, 4);

  SECTION("into an archive the sweep creates with the source's columns") {
    REQUIRE_FALSE(fs::exists(archive));
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(live_rows() == Strings{"5", "6"});
    CHECK(archived_rows() == Strings{"3", "4"});
    CHECK(row_text(archive, 3) == before3);
    CHECK(row_text(archive, 4) == before4);
    auto columns = [](const fs::path& f) {
      return query_column(
          f, "SELECT name || ' ' || type FROM pragma_table_info('claims') ORDER BY cid");
    };
    CHECK(columns(archive) == columns(db));
    // Rows past 13 years went straight to the delete stage: the archive
    // stage moved only the two between 3 and 13 years, and nothing was
    // deleted from the archive.
    CHECK(entry(done.report, "health", 1, "main").action == "archive");
    CHECK(entry(done.report, "health", 1, "main").counts.affected == 2);
    CHECK(entry(done.report, "health", 1, "main").counts.undated == 1);
    CHECK(entry(done.report, "health", 2, "main").counts.affected == 2);
    CHECK(entry(done.report, "health", 2, "archive").counts.affected == 0);
    for (const auto& line : audit_lines(sweep.state_dir())) {
      if (line.at("stage") == 1) CHECK(line.at("affected") == 2);
      CHECK_FALSE((line.at("stage") == 2 && line.at("store") == "archive"));
    }
  }

  SECTION("a record past the last stage is never archived first") {
    // The archive's table exists already and records every insert.
    exec(archive, std::string(kClaimsDdl) + R"(;
      CREATE TABLE inserted (claim_id INTEGER);
      CREATE TRIGGER seen AFTER INSERT ON claims BEGIN INSERT INTO inserted VALUES (new.claim_id); END;
      INSERT INTO claims (claim_id, member, amount_cents, paid_on) VALUES
        (100, 'M100', 1, '2001-01-01'), (101, 'M101', 1, '2020-01-01');
      DELETE FROM inserted;
    )");
    auto plan = sweep.run(*policy, "2026-06-15", true);
    CHECK(entry(plan.report, "health", 1, "main").counts.matched == 2);
    CHECK(entry(plan.report, "health", 2, "main").counts.matched == 2);
    CHECK(entry(plan.report, "health", 2, "archive").counts.matched == 1);

    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(query_set(archive, "SELECT claim_id FROM inserted") == Strings{"3", "4"});
    CHECK(live_rows() == Strings{"5", "6"});
    // The delete stage deletes in the archive too.
    CHECK(archived_rows() == Strings{"3", "4", "101"});
    CHECK(entry(done.report, "health", 2, "archive").counts.affected == 1);
    CHECK(done.report.totals().affected == 5);
  }

  SECTION("archived rows are deleted from the archive when they reach the last stage") {
    REQUIRE(sweep.run(*policy, "2026-06-15").code == ExitCode::ok);
    REQUIRE(archived_rows() == Strings{"3", "4"});
    // Ten years later claims 3 and 4 are past 13 years; claim 5 is past 3.
    sweep.clock.set(noon_utc("2036-06-15"));
    auto later = sweep.run(*policy, "2036-06-15");
    CHECK(later.code == ExitCode::ok);
    CHECK(entry(later.report, "health", 2, "archive").counts.affected == 2);  // 3 and 4
    CHECK(archived_rows() == Strings{"5"});
    CHECK(live_rows() == Strings{"6"});
  }
}

TEST_CASE("one archive serves the rules of several live stores", "[sweep]") {
  // The archive's connection copies a batch straight from the live store it
  // attaches: each rule must read its own live store.
  TempDir dir;
  exec(dir / "main.db", std::string(kClaimsDdl) + R"(;
    INSERT INTO claims (claim_id, member, amount_cents, paid_on) VALUES
      (1, 'M1', 100, '2020-01-01'), (2, 'M2', 200, '2026-01-02');
  )");
  exec(dir / "other.db", R"(
    CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, seen_on TEXT);
    INSERT INTO visits VALUES (7, '2020-03-01'), (8, '2026-03-01');
  )");
  // Archive tables made the way the first sweep makes them (a unique key):
  // every batch is then copied from the live store in one statement.
  exec(dir / "archive.db", R"(
    CREATE TABLE claims (claim_id INTEGER, member TEXT, amount_cents INTEGER, paid_on TEXT,
                         scan BLOB);
    CREATE UNIQUE INDEX claims_id ON claims (claim_id);
    CREATE TABLE visits (visit_id INTEGER, seen_on TEXT);
    CREATE UNIQUE INDEX visits_id ON visits (visit_id);
  )");
  // policy_head() names main and archive; the other live store is added.
  std::string head = policy_head();
  head.replace(head.find("rules:"), 6, "  other: { kind: sqlite, path: other.db }\nrules:");
  auto policy = write_policy(dir, head + R"(
  - name: health
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: archive
    to: archive
  - name: visits
    store: other
    table: visits
    key: visit_id
    anchor: seen_on
    keep_for: 3 years
    action: archive
    to: archive
)");
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(query_set(dir / "archive.db", "SELECT claim_id FROM claims") == Strings{"1"});
  CHECK(query_set(dir / "archive.db", "SELECT visit_id FROM visits") == Strings{"7"});
  CHECK(query_set(dir / "main.db", "SELECT claim_id FROM claims") == Strings{"2"});
  CHECK(query_set(dir / "other.db", "SELECT visit_id FROM visits") == Strings{"8"});
}

TEST_CASE("archiving loses nothing: a resumed move, and conflicts", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  auto archive = dir / "archive.db";
  exec(db, std::string(kClaimsDdl) + R"(;
    INSERT INTO claims (claim_id, member, amount_cents, paid_on, scan) VALUES
      (1, 'M1', 100, '2020-01-01', x'01'), (2, 'M2', 200, '2020-01-02', NULL),
      (3, 'M3', 300, '2020-01-03', NULL);
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: health
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: archive
    to: archive
)");
  Sweep sweep(dir);
  auto count_in = [](const fs::path& f, int id) {
    return query_int(f, fmt::format("SELECT count(*) FROM claims WHERE claim_id = {}", id));
  };

  SECTION("the same row already in the archive is the end of an interrupted move") {
    exec(archive, std::string(kClaimsDdl) + R"(;
      INSERT INTO claims VALUES (1, 'M1', 100, '2020-01-01', x'01');
    )");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    for (int id : {1, 2, 3}) {
      INFO("claim " << id);
      CHECK(count_in(db, id) == 0);
      CHECK(count_in(archive, id) == 1);
    }
    CHECK(entry(done.report, "health").counts.affected == 3);
    CHECK(entry(done.report, "health").counts.conflicts == 0);
    CHECK(audit_affected_total(sweep.state_dir()) == 3);
  }

  SECTION("a different row with the same key stays live and is a conflict") {
    exec(archive, std::string(kClaimsDdl) + R"(;
      INSERT INTO claims VALUES (2, 'M2', 999, '2020-01-02', NULL);
    )");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::data_error);
    CHECK(static_cast<int>(done.code) == 65);
    CHECK(entry(done.report, "health").counts.conflicts == 1);
    CHECK(done.report.to_json()["totals"]["conflicts"] == 1);
    CHECK(entry(done.report, "health").counts.affected == 2);
    CHECK(count_in(db, 2) == 1);
    CHECK(query_int(db, "SELECT amount_cents FROM claims WHERE claim_id = 2") == 200);
    CHECK(count_in(archive, 2) == 1);
    CHECK(query_int(archive, "SELECT amount_cents FROM claims WHERE claim_id = 2") == 999);
    CHECK(count_in(db, 1) + count_in(db, 3) == 0);
    CHECK(count_in(archive, 1) + count_in(archive, 3) == 2);
    CHECK(audit_affected_total(sweep.state_dir()) == 2);

    // The conflict stays until a person settles it; nothing else moves.
    auto again = sweep.run(*policy, "2026-06-15");
    CHECK(again.code == ExitCode::data_error);
    CHECK(entry(again.report, "health").counts.conflicts == 1);
    CHECK(entry(again.report, "health").counts.affected == 0);
    CHECK(count_in(db, 2) == 1);
  }

  SECTION("the same, in an archive table the sweep created") {
    REQUIRE(sweep.run(*policy, "2026-06-15").code == ExitCode::ok);
    REQUIRE(query_int(archive, "SELECT count(*) FROM claims") == 3);
    // Claim 1 is back live as it was (the crash window of a move); claim 2
    // is back with other content.
    exec(db, R"(
      INSERT INTO claims VALUES (1, 'M1', 100, '2020-01-01', x'01');
      INSERT INTO claims VALUES (2, 'M2', 999, '2020-01-02', NULL);
    )");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::data_error);
    CHECK(entry(done.report, "health").counts.affected == 1);
    CHECK(entry(done.report, "health").counts.conflicts == 1);
    CHECK(count_in(db, 1) == 0);
    CHECK(count_in(archive, 1) == 1);
    CHECK(count_in(db, 2) == 1);
    CHECK(query_int(db, "SELECT amount_cents FROM claims WHERE claim_id = 2") == 999);
    CHECK(query_int(archive, "SELECT amount_cents FROM claims WHERE claim_id = 2") == 200);
  }

  SECTION("a row the archive's own constraints refuse stays live") {
    // The archive's table was made by hand, with a constraint the live
    // table does not have: claims 1 and 3 are of the same member.
    exec(archive, R"(
      CREATE TABLE claims (claim_id INTEGER UNIQUE, member TEXT UNIQUE, amount_cents INTEGER,
                           paid_on TEXT, scan BLOB);
    )");
    exec(db, "UPDATE claims SET member = 'M1' WHERE claim_id = 3");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code != ExitCode::ok);
    for (int id : {1, 2, 3}) {
      INFO("claim " << id);
      CHECK(count_in(db, id) + count_in(archive, id) >= 1);
    }
    CHECK(count_in(db, 3) == 1);
    CHECK(audit_affected_total(sweep.state_dir()) ==
          3 - query_int(db, "SELECT count(*) FROM claims"));
  }
}

TEST_CASE("anonymisation methods, the mark, and no second anonymisation", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  // The key is the file's bytes as they are, trailing newline included.
  std::string key = "k3y-0123456789abcdef0123456789abcdef-\n";
  dir.write("hmac.key", key, 0600);
  exec(db, R"(
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, member_number TEXT, email TEXT, note TEXT,
                           birth TEXT, joined TEXT, city TEXT, ended_on TEXT, coded_at TEXT);
    INSERT INTO accounts VALUES
      (1, '100000007919', 'a@example.org', 'call back', '1980-05-17', '2011-09-03 10:00:00',
       'Marseille', '2020-01-01', NULL),
      (2, '100000015838', 'b@example.org', 'vip', '1990-01-02', '2012-02-03', 'Lyon',
       '2026-06-01', NULL),
      (3, NULL, NULL, NULL, NULL, NULL, 'Ly', '2020-01-01', NULL);
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: accounts
    store: main
    table: accounts
    key: id
    anchor: ended_on
    keep_for: 6 months
    action: anonymize
    anonymize:
      member_number: hmac
      email: "null"
      note: { value: REDACTED }
      birth: year
      joined: month
      city: { truncate: 3 }
      mark: coded_at
)");
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "accounts").counts.affected == 2);
  auto row = [&](int id) {
    return query_column(db, fmt::format("SELECT quote(member_number) || '|' || quote(email) || '|' "
                                        "|| quote(note) || '|' || quote(birth) || '|' || "
                                        "quote(joined) || '|' || quote(city) FROM accounts "
                                        "WHERE id = {}",
                                        id))
        .at(0);
  };
  std::string coded = hmac_hex(key, "100000007919");
  CHECK(row(1) == fmt::format("'{}'|NULL|'REDACTED'|'1980'|'2011-09'|'Mar'", coded));
  CHECK(row(3) == "NULL|NULL|'REDACTED'|NULL|NULL|'Ly'");
  // Not yet past its period: as it was.
  CHECK(row(2) == "'100000015838'|'b@example.org'|'vip'|'1990-01-02'|'2012-02-03'|'Lyon'");
  auto marks = query_column(db, "SELECT coded_at FROM accounts ORDER BY id");
  CHECK(marks.at(0) == "2026-06-15T12:00:00.000Z");  // UTC, docs/semantics.md
  CHECK(marks.at(1) == "<null>");
  CHECK(marks.at(2) == "2026-06-15T12:00:00.000Z");  // UTC, docs/semantics.md

  // A day later: the coded identifier is not coded again, the mark stays.
  sweep.clock.set(noon_utc("2026-06-16"));
  auto again = sweep.run(*policy, "2026-06-16");
  CHECK(again.code == ExitCode::ok);
  CHECK(entry(again.report, "accounts").counts.matched == 0);
  CHECK(entry(again.report, "accounts").counts.affected == 0);
  CHECK(row(1) == fmt::format("'{}'|NULL|'REDACTED'|'1980'|'2011-09'|'Mar'", coded));
  CHECK(query_column(db, "SELECT coded_at FROM accounts ORDER BY id") == marks);
}

TEST_CASE("anonymisation without a mark is not repeated either", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE visits (id INTEGER PRIMARY KEY, ip TEXT, agent TEXT, at TEXT, day TEXT);
    INSERT INTO visits (ip, agent, at, day) VALUES
      ('192.0.2.1', 'Mozilla/5.0 (X11)', '2020-01-01 10:00:00', '2020-01-01'),
      ('192.0.2.2', 'curl', '2020-01-02 10:00:00', '2020-01-02'),
      ('192.0.2.3', 'Mozilla/5.0', '2026-06-01 10:00:00', '2026-06-01');
  )");
  auto policy = write_policy(dir, policy_head() + R"(
  - name: visits
    store: main
    table: visits
    key: id
    anchor: at
    anchor_format: datetime
    keep_for: 13 months
    action: anonymize
    anonymize: { ip: "null", agent: { truncate: 7 }, day: month }
)");
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(entry(done.report, "visits").counts.affected == 2);
  CHECK(
      query_column(db, "SELECT quote(ip) || '|' || agent || '|' || day FROM visits ORDER BY id") ==
      std::vector<std::string>{"NULL|Mozilla|2020-01", "NULL|curl|2020-01",
                               "'192.0.2.3'|Mozilla/5.0|2026-06-01"});
  auto before = dump(db);
  auto again = sweep.run(*policy, "2026-06-15");
  CHECK(entry(again.report, "visits").counts.matched == 0);
  CHECK(entry(again.report, "visits").counts.affected == 0);
  CHECK(dump(db) == before);
}

namespace {

// Three rules over two stores: a delete, an archive, an anonymisation.
void make_mixed_stores(const TempDir& dir) {
  dir.write("hmac.key", "0123456789abcdef0123456789abcdef", 0600);
  exec(dir / "main.db", std::string(kClaimsDdl) + R"(;
    INSERT INTO claims (member, amount_cents, paid_on) VALUES
      ('M1', 1, '2001-01-01'), ('M2', 2, '2015-01-01'), ('M3', 3, '2020-01-01'),
      ('M4', 4, '2026-01-01'), ('M5', 5, NULL);
    CREATE TABLE members (id INTEGER PRIMARY KEY, name TEXT, regime TEXT, closed_on TEXT, hold INTEGER);
    INSERT INTO members (name, regime, closed_on, hold) VALUES
      ('n1', 'AMO', '2000-01-01', 0), ('n2', 'AMO', '2000-01-01', 1), ('n3', 'RC', '2000-01-01', 0),
      ('n4', 'AMO', '2025-01-01', 0), ('n5', 'AMO', 'garbage', 0);
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, number TEXT, ended_on TEXT, coded_at TEXT);
    INSERT INTO accounts (number, ended_on) VALUES ('A1', '2020-01-01'), ('A2', '2026-06-01'),
      ('A3', '2019-01-01');
  )");
}

constexpr std::string_view kMixedRules = R"(
  - name: members
    store: main
    table: members
    key: id
    anchor: closed_on
    where: { regime: AMO }
    hold: { column: hold }
    keep_for: 5 years
    action: delete
  - name: claims
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    stages:
      - { after: 3 years, action: archive, to: archive }
      - { after: 13 years, action: delete }
  - name: accounts
    store: main
    table: accounts
    key: id
    anchor: ended_on
    keep_for: 6 months
    action: anonymize
    anonymize: { number: hmac, mark: coded_at }
)";

struct FileState {
  std::string bytes;
  std::int64_t mtime_ns;
  bool operator==(const FileState&) const = default;
};

std::map<std::string, FileState> files_in(const fs::path& folder) {
  std::map<std::string, FileState> out;
  for (const auto& f : fs::directory_iterator(folder)) {
    if (f.path().filename() == "state") continue;
    struct stat st {};
    REQUIRE(::stat(f.path().c_str(), &st) == 0);
    out[f.path().filename().string()] = {
        f.is_regular_file() ? read_file(f.path()) : "<folder>",
        static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
  }
  return out;
}

std::vector<std::string> names_of(const std::map<std::string, FileState>& files) {
  std::vector<std::string> names;
  for (const auto& [name, state] : files) names.push_back(name);
  return names;
}

}  // namespace

TEST_CASE("sweeping twice at the same as-of changes nothing the second time", "[sweep]") {
  TempDir dir;
  make_mixed_stores(dir);
  auto policy = write_policy(dir, policy_head() + std::string(kMixedRules));
  Sweep sweep(dir);
  auto first = sweep.run(*policy, "2026-06-15");
  REQUIRE(first.code == ExitCode::ok);
  REQUIRE(first.report.totals().affected == 6);  // n1; M2, M3 archived, M1 deleted; A1, A3
  auto live = dump(dir / "main.db");
  auto archive = dump(dir / "archive.db");
  auto log = read_file(audit_log_path(sweep.state_dir()));

  sweep.clock.advance(std::chrono::hours{3});
  auto second = sweep.run(*policy, "2026-06-15");
  CHECK(second.code == ExitCode::ok);
  CHECK(second.report.totals().affected == 0);
  for (const auto& e : second.report.entries) {
    INFO(e.rule << " stage " << e.stage << " on " << e.store);
    CHECK(e.counts.affected == 0);
  }
  CHECK(dump(dir / "main.db") == live);
  CHECK(dump(dir / "archive.db") == archive);
  CHECK(read_file(audit_log_path(sweep.state_dir())) == log);
}

TEST_CASE("a real sweep refuses a day after today in the policy's zone", "[sweep]") {
  TempDir dir;
  make_mixed_stores(dir);
  auto policy = write_policy(dir, policy_head() + std::string(kMixedRules));
  auto before = dump(dir / "main.db");
  Sweep sweep(dir);
  using namespace std::chrono;

  // 23:30 in Paris on 15 June: the 16th is tomorrow.
  sweep.clock.set(noon_utc("2026-06-15") + hours{9} + minutes{30});
  auto refused = sweep.try_run(*policy, "2026-06-16", false);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code == ExitCode::usage);
  CHECK(static_cast<int>(refused.error().code) == 64);
  CHECK(dump(dir / "main.db") == before);
  CHECK_FALSE(fs::exists(dir / "archive.db"));
  CHECK_FALSE(fs::exists(audit_log_path(sweep.state_dir())));

  // A dry run may look ahead, and changes nothing either.
  auto ahead = sweep.try_run(*policy, "2040-01-01", true);
  REQUIRE(ahead.has_value());
  CHECK(ahead->report.totals().matched > 0);
  CHECK(dump(dir / "main.db") == before);

  // 00:30 in Paris on the 16th: the 16th is today.
  sweep.clock.set(noon_utc("2026-06-15") + hours{10} + minutes{30});
  auto allowed = sweep.try_run(*policy, "2026-06-16", false);
  REQUIRE(allowed.has_value());
  CHECK(allowed->code == ExitCode::ok);
}

TEST_CASE("a dry run writes nothing and plans what the sweep then does", "[sweep]") {
  TempDir dir;
  make_mixed_stores(dir);
  auto policy = write_policy(dir, policy_head() + std::string(kMixedRules));
  Sweep sweep(dir);
  // The folder holds the policy, the key and the stores (the state folder,
  // which is no store, is left out of the comparison).
  auto files_before = files_in(dir.path());
  REQUIRE(names_of(files_before) == std::vector<std::string>{"hmac.key", "main.db", "policy.yaml"});

  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(plan.code == ExitCode::ok);
  CHECK(plan.report.dry_run);
  CHECK(plan.report.totals().affected == 0);
  CHECK(plan.report.totals().matched == 6);
  CHECK(plan.report.totals().held == 1);
  CHECK(plan.report.totals().undated == 2);
  auto files_after = files_in(dir.path());
  CHECK(names_of(files_after) == names_of(files_before));
  for (const auto& [name, state] : files_before) {
    INFO(name);
    CHECK(files_after[name].bytes == state.bytes);
    CHECK(files_after[name].mtime_ns == state.mtime_ns);
  }
  CHECK_FALSE(fs::exists(audit_log_path(sweep.state_dir())));

  auto real = sweep.run(*policy, "2026-06-15");
  CHECK(real.code == ExitCode::ok);
  REQUIRE(real.report.entries.size() == plan.report.entries.size());
  for (std::size_t i = 0; i < plan.report.entries.size(); ++i) {
    const auto& p = plan.report.entries[i];
    const auto& r = real.report.entries[i];
    INFO(p.rule << " stage " << p.stage << " on " << p.store);
    CHECK(r.rule == p.rule);
    CHECK(r.stage == p.stage);
    CHECK(r.store == p.store);
    CHECK(r.cutoff == p.cutoff);
    CHECK(r.counts.affected == p.counts.matched);
    CHECK(r.counts.matched == p.counts.matched);
    CHECK(r.counts.held == p.counts.held);
    CHECK(r.counts.undated == p.counts.undated);
  }
  CHECK(real.report.totals().affected == 6);
}

TEST_CASE("a dry run works for a user who can only read the stores and their folder", "[sweep]") {
  TempDir dir;
  make_mixed_stores(dir);
  write_policy(dir, policy_head() + std::string(kMixedRules));
  // A reader's folder: the stores and the policy readable, nothing writable.
  // The hmac key stays private to its owner, who is the auditor here.
  constexpr uid_t kNobody = 65534;
  const bool root = ::geteuid() == 0;
  for (const char* f : {"main.db", "policy.yaml"}) REQUIRE(::chmod((dir / f).c_str(), 0444) == 0);
  if (root) REQUIRE(::chown((dir / "hmac.key").c_str(), kNobody, kNobody) == 0);
  REQUIRE(::chmod(dir.path().c_str(), 0555) == 0);
  auto before = files_in(dir.path());

  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // No Catch2 in the child: the exit code says what happened.
    int code = 0;
    try {
      if (root && (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0)) ::_exit(10);
      auto policy = load_policy(dir / "policy.yaml");
      if (!policy) ::_exit(11);
      std::ostringstream sink;
      Logger log(sink, LogLevel::error, false);
      FakeClock clock(noon_utc("2026-06-15"));
      SweepOptions o;
      o.dry_run = true;
      o.as_of = day("2026-06-15");
      o.state_dir = dir / "state";
      auto plan = run_sweep(**policy, o, clock, log);
      if (!plan)
        code = 12;
      else if (plan->code != ExitCode::ok)
        code = 13;
      else if (plan->report.totals().matched != 6)
        code = 14;
    } catch (...) {
      code = 15;
    }
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  // 10: could not become nobody; 11: policy refused; 12: plan refused;
  // 13: a rule failed; 14: wrong counts.
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(files_in(dir.path()) == before);
}

TEST_CASE("work goes in batches of batch_size rows, one audit line each", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE hundred (id INTEGER PRIMARY KEY, at TEXT);
    CREATE TABLE ninety_eight (id INTEGER PRIMARY KEY, at TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
      INSERT INTO hundred (at) SELECT date('2010-01-01', printf('+%d days', i)) FROM n;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 98)
      INSERT INTO ninety_eight (at) SELECT date('2010-01-01', printf('+%d days', i % 5)) FROM n;
    INSERT INTO hundred (at) VALUES ('2026-01-01'), ('2026-01-02'), (NULL);
  )");
  auto rule = [](std::string_view name, std::string_view table) {
    return fmt::format(R"(
  - name: {}
    store: main
    table: {}
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
)",
                       name, table);
  };
  auto policy = write_policy(
      dir, policy_head(7) + rule("hundred", "hundred") + rule("ninety-eight", "ninety_eight"));
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "hundred").counts.affected == 100);
  CHECK(entry(done.report, "ninety-eight").counts.affected == 98);
  CHECK(query_int(db, "SELECT count(*) FROM hundred") == 3);
  CHECK(query_int(db, "SELECT count(*) FROM ninety_eight") == 0);

  std::map<std::string, std::vector<std::int64_t>> batches;
  std::map<std::string, std::set<std::string>>
      digests;  // per rule: two tables may share key values
  for (const auto& line : audit_lines(sweep.state_dir())) {
    batches[line.at("rule").get<std::string>()].push_back(line.at("affected").get<std::int64_t>());
    digests[line.at("rule").get<std::string>()].insert(line.at("keys_sha256").get<std::string>());
    CHECK(line.at("action") == "delete");
    CHECK(line.at("as_of") == "2026-06-15");
    CHECK(line.at("cutoff") == "2025-06-15");
    CHECK(line.at("store") == "main");
  }
  CHECK(batches["hundred"].size() == 15);  // ceil(100 / 7)
  CHECK(batches["ninety-eight"].size() == 14);
  for (const auto& [rule_name, sizes] : batches) {
    INFO(rule_name);
    std::int64_t total = 0;
    for (auto n : sizes) {
      CHECK(n >= 1);
      CHECK(n <= 7);
      total += n;
    }
    CHECK(total == (rule_name == "hundred" ? 100 : 98));
  }
  CHECK(digests["hundred"].size() == 15);  // every batch of a rule names other keys
  CHECK(digests["ninety-eight"].size() == 14);
  auto verified = verify_audit_log(sweep.state_dir());
  REQUIRE(verified.has_value());
  CHECK(verified->ok);
  CHECK(verified->lines == 29);
}

TEST_CASE("a table without rowid is swept by its key, batch by batch", "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  auto archive = dir / "archive.db";
  exec(db, R"(
    CREATE TABLE codes (code TEXT PRIMARY KEY, at TEXT, note TEXT) WITHOUT ROWID;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
      INSERT INTO codes SELECT printf('C%02d', (i * 7) % 20), date('2010-01-01', printf('+%d days', i % 3)),
                               'n' || i FROM n;
    INSERT INTO codes VALUES ('Z-recent', '2026-06-01', 'kept');
  )");
  auto policy = write_policy(dir, policy_head(3) + R"(
  - name: codes
    store: main
    table: codes
    key: code
    anchor: at
    keep_for: 1 year
    action: archive
    to: archive
)");
  auto original =
      query_set(db, "SELECT code || '|' || at || '|' || note FROM codes WHERE code <> 'Z-recent'");
  REQUIRE(original.size() == 20);
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "codes").counts.affected == 20);
  CHECK(query_set(db, "SELECT code FROM codes") == Strings{"Z-recent"});
  CHECK(query_set(archive, "SELECT code || '|' || at || '|' || note FROM codes") == original);
  CHECK(audit_lines(sweep.state_dir()).size() == 7);  // ceil(20 / 3)
}

TEST_CASE("a busy store ends the sweep with 75, loses nothing, and the next sweep completes",
          "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  auto archive = dir / "archive.db";
  exec(db, std::string(kClaimsDdl) + R"(;
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20)
      INSERT INTO claims (member, paid_on) SELECT printf('M%d', i), '2020-01-01' FROM n;
  )");
  auto policy = write_policy(dir, policy_head(5) + R"(
  - name: claims
    store: main
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: archive
    to: archive
)");
  auto original = query_set(db, "SELECT claim_id FROM claims");
  Sweep sweep(dir);
  sweep.busy_timeout = std::chrono::milliseconds{100};

  SECTION("the live store") {
    {
      sqlite::Database other(db, sqlite::OpenMode::read_write);
      other.exec("BEGIN IMMEDIATE");
      auto started = std::chrono::steady_clock::now();
      auto busy = sweep.run(*policy, "2026-06-15");
      CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds{5});
      CHECK(busy.code == ExitCode::temp_fail);
      CHECK(static_cast<int>(busy.code) == 75);
      REQUIRE(entry(busy.report, "claims").error.has_value());
      CHECK(entry(busy.report, "claims").counts.affected == 0);
      other.exec("ROLLBACK");
    }
    CHECK(query_set(db, "SELECT claim_id FROM claims") == original);
  }

  SECTION("the archive, part-way through") {
    // The first batches move; then the archive is locked.
    exec(archive, std::string(kClaimsDdl));
    {
      sqlite::Database other(archive, sqlite::OpenMode::read_write);
      std::int64_t batches = 0;
      SweepControl control;
      control.on_batch = [&](const SweepProgress&) {
        if (++batches == 2) other.exec("BEGIN IMMEDIATE");
      };
      SweepOptions o;
      o.dry_run = false;
      o.as_of = day("2026-06-15");
      o.state_dir = sweep.state_dir();
      o.busy_timeout = std::chrono::milliseconds{100};
      auto busy = run_sweep(*policy, o, sweep.clock, sweep.log, control);
      REQUIRE(busy.has_value());
      CHECK(busy->code == ExitCode::temp_fail);
      CHECK(entry(busy->report, "claims").counts.affected == 10);
      other.exec("ROLLBACK");
    }
    auto live = query_set(db, "SELECT claim_id FROM claims");
    auto moved = query_set(archive, "SELECT claim_id FROM claims");
    CHECK(live.size() == 10);
    CHECK(moved.size() == 10);
    Strings all = live;
    all.insert(moved.begin(), moved.end());
    CHECK(all == original);
    CHECK(audit_affected_total(sweep.state_dir()) == 10);
  }

  auto next = sweep.run(*policy, "2026-06-15");
  CHECK(next.code == ExitCode::ok);
  CHECK(query_int(db, "SELECT count(*) FROM claims") == 0);
  CHECK(query_set(archive, "SELECT claim_id FROM claims") == original);
  CHECK(audit_affected_total(sweep.state_dir()) == 20);
  auto verified = verify_audit_log(sweep.state_dir());
  REQUIRE(verified.has_value());
  CHECK(verified->ok);
}

TEST_CASE("a batch committed but not logged (the state disk full) is logged by the next sweep",
          "[sweep][audit]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT);
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
      INSERT INTO t (at) SELECT '2000-01-01' FROM n;
  )");
  auto policy = write_policy(dir, policy_head(5) + R"(
  - name: t
    store: main
    table: t
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
)");
  Sweep sweep(dir);
  // After the second batch the audit log's disk is full: its file descriptor
  // now writes to /dev/full.
  auto log_path = fs::absolute(audit_log_path(sweep.state_dir()));
  int batches = 0;
  bool filled = false;
  SweepControl control;
  control.on_batch = [&](const SweepProgress&) {
    if (++batches != 2) return;
    for (const auto& fd : fs::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      if (fs::read_symlink(fd.path(), ec) != log_path) continue;
      int full = ::open("/dev/full", O_WRONLY | O_CLOEXEC);
      filled = full >= 0 && ::dup2(full, std::stoi(fd.path().filename().string())) >= 0;
      if (full >= 0) ::close(full);
    }
  };
  SweepOptions o;
  o.dry_run = false;
  o.as_of = day("2026-06-15");
  o.state_dir = sweep.state_dir();
  auto cut_short = run_sweep(*policy, o, sweep.clock, sweep.log, control);
  REQUIRE(filled);
  REQUIRE(cut_short.has_value());
  CHECK(cut_short->code != ExitCode::ok);
  REQUIRE(entry(cut_short->report, "t").error.has_value());
  auto deleted = 30 - query_int(db, "SELECT count(*) FROM t");
  CHECK(deleted == 15);  // the third batch committed; its entry could not be written
  CHECK(audit_affected_total(sweep.state_dir()) < deleted);

  auto next = sweep.run(*policy, "2026-06-15");
  CHECK(next.code == ExitCode::ok);
  CHECK(query_int(db, "SELECT count(*) FROM t") == 0);
  CHECK(audit_affected_total(sweep.state_dir()) == 30);
  auto verified = verify_audit_log(sweep.state_dir());
  REQUIRE(verified.has_value());
  CHECK(verified->ok);
}

TEST_CASE("a missing store, table or column fails its rule with 69; the others still run",
          "[sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  exec(db, R"(
    CREATE TABLE kept (id INTEGER PRIMARY KEY, at TEXT);
    INSERT INTO kept (at) VALUES ('2000-01-01'), ('2000-01-02'), ('2026-06-01');
  )");
  std::string rules = R"(
  - name: missing-table
    store: main
    table: nosuch
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
  - name: missing-column
    store: main
    table: kept
    key: id
    anchor: no_such_column
    keep_for: 1 year
    action: delete
  - name: missing-store
    store: gone
    table: kept
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
  - name: fine
    store: main
    table: kept
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
)";
  std::string head = policy_head();
  head.replace(head.find("rules:"), 6, "  gone: { kind: sqlite, path: gone.db }\nrules:");
  auto policy = write_policy(dir, head + rules);
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::unavailable);
  CHECK(static_cast<int>(done.code) == 69);
  REQUIRE(entry(done.report, "missing-table").error.has_value());
  CHECK_THAT(*entry(done.report, "missing-table").error, Catch::Contains("nosuch"));
  REQUIRE(entry(done.report, "missing-column").error.has_value());
  CHECK_THAT(*entry(done.report, "missing-column").error, Catch::Contains("no_such_column"));
  REQUIRE(entry(done.report, "missing-store").error.has_value());
  CHECK_THAT(*entry(done.report, "missing-store").error, Catch::Contains("gone"));
  CHECK_FALSE(fs::exists(dir / "gone.db"));  // a store is never created by a sweep
  CHECK_FALSE(entry(done.report, "fine").error.has_value());
  CHECK(entry(done.report, "fine").counts.affected == 2);
  CHECK(query_int(db, "SELECT count(*) FROM kept") == 1);
  auto json = done.report.to_json();
  CHECK(json["rules"].size() == 4);
}
