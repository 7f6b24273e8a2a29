// The stores a conformance test sweeps, of one kind: the same test code runs
// against SQLite files and PostgreSQL schemas (tests/conformance_test.cpp).
//
// A TestStores makes named stores. On SQLite a store NAME is the file
// NAME.db in a TempDir; on PostgreSQL it is the schema NAME in one
// TestDatabase, so that a live store and its archive share a database (the
// archive is then one transaction), unless the variant puts archives in a
// second TestDatabase (the copy-first move, two commits). The policy file,
// the hmac key and the state folder live in the TempDir in every variant.
//
// Test SQL is written once for both kinds: tables use INTEGER, TEXT and DATE
// columns (on SQLite a DATE holds 'YYYY-MM-DD' text, anchor_format date, the
// default; on PostgreSQL it is a native date). Where the contract differs
// between the kinds for a good reason, the fixture gives the data (which
// values are undated, what `year` keeps of a date), never the assertion.
#pragma once

#include <catch2/catch.hpp>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"
#include "postgres_server.hpp"
#include "test_support.hpp"

namespace retentiond::test {

// Which stores a test runs on.
struct Variant {
  StoreKind kind = StoreKind::sqlite;
  // PostgreSQL: archive stores in a database of their own.
  bool archive_in_other_database = false;

  // "sqlite", "postgresql", "postgresql-other-database"
  std::string name() const;
};

inline constexpr Variant kSqlite{StoreKind::sqlite, false};
inline constexpr Variant kPostgresql{StoreKind::postgresql, false};
inline constexpr Variant kPostgresqlOtherDatabase{StoreKind::postgresql, true};

enum class Role { live, archive };

// A column type and the anchor_format that goes with it, for an anchor that
// is an instant.
struct InstantAnchor {
  std::string label;          // for messages: "timestamptz", "text (datetime)"
  std::string column_type;    // SQL type in CREATE TABLE
  std::string anchor_format;  // "datetime", or empty where the type says it all
};

class TestStores {
 public:
  explicit TestStores(Variant variant);
  ~TestStores();
  TestStores(const TestStores&) = delete;
  TestStores& operator=(const TestStores&) = delete;

  const Variant& variant() const { return variant_; }
  StoreKind kind() const { return variant_.kind; }
  const TempDir& dir() const { return dir_; }
  std::filesystem::path policy_file() const { return dir_ / "policy.yaml"; }
  std::filesystem::path state_dir() const { return dir_ / "state"; }
  // The bytes of hmac.key (mode 0600, next to the policy).
  const std::string& hmac_key() const { return hmac_key_; }

  // Declares a store. A live store exists at once (an empty SQLite file, an
  // empty schema); an archive does not until a sweep or exec() makes it.
  void add(const std::string& name, Role role = Role::live);

  // The store's line in the policy: "{ kind: sqlite, path: NAME.db }" or
  // "{ kind: postgresql, dsn: "...", schema: NAME }".
  std::string store_yaml(const std::string& name) const;
  // A whole policy: Europe/Paris, batch_size, hmac.key, every store added,
  // then `rules` (the YAML of the list's items).
  std::string policy_yaml(std::string_view rules, int batch_size = 1000) const;
  // Writes policy.yaml and loads it; the test stops if it is refused.
  std::shared_ptr<const Policy> policy(std::string_view rules, int batch_size = 1000) const;

  // Runs a script in the store (in one transaction). On PostgreSQL the
  // store's schema is created if missing and is the search path, so the SQL
  // names tables unqualified.
  void exec(const std::string& name, std::string_view sql) const;
  std::int64_t query_int(const std::string& name, std::string_view sql) const;
  // The first column of every row, as text; NULL as "<null>".
  std::vector<std::string> query_column(const std::string& name, std::string_view sql) const;
  std::set<std::string> query_set(const std::string& name, std::string_view sql) const;
  bool table_exists(const std::string& name, const std::string& table) const;
  // "name type" of every column, in order.
  std::vector<std::string> columns(const std::string& name, const std::string& table) const;
  // Gathers the planner's statistics (ANALYZE), as a server's autovacuum
  // would some time after a bulk load: without them PostgreSQL plans each
  // batch over a freshly filled table as if it were tiny.
  void analyze(const std::string& name) const;
  // Everything of the store retentiond could change: every row of every
  // table (its bookkeeping included), and on PostgreSQL which schemas the
  // database has. Equal dumps mean nothing changed. Empty for a store that
  // does not exist.
  std::string dump(const std::string& name) const;

  // --- Data that differs by kind, for a good reason (CONTRACT.md).

  // SQL literals of anchors that cannot be read as a date, for a DATE
  // column: NULL, '', 'garbage', '2015-02-30' on SQLite (text); NULL,
  // 'infinity', '-infinity' on PostgreSQL (a date column holds no other).
  std::vector<std::string> undated_values() const;
  // Column types for an anchor that is an instant, UTC unless the value says
  // otherwise: text with anchor_format datetime on both kinds; on PostgreSQL
  // also timestamptz and timestamp (read as UTC).
  std::vector<InstantAnchor> instant_anchors() const;
  // What `year` / `month` keep of a DATE column holding `day`: SQLite keeps
  // the text "YYYY" / "YYYY-MM", PostgreSQL the first day of the year or
  // month (a date stays a date). As CAST(column AS TEXT) reads it.
  std::string year_kept(std::string_view day) const;
  std::string month_kept(std::string_view day) const;
  // SQL for the day `days` (an integer expression) after `base` (YYYY-MM-DD),
  // as a DATE column value.
  std::string day_plus_sql(std::string_view base, std::string_view days) const;

 private:
  struct PgPlace {
    TestDatabase* database;
    std::string schema;
  };
  PgPlace pg(const std::string& name) const;
  std::filesystem::path file(const std::string& name) const;

  Variant variant_;
  TempDir dir_;
  std::string hmac_key_;
  std::vector<std::string> names_;  // in the order added
  std::map<std::string, Role> roles_;
  std::unique_ptr<TestDatabase> main_database_;
  std::unique_ptr<TestDatabase> other_database_;
};

// A SQL string literal.
std::string sql_literal(std::string_view text);

}  // namespace retentiond::test

// A conformance test, registered once per variant as its own test case:
// "conformance: TITLE (sqlite)", "... (postgresql)" (and for archive tests
// "... (postgresql-other-database)"), tagged [conformance] and [sqlite] or
// [postgresql], so that a failure names the kind and a run can pick one. The
// body is written once, as a function of `const Variant& variant`.
#define RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, variant_value, suffix, kind_tag) \
  TEST_CASE("conformance: " title " (" suffix ")", "[conformance]" kind_tag tags) {    \
    fn(variant_value);                                                                 \
  }

#define CONFORMANCE_TEST(fn, title, tags)                                                          \
  static void fn(const ::retentiond::test::Variant& variant);                                      \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kSqlite, "sqlite", "[sqlite]") \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kPostgresql, "postgresql",     \
                               "[postgresql]")                                                     \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)

// The same for tests with an archive: PostgreSQL twice, the archive in the
// live store's database and in another one.
#define CONFORMANCE_ARCHIVE_TEST(fn, title, tags)                                                  \
  static void fn(const ::retentiond::test::Variant& variant);                                      \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kSqlite, "sqlite", "[sqlite]") \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kPostgresql, "postgresql",     \
                               "[postgresql]")                                                     \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kPostgresqlOtherDatabase,      \
                               "postgresql-other-database", "[postgresql]")                        \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)
