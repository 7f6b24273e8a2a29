// The MGEN demo data set: the SQLite stores that policies/mgen.yaml names,
// filled with fictitious but realistically spread records. Deterministic: the
// same seed, size and as-of day give the same rows, byte for byte.
//
// Used by the retentiond-demo-data tool (scripts/demo.sh, benchmarks) and by
// the tests, which create the same schemas and add rows of their own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "time/calendar.hpp"

namespace retentiond::demo {

// The database files of the data set, relative to its folder, as
// policies/mgen.yaml names them. The archive (amo-archive.db) is not among
// them: the first sweep creates it.
std::vector<std::string> store_files();
inline constexpr std::string_view kArchiveFile = "amo-archive.db";

// Creates the database files in `dir` (WAL mode) with every table, but no
// index: rows go in faster without, and the (empty) folder of the files
// store. Fails (throws sqlite::SqliteError or std::runtime_error) when a
// file already exists.
void create_tables(const std::filesystem::path& dir);

// The root of the files store `rights_requests` of policies/mgen.yaml (art.
// 9), relative to the data set's folder: one folder per rights request.
inline constexpr std::string_view kRightsRequestsFolder = "rights-requests";

// The indexes a sweep needs: one on each anchor column (and on the columns
// holds and lookups use).
void create_indexes(const std::filesystem::path& dir);

struct GenerateOptions {
  std::uint64_t seed = 1;
  std::int64_t rows = 20'000;  // over all tables together
  Day as_of;                   // dates spread back from here (and a few after)
  int rows_per_transaction = 50'000;
  bool indexes = true;  // false: leave the stores without their indexes
};

struct TableCount {
  std::string file;
  std::string table;
  std::int64_t rows = 0;
};

// Fills kRightsRequestsFolder in `dir` (created if missing) with fictitious
// rights requests: a folder each, holding request.txt and one or two
// identity-*.pdf copies whose modification time is when they were received
// (up to 5 years back); a few folders are frozen by a `.hold` file. The same
// seed and as-of day give the same files and times. Returns the number of
// identity copies.
std::int64_t generate_rights_requests(const std::filesystem::path& dir,
                                      const GenerateOptions& options);

// Creates the stores in `dir` and fills them: tables, rows, then indexes,
// then the rights requests. `progress`, if set, is called after each table
// (and once for the identity copies).
std::vector<TableCount> generate(const std::filesystem::path& dir, const GenerateOptions& options,
                                 const std::function<void(const TableCount&)>& progress = {});

// The text of policies/mgen.yaml as it was when this program was built.
std::string_view mgen_policy_text();

// The same data set in a PostgreSQL database: one schema per store of
// policies/mgen.yaml (named as the store), the tables of the SQLite files with
// native types (keys bigint, dates date, datetime text timestamptz, seconds
// since 1970 bigint, the 0/1 hold flag boolean) and the same indexes.
// Unreadable anchors of the SQLite set ('unknown', '2019-02-30', 'n/a') are
// NULL there: undated either way. The archive's schema is created empty (the
// first sweep creates its table).

// The schemas, the archive's last.
std::vector<std::string> postgresql_schemas();
inline constexpr std::string_view kArchiveSchema = "amo_archive";

// Those of the schemas that exist in the database `dsn` names. Throws
// PostgresUnavailable when it cannot connect.
std::vector<std::string> existing_postgresql_schemas(const std::string& dsn);

// Thrown by load_postgresql when a schema exists and `overwrite` is false.
class SchemaExists : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};
// Thrown when the server cannot be reached; the message never holds a password.
class PostgresUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PostgresLoad {
  std::vector<TableCount> tables;  // TableCount::file is the schema
  std::int64_t unreadable = 0;     // values that are not NULL in SQLite, NULL here
};

// Generates the data set (as generate() does, in a scratch folder) and loads
// it into `dsn` with COPY, in one transaction: the schemas, tables, rows and
// indexes, then VACUUM (ANALYZE). With `overwrite`, existing schemas of these
// names are dropped first (CASCADE). Throws SchemaExists, PostgresUnavailable
// or std::runtime_error.
PostgresLoad load_postgresql(const std::string& dsn, const GenerateOptions& options, bool overwrite,
                             const std::function<void(const TableCount&)>& progress = {});

// policies/mgen.yaml with each store a schema of `dsn`:
//   amo: { kind: postgresql, dsn: "DSN", schema: amo }
std::string postgresql_policy_text(const std::string& dsn);

// A small deterministic pseudo-random generator (splitmix64): the standard
// distributions differ between library versions, this does not.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, n); n > 0.
  std::uint64_t below(std::uint64_t n);
  // True with probability per_mille / 1000.
  bool chance(unsigned per_mille) { return below(1000) < per_mille; }

 private:
  std::uint64_t state_;
};

}  // namespace retentiond::demo
