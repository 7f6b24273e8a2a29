#include "stores/sqlite/anchor_census.hpp"

#include <fmt/format.h>

namespace retentiond {
namespace {

// More values than this inside the range but outside the window (dense
// datetime anchors near the bounds, say) are not worth a NOT IN list.
constexpr std::size_t kMaxExcluded = 1000;

AnchorValue anchor_value(const sqlite::Value& v) {
  return std::visit(
      [](const auto& x) -> AnchorValue {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, sqlite::BlobValue>)
          return Blob{};
        else
          return x;
      },
      v);
}

}  // namespace

IndexRange index_range(AnchorFormat format, const DayWindow& w, const date::time_zone& zone) {
  using date::days;
  IndexRange r;
  switch (format) {
    case AnchorFormat::date:
      if (w.after) r.low = format_day(*w.after + days{1});
      r.high = format_day(w.through + days{1});
      break;
    case AnchorFormat::datetime:
      if (w.after) r.low = format_day(*w.after - days{2});
      r.high = format_day(w.through + days{3});
      break;
    case AnchorFormat::unixepoch:
      if (w.after)
        r.low = static_cast<std::int64_t>(
            start_of_local_day(*w.after + days{1}, zone).time_since_epoch().count());
      r.high = static_cast<std::int64_t>(
          start_of_local_day(w.through + days{1}, zone).time_since_epoch().count());
      break;
  }
  return r;
}

std::int64_t data_version(sqlite::Database& db) {
  sqlite::Statement s(db, "PRAGMA data_version");
  s.step();
  return s.column_int(0);
}

AnchorCensus take_census(sqlite::Database& db, const std::string& table, const std::string& anchor,
                         AnchorFormat format, const DayWindow& window, const date::time_zone& zone,
                         bool whole_table) {
  AnchorCensus census;
  census.data_version = data_version(db);
  IndexRange range = index_range(format, window, zone);
  std::string a = "t." + sqlite::quote(anchor);
  // Whether a value is in the range is asked of SQLite, so that it compares
  // exactly as the batches' statements will (type order, the column's
  // affinity and collation).
  std::string in_range =
      range.low ? fmt::format("({0} >= ?1 AND {0} < ?2)", a) : fmt::format("({} < ?2)", a);
  // A group holds values that compare equal: an integer and a real of the
  // same number (1420070400 and 1420070400.0) fall in one, and a unixepoch
  // anchor dates the one and not the other (a date or datetime anchor dates
  // neither). Such a table is left to the day function.
  std::string mixed = format == AnchorFormat::unixepoch
                          ? fmt::format("min(typeof({0})) IS NOT max(typeof({0}))", a)
                          : "0";
  std::string sql = fmt::format("SELECT {0}, count(*), coalesce({1}, 0), {2} FROM main.{3} AS t", a,
                                in_range, mixed, sqlite::quote(table));
  if (!whole_table) sql += " WHERE " + in_range;
  sql += " GROUP BY 1";
  sqlite::Statement s(db, sql);
  if (range.low) s.bind(1, *range.low);
  s.bind(2, range.high);
  std::int64_t undated = 0;
  while (s.step()) {
    sqlite::Value value = s.column(0);
    std::int64_t rows = s.column_int(1);
    bool inside_range = s.column_int(2) != 0;
    if (s.column_int(3) != 0) {
      census.exact = false;
      return census;
    }
    auto day = anchor_day(anchor_value(value), format, zone);
    bool in_window = day && *day <= window.through && (!window.after || *day > *window.after);
    if (!day) undated += rows;
    if (in_window && inside_range) census.window_rows += rows;
    if (inside_range && !in_window && !std::holds_alternative<std::monostate>(value)) {
      if (census.excluded.size() < kMaxExcluded)
        census.excluded.push_back(std::move(value));
      else
        census.exact = false;
    }
  }
  if (whole_table) census.undated_rows = undated;
  return census;
}

}  // namespace retentiond
