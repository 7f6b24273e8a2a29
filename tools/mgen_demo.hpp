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
// index: rows go in faster without. Fails (throws sqlite::SqliteError or
// std::runtime_error) when a file already exists.
void create_tables(const std::filesystem::path& dir);

// The indexes a sweep needs: one on each anchor column (and on the columns
// holds and lookups use).
void create_indexes(const std::filesystem::path& dir);

struct GenerateOptions {
  std::uint64_t seed = 1;
  std::int64_t rows = 20'000;  // over all tables together
  Day as_of;                   // dates spread back from here (and a few after)
  int rows_per_transaction = 50'000;
};

struct TableCount {
  std::string file;
  std::string table;
  std::int64_t rows = 0;
};

// Creates the stores in `dir` and fills them: tables, rows, then indexes.
// `progress`, if set, is called after each table.
std::vector<TableCount> generate(const std::filesystem::path& dir, const GenerateOptions& options,
                                 const std::function<void(const TableCount&)>& progress = {});

// The text of policies/mgen.yaml as it was when this program was built.
std::string_view mgen_policy_text();

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
