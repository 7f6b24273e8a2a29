// Periods on the calendar: when a record expires, and the cutoff date that
// selects every record already past its period on a given day.
#pragma once

#include <date/date.h>
#include <date/tz.h>

#include <chrono>

#include "time/period.hpp"

namespace retentiond {

using Day = date::sys_days;  // a calendar day, independent of any zone
using Instant = std::chrono::sys_time<std::chrono::microseconds>;

// The day a record anchored on `anchor` expires: anchor + period, where a day
// that does not exist in the target month (31 March + 1 month, 29 February +
// 1 year) becomes that month's last day. On and after that day the record is
// past its period; before it, never.
Day expiry_of(Day anchor, const Period& period);

// The latest anchor day that is past `period` on `as_of`: a record is past
// its period on as_of exactly when its anchor day is <= cutoff_for(as_of, p).
Day cutoff_for(Day as_of, const Period& period);

// The local calendar day of an instant in `zone`.
Day local_day(std::chrono::sys_seconds instant, const date::time_zone& zone);

// The first instant (UTC) of a local day in `zone`. On a day whose midnight
// does not exist (a DST jump at 00:00), the first instant that does.
std::chrono::sys_seconds start_of_local_day(Day day, const date::time_zone& zone);

// "YYYY-MM-DD"
std::string format_day(Day day);

}  // namespace retentiond
