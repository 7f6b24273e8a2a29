#include "time/anchor.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "test_support.hpp"

using retentiond::anchor_day;
using retentiond::AnchorFormat;
using retentiond::AnchorValue;
using retentiond::Blob;
using retentiond::Day;
using retentiond::parse_date_text;
using retentiond::parse_datetime_text;
using std::chrono::sys_seconds;

using retentiond::test::day;
using retentiond::test::utc;

namespace {

const date::time_zone& paris() { return *date::locate_zone("Europe/Paris"); }
const date::time_zone& utc_zone() { return *date::locate_zone("Etc/UTC"); }

std::optional<Day> in_paris(AnchorValue value, AnchorFormat format) {
  return anchor_day(value, format, paris());
}

AnchorValue text(std::string s) { return AnchorValue{std::move(s)}; }
AnchorValue integer(std::int64_t n) { return AnchorValue{n}; }

}  // namespace

TEST_CASE("date anchors are strict YYYY-MM-DD days that exist", "[anchor]") {
  CHECK(parse_date_text("2021-01-01") == day(2021, 1, 1));
  CHECK(parse_date_text("2024-02-29") == day(2024, 2, 29));
  CHECK(parse_date_text("1999-12-31") == day(1999, 12, 31));

  for (std::string_view bad :
       {"2015-02-30", "2023-02-29", "2021-13-01", "2021-00-10", "2021-04-31", "2021-01-00",
        "garbage", "2021/01/01", "", "2021-1-01", "2021-01-1", "21-01-01", "2021-01-01 ",
        " 2021-01-01", "2021-01-01x", "2021-01-01 00:00:00", "2021-01-01T00:00:00Z", "+021-01-01",
        "２０２１-01-01"}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_date_text(bad).has_value());
  }
}

TEST_CASE("a date anchor is its day, whatever the zone", "[anchor]") {
  CHECK(in_paris(text("2024-12-31"), AnchorFormat::date) == day(2024, 12, 31));
  CHECK(anchor_day(text("2024-12-31"), AnchorFormat::date, utc_zone()) == day(2024, 12, 31));
  CHECK(anchor_day(text("2024-12-31"), AnchorFormat::date,
                   *date::locate_zone("Pacific/Kiritimati")) == day(2024, 12, 31));
}

TEST_CASE("date anchors that cannot be read are undated", "[anchor]") {
  CHECK_FALSE(in_paris(AnchorValue{}, AnchorFormat::date));  // NULL
  CHECK_FALSE(in_paris(text(""), AnchorFormat::date));
  CHECK_FALSE(in_paris(text("2015-02-30"), AnchorFormat::date));
  CHECK_FALSE(in_paris(text("31/12/2024"), AnchorFormat::date));
  CHECK_FALSE(in_paris(integer(20241231), AnchorFormat::date));
  CHECK_FALSE(in_paris(AnchorValue{2024.0}, AnchorFormat::date));
  CHECK_FALSE(in_paris(AnchorValue{Blob{}}, AnchorFormat::date));
}

TEST_CASE("datetime text in the forms SQLite writes", "[anchor]") {
  const auto noon = utc(2024, 6, 1, 12, 0, 0);
  CHECK(parse_datetime_text("2024-06-01 12:00:00") == noon);
  CHECK(parse_datetime_text("2024-06-01T12:00:00") == noon);
  CHECK(parse_datetime_text("2024-06-01 12:00") == noon);
  CHECK(parse_datetime_text("2024-06-01T12:00") == noon);
  CHECK(parse_datetime_text("2024-06-01 12:00:00.123") == noon);
  CHECK(parse_datetime_text("2024-06-01T12:00:00.999999") == noon);
  CHECK(parse_datetime_text("2024-06-01T12:00:00Z") == noon);
  CHECK(parse_datetime_text("2024-06-01 12:00:00.5Z") == noon);
  CHECK(parse_datetime_text("2024-06-01") == utc(2024, 6, 1));
  CHECK(parse_datetime_text("2024-06-01 23:59:59") == utc(2024, 6, 1, 23, 59, 59));
}

TEST_CASE("datetime text with an offset is converted to UTC", "[anchor]") {
  const auto noon = utc(2024, 6, 1, 12, 0, 0);
  CHECK(parse_datetime_text("2024-06-01T14:00:00+02:00") == noon);
  CHECK(parse_datetime_text("2024-06-01 14:00:00+0200") == noon);
  CHECK(parse_datetime_text("2024-06-01T07:00:00-0500") == noon);
  CHECK(parse_datetime_text("2024-06-01T07:00:00-05:00") == noon);
  CHECK(parse_datetime_text("2024-06-01T17:30:00.25+05:30") == noon);
  CHECK(parse_datetime_text("2024-06-01T12:00:00+00:00") == noon);
  // An offset can move the instant to another UTC day.
  CHECK(parse_datetime_text("2024-06-01T01:00:00+02:00") == utc(2024, 5, 31, 23, 0));
}

