// Which rows of a SQLite table are in a day window, found by comparing the
// anchor through its index instead of calling retentiond's day function on
// every row of every statement.
//
// The anchor's distinct values are read once per stage (one GROUP BY, in index
// order where the anchor has an index) and each is judged once by the same
// reader the day function uses. The index range (IndexRange) holds every value
// of the window; the census lists the few values inside the range that are
// not (another day near the bounds, an impossible date such as 2015-02-30,
// text that is not a date). The window is then "in the range and not one of
// those": a text or number comparison, exact, and usually with an empty list.
//
// A census describes the table as it was when read: it is used only while no
// other connection has committed to the file since (PRAGMA data_version); the
// store falls back to the day function otherwise.
#pragma once

#include <date/tz.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "stores/sqlite/sqlite.hpp"
#include "stores/store.hpp"
#include "time/anchor.hpp"

namespace retentiond {

// Bounds for the anchor index: every readable anchor whose local day is in
// the window sorts inside them (datetime text may carry an offset and is read
// in a zone, hence a margin of days).
struct IndexRange {
  std::optional<sqlite::Value> low;  // anchor >= low
  sqlite::Value high;                // anchor < high
};

IndexRange index_range(AnchorFormat format, const DayWindow& window, const date::time_zone& zone);

struct AnchorCensus {
  // PRAGMA data_version on the connection that read it, just before.
  std::int64_t data_version = 0;
  // Values inside the index range whose day is not in the window (or that
  // have no day). Never NULL.
  std::vector<sqlite::Value> excluded;
  // False when the values cannot stand for the window: too many to list, or
  // equal values of different types (an integer and a real) judged apart.
  // The window must then be tested with the day function, and the counts
  // below are not to be used.
  bool exact = true;
  // Rows whose anchor's day is in the window (scope, holds and done rows not
  // considered).
  std::int64_t window_rows = 0;
  // Rows without a day (NULL included), when the whole table was read.
  std::optional<std::int64_t> undated_rows;
};

// Reads the census of `anchor` in main.`table` for `window`: the whole table
// when `whole_table` (undated rows are then counted), otherwise only the
// index range.
AnchorCensus take_census(sqlite::Database& db, const std::string& table, const std::string& anchor,
                         AnchorFormat format, const DayWindow& window, const date::time_zone& zone,
                         bool whole_table);

// PRAGMA data_version: changes when another connection commits to the file.
std::int64_t data_version(sqlite::Database& db);

}  // namespace retentiond
