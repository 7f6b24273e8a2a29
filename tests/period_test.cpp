#include "time/period.hpp"

#include <catch2/catch.hpp>
#include <string>

using retentiond::parse_period;
using retentiond::Period;

namespace {

Period accepted(std::string_view text) {
  auto p = parse_period(text);
  INFO("period '" << text << "': " << (p ? std::string("accepted") : p.error()));
  REQUIRE(p.has_value());
  return *p;
}

std::string refused(std::string_view text) {
  auto p = parse_period(text);
  INFO("period '" << text << "'");
  REQUIRE_FALSE(p.has_value());
  return p.error();
}

// Every refusal names the text and says what would have been accepted.
void says_what_is_accepted(std::string_view text, const std::string& message) {
  INFO("message: " << message);
  CHECK_THAT(message, Catch::Contains(std::string(text)));
  CHECK_THAT(message, Catch::Contains("days|weeks|months|years"));
  CHECK_THAT(message, Catch::Contains("P5Y"));
}

}  // namespace

TEST_CASE("periods in words", "[period]") {
  CHECK(accepted("5 years") == Period{5, 0, 0});
  CHECK(accepted("1 year") == Period{1, 0, 0});
  CHECK(accepted("13 months") == Period{0, 13, 0});
  CHECK(accepted("1 month") == Period{0, 1, 0});
  CHECK(accepted("1 week") == Period{0, 0, 7});
  CHECK(accepted("2 weeks") == Period{0, 0, 14});
  CHECK(accepted("30 days") == Period{0, 0, 30});
  CHECK(accepted("1 day") == Period{0, 0, 1});
}

TEST_CASE("periods in ISO 8601", "[period]") {
  CHECK(accepted("P5Y") == Period{5, 0, 0});
  CHECK(accepted("P13M") == Period{0, 13, 0});
  CHECK(accepted("P3Y6M") == Period{3, 6, 0});
  CHECK(accepted("P30D") == Period{0, 0, 30});
  CHECK(accepted("P2W") == Period{0, 0, 14});
  CHECK(accepted("P1Y1M1D") == Period{1, 1, 1});
}

TEST_CASE("a month is not 30 days and a year is not 12 months of days", "[period]") {
  // Calendar units stay apart so that the calendar can clamp month ends.
  CHECK(accepted("1 month") != accepted("30 days"));
  CHECK(accepted("1 year") != accepted("365 days"));
  CHECK(accepted("1 week") == accepted("7 days"));
}

TEST_CASE("the longest accepted period is 1000 years", "[period]") {
  CHECK(accepted("1000 years") == Period{1000, 0, 0});
  CHECK(accepted("P1000Y") == Period{1000, 0, 0});
  says_what_is_accepted("1001 years", refused("1001 years"));
  says_what_is_accepted("12001 months", refused("12001 months"));
}

TEST_CASE("zero periods are refused", "[period]") {
  for (std::string_view text : {"0 days", "0 years", "P0D", "P0Y0M"}) {
    std::string message = refused(text);
    says_what_is_accepted(text, message);
    CHECK_THAT(message, Catch::Contains("zero"));
  }
}

TEST_CASE("negative periods are refused", "[period]") {
  for (std::string_view text : {"-5 years", "-1 day", "P-5Y"}) {
    says_what_is_accepted(text, refused(text));
  }
}

TEST_CASE("unknown units are refused", "[period]") {
  for (std::string_view text : {"5 fortnights", "5 yrs", "5 decades", "P5X", "5 years ago"}) {
    says_what_is_accepted(text, refused(text));
  }
  CHECK_THAT(refused("5 fortnights"), Catch::Contains("unknown unit 'fortnights'"));
}

TEST_CASE("empty, absurd, time-of-day and garbage periods are refused", "[period]") {
  says_what_is_accepted("", refused(""));
  says_what_is_accepted("   ", refused("   "));
  says_what_is_accepted("999999 years", refused("999999 years"));
  says_what_is_accepted("99999999999999999999 years", refused("99999999999999999999 years"));
  says_what_is_accepted("P999999Y", refused("P999999Y"));
  says_what_is_accepted("PT5H", refused("PT5H"));
  says_what_is_accepted("P1DT5H", refused("P1DT5H"));
  says_what_is_accepted("garbage", refused("garbage"));
  says_what_is_accepted("years", refused("years"));
  says_what_is_accepted("5", refused("5"));
  says_what_is_accepted("P", refused("P"));
  says_what_is_accepted("P5", refused("P5"));
  says_what_is_accepted("P1D1Y", refused("P1D1Y"));  // units out of order
  says_what_is_accepted("1.5 years", refused("1.5 years"));
}

TEST_CASE("periods print the way an administrator writes them", "[period]") {
  using retentiond::to_string;
  CHECK(to_string(accepted("5 years")) == "5 years");
  CHECK(to_string(accepted("1 year")) == "1 year");
  CHECK(to_string(accepted("P3Y6M")) == "3 years 6 months");
  CHECK(to_string(accepted("30 days")) == "30 days");
  CHECK(to_string(accepted("1 week")) == "7 days");
  CHECK(to_string(accepted("P1Y1M1D")) == "1 year 1 month 1 day");
}
