#include "time/calendar.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "test_support.hpp"
#include "time/period.hpp"

using retentiond::cutoff_for;
using retentiond::Day;
using retentiond::expiry_of;
using retentiond::format_day;
using retentiond::local_day;
using retentiond::Period;
using retentiond::start_of_local_day;
using std::chrono::sys_seconds;

using retentiond::test::day;
using retentiond::test::utc;

namespace {

Period period(std::string_view text) {
  auto p = retentiond::parse_period(text);
  INFO(text);
  REQUIRE(p.has_value());
  return *p;
}

const date::time_zone& zone(std::string_view name) { return *date::locate_zone(name); }

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\n";
  return out;
}

}  // namespace

TEST_CASE("29 February plus one year expires on 28 February", "[calendar]") {
  CHECK(expiry_of(day(2024, 2, 29), period("1 year")) == day(2025, 2, 28));
  // So on 2025-02-28 the record of 2024-02-29 is past one year: the cutoff is
  // 2024-02-29, and a record of 2024-03-01 is not yet past.
  CHECK(cutoff_for(day(2025, 2, 28), period("1 year")) == day(2024, 2, 29));
  CHECK(cutoff_for(day(2025, 2, 27), period("1 year")) == day(2024, 2, 27));
  CHECK(cutoff_for(day(2025, 3, 1), period("1 year")) == day(2024, 3, 1));
  // From a leap day to a leap day, four years on.
  CHECK(expiry_of(day(2024, 2, 29), period("4 years")) == day(2028, 2, 29));
}

TEST_CASE("31 March plus one month expires on 30 April", "[calendar]") {
  CHECK(expiry_of(day(2025, 3, 31), period("1 month")) == day(2025, 4, 30));
  CHECK(expiry_of(day(2025, 3, 30), period("1 month")) == day(2025, 4, 30));
  CHECK(expiry_of(day(2025, 1, 31), period("1 month")) == day(2025, 2, 28));
  CHECK(expiry_of(day(2024, 1, 31), period("1 month")) == day(2024, 2, 29));
  // On 30 April both 30 and 31 March are past one month; 1 April is not.
  CHECK(cutoff_for(day(2025, 4, 30), period("1 month")) == day(2025, 3, 31));
  CHECK(cutoff_for(day(2025, 4, 29), period("1 month")) == day(2025, 3, 29));
  CHECK(cutoff_for(day(2025, 5, 1), period("1 month")) == day(2025, 4, 1));
}

TEST_CASE("days are added after years and months", "[calendar]") {
  // 2024-01-31 + 1 year 1 month = 2025-02-28 (clamped), + 1 day = 2025-03-01.
  CHECK(expiry_of(day(2024, 1, 31), period("P1Y1M1D")) == day(2025, 3, 1));
  CHECK(expiry_of(day(2024, 12, 31), period("1 day")) == day(2025, 1, 1));
  CHECK(expiry_of(day(2024, 2, 28), period("1 week")) == day(2024, 3, 6));
  CHECK(expiry_of(day(2025, 8, 31), period("P3Y6M")) == day(2029, 2, 28));
}

TEST_CASE("the contract's own examples", "[calendar]") {
  // The report example: a 3-year stage evaluated on 2026-06-15 cuts off at 2023-06-15.
  CHECK(cutoff_for(day(2026, 6, 15), period("3 years")) == day(2023, 6, 15));
  // A record is past its period on the expiry day, not the day before.
  Day anchor = day(2021, 6, 15);
  CHECK(expiry_of(anchor, period("5 years")) == day(2026, 6, 15));
  CHECK(anchor <= cutoff_for(day(2026, 6, 15), period("5 years")));
  CHECK_FALSE(anchor <= cutoff_for(day(2026, 6, 14), period("5 years")));
  CHECK(format_day(cutoff_for(day(2026, 6, 15), period("13 months"))) == "2025-05-15");
}

