#include "stores/files/name_date.hpp"

namespace retentiond {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int number(std::string_view s, std::size_t at, std::size_t len) {
  int n = 0;
  for (std::size_t i = at; i < at + len; ++i) n = n * 10 + (s[i] - '0');
  return n;
}

// The length of the run of digits starting at `at`.
std::size_t run_at(std::string_view s, std::size_t at) {
  std::size_t end = at;
  while (end < s.size() && is_digit(s[end])) ++end;
  return end - at;
}

std::optional<Day> valid(int y, int m, int d) {
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(m)},
                           date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return Day{ymd};
}

}  // namespace

std::optional<Day> first_date_in_path(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    if (!is_digit(s[i])) {
      ++i;
      continue;
    }
    // `i` starts a run of digits (the one before it, if any, is not a digit).
    std::size_t run = run_at(s, i);
    if (run == 8) {
      if (auto d = valid(number(s, i, 4), number(s, i + 4, 2), number(s, i + 6, 2))) return d;
    } else if (run == 4 && i + 10 <= s.size() && (s[i + 4] == '-' || s[i + 4] == '/') &&
               s[i + 7] == s[i + 4] && run_at(s, i + 5) == 2 && run_at(s, i + 8) == 2) {
      if (auto d = valid(number(s, i, 4), number(s, i + 5, 2), number(s, i + 8, 2))) return d;
    }
    i += run;
  }
  return std::nullopt;
}

}  // namespace retentiond
