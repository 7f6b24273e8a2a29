// Reading an anchor value (the column a period counts from) into the local
// calendar day it stands for. Anything that cannot be read is "undated":
// such a record is reported and never touched.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "time/calendar.hpp"

namespace retentiond {

enum class AnchorFormat { date, datetime, unixepoch };

std::string_view to_string(AnchorFormat format);

// A database value as a store hands it over. Blobs are never dates.
struct Blob {};
using AnchorValue = std::variant<std::monostate, std::int64_t, double, std::string, Blob>;

// Strict "YYYY-MM-DD" naming a day that exists (2015-02-30 does not).
std::optional<Day> parse_date_text(std::string_view text);

// ISO 8601 date and time: "YYYY-MM-DD HH:MM[:SS[.fff]]", 'T' instead of the
// space, optionally followed by 'Z' or an offset "+HH:MM"/"+HHMM"; UTC when no
// offset is given (as SQLite's own date functions write it). A bare date is
// midnight UTC.
std::optional<std::chrono::sys_seconds> parse_datetime_text(std::string_view text);

// The local day of `value` under `format` in `zone`, or nullopt when undated:
// NULL, empty, unreadable, impossible, or of the wrong type (a float or a blob
// for unixepoch, a number for date/datetime).
std::optional<Day> anchor_day(const AnchorValue& value, AnchorFormat format,
                              const date::time_zone& zone);

}  // namespace retentiond