TEST_CASE("cutoff_for agrees with brute force on every day of four years", "[calendar]") {
  const std::vector<std::string> periods{"1 day",   "2 days",  "7 days",   "30 days",   "31 days",
                                         "1 week",  "1 month", "6 months", "13 months", "1 year",
                                         "3 years", "5 years", "10 years", "13 years",  "15 years",
                                         "P3Y6M",   "P1Y1M1D"};
  const Day first = day(2023, 1, 1);
  const Day last = day(2026, 12, 31);
  constexpr int kWindow = 45;  // days checked on either side of each cutoff

  for (const auto& text : periods) {
    const Period p = period(text);
    // A safe place to start the downward search: twelve consecutive months
    // hold at least 365 days, any month at least 28, and clamping to a
    // month's end loses at most 3 days, so no anchor after this expires by as_of.
    const date::days shortest{365 * p.years + 28 * p.months + p.days - 3};
    std::vector<std::string> failures;
    for (Day as_of = first; as_of <= last && failures.size() < 5; as_of += date::days{1}) {
      Day brute = as_of - shortest;
      while (expiry_of(brute, p) > as_of) brute -= date::days{1};

      const Day cutoff = cutoff_for(as_of, p);
      if (cutoff != brute) {
        failures.push_back("as_of " + format_day(as_of) + ": cutoff_for " + format_day(cutoff) +
                           ", brute force " + format_day(brute));
        continue;
      }
      for (Day d = cutoff - date::days{kWindow}; d <= cutoff + date::days{kWindow};
           d += date::days{1}) {
        if ((d <= cutoff) != (expiry_of(d, p) <= as_of)) {
          failures.push_back("as_of " + format_day(as_of) + ": anchor " + format_day(d) +
                             " expires " + format_day(expiry_of(d, p)) + " but cutoff is " +
                             format_day(cutoff));
          break;
        }
      }
    }
    INFO("period " << text << "\n" << joined(failures));
    CHECK(failures.empty());
  }
}

TEST_CASE("local_day counts by the calendar of the zone", "[calendar]") {
  const auto& paris = zone("Europe/Paris");
  const auto& ny = zone("America/New_York");
  const auto& utc_zone = zone("Etc/UTC");

  CHECK(local_day(utc(2024, 12, 31, 23, 30), utc_zone) == day(2024, 12, 31));
  CHECK(local_day(utc(2024, 12, 31, 23, 30), paris) == day(2025, 1, 1));  // 00:30 CET
  CHECK(local_day(utc(2024, 12, 31, 22, 59, 59), paris) == day(2024, 12, 31));
  CHECK(local_day(utc(2024, 7, 31, 22, 0), paris) == day(2024, 8, 1));  // 00:00 CEST
  CHECK(local_day(utc(2024, 7, 31, 21, 59, 59), paris) == day(2024, 7, 31));
  CHECK(local_day(utc(2025, 1, 1, 4, 59, 59), ny) == day(2024, 12, 31));  // 23:59:59 EST
  CHECK(local_day(utc(2025, 1, 1, 5, 0), ny) == day(2025, 1, 1));
}

