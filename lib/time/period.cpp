#include "time/period.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>

namespace retentiond {
namespace {

constexpr std::string_view kAccepted =
    "a period is 'N days|weeks|months|years' or ISO 8601 like P5Y, P13M, P3Y6M, P30D, "
    "with N a whole number above zero";

// Past this a period is a typo, not a schedule; it also keeps the calendar
// arithmetic far away from date's year range.
constexpr long kMaxYears = 1000;

std::unexpected<std::string> refuse(std::string_view text, std::string_view why) {
  return std::unexpected(fmt::format("invalid period '{}': {}; {}", text, why, kAccepted));
}

bool add_unit(Period& p, char unit, long n) {
  switch (unit) {
    case 'Y':
      p.years += static_cast<int>(n);
      return true;
    case 'M':
      p.months += static_cast<int>(n);
      return true;
    case 'W':
      p.days += static_cast<int>(n * 7);
      return true;
    case 'D':
      p.days += static_cast<int>(n);
      return true;
    default:
      return false;
  }
}

bool too_long(const Period& p) {
  return p.years > kMaxYears || p.months > kMaxYears * 12 || p.days > kMaxYears * 366;
}

std::expected<Period, std::string> parse_iso(std::string_view text) {
  Period p;
  std::string_view rest = text.substr(1);
  if (rest.empty()) return refuse(text, "no amount after 'P'");
  std::string_view order = "YMWD";
  std::size_t next_unit = 0;
  while (!rest.empty()) {
    if (rest.front() == 'T') return refuse(text, "hours, minutes and seconds are not accepted");
    // from_chars reads a '-': "P-5Y" would otherwise be a negative period.
    if (rest.front() == '-' || rest.front() == '+')
      return refuse(text, "it must be a positive whole number");
    long n = 0;
    auto [ptr, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), n);
    if (ec == std::errc::result_out_of_range) return refuse(text, "the number is too large");
    if (ec != std::errc() || ptr == rest.data()) return refuse(text, "expected a number");
    rest.remove_prefix(static_cast<std::size_t>(ptr - rest.data()));
    if (rest.empty()) return refuse(text, "a number without a unit");
    char unit = rest.front();
    auto pos = order.find(unit, next_unit);
    if (pos == std::string_view::npos)
      return refuse(text, fmt::format("unknown or misplaced unit '{}'", unit));
    next_unit = pos + 1;
    rest.remove_prefix(1);
    if (n > kMaxYears * 366) return refuse(text, "longer than 1000 years");
    add_unit(p, unit, n);
  }
  return p;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

std::expected<Period, std::string> parse_period(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  if (t.empty()) return refuse(text, "it is empty");

  Period p;
  if (t.front() == 'P') {
    auto iso = parse_iso(t);
    if (!iso) return iso;
    p = *iso;
  } else {
    if (t.front() == '-' || t.front() == '+')
      return refuse(text, "it must be a positive whole number");
    long n = 0;
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), n);
    if (ec == std::errc::result_out_of_range) return refuse(text, "the number is too large");
    if (ec != std::errc() || ptr == t.data())
      return refuse(text, "it does not start with a number");
    std::string_view unit(ptr, static_cast<std::size_t>(t.data() + t.size() - ptr));
    while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
    if (unit.empty()) return refuse(text, "a number without a unit");
    if (n > kMaxYears * 366) return refuse(text, "longer than 1000 years");
    std::string u = lower(unit);
    char code = 0;
    if (u == "day" || u == "days")
      code = 'D';
    else if (u == "week" || u == "weeks")
      code = 'W';
    else if (u == "month" || u == "months")
      code = 'M';
    else if (u == "year" || u == "years")
      code = 'Y';
    else
      return refuse(text, fmt::format("unknown unit '{}'", unit));
    add_unit(p, code, n);
  }
  if (p == Period{}) return refuse(text, "it is zero");
  if (too_long(p)) return refuse(text, "longer than 1000 years");
  return p;
}

std::string to_string(const Period& p) {
  std::string out;
  auto part = [&](int n, std::string_view unit) {
    if (n == 0) return;
    if (!out.empty()) out += ' ';
    out += fmt::format("{} {}{}", n, unit, n == 1 ? "" : "s");
  };
  part(p.years, "year");
  part(p.months, "month");
  part(p.days, "day");
  return out;
}

}  // namespace retentiond
