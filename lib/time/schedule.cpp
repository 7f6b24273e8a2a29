#include "time/schedule.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <span>

namespace retentiond {
namespace {

constexpr std::string_view kAccepted =
    "a schedule is \"HH:MM\" (daily, local time) or a 5-field cron line like \"15 3 * * *\"";

std::unexpected<std::string> refuse(std::string_view text, std::string_view why) {
  return std::unexpected(fmt::format("invalid schedule '{}': {}; {}", text, why, kAccepted));
}

struct Field {
  std::string_view name;  // as used in messages
  int low, high;
  std::string_view accepted;  // the values it takes, for messages
  // Three-letter names, index = value - low; empty when the field takes none.
  std::span<const std::string_view> names;
  bool seven_is_sunday = false;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
// Eight entries so that 7, the second spelling of Sunday, also has a name.
constexpr std::array<std::string_view, 8> kDayNames = {"sun", "mon", "tue", "wed",
                                                       "thu", "fri", "sat", "sun"};

const Field kMinute{"minute", 0, 59, "0-59", {}};
const Field kHour{"hour", 0, 23, "0-23", {}};
const Field kDayOfMonth{"day-of-month", 1, 31, "1-31", {}};
const Field kMonth{"month", 1, 12, "1-12 or jan-dec", kMonthNames};
const Field kDayOfWeek{"day-of-week", 0, 7, "0-7 (0 and 7 are Sunday) or sun-sat", kDayNames, true};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// A number or a name within the field's range; on failure, why.
std::expected<int, std::string> parse_value(const Field& f, std::string_view token) {
  if (token.empty()) return std::unexpected(fmt::format("a {} value is missing", f.name));
  if (std::isdigit(static_cast<unsigned char>(token.front()))) {
    int n = 0;
    auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), n);
    bool whole = ptr == token.data() + token.size();
    if (whole && (ec == std::errc::result_out_of_range || n < f.low || n > f.high)) {
      return std::unexpected(fmt::format("{} {} is out of range {}", f.name, token, f.accepted));
    }
    if (whole && ec == std::errc()) return n;
  } else {
    std::string name = lower(token);
    for (std::size_t i = 0; i < f.names.size(); ++i) {
      if (f.names[i] == name) return f.low + static_cast<int>(i);
    }
  }
  return std::unexpected(
      fmt::format("'{}' is not a valid {}, expected {}", token, f.name, f.accepted));
}

// One comma-separated item: "*", "N", "A-B", each optionally followed by "/STEP".
std::expected<void, std::string> parse_item(const Field& f, std::string_view item,
                                            std::vector<int>& out) {
  if (item.empty()) return std::unexpected(fmt::format("empty item in the {} field", f.name));
  std::string_view span = item;
  int step = 1;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    span = item.substr(0, slash);
    std::string_view step_text = item.substr(slash + 1);
    auto [ptr, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
    if (step_text.empty() || ec != std::errc() || ptr != step_text.data() + step_text.size() ||
        step < 1) {
      return std::unexpected(
          fmt::format("step '{}' in {} field item '{}' must be a whole number of at least 1",
                      step_text, f.name, item));
    }
  }
  int first = f.low;
  int last = f.high;
  if (span != "*") {
    auto dash = span.find('-');
    auto a = parse_value(f, span.substr(0, dash));
    if (!a) return std::unexpected(a.error());
    first = last = *a;
    if (dash != std::string_view::npos) {
      auto b = parse_value(f, span.substr(dash + 1));
      if (!b) return std::unexpected(b.error());
      last = *b;
      if (last < first) {
        return std::unexpected(
            fmt::format("{} range '{}' goes backwards, write it low-high", f.name, span));
      }
    } else if (step != 1) {
      // Some crons read "5/10" as "5-max/10", others reject it; be explicit.
      return std::unexpected(
          fmt::format("{} field item '{}' has a step without a range, write '{}-{}/{}' or '*/{}'",
                      f.name, item, first, f.high, step, step));
    }
  }
  for (int v = first; v <= last; v += step) out.push_back(v);
  return {};
}

std::expected<std::vector<int>, std::string> parse_field(const Field& f, std::string_view text) {
  std::vector<int> out;
  std::size_t start = 0;
  while (true) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? comma : comma - start);
    if (auto ok = parse_item(f, item, out); !ok) return std::unexpected(ok.error());
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (f.seven_is_sunday) std::ranges::replace(out, 7, 0);
  std::ranges::sort(out);
  auto dup = std::ranges::unique(out);
  out.erase(dup.begin(), dup.end());
  return out;
}

bool two_digits(std::string_view s) {
  return s.size() == 2 && std::isdigit(static_cast<unsigned char>(s[0])) &&
         std::isdigit(static_cast<unsigned char>(s[1]));
}

