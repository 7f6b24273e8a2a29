#include "sweep/check.hpp"

#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "test_support.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kPolicy = R"(version: 1
timezone: Europe/Paris
stores:
  health: { kind: sqlite, path: health.db }
  archive: { kind: sqlite, path: archive/health-archive.db }
rules:
  - name: claims
    store: health
    table: claims
    key: claim_id
    anchor: paid_on
    where: { regime: AMO }
    hold: { column: litigation_pending }
    stages:
      - after: 3 years
        action: archive
        to: archive
      - after: 13 years
        action: delete
  - name: visits
    store: health
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    hold: { table: legal_holds, key: visit_id }
    keep_for: 13 months
    action: anonymize
    anonymize: { ip: "null", visitor_id: { truncate: 4 }, mark: anonymized_at }
)";

// The tables the policy above names, column by column.
const std::map<std::string, std::vector<std::string>> kTables{
    {"claims",
     {"claim_id INTEGER PRIMARY KEY", "paid_on TEXT", "regime TEXT", "litigation_pending INTEGER",
      "amount REAL"}},
    {"visits",
     {"id INTEGER PRIMARY KEY", "visited_at TEXT", "ip TEXT", "visitor_id TEXT",
      "anonymized_at TEXT"}},
    {"legal_holds", {"visit_id INTEGER"}},
};

struct Schema {
  std::string omit_table;   // "claims": that table is not created
  std::string omit_column;  // "claims.paid_on": that column is left out
  bool index_anchors = true;
};

Schema without_table(std::string table) {
  Schema s;
  s.omit_table = std::move(table);
  return s;
}

Schema without_column(std::string table_dot_column) {
  Schema s;
  s.omit_column = std::move(table_dot_column);
  return s;
}

Schema without_indexes() {
  Schema s;
  s.index_anchors = false;
  return s;
}

// Creates the health store per `schema`, with a row in each table. Each
// statement goes through exec on its own.
void create_health(const fs::path& file, const Schema& schema = {}) {
  sqlite::Database db(file, sqlite::OpenMode::create);
  db.exec("PRAGMA synchronous = OFF");  // a scratch file: no need to wait for the disk
  for (const auto& [table, columns] : kTables) {
    if (table == schema.omit_table) continue;
    std::string sql = "CREATE TABLE " + table + " (";
    bool first = true;
    for (const auto& column : columns) {
      if (table + "." + column.substr(0, column.find(' ')) == schema.omit_column) continue;
      sql += (first ? "" : ", ") + column;
      first = false;
    }
    db.exec(sql + ")");
  }
  if (schema.index_anchors) {
    if (schema.omit_table != "claims" && schema.omit_column != "claims.paid_on") {
      db.exec("CREATE INDEX claims_paid_on ON claims (paid_on)");
    }
    if (schema.omit_table != "visits" && schema.omit_column != "visits.visited_at") {
      db.exec("CREATE INDEX visits_visited_at ON visits (visited_at)");
    }
  }
  if (schema.omit_table != "claims" && schema.omit_column.rfind("claims.", 0) != 0) {
    db.exec("INSERT INTO claims VALUES (1, '2020-01-01', 'AMO', 0, 12.5)");
  }
}

struct Fixture {
  TempDir dir;
  fs::path health = dir / "health.db";
  fs::path archive = dir / "archive/health-archive.db";

  Fixture() { fs::create_directory(dir / "archive"); }

  Policy policy(std::string_view yaml = kPolicy) const {
    auto loaded = load_policy(dir.write("policy.yaml", yaml));
    INFO((loaded ? std::string() : loaded.error().message));
    REQUIRE(loaded.has_value());
    return **loaded;
  }

  Result<CheckReport> check(std::string_view yaml = kPolicy) const {
    return check_stores(policy(yaml));
  }
};

const CheckReport& passed(const Result<CheckReport>& result) {
  INFO((result ? std::string() : result.error().message));
  REQUIRE(result.has_value());
  return *result;
}

std::string unavailable(const Result<CheckReport>& result) {
  REQUIRE_FALSE(result.has_value());
  INFO(result.error().message);
  CHECK(result.error().code == ExitCode::unavailable);
  CHECK(static_cast<int>(result.error().code) == 69);
  return result.error().message;
}

