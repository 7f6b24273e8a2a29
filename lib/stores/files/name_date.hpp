// `anchor: name`: the date a file's path relative to its store's root
// carries, read as the contract says.
#pragma once

#include <optional>
#include <string_view>

#include "time/calendar.hpp"

namespace retentiond {

// The first valid date in `path`, written YYYY-MM-DD, YYYY/MM/DD or
// YYYYMMDD, reading from the left. Digits that are part of a longer run of
// digits are not a date (2015-02-031, 120150203); an impossible date
// (2015-02-30) is skipped and the search goes on. nullopt: undated.
std::optional<Day> first_date_in_path(std::string_view path);

}  // namespace retentiond
