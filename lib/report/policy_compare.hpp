// The impact of a policy change (`plan --compare OLD.yaml`): per rule and
// stage, what the current policy acts on that the old version keeps, and the
// reverse, on the as-of day and at the end of each of the coming months.
//
// A stage's records are those past its period (whichever later stage then
// acts on them: a record past 13 years is past 3 years too). Where a rule
// selects the same records in both versions and only a stage's period moved,
// the difference is exactly the records anchored between the two cutoffs,
// counted by the stores themselves over that window; otherwise both versions'
// counts are given and the comparison says that the selections differ.
// Read-only: stores are opened as a plan opens them.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "time/calendar.hpp"
#include "util/error.hpp"

namespace retentiond {

// One version's stage, as the policy writes it.
struct ComparedStage {
  int number = 1;
  Period after;
  Action action = Action::erase;
  std::string to;  // archive: the destination store
};

// One stage at one day. Counts are records past the stage's period, not
// held; nullopt where not counted (the rule is unchanged, the version has no
// such stage, or counting failed).
struct ComparePoint {
  Day as_of;
  std::optional<Day> old_cutoff;
  std::optional<Day> new_cutoff;
  std::optional<std::int64_t> old_count;
  std::optional<std::int64_t> new_count;
  // Exact comparisons only: acted on by the new version and kept by the old,
  // and the reverse.
  std::optional<std::int64_t> newly_due;
  std::optional<std::int64_t> no_longer_due;
};

struct StageComparison {
  std::optional<ComparedStage> old_stage;
  std::optional<ComparedStage> new_stage;
  // Same records in both versions, only the period may differ: newly_due
  // and no_longer_due are exact.
  bool exact = false;
  std::vector<std::string> changes;  // what differs, in words; empty when unchanged
  std::vector<ComparePoint> points;  // the as-of day, then each forecast day
  std::optional<std::string> error;  // counting failed (the store's message)
};

enum class RuleStatus { unchanged, changed, added, removed, renamed };
std::string_view to_string(RuleStatus status);

struct RuleComparison {
  std::string rule;                     // the name in the current policy (old name if removed)
  std::optional<std::string> old_name;  // the name in the old policy, if it has the rule
  RuleStatus status = RuleStatus::unchanged;
  std::string category;
  std::string basis;
  std::string store;
  std::string table;  // or a files rule's pattern
  // Why the two versions select different records (store, table, key,
  // anchor, where, hold, ...); empty when they select the same.
  std::vector<std::string> selection_changes;
  std::vector<std::string> other_changes;  // category, basis, anonymised columns
  std::vector<StageComparison> stages;
};

struct PolicyComparison {
  std::filesystem::path file;
  std::string sha256;
  std::filesystem::path old_file;
  std::string old_sha256;
  std::string timezone;
  std::string old_timezone;
  Day as_of;
  std::vector<Day> forecast;  // the end of each coming month
  std::vector<RuleComparison> rules;
  ExitCode code = ExitCode::ok;  // the worst counting failure, or ok

  nlohmann::ordered_json to_json() const;
};

struct CompareOptions {
  Day as_of;
  int months = 12;
  std::vector<std::string> rules;  // names in either version; empty: every rule
};

// Compares `current` with `old`. Stores are opened read-only (those of the
// current policy for exact differences); a rule whose store cannot be
// counted carries the error and PolicyComparison::code says so; the other
// rules are still compared.
PolicyComparison compare_policies(const Policy& old, const Policy& current,
                                  const CompareOptions& options);

// The administrator's and data-protection officer's reading of it.
void write_text_comparison(const PolicyComparison& comparison, std::ostream& out);

// The same as a self-contained page in the style of the auditor's report.
void write_html_comparison(const PolicyComparison& comparison, std::ostream& out,
                           const std::string& generated_at = {});

}  // namespace retentiond
