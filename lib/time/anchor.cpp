#include "time/anchor.hpp"

#include <charconv>

namespace retentiond {
namespace {

// Reads exactly `width` digits at `pos`.
std::optional<int> digits(std::string_view s, std::size_t pos, std::size_t width) {
  if (pos + width > s.size()) return std::nullopt;
  int n = 0;
  for (std::size_t i = pos; i < pos + width; ++i) {
    char c = s[i];
    if (c < '0' || c > '9') return std::nullopt;
    n = n * 10 + (c - '0');
  }
  return n;
}

std::optional<Day> date_prefix(std::string_view s) {
  if (s.size() < 10 || s[4] != '-' || s[7] != '-') return std::nullopt;
  auto y = digits(s, 0, 4), m = digits(s, 5, 2), d = digits(s, 8, 2);
  if (!y || !m || !d) return std::nullopt;
  date::year_month_day ymd{date::year{*y}, date::month(static_cast<unsigned>(*m)),
                           date::day(static_cast<unsigned>(*d))};
  if (!ymd.ok()) return std::nullopt;
  return Day{ymd};
}

}  // namespace

std::string_view to_string(AnchorFormat format) {
  switch (format) {
    case AnchorFormat::date:
      return "date";
    case AnchorFormat::datetime:
      return "datetime";
    case AnchorFormat::unixepoch:
      return "unixepoch";
  }
  return "?";
}

std::optional<Day> parse_date_text(std::string_view text) {
  if (text.size() != 10) return std::nullopt;
  return date_prefix(text);
}

std::optional<std::chrono::sys_seconds> parse_datetime_text(std::string_view s) {
  auto day = date_prefix(s);
  if (!day) return std::nullopt;
  if (s.size() == 10) return std::chrono::sys_seconds{*day};
  if (s[10] != ' ' && s[10] != 'T') return std::nullopt;
  auto hh = digits(s, 11, 2), mm = digits(s, 14, 2);
  if (!hh || !mm || s.size() < 16 || s[13] != ':' || *hh > 23 || *mm > 59) return std::nullopt;
  int ss = 0;
  std::size_t pos = 16;
  if (pos < s.size() && s[pos] == ':') {
    auto sec = digits(s, pos + 1, 2);
    if (!sec || *sec > 59) return std::nullopt;  // no leap seconds in stored data
    ss = *sec;
    pos += 3;
    if (pos < s.size() && s[pos] == '.') {
      std::size_t start = ++pos;
      while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
      if (pos == start) return std::nullopt;  // fraction is truncated: it never changes the day
    }
  }
  std::chrono::seconds offset{0};
  if (pos < s.size()) {
    char sign = s[pos];
    if (sign == 'Z' || sign == 'z') {
      ++pos;
    } else if (sign == '+' || sign == '-') {
      auto oh = digits(s, pos + 1, 2);
      if (!oh) return std::nullopt;
      std::size_t mpos = pos + 3;
      if (mpos < s.size() && s[mpos] == ':') ++mpos;
      auto om = digits(s, mpos, 2);
      if (!om || *oh > 23 || *om > 59) return std::nullopt;
      offset = std::chrono::hours{*oh} + std::chrono::minutes{*om};
      if (sign == '-') offset = -offset;
      pos = mpos + 2;
    } else {
      return std::nullopt;
    }
  }
  if (pos != s.size()) return std::nullopt;
  return std::chrono::sys_seconds{*day} + std::chrono::hours{*hh} + std::chrono::minutes{*mm} +
         std::chrono::seconds{ss} - offset;
}

std::optional<Day> anchor_day(const AnchorValue& value, AnchorFormat format,
                              const date::time_zone& zone) {
  switch (format) {
    case AnchorFormat::date:
      if (auto* text = std::get_if<std::string>(&value)) return parse_date_text(*text);
      return std::nullopt;
    case AnchorFormat::datetime:
      if (auto* text = std::get_if<std::string>(&value)) {
        if (auto instant = parse_datetime_text(*text)) return local_day(*instant, zone);
      }
      return std::nullopt;
    case AnchorFormat::unixepoch:
      if (auto* n = std::get_if<std::int64_t>(&value)) {
        // Outside year 0..9999 a count of seconds is a mistake, not a date.
        constexpr std::int64_t kLimit = 253402300799;  // 9999-12-31T23:59:59Z
        constexpr std::int64_t kFloor = -62167219200;  // 0000-01-01T00:00:00Z
        if (*n < kFloor || *n > kLimit) return std::nullopt;
        return local_day(std::chrono::sys_seconds{std::chrono::seconds{*n}}, zone);
      }
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace retentiond