TEST_CASE("datetime text that cannot be read is undated", "[anchor]") {
  for (std::string_view bad : {"",
                               "garbage",
                               "2024-06-01 24:00:00",
                               "2024-06-01 12:60:00",
                               "2024-06-01 12:00:60",
                               "2024-02-30 12:00:00",
                               "2024-06-01X12:00:00",
                               "2024-06-01 12",
                               "2024-06-01 12:",
                               "2024-06-01 1:00:00",
                               "2024-06-01 12:00:00.",
                               "2024-06-01 12:00:00 +02:00",
                               "2024-06-01 12:00:00+2",
                               "2024-06-01 12:00:00+02:",
                               "2024-06-01 12:00:00ZZ",
                               "2024-06-01 12:00:00+24:00",
                               "2024-06-01 12:00:00 UTC",
                               "2024/06/01 12:00:00",
                               "12:00:00",
                               "2024-06-01 "}) {
    INFO("'" << bad << "'");
    CHECK_FALSE(parse_datetime_text(bad).has_value());
    CHECK_FALSE(in_paris(text(std::string(bad)), AnchorFormat::datetime));
  }
}

TEST_CASE("datetime anchors count by their local day in the policy's zone", "[anchor]") {
  const auto dt = AnchorFormat::datetime;
  // 23:30 UTC on New Year's Eve is already 00:30 on 1 January in Paris.
  CHECK(in_paris(text("2024-12-31 23:30:00"), dt) == day(2025, 1, 1));
  CHECK(anchor_day(text("2024-12-31 23:30:00"), dt, utc_zone()) == day(2024, 12, 31));
  CHECK(in_paris(text("2024-12-31 22:59:59"), dt) == day(2024, 12, 31));
  CHECK(in_paris(text("2024-12-31T23:00:00Z"), dt) == day(2025, 1, 1));
  // Summer time: Paris is UTC+2.
  CHECK(in_paris(text("2024-06-30 22:00:00"), dt) == day(2024, 7, 1));
  CHECK(in_paris(text("2024-06-30 21:59:59"), dt) == day(2024, 6, 30));
  // With an offset: 23:30+02:00 is 21:30 UTC, 22:30 in Paris in winter.
  CHECK(in_paris(text("2024-12-31T23:30:00+02:00"), dt) == day(2024, 12, 31));
  // 20:00 in New York on New Year's Eve is 02:00 on 1 January in Paris.
  CHECK(in_paris(text("2024-12-31T20:00:00-0500"), dt) == day(2025, 1, 1));
  // A bare date is midnight UTC, 01:00 in Paris: the same day.
  CHECK(in_paris(text("2024-12-31"), dt) == day(2024, 12, 31));
}

TEST_CASE("datetime anchors of the wrong type are undated", "[anchor]") {
  CHECK_FALSE(in_paris(AnchorValue{}, AnchorFormat::datetime));
  CHECK_FALSE(in_paris(integer(1735687800), AnchorFormat::datetime));
  CHECK_FALSE(in_paris(AnchorValue{1735687800.0}, AnchorFormat::datetime));
  CHECK_FALSE(in_paris(AnchorValue{Blob{}}, AnchorFormat::datetime));
}

TEST_CASE("unixepoch anchors are integer seconds since 1970 UTC", "[anchor]") {
  const auto ue = AnchorFormat::unixepoch;
  const std::int64_t new_years_eve = utc(2024, 12, 31, 23, 30).time_since_epoch().count();
  CHECK(new_years_eve == 1735687800);
  CHECK(in_paris(integer(new_years_eve), ue) == day(2025, 1, 1));
  CHECK(anchor_day(integer(new_years_eve), ue, utc_zone()) == day(2024, 12, 31));
  CHECK(anchor_day(integer(0), ue, utc_zone()) == day(1970, 1, 1));
  CHECK(anchor_day(integer(-1), ue, utc_zone()) == day(1969, 12, 31));
  CHECK(in_paris(integer(-1), ue) == day(1970, 1, 1));  // 00:59:59 CET
  CHECK(anchor_day(integer(253402300799), ue, utc_zone()) == day(9999, 12, 31));
}

TEST_CASE("unixepoch anchors that are not integers, or absurd, are undated", "[anchor]") {
  const auto ue = AnchorFormat::unixepoch;
  CHECK_FALSE(in_paris(AnchorValue{}, ue));
  CHECK_FALSE(in_paris(AnchorValue{1735687800.0}, ue));
  CHECK_FALSE(in_paris(AnchorValue{1735687800.5}, ue));
  CHECK_FALSE(in_paris(text("1735687800"), ue));
  CHECK_FALSE(in_paris(text("2024-12-31"), ue));
  CHECK_FALSE(in_paris(AnchorValue{Blob{}}, ue));
  CHECK_FALSE(in_paris(integer(std::numeric_limits<std::int64_t>::max()), ue));
  CHECK_FALSE(in_paris(integer(std::numeric_limits<std::int64_t>::min()), ue));
  CHECK_FALSE(in_paris(integer(253402300800), ue));  // year 10000
}

TEST_CASE("anchor formats print as the policy spells them", "[anchor]") {
  CHECK(retentiond::to_string(AnchorFormat::date) == "date");
  CHECK(retentiond::to_string(AnchorFormat::datetime) == "datetime");
  CHECK(retentiond::to_string(AnchorFormat::unixepoch) == "unixepoch");
}