// Every file under `folder` with its bytes.
std::map<std::string, std::string> snapshot(const fs::path& folder) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(folder)) {
    std::string name = fs::relative(entry.path(), folder).string();
    files[name] = entry.is_regular_file() ? retentiond::test::read_file(entry.path()) : "<folder>";
  }
  return files;
}

}  // namespace

TEST_CASE("check passes when every store, table and column exists", "[check]") {
  Fixture f;
  create_health(f.health);
  auto result = f.check();
  const CheckReport& report = passed(result);
  CHECK(report.rules_checked == 2);
  CHECK(report.warnings.empty());
  // The archive does not exist yet: a note, not an error.
  REQUIRE(report.notes.size() == 1);
  CHECK(report.notes[0].store == "archive");
  CHECK_THAT(report.notes[0].message, Catch::Contains("will be created"));
  CHECK_FALSE(fs::exists(f.archive));
}

TEST_CASE("check accepts an archive that already has the live table's columns", "[check]") {
  Fixture f;
  create_health(f.health);
  {
    sqlite::Database db(f.archive, sqlite::OpenMode::create);
    db.exec(
        "CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, paid_on TEXT, regime TEXT, "
        "litigation_pending INTEGER, amount REAL)");
  }
  auto result = f.check();
  CHECK(passed(result).notes.empty());
  CHECK(passed(result).warnings.empty());
}

TEST_CASE("a missing table is unavailable (69) and named", "[check]") {
  for (std::string table : {"claims", "visits", "legal_holds"}) {
    DYNAMIC_SECTION("table " << table) {
      Fixture f;
      create_health(f.health, without_table(table));
      std::string message = unavailable(f.check());
      CHECK_THAT(message, Catch::Contains("'health'"));
      CHECK_THAT(message, Catch::Contains("'" + table + "'"));
      CHECK_THAT(message, Catch::Contains("does not exist"));
    }
  }
}

TEST_CASE("a missing column is unavailable (69), naming store, table and column", "[check]") {
  // Every column the policy names: key, anchor, where, hold, anonymised, mark, hold key.
  for (std::string column :
       {"claims.claim_id", "claims.paid_on", "claims.regime", "claims.litigation_pending",
        "visits.id", "visits.visited_at", "visits.ip", "visits.visitor_id", "visits.anonymized_at",
        "legal_holds.visit_id"}) {
    DYNAMIC_SECTION("column " << column) {
      Fixture f;
      std::string table = column.substr(0, column.find('.'));
      std::string name = column.substr(column.find('.') + 1);
      if (table == "legal_holds") {
        // A table without columns cannot exist: give it another one.
        create_health(f.health, without_table("legal_holds"));
        sqlite::Database db(f.health, sqlite::OpenMode::read_write);
        db.exec("CREATE TABLE legal_holds (claim_id INTEGER)");
      } else {
        create_health(f.health, without_column(column));
      }
      std::string message = unavailable(f.check());
      CHECK_THAT(message, Catch::Contains("'health'"));
      CHECK_THAT(message, Catch::Contains("'" + table + "'"));
      CHECK_THAT(message, Catch::Contains("column '" + name + "'"));
    }
  }
}

TEST_CASE("column names are matched as SQLite matches them, ignoring case", "[check]") {
  Fixture f;
  {
    sqlite::Database db(f.health, sqlite::OpenMode::create);
    db.exec(
        "CREATE TABLE claims (CLAIM_ID INTEGER PRIMARY KEY, Paid_On TEXT, Regime TEXT, "
        "Litigation_Pending INTEGER)");
    db.exec("CREATE INDEX claims_paid_on ON claims (PAID_ON)");
  }
  auto yaml = std::string(kPolicy).substr(0, std::string(kPolicy).find("  - name: visits"));
  auto result = f.check(yaml);
  const CheckReport& report = passed(result);
  CHECK(report.rules_checked == 1);
  CHECK(report.warnings.empty());
}