TEST_CASE("local days across Paris DST nights", "[calendar]") {
  const auto& paris = zone("Europe/Paris");
  SECTION("spring forward: 2025-03-30 02:00 CET jumps to 03:00 CEST at 01:00 UTC") {
    CHECK(start_of_local_day(day(2025, 3, 30), paris) == utc(2025, 3, 29, 23, 0));
    CHECK(start_of_local_day(day(2025, 3, 31), paris) == utc(2025, 3, 30, 22, 0));
    CHECK(local_day(utc(2025, 3, 30, 0, 59, 59), paris) == day(2025, 3, 30));  // 01:59:59 CET
    CHECK(local_day(utc(2025, 3, 30, 1, 0), paris) == day(2025, 3, 30));       // 03:00 CEST
    CHECK(local_day(utc(2025, 3, 30, 21, 59, 59), paris) == day(2025, 3, 30));
    CHECK(local_day(utc(2025, 3, 30, 22, 0), paris) == day(2025, 3, 31));
  }
  SECTION("fall back: 2025-10-26 03:00 CEST falls back to 02:00 CET at 01:00 UTC") {
    CHECK(start_of_local_day(day(2025, 10, 26), paris) == utc(2025, 10, 25, 22, 0));
    CHECK(start_of_local_day(day(2025, 10, 27), paris) == utc(2025, 10, 26, 23, 0));
    CHECK(local_day(utc(2025, 10, 26, 0, 30), paris) == day(2025, 10, 26));  // first 02:30
    CHECK(local_day(utc(2025, 10, 26, 1, 30), paris) == day(2025, 10, 26));  // second 02:30
    CHECK(local_day(utc(2025, 10, 26, 22, 59, 59), paris) == day(2025, 10, 26));
    CHECK(local_day(utc(2025, 10, 26, 23, 0), paris) == day(2025, 10, 27));
  }
}

TEST_CASE("local days across New York DST nights", "[calendar]") {
  const auto& ny = zone("America/New_York");
  SECTION("spring forward: 2025-03-09 02:00 EST jumps to 03:00 EDT at 07:00 UTC") {
    CHECK(start_of_local_day(day(2025, 3, 9), ny) == utc(2025, 3, 9, 5, 0));
    CHECK(start_of_local_day(day(2025, 3, 10), ny) == utc(2025, 3, 10, 4, 0));
    CHECK(local_day(utc(2025, 3, 10, 3, 59, 59), ny) == day(2025, 3, 9));
  }
  SECTION("fall back: 2025-11-02 02:00 EDT falls back to 01:00 EST at 06:00 UTC") {
    CHECK(start_of_local_day(day(2025, 11, 2), ny) == utc(2025, 11, 2, 4, 0));
    CHECK(start_of_local_day(day(2025, 11, 3), ny) == utc(2025, 11, 3, 5, 0));
    CHECK(local_day(utc(2025, 11, 3, 4, 59, 59), ny) == day(2025, 11, 2));
  }
}

TEST_CASE("a day whose midnight is skipped or repeated", "[calendar]") {
  // Havana changes its clocks at midnight: on 2024-03-10 00:00 CST jumps to
  // 01:00 CDT; on 2024-11-03 01:00 CDT falls back to 00:00 CST.
  const auto& havana = zone("America/Havana");
  CHECK(start_of_local_day(day(2024, 3, 10), havana) == utc(2024, 3, 10, 5, 0));  // 01:00 CDT
  CHECK(start_of_local_day(day(2024, 11, 3), havana) == utc(2024, 11, 3, 4, 0));  // first 00:00
  CHECK(start_of_local_day(day(2024, 11, 4), havana) == utc(2024, 11, 4, 5, 0));
}

TEST_CASE("start_of_local_day is the first instant whose local day is that day", "[calendar]") {
  for (std::string_view name : {"Europe/Paris", "America/New_York", "America/Havana",
                                "Australia/Lord_Howe", "Asia/Kolkata", "Etc/UTC"}) {
    const auto& z = zone(name);
    std::vector<std::string> failures;
    for (Day d = day(2023, 1, 1); d <= day(2026, 12, 31) && failures.size() < 5;
         d += date::days{1}) {
      sys_seconds start = start_of_local_day(d, z);
      if (local_day(start, z) != d ||
          local_day(start - std::chrono::seconds{1}, z) != d - date::days{1}) {
        failures.push_back(format_day(d) + " starts at " + date::format("%F %T UTC", start));
      }
    }
    INFO("zone " << name << "\n" << joined(failures));
    CHECK(failures.empty());
  }
}

TEST_CASE("days print as YYYY-MM-DD", "[calendar]") {
  CHECK(format_day(day(2025, 2, 28)) == "2025-02-28");
  CHECK(format_day(day(987, 1, 2)) == "0987-01-02");
}
