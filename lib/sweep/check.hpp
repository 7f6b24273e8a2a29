// `retentiond check`: the policy is valid (it loaded) and every store, table
// and column it names exists, with the types and privileges a sweep needs.
// Opens stores read-only; changes nothing.
#pragma once

#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "stores/store.hpp"
#include "util/error.hpp"

namespace retentiond {

struct CheckReport {
  std::vector<CheckFinding> warnings;  // e.g. an anchor column without an index
  std::vector<CheckFinding> notes;     // e.g. an archive table that the first sweep will create
  int rules_checked = 0;
};

// Error ExitCode::unavailable names the store, table and column at fault;
// where several things are missing (privileges), every one of them.
Result<CheckReport> check_stores(const Policy& policy);

}  // namespace retentiond