TEST_CASE("an anchor column without an index gets a warning", "[check]") {
  Fixture f;
  create_health(f.health, without_indexes());
  auto result = f.check();
  const CheckReport& report = passed(result);
  REQUIRE(report.warnings.size() == 2);
  CHECK(report.warnings[0].store == "health");
  CHECK(report.warnings[0].table == "claims");
  CHECK_THAT(report.warnings[0].message, Catch::Contains("'paid_on'"));
  CHECK_THAT(report.warnings[0].message, Catch::Contains("index"));
  CHECK(report.warnings[1].table == "visits");
  CHECK_THAT(report.warnings[1].message, Catch::Contains("'visited_at'"));
}

TEST_CASE("the index the warning suggests can be created as written", "[check]") {
  Fixture f;
  create_health(f.health, without_indexes());
  auto first = f.check();
  for (const auto& warning : passed(first).warnings) {
    const std::string& m = warning.message;
    auto start = m.find("CREATE INDEX");
    INFO(m);
    REQUIRE(start != std::string::npos);
    REQUIRE(m.back() == ')');  // the suggestion closes the message, in parentheses
    sqlite::Database db(f.health, sqlite::OpenMode::read_write);
    REQUIRE_NOTHROW(db.exec(m.substr(start, m.size() - 1 - start)));
  }
  auto second = f.check();
  CHECK(passed(second).warnings.empty());
}

TEST_CASE("only an index that starts with the anchor column counts", "[check]") {
  Fixture f;
  create_health(f.health, without_indexes());
  {
    sqlite::Database db(f.health, sqlite::OpenMode::read_write);
    db.exec("CREATE INDEX claims_regime_paid_on ON claims (regime, paid_on)");
    db.exec("CREATE INDEX visits_visited_at_ip ON visits (visited_at, ip)");
  }
  auto result = f.check();
  const CheckReport& report = passed(result);
  REQUIRE(report.warnings.size() == 1);
  CHECK(report.warnings[0].table == "claims");
}

TEST_CASE("a store that is not a database is unavailable (69)", "[check]") {
  Fixture f;
  f.dir.write("health.db", "this is a text file, not a SQLite database\n" + std::string(600, 'x'));
  std::string message = unavailable(f.check());
  CHECK_THAT(message, Catch::Contains("'health'"));
  CHECK_THAT(message, Catch::Contains(f.health.string()));
}

TEST_CASE("a store that does not exist is unavailable (69), and is not created", "[check]") {
  Fixture f;
  std::string message = unavailable(f.check());
  CHECK_THAT(message, Catch::Contains("'health'"));
  CHECK_FALSE(fs::exists(f.health));
}

TEST_CASE("an archive missing a live column is unavailable (69)", "[check]") {
  Fixture f;
  create_health(f.health);
  {
    sqlite::Database db(f.archive, sqlite::OpenMode::create);
    db.exec(
        "CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, paid_on TEXT, regime TEXT, "
        "litigation_pending INTEGER)");
  }
  std::string message = unavailable(f.check());
  CHECK_THAT(message, Catch::Contains("'archive'"));
  CHECK_THAT(message, Catch::Contains("'claims'"));
  CHECK_THAT(message, Catch::Contains("column 'amount'"));
}

TEST_CASE("an archive whose folder does not exist is unavailable (69)", "[check]") {
  Fixture f;
  create_health(f.health);
  fs::remove(f.dir / "archive");
  std::string message = unavailable(f.check());
  CHECK_THAT(message, Catch::Contains("'archive'"));
  CHECK_FALSE(fs::exists(f.dir / "archive"));
}

TEST_CASE("check changes no byte of any store and creates no file", "[check]") {
  Fixture f;
  create_health(f.health, without_indexes());
  {
    sqlite::Database db(f.archive, sqlite::OpenMode::create);
    db.exec("CREATE TABLE unrelated (x)");
  }
  const auto before = snapshot(f.dir.path());
  REQUIRE(before.count("health.db") == 1);
  auto times_before = fs::last_write_time(f.health);

  SECTION("when it passes") { CHECK(passed(f.check()).warnings.size() == 2); }
  SECTION("when it fails") {
    auto yaml = std::string(kPolicy);
    yaml.replace(yaml.find("anchor: paid_on"), 15, "anchor: paid_at");
    unavailable(f.check(yaml));
  }
  auto after = snapshot(f.dir.path());
  after.erase("policy.yaml");
  auto expected = before;
  CHECK(after == expected);
  CHECK(fs::last_write_time(f.health) == times_before);
}
