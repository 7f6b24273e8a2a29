// A retention period as written in a policy: "5 years", "13 months", "P3Y6M".
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace retentiond {

// Calendar units are kept apart (a year is not 365 days): the calendar adds
// years and months first, clamps to the month's last day, then adds days.
struct Period {
  int years = 0;
  int months = 0;
  int days = 0;  // weeks are stored as 7 days

  bool operator==(const Period&) const = default;
};

// Accepts "N day(s)|week(s)|month(s)|year(s)" and ISO 8601 "PnYnMnWnD"
// (no time part). Zero, negative, unknown units and absurd sizes (beyond
// 1000 years) are refused with a message saying what is accepted.
std::expected<Period, std::string> parse_period(std::string_view text);

// "5 years", "1 year 6 months", "30 days": for reports and messages.
std::string to_string(const Period& period);

}  // namespace retentiond
