// When the daemon sweeps: "HH:MM" daily, or a 5-field cron line, read in the
// policy's time zone.
#pragma once

#include <date/tz.h>

#include <chrono>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace retentiond {

struct Schedule {
  std::string text;  // as written in the policy
  // Allowed values of each cron field, sorted. "HH:MM" is the cron line "MM HH * * *".
  std::vector<int> minutes, hours, days_of_month, months, days_of_week;  // dow: 0 = Sunday
  bool any_day_of_month = true;  // '*' in the day-of-month field
  bool any_day_of_week = true;   // '*' in the day-of-week field
};

// Accepts "HH:MM" (00:00 to 23:59) or five cron fields (minute hour
// day-of-month month day-of-week) with '*', lists, ranges and steps, month and
// day names. The error says what is wrong and what is accepted.
// As in Vixie cron and cronie, a day-of-month or day-of-week field starting
// with '*' (also "*/2") counts as unrestricted: when neither is, a day matches
// if either field does; otherwise both must. "5/10" (a step without a range)
// is refused rather than guessed. A schedule that can never run ("0 0 30 2 *")
// parses; next_run_after says it never runs.
std::expected<Schedule, std::string> parse_schedule(std::string_view text);

// The first scheduled instant strictly after `after`. A local time skipped by
// a spring-forward jump runs once, at the first valid instant after it; a time
// repeated by a fall-back runs once, at its first occurrence (so "* * * * *"
// does not run during the second pass of the repeated hour). Returns
// sys_seconds::max() when nothing matches within 400 years -- the Gregorian
// cycle, so such a schedule never runs -- and for `after` from year 9000 on.
std::chrono::sys_seconds next_run_after(const Schedule& schedule, std::chrono::sys_seconds after,
                                        const date::time_zone& zone);

}  // namespace retentiond
