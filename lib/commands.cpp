#include "commands.hpp"

#include <ostream>

#include <nlohmann/json.hpp>

#include "check.hpp"
#include "policy.hpp"

namespace retentiond {
namespace {

int exit_with(const Error& error, Io& io) {
  io.log.error("{}", error.message);
  return static_cast<int>(error.code);
}

Result<std::shared_ptr<const Policy>> load(const GlobalOptions& global) {
  return load_policy(global.config, LoadOptions{global.credentials_directory});
}

}  // namespace

int run_check(const GlobalOptions& global, const CheckOptions& options, Io& io) {
  auto policy = load(global);
  if (!policy) return exit_with(policy.error(), io);
  auto report = check_stores(**policy);
  if (!report) return exit_with(report.error(), io);
  const Policy& p = **policy;
  if (options.format == Format::json) {
    nlohmann::json j;
    j["policy"] = p.file.string();
    j["policy_sha256"] = p.sha256;
    j["valid"] = true;
    j["timezone"] = p.timezone;
    j["rules"] = report->rules_checked;
    j["stores"] = p.stores.size();
    auto findings = [](const std::vector<CheckFinding>& list) {
      auto arr = nlohmann::json::array();
      for (const auto& f : list) arr.push_back({{"store", f.store}, {"table", f.table}, {"message", f.message}});
      return arr;
    };
    j["warnings"] = findings(report->warnings);
    j["notes"] = findings(report->notes);
    io.out << j.dump(2) << '\n';
  } else {
    for (const auto& w : report->warnings) io.log.warning("{}", w.message);
    for (const auto& n : report->notes) io.out << "note: " << n.message << '\n';
    io.out << p.file.string() << ": policy valid: " << p.rules.size() << " rules over " << p.stores.size()
           << " stores, time zone " << p.timezone << "; every table and column found\n";
  }
  return 0;
}

}  // namespace retentiond
