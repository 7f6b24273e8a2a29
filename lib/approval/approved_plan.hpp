// Approved plans (four eyes): `plan --out FILE` writes what a sweep would do,
// an approver signs it with ssh-keygen, and `sweep --plan FILE` acts only on
// what the signed plan covers. See docs/approved-plans.md.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "report/report.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace retentiond {

// The plan document: the policy's sha256, as_of, when it was made, the rules
// it was limited to (none: all), and per rule, stage and store its cutoff and
// `matched`, from a dry run's report.
nlohmann::ordered_json plan_document(const Policy& policy, const Report& dry_run,
                                     const std::vector<std::string>& rules,
                                     std::chrono::system_clock::time_point made_at);

// Writes the document to `file` (replacing it whole, never half written).
// Errors: ExitCode::cant_create.
Result<void> write_plan_file(const std::filesystem::path& file, const nlohmann::ordered_json& plan);

// What a verified plan lets a sweep do, and what its audit entries name.
struct ApprovedPlan {
  Day as_of;
  std::vector<std::string> rules;  // empty: every rule
  std::string sha256;              // of the plan file's bytes
  std::string signer;              // the principal in the allowed-signers file
};

// Checks everything before a store is written: FILE.sig verifies against the
// policy's allowed signers, the plan was made for this policy's bytes, it is
// not older than approval.max_age, and a dry run now at the plan's as_of
// matches no stage more than the plan said plus approval.tolerance. Every
// refusal is ExitCode::no_perm (77), naming the file and what is wrong;
// ExitCode::no_input when the plan cannot be read, ExitCode::unavailable when
// ssh-keygen or a store cannot be used.
Result<ApprovedPlan> approve_plan(const Policy& policy, const std::filesystem::path& file,
                                  const Clock& clock, Logger& log);

}  // namespace retentiond
