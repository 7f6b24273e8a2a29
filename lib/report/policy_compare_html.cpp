// `plan --compare OLD --format html`: the impact of a policy change as a
// page in the auditor's report's style (the same style sheet, no script, no
// network), for a data-protection officer to read and print before signing
// the new version.
#include <fmt/format.h>

#include <ostream>

#include "report/html_report.hpp"
#include "report/policy_compare.hpp"

namespace retentiond {
namespace {

constexpr std::string_view kCompareStyle = R"css(td.newly { color: var(--bad); font-weight: bold; }
td.kept { color: var(--accent); font-weight: bold; }
span.status { display: inline-block; min-width: 6.5em; font-weight: bold; }
section.stage { margin: 0 0 22px; break-inside: avoid; }
tr.today td { font-weight: bold; }
ul.changes { margin: 2px 0 6px; padding-left: 20px; }
)css";

std::string e(std::string_view text) { return html_escape(text); }

std::string cell(const std::optional<std::int64_t>& v) { return v ? grouped(*v) : "\u2013"; }
std::string cell(const std::optional<Day>& v) { return v ? format_day(*v) : "\u2013"; }

class ComparePage {
 public:
  ComparePage(const PolicyComparison& c, std::ostream& out, const std::string& generated_at)
      : c_(c), out_(out), generated_at_(generated_at) {}

  void write() {
    std::string title = fmt::format("Policy change as of {}", format_day(c_.as_of));
    out_ << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         << "<title>" << e(title) << "</title>\n<style>\n"
         << html_page_style() << kCompareStyle << "</style>\n</head>\n<body>\n";
    header(title);
    tiles();
    rules();
    stages();
    how_to_read();
    out_ << "</body>\n</html>\n";
  }

 private:
  void header(const std::string& title) {
    out_ << "<header>\n<h1>" << e(title) << "</h1>\n<p class=\"lead\">What the current policy "
         << "acts on that the old version keeps, and the reverse, today and at the end of each of "
            "the next "
         << c_.forecast.size() << " months. A dry run: nothing was changed.</p>\n"
         << "<dl class=\"meta\">\n<dt>As of</dt><dd data-field=\"as_of\">"
         << e(format_day(c_.as_of)) << " (" << e(c_.timezone) << ")</dd>\n"
         << "<dt>Current policy</dt><dd class=\"mono\">" << e(c_.file.string()) << "</dd>\n"
         << "<dt>its SHA-256</dt><dd class=\"mono\" data-field=\"policy_sha256\">" << e(c_.sha256)
         << "</dd>\n<dt>Old policy</dt><dd class=\"mono\">" << e(c_.old_file.string()) << "</dd>\n"
         << "<dt>its SHA-256</dt><dd class=\"mono\" data-field=\"old_policy_sha256\">"
         << e(c_.old_sha256) << "</dd>\n";
    if (!generated_at_.empty())
      out_ << "<dt>Generated</dt><dd>" << e(generated_at_) << " (UTC)</dd>\n";
    out_ << "</dl>\n</header>\n";
  }

  std::size_t count(RuleStatus s) const {
    std::size_t n = 0;
    for (const auto& r : c_.rules) n += r.status == s;
    return n;
  }

  void tiles() {
    out_ << "<section class=\"tiles\">\n";
    for (auto [status, label] : {std::pair{RuleStatus::changed, "rules changed"},
                                 {RuleStatus::added, "rules added"},
                                 {RuleStatus::removed, "rules removed"},
                                 {RuleStatus::renamed, "rules renamed"}}) {
      out_ << "<div class=\"tile\"><span class=\"n\" data-total=\"" << to_string(status) << "\">"
           << count(status) << "</span><span class=\"l\">" << label << "</span></div>\n";
    }
    out_ << "</section>\n";
  }

  void rules() {
    out_ << "<h2>Rules</h2>\n<table class=\"entries\">\n<colgroup><col style=\"width:26%\">"
            "<col style=\"width:12%\"><col style=\"width:62%\"></colgroup>\n"
            "<thead><tr><th>Rule</th><th>Status</th><th>What differs</th></tr></thead>\n<tbody>\n";
    for (const auto& r : c_.rules) {
      out_ << "<tr data-rule=\"" << e(r.rule) << "\" data-status=\"" << to_string(r.status)
           << "\"><td>";
      if (r.status == RuleStatus::renamed) out_ << e(*r.old_name) << " \u2192 ";
      out_ << e(r.rule) << "<br><span class=\"note mono\">" << e(r.store) << "." << e(r.table)
           << "</span></td><td><span class=\"status\">" << to_string(r.status)
           << "</span></td><td>";
      std::vector<std::string> items;
      if (r.status == RuleStatus::added) items.push_back("the old policy has no such rule");
      if (r.status == RuleStatus::removed) items.push_back("the current policy has no such rule");
      for (const auto& w : r.selection_changes) items.push_back(w + " (selects other records)");
      items.insert(items.end(), r.other_changes.begin(), r.other_changes.end());
      for (const auto& s : r.stages) {
        int number = (s.new_stage ? *s.new_stage : *s.old_stage).number;
        for (const auto& w : s.changes) items.push_back(fmt::format("stage {}: {}", number, w));
      }
      if (items.empty()) {
        out_ << "<span class=\"note\">nothing</span>";
      } else {
        out_ << "<ul class=\"changes\">";
        for (const auto& i : items) out_ << "<li>" << e(i) << "</li>";
        out_ << "</ul>";
      }
      out_ << "</td></tr>\n";
    }
    if (c_.rules.empty()) out_ << "<tr><td colspan=\"3\">No rule compared.</td></tr>\n";
    out_ << "</tbody>\n</table>\n";
  }

