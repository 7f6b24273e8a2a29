#include "report/html_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <map>
#include <ostream>
#include <set>

#include "sweep/sweep.hpp"

namespace retentiond {
namespace {

using date::days;

// Okabe–Ito: told apart by readers with colour-blindness, and in greyscale
// print by their lightness.
constexpr std::array<std::string_view, 8> kPalette{"#0072B2", "#E69F00", "#009E73", "#CC79A7",
                                                   "#56B4E9", "#D55E00", "#8C7A00", "#000000"};
constexpr std::array<std::string_view, 12> kMonthNames{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

std::string month_label(Day day) {
  date::year_month_day ymd{day};
  return fmt::format("{} {}", kMonthNames[static_cast<unsigned>(ymd.month()) - 1],
                     static_cast<int>(ymd.year()));
}

std::string category_name(const std::string& category) {
  return category.empty() ? "uncategorised" : category;
}

// 1, 2 or 5 times a power of ten, at least `n`: the top of the chart's axis.
std::int64_t nice_ceiling(std::int64_t n) {
  if (n <= 0) return 1;
  std::int64_t power = 1;
  while (power * 10 <= n) power *= 10;
  for (std::int64_t step : {1, 2, 5, 10}) {
    if (step * power >= n) return step * power;
  }
  return 10 * power;
}

// The records past each stage's period, per rule and stage, in a plan: the
// stage's own entries and those of later stages (a record past 13 years is
// past 3 years too), in the live store; after an archive stage, in the
// archive as well.
std::map<std::pair<std::string, int>, std::int64_t> past_period_counts(const Policy& policy,
                                                                       const Report& report) {
  std::map<std::pair<std::string, int>, std::int64_t> out;
  for (const auto& e : report.entries) {
    const Rule* rule = policy.find_rule(e.rule);
    if (!rule) continue;
    const Stage* archive = rule->archive_stage();
    bool in_archive = e.store != rule->store;
    for (const auto& stage : rule->stages) {
      if (stage.number > e.stage) break;
      if (in_archive && !(archive && stage.number > archive->number)) continue;
      out[{e.rule, stage.number}] += e.counts.matched;
    }
  }
  return out;
}

const Stage* find_stage(const Policy& policy, const std::string& rule, int number) {
  const Rule* r = policy.find_rule(rule);
  if (!r) return nullptr;
  for (const auto& s : r->stages) {
    if (s.number == number) return &s;
  }
  return nullptr;
}

constexpr std::string_view kStyle =
    R"css(:root { --ink: #1a1a1a; --muted: #555; --line: #c9c9c9; --accent: #0b4f8a; --bad: #a40000; }
* { box-sizing: border-box; }
body { font: 15px/1.45 "DejaVu Sans", "Liberation Sans", Arial, Helvetica, sans-serif; color: var(--ink);
  background: #fff; max-width: 1120px; margin: 0 auto; padding: 28px 36px 48px; }
h1 { font-size: 1.65em; margin: 0 0 4px; }
h2 { font-size: 1.25em; margin: 32px 0 10px; padding-bottom: 3px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 1.08em; margin: 0 0 2px; }
p { margin: 4px 0 8px; }
.lead { color: var(--muted); margin: 0 0 14px; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 3px 18px; margin: 0; font-size: .92em; }
dl.meta dt { font-weight: bold; }
dl.meta dd { margin: 0; }
.mono { font-family: "DejaVu Sans Mono", "Liberation Mono", monospace; font-size: .9em; word-break: break-all; }
.tiles { display: grid; grid-template-columns: repeat(4, 1fr); gap: 12px; margin: 18px 0 4px; }
.tile { border: 1px solid var(--line); border-left: 5px solid var(--accent); padding: 8px 12px; }
.tile .n { display: block; font-size: 1.7em; font-weight: bold; font-variant-numeric: tabular-nums; }
.tile .l { color: var(--muted); font-size: .85em; }
section.category { margin: 0 0 22px; }
.basis { color: var(--muted); font-size: .92em; }
table { border-collapse: collapse; width: 100%; font-size: .88em; margin: 6px 0; }
table.entries { table-layout: fixed; }
table.entries td { overflow-wrap: anywhere; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 6px; text-align: left; vertical-align: top; }
thead th { border-bottom: 2px solid var(--ink); font-weight: bold; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.n { white-space: normal; }
td.d { white-space: nowrap; }
table.forecast { table-layout: fixed; font-size: .82em; }
td.due { font-weight: bold; }
tr.total td { font-weight: bold; border-top: 2px solid var(--ink); border-bottom: none; }
.error, .error td { color: var(--bad); }
figure { margin: 8px 0 0; }
figure svg { width: 100%; height: auto; display: block; }
figcaption { color: var(--muted); font-size: .88em; margin-top: 4px; }
ul.legend { list-style: none; padding: 0; margin: 6px 0; display: flex; flex-wrap: wrap; gap: 4px 20px; font-size: .9em; }
ul.legend svg { vertical-align: -2px; margin-right: 6px; }
.note { color: var(--muted); font-size: .88em; }
dl.terms dt { font-weight: bold; float: left; clear: left; width: 9em; }
dl.terms dd { margin: 0 0 6px 9.5em; }
@page { size: A4; margin: 14mm 12mm 16mm; }
@media print {
  body { font-size: 9pt; max-width: none; padding: 0; }
  th, td { padding: 3px 4px; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  h2 { break-after: avoid; }
  section.category, figure, tr, .tiles { break-inside: avoid; }
  thead { display: table-header-group; }
}
)css";

class PageWriter {
 public:
  PageWriter(const Report& report, const Policy& policy, const Forecast& forecast,
             std::ostream& out, const HtmlReportOptions& options)
      : report_(report), policy_(policy), forecast_(forecast), out_(out), options_(options) {
    for (const auto& e : report.entries) add_category(e.category);
    for (const auto& s : forecast.series) add_category(s.category);
    for (const auto& e : report.entries)
      show_conflicts_ = show_conflicts_ || e.counts.conflicts > 0;
  }

  void write() {
    std::string kind = report_.dry_run ? "Retention plan" : "Retention sweep";
    out_ << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         << "<title>" << e(fmt::format("{} as of {}", kind, report_.as_of)) << "</title>\n<style>\n"
         << kStyle << "</style>\n</head>\n<body>\n";
    header(kind);
    summary();
    categories();
    forecast();
    how_to_read();
    out_ << "</body>\n</html>\n";
  }

 private:
  static std::string e(std::string_view text) { return html_escape(text); }

  void add_category(const std::string& c) {
    if (std::find(categories_.begin(), categories_.end(), c) == categories_.end())
      categories_.push_back(c);
  }
  std::string_view colour(const std::string& category) const {
    auto i = static_cast<std::size_t>(std::find(categories_.begin(), categories_.end(), category) -
                                      categories_.begin());
    return kPalette[i % kPalette.size()];
  }

  void header(const std::string& kind) {
    out_ << "<header>\n<h1>" << e(kind) << " as of " << e(report_.as_of)
         << "</h1>\n<p class=\"lead\">"
         << (report_.dry_run
                 ? "A dry run: it shows what a sweep on this day would act on, and changed nothing."
                 : "A sweep: the records counted under \u201cchanged\u201d were deleted, archived "
                   "or "
                   "anonymised, each batch recorded in the audit log.")
         << "</p>\n<dl class=\"meta\">\n"
         << "<dt>As of</dt><dd data-field=\"as_of\">" << e(report_.as_of) << " ("
         << e(report_.timezone) << ")</dd>\n"
         << "<dt>Policy</dt><dd class=\"mono\">" << e(policy_.file.string()) << "</dd>\n"
         << "<dt>Policy SHA-256</dt><dd class=\"mono\" data-field=\"policy_sha256\">"
         << e(report_.policy_sha256) << "</dd>\n";
    if (!options_.generated_at.empty()) {
      out_ << "<dt>Generated</dt><dd>" << e(options_.generated_at) << " (UTC)</dd>\n";
    }
    out_ << "<dt>Rules</dt><dd>" << policy_.rules.size() << " in the policy, " << categories_.size()
         << " categor" << (categories_.size() == 1 ? "y" : "ies")
         << " in this report</dd>\n</dl>\n</header>\n";
  }

  void tile(std::string_view field, std::int64_t n, std::string_view label) {
    out_ << "<div class=\"tile\"><span class=\"n\" data-total=\"" << field << "\">" << grouped(n)
         << "</span><span class=\"l\">" << label << "</span></div>\n";
  }

  void summary() {
    Counts t = report_.totals();
    out_ << "<section class=\"tiles\">\n";
    tile("matched", t.matched,
         report_.dry_run ? "past their period, to act on"
                         : "past their period, acted on by this sweep");
    tile("held", t.held, "past their period but held (e.g. litigation)");
    tile("undated", t.undated, "undated: no readable anchor, never touched");
    tile("affected", t.affected,
         report_.dry_run ? "changed (none in a dry run)" : "changed by this sweep");
    out_ << "</section>\n";
    if (t.conflicts > 0) {
      out_ << "<p class=\"error\">" << grouped(t.conflicts)
           << " record(s) were not archived: the archive already holds a different record with the "
              "same key. They "
              "stay in the live store until compared by hand.</p>\n";
    }
  }

  void counts_cells(const Counts& c) {
    out_ << "<td class=\"n" << (c.matched > 0 ? " due" : "") << "\" data-field=\"matched\">"
         << grouped(c.matched) << "</td><td class=\"n\" data-field=\"held\">" << grouped(c.held)
         << "</td><td class=\"n\" data-field=\"undated\">" << grouped(c.undated)
         << "</td><td class=\"n\" data-field=\"affected\">" << grouped(c.affected) << "</td>";
    if (show_conflicts_)
      out_ << "<td class=\"n\" data-field=\"conflicts\">" << grouped(c.conflicts) << "</td>";
  }

  void categories() {
    out_ << "<h2>By category</h2>\n";
    for (const auto& category : categories_) {
      std::vector<const ReportEntry*> entries;
      for (const auto& entry : report_.entries) {
        if (entry.category == category) entries.push_back(&entry);
      }
      if (entries.empty()) continue;
      Counts sum;
      std::vector<std::string> bases;
      for (const auto* entry : entries) {
        sum += entry->counts;
        if (!entry->basis.empty() &&
            std::find(bases.begin(), bases.end(), entry->basis) == bases.end()) {
          bases.push_back(entry->basis);
        }
      }
      out_ << "<section class=\"category\" data-category=\"" << e(category) << "\">\n<h3>"
           << swatch(colour(category)) << e(category_name(category)) << "</h3>\n";
      out_ << "<p class=\"basis\">Legal basis: "
           << (bases.empty() ? std::string("not stated in the policy")
                             : e(fmt::format("{}", fmt::join(bases, "; "))))
           << "</p>\n<p>At " << e(report_.as_of) << ", <strong>" << grouped(sum.matched + sum.held)
           << "</strong> record(s) are past their period: " << grouped(sum.matched)
           << (report_.dry_run ? " to act on, " : " acted on, ") << grouped(sum.held) << " held. "
           << grouped(sum.undated) << " undated.</p>\n";
      out_
          << "<table class=\"entries\">\n"
          << colgroup()
          << "<thead><tr><th>Rule</th><th>Stage</th><th>Records in</th><th>Period</th>"
          << "<th>Cutoff<br><span class=\"note\">anchor on or before</span></th>"
          << "<th class=\"n\">Past period</th><th class=\"n\">Held</th><th class=\"n\">Undated</th>"
          << "<th class=\"n\">Changed</th>"
          << (show_conflicts_ ? "<th class=\"n\">Conflicts</th>" : "")
          << "</tr></thead>\n<tbody>\n";
      for (const auto* entry : entries) {
        const Stage* stage = find_stage(policy_, entry->rule, entry->stage);
        const Rule* rule = policy_.find_rule(entry->rule);
        std::size_t stage_count = rule ? rule->stages.size() : 1;
        out_ << "<tr" << (entry->error ? " class=\"error\"" : "") << " data-rule=\""
             << e(entry->rule) << "\" data-stage=\"" << entry->stage << "\" data-store=\""
             << e(entry->store) << "\"><td>" << e(entry->rule) << "</td><td>" << e(entry->action);
        if (stage_count > 1)
          out_ << " <span class=\"note\">(" << entry->stage << " of " << stage_count << ")</span>";
        out_ << "</td><td class=\"mono\">" << e(entry->store) << "." << e(entry->table)
             << "</td><td class=\"d\">" << (stage ? e(to_string(stage->after)) : std::string("?"))
             << "</td><td class=\"d\" data-field=\"cutoff\">" << e(entry->cutoff) << "</td>";
        counts_cells(entry->counts);
        out_ << "</tr>\n";
        if (entry->error) {
          out_ << "<tr class=\"error\"><td colspan=\"" << (show_conflicts_ ? 10 : 9)
               << "\">Failed: " << e(*entry->error) << "</td></tr>\n";
        }
      }
      out_ << "</tbody>\n</table>\n</section>\n";
    }
    if (report_.entries.empty()) out_ << "<p>No rule was run.</p>\n";
    out_ << "<table class=\"entries\">\n"
         << colgroup() << "<tbody><tr class=\"total\"><td colspan=\"5\">All categories</td>";
    counts_cells(report_.totals());
    out_ << "</tr></tbody></table>\n";
  }

  // The same column widths in every table of entries, so that they line up.
  std::string colgroup() const {
    std::vector<int> widths = show_conflicts_ ? std::vector<int>{18, 10, 15, 8, 9, 8, 8, 8, 8, 8}
                                              : std::vector<int>{20, 11, 17, 9, 11, 8, 8, 8, 8};
    std::string out = "<colgroup>";
    for (int w : widths) out += fmt::format("<col style=\"width:{}%\">", w);
    return out + "</colgroup>\n";
  }

  static std::string swatch(std::string_view colour) {
    return fmt::format(
        "<svg width=\"12\" height=\"12\" viewBox=\"0 0 12 12\" aria-hidden=\"true\" "
        "style=\"margin-right:6px\">"
        "<rect width=\"12\" height=\"12\" fill=\"{}\"/></svg>",
        colour);
  }

  // Per category, per month: the records that reach a period then.
  std::vector<std::pair<std::string, std::vector<std::int64_t>>> forecast_by_category() const {
    std::vector<std::pair<std::string, std::vector<std::int64_t>>> out;
    for (const auto& category : categories_) {
      std::vector<std::int64_t> counts(forecast_.months.size(), 0);
      bool any = false;
      for (const auto& s : forecast_.series) {
        if (s.category != category) continue;
        any = true;
        for (std::size_t i = 0; i < counts.size() && i < s.counts.size(); ++i)
          counts[i] += s.counts[i];
      }
      if (any) out.emplace_back(category, std::move(counts));
    }
    return out;
  }

  void forecast() {
    std::size_t n = forecast_.months.size();
    out_ << "<h2>Forecast: what passes its period in the next " << n << " months</h2>\n";
    if (n == 0) {
      out_ << "<p>No forecast was computed.</p>\n";
      return;
    }
    auto by_category = forecast_by_category();
    auto totals = forecast_.month_totals();
    std::int64_t top =
        nice_ceiling(totals.empty() ? 0 : *std::max_element(totals.begin(), totals.end()));

    // The chart: one stacked bar per month, coloured by category.
    constexpr double kWidth = 960, kHeight = 330, kLeft = 64, kRight = 12, kTop = 22, kBottom = 46;
    double plot_w = kWidth - kLeft - kRight, plot_h = kHeight - kTop - kBottom;
    double slot = plot_w / static_cast<double>(n), bar = slot * 0.64;
    auto y_of = [&](std::int64_t v) {
      return kTop + plot_h - plot_h * static_cast<double>(v) / static_cast<double>(top);
    };
    out_ << "<figure>\n<svg viewBox=\"0 0 " << kWidth << " " << kHeight
         << "\" role=\"img\" aria-label=\"Records reaching their period per month\" "
         << "font-family=\"DejaVu Sans, Liberation Sans, Arial, sans-serif\" font-size=\"12\">\n";
    for (int g = 0; g <= 4; ++g) {
      std::int64_t v = top * g / 4;
      double y = y_of(v);
      out_ << fmt::format(
          "<line x1=\"{:.1f}\" x2=\"{:.1f}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
          "stroke-width=\"1\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\" fill=\"#555\">{}</text>\n",
          kLeft, kWidth - kRight, y, y, g == 0 ? "#1a1a1a" : "#dddddd", kLeft - 6, y + 4,
          grouped(v));
    }
    for (std::size_t m = 0; m < n; ++m) {
      double x = kLeft + slot * static_cast<double>(m) + (slot - bar) / 2;
      std::int64_t below = 0;
      for (const auto& [category, counts] : by_category) {
        if (counts[m] <= 0) continue;
        double y1 = y_of(below + counts[m]), y0 = y_of(below);
        out_ << fmt::format(
            "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
            "fill=\"{}\"><title>{}: {} in {}</title>"
            "</rect>\n",
            x, y1, bar, std::max(0.5, y0 - y1), colour(category), e(category_name(category)),
            grouped(counts[m]), e(month_label(forecast_.months[m].last)));
        below += counts[m];
      }
      out_ << fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" font-weight=\"bold\">{}</text>\n",
          x + bar / 2, y_of(totals[m]) - 5, grouped(totals[m]));
      date::year_month_day ymd{forecast_.months[m].last};
      out_ << fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#555\" "
          "font-size=\"11\">{}</text>\n",
          x + bar / 2, kHeight - kBottom + 17, kMonthNames[static_cast<unsigned>(ymd.month()) - 1],
          x + bar / 2, kHeight - kBottom + 32, static_cast<int>(ymd.year()));
    }
    out_ << "</svg>\n<figcaption>Records that reach the period of a rule or stage in each month, "
            "if the data stay as "
            "they are at "
         << e(report_.as_of)
         << " (no new records, holds unchanged). Held records are left out: they will not be "
         << "acted on. The first bar counts from " << e(format_day(forecast_.months.front().first))
         << ".</figcaption>\n"
         << "</figure>\n<ul class=\"legend\">\n";
    for (const auto& [category, counts] : by_category) {
      out_ << "<li>" << swatch(colour(category)) << e(category_name(category)) << "</li>\n";
    }
    out_ << "</ul>\n";

    // The same numbers as a table: exact, and readable without colour.
    out_ << "<table class=\"forecast\">\n<colgroup><col style=\"width:22%\">";
    for (std::size_t m = 0; m <= n; ++m)
      out_ << fmt::format("<col style=\"width:{:.2f}%\">", 78.0 / double(n + 1));
    out_ << "</colgroup>\n<thead><tr><th>Category</th>";
    for (std::size_t m = 0; m < n; ++m) {
      date::year_month_day first{forecast_.months[m].first}, last{forecast_.months[m].last};
      std::string month = kMonthNames[static_cast<unsigned>(last.month()) - 1].data();
      if (first.day() != date::day{1}) {
        month = fmt::format("{}\u2013{} {}", static_cast<unsigned>(first.day()),
                            static_cast<unsigned>(last.day()), month);
      }
      out_ << "<th class=\"n\">" << e(month) << "<br>" << static_cast<int>(last.year()) << "</th>";
    }
    out_ << "<th class=\"n\">All " << n << "</th></tr></thead>\n<tbody>\n";
    for (const auto& [category, counts] : by_category) {
      out_ << "<tr data-category=\"" << e(category) << "\"><td>" << swatch(colour(category))
           << e(category_name(category)) << "</td>";
      std::int64_t sum = 0;
      for (std::size_t m = 0; m < n; ++m) {
        out_ << "<td class=\"n\" data-month=\"" << m + 1 << "\">" << grouped(counts[m]) << "</td>";
        sum += counts[m];
      }
      out_ << "<td class=\"n\" data-field=\"sum\">" << grouped(sum) << "</td></tr>\n";
    }
    out_ << "<tr class=\"total\"><td>All categories</td>";
    std::int64_t sum = 0;
    for (std::size_t m = 0; m < n; ++m) {
      out_ << "<td class=\"n\" data-month=\"" << m + 1 << "\" data-field=\"total\">"
           << grouped(totals[m]) << "</td>";
      sum += totals[m];
    }
    out_ << "<td class=\"n\" data-field=\"sum\">" << grouped(sum)
         << "</td></tr>\n</tbody>\n</table>\n";
    for (const auto& error : forecast_.errors) {
      out_ << "<p class=\"error\">Not in the forecast: " << e(error) << "</p>\n";
    }
  }

  void how_to_read() {
    out_ << "<h2>How to read this report</h2>\n<dl class=\"terms\">\n"
         << "<dt>Period</dt><dd>How long the policy keeps a record, counted from its anchor (the "
            "date column the rule "
            "names). A record anchored on day D with period P passes its period on D + P, on the "
            "calendar of "
         << e(report_.timezone) << ".</dd>\n"
         << "<dt>Cutoff</dt><dd>The latest anchor date that is past the period at the as-of date: "
            "every record "
            "anchored on or before it is due.</dd>\n"
         << "<dt>Past period</dt><dd>Records past the period, not held, that the stage "
         << (report_.dry_run ? "would act on" : "acted on")
         << ". Where a rule has stages, the latest stage a "
         << "record has reached counts it.</dd>\n"
         << "<dt>Held</dt><dd>Past the period but held (for instance while legal proceedings are "
            "pending): never "
            "touched, whatever their age.</dd>\n"
         << "<dt>Undated</dt><dd>No readable anchor: empty, unreadable, or not set yet (a contract "
            "that has not "
            "ended). Never touched; counted so that they can be looked at.</dd>\n"
         << "<dt>Changed</dt><dd>Records actually deleted, archived or anonymised; 0 in a dry "
            "run.</dd>\n"
         << "</dl>\n<p class=\"note\">Produced by retentiond from the policy whose SHA-256 is "
            "given above: the same "
            "policy file, data and as-of date give the same numbers.</p>\n";
  }

  const Report& report_;
  const Policy& policy_;
  const Forecast& forecast_;
  std::ostream& out_;
  const HtmlReportOptions& options_;
  std::vector<std::string> categories_;
  bool show_conflicts_ = false;
};

}  // namespace

std::vector<std::int64_t> Forecast::month_totals() const {
  std::vector<std::int64_t> totals(months.size(), 0);
  for (const auto& s : series) {
    for (std::size_t i = 0; i < totals.size() && i < s.counts.size(); ++i) totals[i] += s.counts[i];
  }
  return totals;
}

std::vector<ForecastMonth> forecast_months(Day as_of, int months) {
  std::vector<ForecastMonth> out;
  date::year_month_day ymd{as_of};
  date::year_month month = ymd.year() / ymd.month();
  if (Day{month / date::last} == as_of) month += date::months{1};  // nothing left of as_of's month
  for (int k = 0; k < months; ++k) {
    date::year_month m = month + date::months{k};
    out.push_back(
        {k == 0 ? std::max(as_of + days{1}, Day{m / 1}) : Day{m / 1}, Day{m / date::last}});
  }
  return out;
}

Result<Forecast> forecast_expiries(const Policy& policy, Day as_of, const Clock& clock,
                                   const ForecastOptions& options) {
  Forecast forecast;
  forecast.as_of = as_of;
  forecast.months = forecast_months(as_of, options.months);

  // The plans log nothing: their failures are reported once, below.
  std::ostream discard(nullptr);
  Logger quiet(discard, LogLevel::error, false);
  std::vector<Day> points{as_of};
  for (const auto& m : forecast.months) points.push_back(m.last);
  std::vector<std::map<std::pair<std::string, int>, std::int64_t>> past;
  std::set<std::string> failed;
  for (Day point : points) {
    SweepOptions sweep;
    sweep.dry_run = true;
    sweep.rules = options.rules;
    sweep.as_of = point;
    auto outcome = run_sweep(policy, sweep, clock, quiet);
    if (!outcome) return std::unexpected(outcome.error());
    for (const auto& entry : outcome->report.entries) {
      if (entry.error && failed.insert(entry.rule).second) {
        forecast.errors.push_back(fmt::format("rule {}: {}", entry.rule, *entry.error));
      }
    }
    past.push_back(past_period_counts(policy, outcome->report));
  }

  for (const auto& rule : policy.rules) {
    if (!options.rules.empty() &&
        std::find(options.rules.begin(), options.rules.end(), rule.name) == options.rules.end()) {
      continue;
    }
    if (failed.count(rule.name)) continue;
    for (const auto& stage : rule.stages) {
      ForecastSeries series{
          rule.name, rule.category, stage.number, std::string(to_string(stage.action)), {}};
      std::pair<std::string, int> key{rule.name, stage.number};
      for (std::size_t k = 1; k < past.size(); ++k) {
        auto now = past[k].count(key) ? past[k].at(key) : 0;
        auto before = past[k - 1].count(key) ? past[k - 1].at(key) : 0;
        series.counts.push_back(std::max<std::int64_t>(0, now - before));
      }
      forecast.series.push_back(std::move(series));
    }
  }
  return forecast;
}

void write_html_report(const Report& report, const Policy& policy, const Forecast& forecast,
                       std::ostream& out, const HtmlReportOptions& options) {
  PageWriter(report, policy, forecast, out, options).write();
}

std::string_view html_page_style() { return kStyle; }

std::string grouped(std::int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += "\u202f";
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace retentiond
