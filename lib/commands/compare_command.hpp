// `plan --compare OLD.yaml`: the impact of a policy change (the current
// policy, -c, against OLD), as text, JSON or an HTML page.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "commands/commands.hpp"

namespace retentiond {

struct CompareCommandOptions {
  std::filesystem::path old_policy;
  std::vector<std::string> rules;    // names in either version; empty: every rule
  std::optional<std::string> as_of;  // YYYY-MM-DD; default today in the current policy's zone
  Format format = Format::text;
};

// Exit codes: 0; 64 for a bad --as-of or a --rule in neither version; 66 or
// 78 when either policy file is missing or invalid (the message names the
// file, and for 78 its line and column); 69 (or 75) when a store could not
// be counted, the comparison still printed with the error in it.
int run_plan_compare(const GlobalOptions& global, const CompareCommandOptions& options, Io& io);

}  // namespace retentiond
