// What a plan or sweep found and did: one entry per rule, stage and store
// acted on. Rendered as the contract's JSON document or as a text table.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace retentiond {

struct Counts {
  std::int64_t matched = 0;    // past the period, not held, that the stage acts on
  std::int64_t held = 0;       // past the period but held
  std::int64_t undated = 0;    // anchor missing or unreadable
  std::int64_t affected = 0;   // actually changed (0 in a dry run)
  std::int64_t conflicts = 0;  // archive: same key, different content already there

  Counts& operator+=(const Counts& o);
};

struct ReportEntry {
  std::string rule;
  std::string category;
  std::string basis;
  int stage = 1;
  std::string action;
  std::string store;
  std::string table;
  std::string cutoff;  // YYYY-MM-DD
  Counts counts;
  std::optional<std::string> error;  // the rule failed; other rules still ran
};

struct Report {
  std::string as_of;
  std::string timezone;
  bool dry_run = true;
  std::string policy_sha256;
  std::vector<ReportEntry> entries;

  Counts totals() const;
  nlohmann::ordered_json to_json() const;  // fields in the contract's order
};

void write_text_report(const Report& report, std::ostream& out);

}  // namespace retentiond
