// The auditor's report: one self-contained HTML page (no network, no script,
// an inline SVG chart, print styles) of a plan or sweep, by category, with a
// forecast of what passes its period in each of the coming months.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"
#include "report/report.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/error.hpp"

namespace retentiond {

// One bar of the forecast: the days first..last (a calendar month, or for
// the first bar the rest of the as-of month after the as-of day).
struct ForecastMonth {
  Day first;
  Day last;
};

// Records of one rule and stage that reach the stage's period in each month.
struct ForecastSeries {
  std::string rule;
  std::string category;
  int stage = 1;
  std::string action;
  std::vector<std::int64_t> counts;  // one per month
};

struct Forecast {
  Day as_of;
  std::vector<ForecastMonth> months;
  std::vector<ForecastSeries> series;  // in policy order
  std::vector<std::string> errors;     // why some rules are missing, if any

  // Per month, every series added up.
  std::vector<std::int64_t> month_totals() const;
};

// The months of a forecast from `as_of`: the rest of as_of's month (none
// when as_of is its last day), then whole calendar months, `months` in all.
std::vector<ForecastMonth> forecast_months(Day as_of, int months);

struct ForecastOptions {
  int months = 12;
  std::vector<std::string> rules;  // empty: every rule
};

// Runs a dry-run plan at as_of and at the last day of each of the coming
// months, and differences, per rule and stage, the records past each stage's
// period (held records excluded: they will not be acted on). The first month
// is the rest of as_of's month. The forecast assumes that the data stay as
// they are: no new records, holds unchanged. Read-only, like any plan; a rule
// whose plan fails is left out and named in Forecast::errors. Fails only where
// the plan as a whole cannot run.
Result<Forecast> forecast_expiries(const Policy& policy, Day as_of, const Clock& clock,
                                   const ForecastOptions& options = {});

struct HtmlReportOptions {
  std::string generated_at;  // e.g. "2026-06-15T03:15:00Z"; omitted when empty
};

// Writes the page. Every text from the policy, the stores or the report is
// escaped; the page references nothing outside itself.
void write_html_report(const Report& report, const Policy& policy, const Forecast& forecast,
                       std::ostream& out, const HtmlReportOptions& options = {});

// `text` with & < > " ' replaced by character references.
std::string html_escape(std::string_view text);

// The style sheet every retentiond page shares (screen and A4 print).
std::string_view html_page_style();

// 1234567 as "1 234 567" with narrow no-break spaces, as French (and SI) print it.
std::string grouped(std::int64_t n);

}  // namespace retentiond
