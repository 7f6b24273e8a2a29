// The stores a conformance test sweeps, of one kind: the same test code runs
// against SQLite files, PostgreSQL schemas and files stores
// (tests/conformance_test.cpp).
//
// A TestStores makes named stores. On SQLite a store NAME is the file
// NAME.db in a TempDir; on PostgreSQL it is the schema NAME in one
// TestDatabase, so that a live store and its archive share a database (the
// archive is then one transaction), unless the variant puts archives in a
// second TestDatabase (the copy-first move, two commits); a files store NAME
// is the folder NAME in the TempDir. The policy file, the hmac key and the
// state folder live in the TempDir in every variant.
//
// A guarantee that holds on every kind is stated through records (Record,
// RecordSet): the fixture writes them as rows of a table or as files of a
// tree, gives the rule's YAML that selects them, and reads back which keys
// a store holds. On tables a record set is a table (id, content, at) with a
// hold table SET_holds listing held ids. On files a record is the regular
// file SET/KEY/ANCHOR.rec: its key is its folder, its day is written in its
// name (anchor: name), or, for instants, it is SET/KEY/record.rec and its
// modification time is the instant (anchor: mtime); a `.hold` file in its
// folder holds it, or in the variant with hold lists its folder SET/KEY
// listed in NAME.holds.txt next to the policy.
//
// Test SQL, for what only tables have, is written once for both SQL kinds:
// tables use INTEGER, TEXT and DATE columns (on SQLite a DATE holds
// 'YYYY-MM-DD' text, anchor_format date, the default; on PostgreSQL it is a
// native date). Where the contract differs between the kinds for a good
// reason, the fixture gives the data (which values are undated, what `year`
// keeps of a date), never the assertion.
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
#include <utility>
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
  // Files: records held by a hold list, not by hold files.
  bool hold_list = false;

  // "sqlite", "postgresql", "postgresql-other-database", "files",
  // "files-hold-list"
  std::string name() const;
};

inline constexpr Variant kSqlite{StoreKind::sqlite, false, false};
inline constexpr Variant kPostgresql{StoreKind::postgresql, false, false};
inline constexpr Variant kPostgresqlOtherDatabase{StoreKind::postgresql, true, false};
inline constexpr Variant kFiles{StoreKind::files, false, false};
inline constexpr Variant kFilesHoldList{StoreKind::files, false, true};

enum class Role { live, archive };

// A column type and the anchor_format that goes with it, for an anchor that
// is an instant.
struct InstantAnchor {
  std::string label;          // for messages: "timestamptz", "text (datetime)"
  std::string column_type;    // SQL type in CREATE TABLE
  std::string anchor_format;  // "datetime", or empty where the type says it all
};

// What a rule covers, on any kind of store: a table, or a folder of a tree.
struct RecordSet {
  std::string name;  // letters and '_': a table name, a folder name
  // The anchor is an instant of this kind (instant_anchors()); none: a day.
  std::optional<InstantAnchor> instant;
};

// One record as a test states it: {"c1", "2020-01-01"}, {"c2", std::nullopt,
// true}, {"c3", "2020-01-01", false, "other content"}.
struct Record {
  Record(std::string key, std::optional<std::string> anchor, bool held = false,
         std::string content = "")
      : key(std::move(key)), anchor(std::move(anchor)), held(held), content(std::move(content)) {}

  std::string key;  // letters, digits (never a date) and '-'
  // YYYY-MM-DD, or for an instant set ISO 8601 UTC text; one of the kind's
  // undated_anchors(); nullopt: no anchor at all.
  std::optional<std::string> anchor;
  bool held;
  std::string content;  // empty: "record KEY"
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

  // The store's line in the policy: "{ kind: sqlite, path: NAME.db }",
  // "{ kind: postgresql, dsn: "...", schema: NAME }" or
  // "{ kind: files, root: NAME }".
  std::string store_yaml(const std::string& name) const;
  // A whole policy: Europe/Paris, batch_size, hmac.key, every store added,
  // then `rules` (the YAML of the list's items).
  std::string policy_yaml(std::string_view rules, int batch_size = 1000) const;
  // Writes policy.yaml and loads it; the test stops if it is refused.
  std::shared_ptr<const Policy> policy(std::string_view rules, int batch_size = 1000) const;

  // --- Records, on every kind.

