#include "time/timetable.hpp"

#include <date/date.h>
#include <date/tz.h>

#include <catch2/catch.hpp>
#include <chrono>

#include "test_support.hpp"
#include "time/clock.hpp"

using namespace retentiond;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;
using std::chrono::sys_seconds;

namespace {

sys_seconds utc(int y, unsigned mo, unsigned d, int h = 0, int mi = 0, int s = 0) {
  return sys_seconds{date::sys_days{date::year{y} / mo / d}} + hours{h} + minutes{mi} + seconds{s};
}

Schedule sched(std::string_view text) {
  auto s = parse_schedule(text);
  REQUIRE(s.has_value());
  return *s;
}

const date::time_zone& paris() { return *date::locate_zone("Europe/Paris"); }

// The daemon's view: now comes from a clock the test sets.
NextSweep next_on(const FakeClock& clock, const Schedule& s, std::optional<sys_seconds> last,
                  seconds delay = seconds{10}) {
  return next_sweep(s, paris(), last, std::chrono::floor<seconds>(clock.now()), delay);
}

}  // namespace

TEST_CASE("a first start waits for the next scheduled time", "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 9, 0));  // 10:00 in Paris
  auto next = next_on(clock, sched("03:15"), std::nullopt);
  CHECK_FALSE(next.catch_up);
  CHECK(next.at == utc(2025, 1, 11, 2, 15));  // 03:15 CET tomorrow
  CHECK(next.due == next.at);
}

TEST_CASE("a sweep missed while the daemon was down runs shortly after start-up", "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 9, 0));
  auto last = utc(2025, 1, 9, 2, 15);  // yesterday's 03:15 CET sweep
  auto next = next_on(clock, sched("03:15"), last, seconds{10});
  CHECK(next.catch_up);
  CHECK(next.due == utc(2025, 1, 10, 2, 15));
  CHECK(next.at == utc(2025, 1, 10, 9, 0, 10));

  SECTION("once, however many were missed") {
    clock.advance(hours{24 * 3});
    auto later = next_on(clock, sched("03:15"), last, seconds{10});
    CHECK(later.catch_up);
    CHECK(later.at == utc(2025, 1, 13, 9, 0, 10));
    // After that catch-up sweep, the schedule resumes.
    auto after = next_on(clock, sched("03:15"), later.at);
    CHECK_FALSE(after.catch_up);
    CHECK(after.at == utc(2025, 1, 14, 2, 15));
  }
}

TEST_CASE("no catch-up when the last sweep was the latest scheduled one", "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 9, 0));
  auto next = next_on(clock, sched("03:15"), utc(2025, 1, 10, 2, 15, 3));
  CHECK_FALSE(next.catch_up);
  CHECK(next.at == utc(2025, 1, 11, 2, 15));

  SECTION("a manual sweep after the scheduled time also counts") {
    auto after_manual = next_on(clock, sched("03:15"), utc(2025, 1, 10, 8, 0));
    CHECK_FALSE(after_manual.catch_up);
    CHECK(after_manual.at == utc(2025, 1, 11, 2, 15));
  }
  SECTION("a manual sweep before it does not replace it") {
    auto after_manual = next_on(clock, sched("03:15"), utc(2025, 1, 10, 1, 0));
    CHECK(after_manual.catch_up);
  }
}

TEST_CASE("a sweep that ran past the next scheduled time is followed by one more, at once",
          "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 11, 20));
  auto next = next_on(clock, sched("0 * * * *"), utc(2025, 1, 10, 10, 0), seconds{0});
  CHECK(next.catch_up);
  CHECK(next.due == utc(2025, 1, 10, 11, 0));
  CHECK(next.at == utc(2025, 1, 10, 11, 20));
}