std::expected<Schedule, std::string> parse_daily(std::string_view text, std::string_view t) {
  auto colon = t.find(':');
  std::string_view hh = t.substr(0, colon);
  std::string_view mm = t.substr(colon + 1);
  if (!two_digits(hh) || !two_digits(mm)) {
    return refuse(text, "a daily time needs exactly two digits for hour and minute, as in 03:15");
  }
  int h = (hh[0] - '0') * 10 + (hh[1] - '0');
  int m = (mm[0] - '0') * 10 + (mm[1] - '0');
  if (h > 23) return refuse(text, fmt::format("hour {} is out of range 0-23", hh));
  if (m > 59) return refuse(text, fmt::format("minute {} is out of range 0-59", mm));
  Schedule s;
  s.text = std::string(text);
  s.minutes = {m};
  s.hours = {h};
  for (int d = 1; d <= 31; ++d) s.days_of_month.push_back(d);
  for (int mo = 1; mo <= 12; ++mo) s.months.push_back(mo);
  for (int w = 0; w <= 6; ++w) s.days_of_week.push_back(w);
  return s;
}

bool contains(const std::vector<int>& values, int v) {
  return std::ranges::binary_search(values, v);
}

bool day_matches(const Schedule& s, date::local_days day) {
  date::year_month_day ymd{day};
  if (!contains(s.months, static_cast<int>(static_cast<unsigned>(ymd.month())))) return false;
  bool dom = contains(s.days_of_month, static_cast<int>(static_cast<unsigned>(ymd.day())));
  bool dow = contains(s.days_of_week, static_cast<int>(date::weekday{day}.c_encoding()));
  if (s.any_day_of_month || s.any_day_of_week) return dom && dow;
  return dom || dow;
}

// The instant a local wall-clock time stands for under the DST rules of the
// header: a skipped time becomes the transition, a repeated one its first pass.
std::chrono::sys_seconds resolve(date::local_seconds local, const date::time_zone& zone) {
  auto info = zone.get_info(local);
  std::chrono::sys_seconds as_utc{local.time_since_epoch()};
  switch (info.result) {
    case date::local_info::nonexistent:
      return info.second.begin;
    // `first` is the period in force before the fall-back, hence the earlier pass.
    case date::local_info::ambiguous:
    case date::local_info::unique:
    default:
      return as_utc - info.first.offset;
  }
}

// The Gregorian calendar repeats every 400 years (a whole number of weeks), so
// a day pattern with no match in that span never matches.
constexpr date::days kSearchSpan = date::days{146097 + 2};

// Past this, local-time arithmetic plus the search span would leave date's
// year range; nothing is scheduled there (it also makes max() a fixed point).
constexpr std::chrono::sys_seconds kLatest{date::sys_days{date::year{9000} / 1 / 1}};

}  // namespace

std::expected<Schedule, std::string> parse_schedule(std::string_view text) {
  std::string_view t = text;
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.front()))) t.remove_prefix(1);
  while (!t.empty() && std::isspace(static_cast<unsigned char>(t.back()))) t.remove_suffix(1);
  if (t.empty()) return refuse(text, "it is empty");

  bool has_space =
      std::ranges::any_of(t, [](char c) { return std::isspace(static_cast<unsigned char>(c)); });
  if (!has_space && t.find(':') != std::string_view::npos) return parse_daily(text, t);

  std::vector<std::string_view> fields;
  for (std::size_t i = 0; i < t.size();) {
    while (i < t.size() && std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    std::size_t start = i;
    while (i < t.size() && !std::isspace(static_cast<unsigned char>(t[i]))) ++i;
    if (i > start) fields.push_back(t.substr(start, i - start));
  }
  if (fields.size() != 5) {
    return refuse(text, fmt::format("it has {} field{}, a cron line needs 5 (minute hour "
                                    "day-of-month month day-of-week)",
                                    fields.size(), fields.size() == 1 ? "" : "s"));
  }

  Schedule s;
  s.text = std::string(text);
  const std::array<const Field*, 5> kinds = {&kMinute, &kHour, &kDayOfMonth, &kMonth, &kDayOfWeek};
  const std::array<std::vector<int>*, 5> targets = {&s.minutes, &s.hours, &s.days_of_month,
                                                    &s.months, &s.days_of_week};
  for (std::size_t i = 0; i < 5; ++i) {
    auto values = parse_field(*kinds[i], fields[i]);
    if (!values) return refuse(text, values.error());
    *targets[i] = std::move(*values);
  }
  // As in Vixie cron and cronie: a field starting with '*' ("*", "*/2") counts
  // as unrestricted for the day-of-month/day-of-week OR rule.
  s.any_day_of_month = fields[2].front() == '*';
  s.any_day_of_week = fields[4].front() == '*';
  return s;
}

std::chrono::sys_seconds next_run_after(const Schedule& schedule, std::chrono::sys_seconds after,
                                        const date::time_zone& zone) {
  if (schedule.minutes.empty() || schedule.hours.empty() || after >= kLatest) {
    return std::chrono::sys_seconds::max();
  }
  // Start a day early: a skipped time late on one local day resolves to the
  // transition, which may already lie on the next local day.
  auto first_day = date::floor<date::days>(zone.to_local(after)) - date::days{1};
  for (auto day = first_day; day <= first_day + kSearchSpan; day += date::days{1}) {
    if (!day_matches(schedule, day)) continue;
    // Resolved instants grow with the local time, so the first one past
    // `after` is this day's earliest run.
    for (int h : schedule.hours) {
      for (int m : schedule.minutes) {
        auto run = resolve(day + std::chrono::hours{h} + std::chrono::minutes{m}, zone);
        if (run > after) return run;
      }
    }
  }
  return std::chrono::sys_seconds::max();
}

}  // namespace retentiond