  // Adds `records` to `set` in store `name` (made if missing). Held records
  // only in a live store: holds are the live store's, for its archive too.
  void put(const std::string& name, const RecordSet& set, const std::vector<Record>& records) const;
  // Holds the record `key` of `set`, or lets it go (the live store's holds).
  void set_held(const std::string& name, const RecordSet& set, const std::string& key,
                bool held) const;
  // The keys of the records of `set` in store `name`; none where the store
  // or the set does not exist.
  std::set<std::string> keys(const std::string& name, const RecordSet& set) const;
  // Every record of `set` in store `name`, key -> all of it as text (anchor
  // and content; on files the name, mode, modification time and bytes):
  // equal texts mean the record is as it was.
  std::map<std::string, std::string> records(const std::string& name, const RecordSet& set) const;
  // The lines of a rule that select `set` in store `name` and hold its held
  // records: store, table, key, anchor and hold; or store, pattern, anchor
  // and hold. Indented for an item of `rules:`.
  std::string rule_yaml(const std::string& name, const RecordSet& set) const;
  // The record's key as the stores give it to the audit log's keys_sha256
  // and as `audit find --key` takes it: the key, or on files the record's
  // path relative to the root.
  std::string key_text(const RecordSet& set, const Record& record) const;
  // The report's and the audit log's `table` for a rule on `set`: the table,
  // or the pattern.
  std::string report_table(const RecordSet& set) const;
  // Anchors that are not a date for a day set: NULL, '', 'garbage',
  // '2015-02-30' on SQLite (text); NULL, 'infinity', '-infinity' on
  // PostgreSQL (a date column holds no other); names without a valid date
  // on files ('2015-02-30' is none).
  std::vector<std::optional<std::string>> undated_anchors() const;

  // --- Tables only: a files store throws std::logic_error.

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

  // --- Every kind.

  // Everything of the store retentiond could change: every row of every
  // table (its bookkeeping included), and on PostgreSQL which schemas the
  // database has; on files every entry under the root with its type, mode,
  // size, inode, times (a file's access time included, read without moving
  // it) and a file's SHA-256. Equal dumps mean nothing changed. Empty for a
  // store that does not exist.
  std::string dump(const std::string& name) const;

  // --- Data that differs by kind, for a good reason (CONTRACT.md).

  // SQL literals of undated_anchors(), for a DATE column.
  std::vector<std::string> undated_values() const;
  // Kinds of anchor that are an instant, UTC unless the value says
  // otherwise: text with anchor_format datetime on both SQL kinds; on
  // PostgreSQL also timestamptz and timestamp (read as UTC); on files the
  // modification time.
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
  std::filesystem::path root(const std::string& name) const;
  // Files, hold_list: the hold list of live store `name`, beside the policy.
  std::filesystem::path hold_list(const std::string& name) const;
  bool is_files() const { return kind() == StoreKind::files; }
  void sql_only(std::string_view what) const;

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
// "conformance: TITLE (sqlite)", "... (postgresql)", "... (files)",
// "... (files-hold-list)" (and for archive tests "...
// (postgresql-other-database)"), tagged [conformance] and
// [sqlite], [postgresql] or [files], so that a failure names the kind and a
// run can pick one. The body is written once, as a function of
// `const Variant& variant`.
//
// CONFORMANCE_TEST and CONFORMANCE_ARCHIVE_TEST run on every kind: a
// guarantee is written once, through records. SQL_CONFORMANCE_TEST and
// SQL_CONFORMANCE_ARCHIVE_TEST are for what only tables have (where, column
// holds, non-unique keys, anonymisation, column types).
#define RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, variant_value, suffix, kind_tag) \
  TEST_CASE("conformance: " title " (" suffix ")", "[conformance]" kind_tag tags) {    \
    fn(variant_value);                                                                 \
  }

#define RETENTIOND_SQL_CASES_(fn, title, tags)                                                     \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kSqlite, "sqlite", "[sqlite]") \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kPostgresql, "postgresql",     \
                               "[postgresql]")

#define RETENTIOND_SQL_ARCHIVE_CASES_(fn, title, tags)                                        \
  RETENTIOND_SQL_CASES_(fn, title, tags)                                                      \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kPostgresqlOtherDatabase, \
                               "postgresql-other-database", "[postgresql]")

#define RETENTIOND_FILES_CASE_(fn, title, tags)                                                 \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kFiles, "files", "[files]") \
  RETENTIOND_CONFORMANCE_CASE_(fn, title, tags, ::retentiond::test::kFilesHoldList,             \
                               "files-hold-list", "[files]")

#define SQL_CONFORMANCE_TEST(fn, title, tags)                 \
  static void fn(const ::retentiond::test::Variant& variant); \
  RETENTIOND_SQL_CASES_(fn, title, tags)                      \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)

// The same for tests with an archive: PostgreSQL twice, the archive in the
// live store's database and in another one.
#define SQL_CONFORMANCE_ARCHIVE_TEST(fn, title, tags)         \
  static void fn(const ::retentiond::test::Variant& variant); \
  RETENTIOND_SQL_ARCHIVE_CASES_(fn, title, tags)              \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)

#define CONFORMANCE_TEST(fn, title, tags)                     \
  static void fn(const ::retentiond::test::Variant& variant); \
  RETENTIOND_SQL_CASES_(fn, title, tags)                      \
  RETENTIOND_FILES_CASE_(fn, title, tags)                     \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)

#define CONFORMANCE_ARCHIVE_TEST(fn, title, tags)             \
  static void fn(const ::retentiond::test::Variant& variant); \
  RETENTIOND_SQL_ARCHIVE_CASES_(fn, title, tags)              \
  RETENTIOND_FILES_CASE_(fn, title, tags)                     \
  static void fn([[maybe_unused]] const ::retentiond::test::Variant& variant)
