// `retentiond check`: the policy is valid (it loaded) and every store, table
// and column it names exists. Opens stores read-only; changes nothing.
#pragma once

#include <string>
#include <vector>

#include "util/error.hpp"
#include "policy/policy.hpp"

namespace retentiond {

struct CheckFinding {
  std::string store;
  std::string table;
  std::string message;
};

struct CheckReport {
  std::vector<CheckFinding> warnings;  // e.g. an anchor column without an index
  std::vector<CheckFinding> notes;     // e.g. an archive table that the first sweep will create
  int rules_checked = 0;
};

// Error ExitCode::unavailable names the store, table and column at fault.
Result<CheckReport> check_stores(const Policy& policy);

}  // namespace retentiond