TEST_CASE("catch-up across the spring-forward night: the skipped time counts as due once",
          "[daemon]") {
  // 2025-03-30 in Paris: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist
  // and runs at 03:00 CEST.
  auto s = sched("02:30");
  auto last = utc(2025, 3, 29, 1, 30);  // 02:30 CET on the 29th

  FakeClock before(utc(2025, 3, 30, 0, 59));
  auto waiting = next_on(before, s, last);
  CHECK_FALSE(waiting.catch_up);
  CHECK(waiting.at == utc(2025, 3, 30, 1, 0));

  FakeClock down_through_it(utc(2025, 3, 30, 6, 0));
  auto missed = next_on(down_through_it, s, last);
  CHECK(missed.catch_up);
  CHECK(missed.due == utc(2025, 3, 30, 1, 0));

  // Having run at 03:00 CEST, the next is 02:30 CEST on the 31st.
  auto after = next_on(down_through_it, s, utc(2025, 3, 30, 1, 0));
  CHECK_FALSE(after.catch_up);
  CHECK(after.at == utc(2025, 3, 31, 0, 30));
}

TEST_CASE("the fall-back night: a time that occurs twice runs once, and is not caught up again",
          "[daemon]") {
  // 2025-10-26 in Paris: 03:00 CEST goes back to 02:00 CET; 02:30 occurs at 00:30 and
  // 01:30 UTC.
  auto s = sched("02:30");
  FakeClock clock(utc(2025, 10, 26, 1, 45));  // after the second 02:30
  auto after_first = next_on(clock, s, utc(2025, 10, 26, 0, 30));
  CHECK_FALSE(after_first.catch_up);
  CHECK(after_first.at == utc(2025, 10, 27, 1, 30));

  auto from_the_day_before = next_on(clock, s, utc(2025, 10, 25, 0, 30));
  CHECK(from_the_day_before.catch_up);
  CHECK(from_the_day_before.due == utc(2025, 10, 26, 0, 30));
}

TEST_CASE("month ends: the 31st is missed in a short month only when it exists", "[daemon]") {
  auto s = sched("0 3 31 * *");
  FakeClock april(utc(2025, 4, 15, 12, 0));
  auto next = next_on(april, s, utc(2025, 1, 31, 2, 0));
  CHECK(next.catch_up);
  CHECK(next.due == utc(2025, 3, 31, 1, 0));  // 03:00 CEST on 31 March

  auto after_march = next_on(april, s, utc(2025, 3, 31, 1, 0));
  CHECK_FALSE(after_march.catch_up);
  CHECK(after_march.at == utc(2025, 5, 31, 1, 0));  // no 31 April
}

TEST_CASE("a last sweep recorded in the future (the clock went back) is no catch-up", "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 9, 0));
  auto next = next_on(clock, sched("03:15"), utc(2025, 2, 1, 2, 15));
  CHECK_FALSE(next.catch_up);
  CHECK(next.at == utc(2025, 1, 11, 2, 15));
}

TEST_CASE("a schedule that never runs never sweeps, even with a last sweep", "[daemon]") {
  FakeClock clock(utc(2025, 1, 10, 9, 0));
  auto next = next_on(clock, sched("0 0 30 2 *"), utc(2024, 1, 1));
  CHECK_FALSE(next.catch_up);
  CHECK(next.at == sys_seconds::max());
}

TEST_CASE("the last sweep is kept in the state directory", "[daemon]") {
  test::TempDir dir;
  auto file = last_sweep_path(dir.path(), false);
  CHECK(file.filename() == "last-sweep");
  CHECK(last_sweep_path(dir.path(), true).filename() == "last-plan");

  auto none = read_last_sweep(file);
  REQUIRE(none.has_value());
  CHECK_FALSE(none->has_value());

  REQUIRE(write_last_sweep(file, utc(2025, 3, 30, 1, 0, 7)).has_value());
  CHECK(test::read_file(file) == "2025-03-30T01:00:07Z\n");
  auto back = read_last_sweep(file);
  REQUIRE(back.has_value());
  CHECK(*back == utc(2025, 3, 30, 1, 0, 7));

  dir.write("last-sweep", "yesterday\n");
  auto garbled = read_last_sweep(file);
  REQUIRE_FALSE(garbled.has_value());
  CHECK_THAT(garbled.error().message,
             Catch::Contains("last-sweep") && Catch::Contains("yesterday"));
}
