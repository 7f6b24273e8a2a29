// `plan --format html` and `sweep --format html`: the auditor's page of a
// finished plan or sweep, with its 12-month forecast, on the command's output.
#pragma once

#include <string>
#include <vector>

#include "commands/commands.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"

namespace retentiond {

// Runs the forecast (dry-run plans at the end of each of the next 12 months,
// over `rules`, or every rule when empty) and writes the page of `report` to
// io.out. Returns 0; or, when the forecast could not run at all, logs why,
// still writes the page (with the forecast missing) and returns that exit
// code. The command's exit code stays the sweep's when that is not 0.
int write_html_for(const Policy& policy, const Report& report,
                   const std::vector<std::string>& rules, Io& io);

}  // namespace retentiond
