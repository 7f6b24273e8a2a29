#include "sweep/check.hpp"

#include <fmt/format.h>

#include <map>
#include <memory>

namespace retentiond {

Result<CheckReport> check_stores(const Policy& policy) {
  CheckReport report;
  std::map<std::string, std::unique_ptr<Store>> open;
  StoreOptions options;  // read-only
  options.zone = policy.zone;
  options.hmac_key = policy.hmac_key;
  auto store = [&](const StoreSpec& spec) -> Store& {
    auto& s = open[spec.name];
    if (!s) s = open_store(spec, options);
    return *s;
  };
  for (const auto& rule : policy.rules) {
    const StoreSpec& spec = *policy.find_store(rule.store);
    const StoreSpec* current = &spec;
    CheckFindings found;
    try {
      Store& live = store(spec);
      live.check(rule, found);
      if (const Stage* archive = rule.archive_stage(); archive && found.errors.empty()) {
        const StoreSpec& dest = *policy.find_store(archive->to);
        current = &dest;
        if (store_exists(dest)) {
          store(dest).check_archive(rule, live, found);
        } else {
          check_absent_store(dest, rule, found);
        }
      }
    } catch (const StoreError& e) {
      return std::unexpected(explain_store_error(*current, e));
    }
    if (!found.errors.empty()) {
      return fail(ExitCode::unavailable, fmt::format("{}", fmt::join(found.errors, "\n")));
    }
    report.warnings.insert(report.warnings.end(), found.warnings.begin(), found.warnings.end());
    report.notes.insert(report.notes.end(), found.notes.begin(), found.notes.end());
    ++report.rules_checked;
  }
  return report;
}

}  // namespace retentiond
