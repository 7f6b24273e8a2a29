#include "report/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>

namespace retentiond {

Counts& Counts::operator+=(const Counts& o) {
  matched += o.matched;
  held += o.held;
  undated += o.undated;
  affected += o.affected;
  conflicts += o.conflicts;
  return *this;
}

Counts Report::totals() const {
  Counts t;
  for (const auto& e : entries) t += e.counts;
  return t;
}

nlohmann::ordered_json Report::to_json() const {
  using json = nlohmann::ordered_json;
  auto counts = [](json& j, const Counts& c) {
    j["matched"] = c.matched;
    j["held"] = c.held;
    j["undated"] = c.undated;
    j["affected"] = c.affected;
    j["conflicts"] = c.conflicts;
  };
  json rules = json::array();
  for (const auto& e : entries) {
    json j;
    j["rule"] = e.rule;
    j["stage"] = e.stage;
    j["action"] = e.action;
    j["store"] = e.store;
    j["table"] = e.table;
    j["cutoff"] = e.cutoff;
    counts(j, e.counts);
    if (e.error) j["error"] = *e.error;
    rules.push_back(std::move(j));
  }
  json totals_json;
  counts(totals_json, totals());
  json doc;
  doc["as_of"] = as_of;
  doc["timezone"] = timezone;
  doc["dry_run"] = dry_run;
  doc["policy_sha256"] = policy_sha256;
  doc["rules"] = std::move(rules);
  doc["totals"] = std::move(totals_json);
  return doc;
}

void write_text_report(const Report& report, std::ostream& out) {
  out << fmt::format("retentiond {} as of {} ({}), policy sha256 {}\n\n",
                     report.dry_run ? "plan (dry run: nothing changed)" : "sweep", report.as_of,
                     report.timezone, report.policy_sha256.substr(0, 16));
  struct Row {
    std::vector<std::string> cells;
  };
  std::vector<std::string> header{"RULE",   "BASIS",   "STAGE", "ACTION",  "STORE",
                                  "CUTOFF", "MATCHED", "HELD",  "UNDATED", "AFFECTED"};
  std::vector<std::vector<std::string>> rows;
  auto number_cells = [&](const Counts& c) {
    return std::vector<std::string>{std::to_string(c.matched), std::to_string(c.held),
                                    std::to_string(c.undated), std::to_string(c.affected)};
  };
  for (const auto& e : report.entries) {
    std::vector<std::string> r{e.rule,   e.basis.empty() ? "-" : e.basis, std::to_string(e.stage),
                               e.action, e.store + "." + e.table,         e.cutoff};
    auto n = number_cells(e.counts);
    r.insert(r.end(), n.begin(), n.end());
    rows.push_back(std::move(r));
  }
  auto totals = report.totals();
  std::vector<std::string> total_row{"TOTAL", "", "", "", "", ""};
  auto n = number_cells(totals);
  total_row.insert(total_row.end(), n.begin(), n.end());

  std::vector<std::size_t> width(header.size());
  for (std::size_t i = 0; i < header.size(); ++i) {
    width[i] = header[i].size();
    for (const auto& r : rows) width[i] = std::max(width[i], r[i].size());
    width[i] = std::max(width[i], total_row[i].size());
  }
  auto print = [&](const std::vector<std::string>& r) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      bool numeric = i >= 6;
      line +=
          numeric ? fmt::format("{:>{}}", r[i], width[i]) : fmt::format("{:<{}}", r[i], width[i]);
      if (i + 1 < r.size()) line += "  ";
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << '\n';
  };
  print(header);
  for (const auto& r : rows) print(r);
  std::size_t total_width = 0;
  for (auto w : width) total_width += w + 2;
  out << std::string(total_width - 2, '-') << '\n';
  print(total_row);
  if (totals.conflicts > 0) {
    out << fmt::format(
        "\n{} row(s) were not archived: the archive already holds a different row with the same "
        "key. "
        "They stay in the live store; compare them by hand.\n",
        totals.conflicts);
  }
  for (const auto& e : report.entries) {
    if (e.error)
      out << fmt::format("\nrule {} stage {} on {} failed: {}\n", e.rule, e.stage, e.store,
                         *e.error);
  }
}

}  // namespace retentiond