  void stages() {
    out_ << "<h2>Records, today and month by month</h2>\n";
    bool any = false;
    for (const auto& r : c_.rules) {
      if (r.status == RuleStatus::unchanged) continue;
      for (const auto& s : r.stages) {
        if (s.changes.empty() && r.status != RuleStatus::renamed && !s.error) continue;
        any = true;
        stage(r, s);
      }
    }
    if (!any) out_ << "<p>No stage of any rule acts on other records than before.</p>\n";
  }

  void stage(const RuleComparison& r, const StageComparison& s) {
    const ComparedStage& any = s.new_stage ? *s.new_stage : *s.old_stage;
    auto side = [](const std::optional<ComparedStage>& x) {
      return x ? fmt::format("{} after {}", to_string(x->action), to_string(x->after))
               : std::string("none");
    };
    out_ << "<section class=\"stage\" data-rule=\"" << e(r.rule) << "\" data-stage=\"" << any.number
         << "\">\n<h3>" << e(r.rule) << ", stage " << any.number << "</h3>\n"
         << "<p class=\"basis\">" << (r.basis.empty() ? "" : e(r.basis) + " \u2014 ")
         << "<span class=\"mono\">" << e(r.store) << "." << e(r.table) << "</span>: old "
         << e(side(s.old_stage)) << "; current " << e(side(s.new_stage)) << ".</p>\n<p>";
    if (s.exact)
      out_ << "Both versions select the same records: the difference is exact, the records "
              "anchored between the two cutoffs.";
    else if (!s.old_stage || !s.new_stage)
      out_ << "This stage is only in the " << (s.new_stage ? "current" : "old")
           << " policy: its count is what it acts on.";
    else
      out_ << "The two versions select different records: each one's count is given, not an "
              "exact difference.";
    out_ << "</p>\n";
    if (s.error) out_ << "<p class=\"error\">Not counted: " << e(*s.error) << "</p>\n";
    out_ << "<table class=\"entries\">\n<thead><tr><th>As of</th><th>Old cutoff</th><th>New "
            "cutoff</th><th class=\"n\">Old acts on</th><th class=\"n\">New acts on</th>"
            "<th class=\"n\">Newly due</th><th class=\"n\">No longer due</th></tr></thead>\n"
            "<tbody>\n";
    for (std::size_t i = 0; i < s.points.size(); ++i) {
      const auto& p = s.points[i];
      out_ << "<tr data-rule=\"" << e(r.rule) << "\" data-stage=\"" << any.number
           << "\" data-as-of=\"" << format_day(p.as_of) << "\""
           << (i == 0 ? " class=\"today\"" : "") << "><td class=\"d\">" << format_day(p.as_of)
           << (i == 0 ? " (today)" : "") << "</td><td class=\"d\">" << cell(p.old_cutoff)
           << "</td><td class=\"d\">" << cell(p.new_cutoff)
           << "</td><td class=\"n\" data-field=\"old_past_period\">" << cell(p.old_count)
           << "</td><td class=\"n\" data-field=\"new_past_period\">" << cell(p.new_count)
           << "</td><td class=\"n" << (p.newly_due.value_or(0) > 0 ? " newly" : "")
           << "\" data-field=\"newly_due\">" << cell(p.newly_due) << "</td><td class=\"n"
           << (p.no_longer_due.value_or(0) > 0 ? " kept" : "") << "\" data-field=\"no_longer_due\">"
           << cell(p.no_longer_due) << "</td></tr>\n";
    }
    out_ << "</tbody>\n</table>\n</section>\n";
  }

  void how_to_read() {
    out_ << "<h2>How to read this comparison</h2>\n<dl class=\"terms\">\n"
         << "<dt>Cutoff</dt><dd>The latest anchor date past the stage's period on that day, in "
            "each version.</dd>\n"
         << "<dt>Acts on</dt><dd>Records past the stage's period, not held (a later stage of the "
            "rule may be the one acting on them).</dd>\n"
         << "<dt>Newly due</dt><dd>Records the current policy acts on that the old one keeps: "
            "their anchor lies between the two cutoffs.</dd>\n"
         << "<dt>No longer due</dt><dd>The reverse: records the old policy acts on that the "
            "current one keeps.</dd>\n"
         << "<dt>Forecast</dt><dd>The same plan at the end of each coming month, with the data as "
            "they are now: no new records, holds unchanged, nothing swept meanwhile.</dd>\n"
         << "</dl>\n<p class=\"note\">Produced by retentiond from the two policies whose SHA-256 "
            "are given above.</p>\n";
  }

  const PolicyComparison& c_;
  std::ostream& out_;
  const std::string& generated_at_;
};

}  // namespace

void write_html_comparison(const PolicyComparison& comparison, std::ostream& out,
                           const std::string& generated_at) {
  ComparePage(comparison, out, generated_at).write();
}

}  // namespace retentiond
