// Writes one large SQLite table for the benchmarks: the health claims of the
// MGEN data set (the demo generator's pseudo-random source and dates), in one
// of two layouts:
//   chronological  rows appended around their payment date (the usual case)
//   random         payment dates in random row order
// About 80 % of the rows are past the 3-year period at the as-of day.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

#include "mgen_demo.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "time/calendar.hpp"

using namespace retentiond;

int main(int argc, char** argv) {
  CLI::App app{"bench_data: a large claims table for retentiond's benchmarks"};
  std::filesystem::path out;
  std::int64_t rows = 1'000'000;
  std::string layout = "chronological";
  std::uint64_t seed = 1;
  std::string as_of_text = "2026-06-15";
  app.add_option("--out", out, "database file to create")->required();
  app.add_option("--rows", rows, "number of rows")->capture_default_str();
  app.add_option("--layout", layout, "chronological or random")
      ->check(CLI::IsMember({"chronological", "random"}));
  app.add_option("--seed", seed, "seed")->capture_default_str();
  app.add_option("--as-of", as_of_text, "the day the benchmark sweeps at")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto as_of = parse_date_text(as_of_text);
  if (!as_of) {
    std::fprintf(stderr, "bench_data: --as-of must be YYYY-MM-DD\n");
    return 64;
  }
  std::error_code ec;
  std::filesystem::remove(out, ec);
  sqlite::Database db(out, sqlite::OpenMode::create);
  db.exec("PRAGMA journal_mode = WAL");
  db.exec("PRAGMA synchronous = OFF");  // a scratch file: durability does not matter here
  db.exec(
      "CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member_id INTEGER NOT NULL, paid_on "
      "TEXT, "
      "amount_cents INTEGER, act_code TEXT, visitor_id TEXT, note TEXT, coded_at TEXT)");

  // Payment dates over 15 years back from as-of: 3 years live of 15 leaves
  // 80 % past the period.
  const int span_days = 15 * 365;
  demo::Rng rng(seed);
  sqlite::Statement insert(db, "INSERT INTO claims VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL)");
  constexpr std::int64_t kPerTransaction = 50'000;
  for (std::int64_t i = 0; i < rows; ++i) {
    if (i % kPerTransaction == 0) db.exec(i == 0 ? "BEGIN" : "COMMIT; BEGIN");
    std::int64_t back =
        layout == "chronological"
            ? span_days - 1 - (i * span_days) / rows  // oldest first, as an application appends
            : static_cast<std::int64_t>(rng.below(span_days));
    Day paid = *as_of - date::days{back};
    insert.bind(1, i + 1);
    insert.bind(2, static_cast<std::int64_t>(rng.below(2'000'000)));
    insert.bind(3, format_day(paid));
    insert.bind(4, static_cast<std::int64_t>(rng.below(200'000)));
    insert.bind(5, fmt::format("C{:04}", rng.below(5000)));
    insert.bind(6, fmt::format("v{:016x}", rng.next()));
    insert.bind(7, std::string(24, static_cast<char>('a' + rng.below(26))));
    insert.step();
    insert.reset();
  }
  db.exec("COMMIT");
  db.exec("CREATE INDEX claims_paid_on ON claims (paid_on)");
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  std::printf("%s: %lld rows, %s layout\n", out.c_str(), static_cast<long long>(rows),
              layout.c_str());
  return 0;
}
