#include "time/schedule.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

using retentiond::next_run_after;
using retentiond::parse_schedule;
using retentiond::Schedule;
using std::chrono::sys_seconds;

namespace {

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0) {
  return sys_seconds{date::sys_days{date::year{y} / mo / d}} + std::chrono::hours{h} +
         std::chrono::minutes{mi};
}

Schedule sched(std::string_view text) {
  auto s = parse_schedule(text);
  INFO(text);
  REQUIRE(s.has_value());
  return *s;
}

std::string parse_error(std::string_view text) {
  auto s = parse_schedule(text);
  INFO(text);
  REQUIRE_FALSE(s.has_value());
  return s.error();
}

const date::time_zone& zone(std::string_view name) { return *date::locate_zone(name); }

}  // namespace

TEST_CASE("HH:MM is the cron line MM HH * * *", "[schedule]") {
  auto s = sched("03:15");
  CHECK(s.text == "03:15");
  CHECK(s.minutes == std::vector<int>{15});
  CHECK(s.hours == std::vector<int>{3});
  CHECK(s.days_of_month.size() == 31);
  CHECK(s.months.size() == 12);
  CHECK(s.days_of_week == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  CHECK(s.any_day_of_month);
  CHECK(s.any_day_of_week);

  CHECK(sched("00:00").hours == std::vector<int>{0});
  CHECK(sched("23:59").minutes == std::vector<int>{59});
  CHECK(sched("  07:05\n").hours == std::vector<int>{7});
}

TEST_CASE("daily HH:MM runs strictly after the given instant", "[schedule]") {
  const auto& z = zone("Etc/UTC");
  auto s = sched("03:15");
  CHECK(next_run_after(s, utc(2025, 1, 10, 1, 0), z) == utc(2025, 1, 10, 3, 15));
  CHECK(next_run_after(s, utc(2025, 1, 10, 3, 14), z) == utc(2025, 1, 10, 3, 15));
  CHECK(next_run_after(s, utc(2025, 1, 10, 3, 15), z) == utc(2025, 1, 11, 3, 15));
  CHECK(next_run_after(s, utc(2025, 1, 10, 4, 0), z) == utc(2025, 1, 11, 3, 15));
  CHECK(next_run_after(s, utc(2025, 12, 31, 23, 59), z) == utc(2026, 1, 1, 3, 15));
}

TEST_CASE("daily HH:MM is local time of the zone", "[schedule]") {
  const auto& paris = zone("Europe/Paris");
  auto s = sched("03:15");
  // Winter: UTC+1. Summer: UTC+2.
  CHECK(next_run_after(s, utc(2025, 1, 10, 0, 0), paris) == utc(2025, 1, 10, 2, 15));
  CHECK(next_run_after(s, utc(2025, 7, 10, 0, 0), paris) == utc(2025, 7, 10, 1, 15));
  // 23:30 UTC is already the next local day in Paris; its 03:15 is a few hours away.
  CHECK(next_run_after(s, utc(2025, 1, 10, 23, 30), paris) == utc(2025, 1, 11, 2, 15));
}

TEST_CASE("Paris spring-forward night", "[schedule]") {
  // 2025-03-30 02:00 CET jumps to 03:00 CEST, at 01:00 UTC.
  const auto& paris = zone("Europe/Paris");
  const auto evening = utc(2025, 3, 29, 20, 0);

  SECTION("a skipped time runs once, at the transition") {
    auto s = sched("02:30");
    CHECK(next_run_after(s, utc(2025, 3, 28, 20, 0), paris) == utc(2025, 3, 29, 1, 30));
    auto run = next_run_after(s, evening, paris);
    CHECK(run == utc(2025, 3, 30, 1, 0));
    CHECK(next_run_after(s, run, paris) == utc(2025, 3, 31, 0, 30));
  }
  SECTION("several skipped times collapse into one run") {
    auto s = sched("*/15 2 * * *");
    auto run = next_run_after(s, evening, paris);
    CHECK(run == utc(2025, 3, 30, 1, 0));
    CHECK(next_run_after(s, run, paris) == utc(2025, 3, 31, 0, 0));
  }
  SECTION("a time after the jump is unaffected") {
    auto s = sched("03:15");
    auto run = next_run_after(s, evening, paris);
    CHECK(run == utc(2025, 3, 30, 1, 15));
    CHECK(next_run_after(s, run, paris) == utc(2025, 3, 31, 1, 15));
  }
  SECTION("every minute keeps running across the jump") {
    auto s = sched("* * * * *");
    CHECK(next_run_after(s, utc(2025, 3, 30, 0, 59), paris) == utc(2025, 3, 30, 1, 0));
    CHECK(next_run_after(s, utc(2025, 3, 30, 1, 0), paris) == utc(2025, 3, 30, 1, 1));
  }
}

TEST_CASE("Paris fall-back night", "[schedule]") {
  // 2025-10-26 03:00 CEST falls back to 02:00 CET, at 01:00 UTC: 02:00-02:59 happen twice.
  const auto& paris = zone("Europe/Paris");
  const auto evening = utc(2025, 10, 25, 20, 0);

  SECTION("a repeated time runs once, at its first occurrence") {
    auto s = sched("02:30");
    auto run = next_run_after(s, evening, paris);
    CHECK(run == utc(2025, 10, 26, 0, 30));  // 02:30 CEST
    // The second 02:30 (01:30 UTC, CET) is not a run: the next is the next day.
    CHECK(next_run_after(s, run, paris) == utc(2025, 10, 27, 1, 30));
    CHECK(next_run_after(s, utc(2025, 10, 26, 1, 10), paris) == utc(2025, 10, 27, 1, 30));
  }
  SECTION("a time after the repeated hour is unaffected") {
    auto s = sched("03:15");
    auto run = next_run_after(s, evening, paris);
    CHECK(run == utc(2025, 10, 26, 2, 15));  // 03:15 CET
    CHECK(next_run_after(s, run, paris) == utc(2025, 10, 27, 2, 15));
  }
  SECTION("every minute skips the second pass of the repeated hour") {
    auto s = sched("* * * * *");
    CHECK(next_run_after(s, utc(2025, 10, 26, 0, 58), paris) == utc(2025, 10, 26, 0, 59));
    CHECK(next_run_after(s, utc(2025, 10, 26, 0, 59), paris) == utc(2025, 10, 26, 2, 0));
  }
}

TEST_CASE("America/New_York DST nights", "[schedule]") {
  const auto& ny = zone("America/New_York");
  SECTION("spring forward: 2025-03-09 02:00 EST jumps to 03:00 EDT at 07:00 UTC") {
    auto s = sched("02:30");
    auto run = next_run_after(s, utc(2025, 3, 9, 0, 0), ny);
    CHECK(run == utc(2025, 3, 9, 7, 0));
    CHECK(next_run_after(s, run, ny) == utc(2025, 3, 10, 6, 30));
    CHECK(next_run_after(sched("03:15"), utc(2025, 3, 9, 0, 0), ny) == utc(2025, 3, 9, 7, 15));
  }
  SECTION("fall back: 2025-11-02 02:00 EDT falls back to 01:00 EST at 06:00 UTC") {
    auto s = sched("01:30");
    auto run = next_run_after(s, utc(2025, 11, 2, 0, 0), ny);
    CHECK(run == utc(2025, 11, 2, 5, 30));  // 01:30 EDT
    CHECK(next_run_after(s, run, ny) == utc(2025, 11, 3, 6, 30));
    CHECK(next_run_after(sched("02:30"), utc(2025, 11, 2, 0, 0), ny) == utc(2025, 11, 2, 7, 30));
  }
}

TEST_CASE("cron fields: lists, ranges, steps and names", "[schedule]") {
  CHECK(sched("*/15 * * * *").minutes == std::vector<int>{0, 15, 30, 45});
  CHECK(sched("10-50/10 * * * *").minutes == std::vector<int>{10, 20, 30, 40, 50});
  CHECK(sched("0 1,15,3 * * *").hours == std::vector<int>{1, 3, 15});
  CHECK(sched("0 1-3,2-4 * * *").hours == std::vector<int>{1, 2, 3, 4});
  CHECK(sched("0 0 */10 * *").days_of_month == std::vector<int>{1, 11, 21, 31});
  CHECK(sched("0 0 * JAN,jul,Dec *").months == std::vector<int>{1, 7, 12});
  CHECK(sched("0 0 * mar-may *").months == std::vector<int>{3, 4, 5});
  CHECK(sched("0 0 * * MON-Fri").days_of_week == std::vector<int>{1, 2, 3, 4, 5});
  CHECK(sched("0 0 * * 5-7").days_of_week == std::vector<int>{0, 5, 6});
  CHECK(sched("0 0 * * sun,7,0").days_of_week == std::vector<int>{0});
  CHECK(sched("0 0 * * */2").days_of_week == std::vector<int>{0, 2, 4, 6});
  CHECK(sched("0 0 * * *").days_of_week == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
  CHECK(sched("0\t0  *  * *").text == "0\t0  *  * *");

  auto s = sched("0 0 1 * mon");
  CHECK_FALSE(s.any_day_of_month);
  CHECK_FALSE(s.any_day_of_week);
  CHECK(sched("0 0 */2 * mon").any_day_of_month);
  CHECK(sched("0 0 1 * *").any_day_of_week);
}

TEST_CASE("cron schedules find their next run", "[schedule]") {
  const auto& z = zone("Etc/UTC");
  auto quarter = sched("*/15 * * * *");
  CHECK(next_run_after(quarter, utc(2025, 1, 10, 10, 7), z) == utc(2025, 1, 10, 10, 15));
  CHECK(next_run_after(quarter, utc(2025, 1, 10, 10, 45), z) == utc(2025, 1, 10, 11, 0));
  CHECK(next_run_after(quarter, utc(2025, 1, 10, 23, 50), z) == utc(2025, 1, 11, 0, 0));

  auto office = sched("10-50/10 9-17 * * mon-fri");
  // 2025-01-10 is a Friday.
  CHECK(next_run_after(office, utc(2025, 1, 10, 8, 0), z) == utc(2025, 1, 10, 9, 10));
  CHECK(next_run_after(office, utc(2025, 1, 10, 9, 50), z) == utc(2025, 1, 10, 10, 10));
  CHECK(next_run_after(office, utc(2025, 1, 10, 17, 50), z) == utc(2025, 1, 13, 9, 10));

  auto thrice = sched("0 8,12,18 * * *");
  CHECK(next_run_after(thrice, utc(2025, 1, 10, 12, 0), z) == utc(2025, 1, 10, 18, 0));
  CHECK(next_run_after(thrice, utc(2025, 1, 10, 18, 0), z) == utc(2025, 1, 11, 8, 0));

  auto quarterly = sched("30 4 1 jan,apr,jul,oct *");
  CHECK(next_run_after(quarterly, utc(2025, 1, 1, 4, 30), z) == utc(2025, 4, 1, 4, 30));
  CHECK(next_run_after(quarterly, utc(2025, 11, 5), z) == utc(2026, 1, 1, 4, 30));
}

TEST_CASE("month ends and leap days", "[schedule]") {
  const auto& z = zone("Etc/UTC");
  auto last = sched("0 0 31 * *");
  CHECK(next_run_after(last, utc(2025, 1, 15), z) == utc(2025, 1, 31));
  CHECK(next_run_after(last, utc(2025, 1, 31), z) == utc(2025, 3, 31));
  CHECK(next_run_after(last, utc(2025, 3, 31), z) == utc(2025, 5, 31));
  CHECK(next_run_after(last, utc(2025, 7, 31), z) == utc(2025, 8, 31));

  auto leap = sched("0 12 29 2 *");
  CHECK(next_run_after(leap, utc(2025, 1, 1), z) == utc(2028, 2, 29, 12, 0));
  CHECK(next_run_after(leap, utc(2028, 2, 29, 12, 0), z) == utc(2032, 2, 29, 12, 0));
  CHECK(next_run_after(leap, utc(2024, 2, 29, 11, 59), z) == utc(2024, 2, 29, 12, 0));
  // 2100 is not a leap year.
  CHECK(next_run_after(leap, utc(2097, 1, 1), z) == utc(2104, 2, 29, 12, 0));
}

TEST_CASE("day-of-month and day-of-week: OR when both are restricted", "[schedule]") {
  const auto& z = zone("Etc/UTC");
  // 2025-01-03, 10 and 17 are Fridays; the 13th is a Monday.
  auto either = sched("0 0 13 * fri");
  CHECK(next_run_after(either, utc(2025, 1, 1), z) == utc(2025, 1, 3));
  CHECK(next_run_after(either, utc(2025, 1, 10), z) == utc(2025, 1, 13));
  CHECK(next_run_after(either, utc(2025, 1, 13), z) == utc(2025, 1, 17));

  auto dom_only = sched("0 0 13 * *");
  CHECK(next_run_after(dom_only, utc(2025, 1, 1), z) == utc(2025, 1, 13));
  auto dow_only = sched("0 0 * * fri");
  CHECK(next_run_after(dow_only, utc(2025, 1, 10), z) == utc(2025, 1, 17));

  // A field starting with '*' counts as unrestricted, so both must match:
  // odd days that are Fridays (the 3rd, the 17th, then the 31st).
  auto both = sched("0 0 */2 * fri");
  CHECK(next_run_after(both, utc(2025, 1, 3), z) == utc(2025, 1, 17));
  CHECK(next_run_after(both, utc(2025, 1, 17), z) == utc(2025, 1, 31));
}

TEST_CASE("impossible schedules end the search instead of looping", "[schedule]") {
  const auto& z = zone("Europe/Paris");
  const auto never = sys_seconds::max();
  CHECK(next_run_after(sched("0 0 30 2 *"), utc(2025, 1, 1), z) == never);
  CHECK(next_run_after(sched("0 0 31 4,6,9,11 *"), utc(2025, 1, 1), z) == never);
  CHECK(next_run_after(sched("03:15"), never, z) == never);
  // Rare but possible: 29 February on a Sunday (AND, since day-of-week starts with '*').
  CHECK(next_run_after(sched("0 0 29 2 */7"), utc(2025, 1, 1), zone("Etc/UTC")) ==
        utc(2032, 2, 29));
}

TEST_CASE("parse errors say what is wrong and what is accepted", "[schedule]") {
  CHECK(parse_error("25:00") ==
        "invalid schedule '25:00': hour 25 is out of range 0-23; a schedule is \"HH:MM\" "
        "(daily, local time) or a 5-field cron line like \"15 3 * * *\"");

  struct Case {
    std::string text;
    std::string detail;  // part of the message naming the problem
  };
  const std::vector<Case> cases = {
      {"", "it is empty"},
      {"   ", "it is empty"},
      {"12:60", "minute 60 is out of range 0-59"},
      {"24:00", "hour 24 is out of range 0-23"},
      {"3:15", "two digits"},
      {"03:5", "two digits"},
      {"ab:cd", "two digits"},
      {"03:15:00", "two digits"},
      {"0 3 * *", "it has 4 fields"},
      {"0 3 * * * *", "it has 6 fields"},
      {"daily", "it has 1 field,"},
      {"60 * * * *", "minute 60 is out of range 0-59"},
      {"* 24 * * *", "hour 24 is out of range 0-23"},
      {"* * 0 * *", "day-of-month 0 is out of range 1-31"},
      {"* * 32 * *", "day-of-month 32 is out of range 1-31"},
      {"* * * 13 *", "month 13 is out of range 1-12 or jan-dec"},
      {"* * * * 8", "day-of-week 8 is out of range 0-7"},
      {"* * * foo *", "'foo' is not a valid month"},
      {"* * * * funday", "'funday' is not a valid day-of-week"},
      {"* * * * january", "'january' is not a valid day-of-week"},
      {"mon * * * *", "'mon' is not a valid minute"},
      {"5-1 * * * *", "minute range '5-1' goes backwards"},
      {"*/0 * * * *", "step '0'"},
      {"*/x * * * *", "step 'x'"},
      {"*/ * * * *", "step ''"},
      {"5/10 * * * *", "'5/10' has a step without a range"},
      {"1,,2 * * * *", "empty item in the minute field"},
      {"1, * * * *", "empty item in the minute field"},
      {"1-5-7 * * * *", "'5-7' is not a valid minute"},
      {"-5 * * * *", "a minute value is missing"},
      {"99999999999 * * * *", "minute 99999999999 is out of range"},
      {"1.5 * * * *", "'1.5' is not a valid minute"},
  };
  for (const auto& c : cases) {
    auto message = parse_error(c.text);
    INFO(message);
    CHECK(message.starts_with("invalid schedule '" + c.text + "': "));
    CHECK(message.find(c.detail) != std::string::npos);
    CHECK(message.ends_with("a 5-field cron line like \"15 3 * * *\""));
    CHECK(message.find('\n') == std::string::npos);
  }
}
