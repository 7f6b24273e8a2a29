#include "time/calendar.hpp"

namespace retentiond {

using namespace date;

Day expiry_of(Day anchor, const Period& period) {
  year_month_day ymd{anchor};
  year_month ym = year_month{ymd.year(), ymd.month()} + years{period.years} + months{period.months};
  year_month_day_last last{ym.year(), month_day_last{ym.month()}};
  day d = ymd.day() <= last.day() ? ymd.day() : last.day();
  return Day{year_month_day{ym.year(), ym.month(), d}} + days{period.days};
}

Day cutoff_for(Day as_of, const Period& period) {
  // Step back by the period on the calendar, then correct for clamping: the
  // expiry is non-decreasing in the anchor, so the cutoff is the last anchor
  // whose expiry is not after as_of. The corrections move a few days at most.
  year_month_day ymd{as_of};
  year_month ym = year_month{ymd.year(), ymd.month()} - years{period.years} - months{period.months};
  year_month_day_last last{ym.year(), month_day_last{ym.month()}};
  day d = ymd.day() <= last.day() ? ymd.day() : last.day();
  Day candidate = Day{year_month_day{ym.year(), ym.month(), d}} - days{period.days};
  while (expiry_of(candidate + days{1}, period) <= as_of) candidate += days{1};
  while (expiry_of(candidate, period) > as_of) candidate -= days{1};
  return candidate;
}

Day local_day(std::chrono::sys_seconds instant, const time_zone& zone) {
  auto local = zone.to_local(instant);
  return Day{floor<days>(local).time_since_epoch()};
}

std::chrono::sys_seconds start_of_local_day(Day day, const time_zone& zone) {
  local_seconds midnight{day.time_since_epoch()};
  auto info = zone.get_info(midnight);
  switch (info.result) {
    case local_info::unique:
      return std::chrono::sys_seconds{midnight.time_since_epoch() - info.first.offset};
    case local_info::ambiguous:  // the earlier of the two midnights
      return std::chrono::sys_seconds{midnight.time_since_epoch() - info.first.offset};
    case local_info::nonexistent:
    default:
      // The local clock jumped over midnight: the day starts at the transition.
      return info.second.begin;
  }
}

std::string format_day(Day day) { return date::format("%F", day); }

}  // namespace retentiond
