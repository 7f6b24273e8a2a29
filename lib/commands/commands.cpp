#include "commands/commands.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <ostream>

#include "audit/audit_log.hpp"
#include "policy/policy.hpp"
#include "report/html_command.hpp"
#include "report/progress_line.hpp"
#include "sweep/check.hpp"
#include "sweep/sweep.hpp"

namespace retentiond {
namespace {

int exit_with(const Error& error, Io& io) {
  io.log.error("{}", error.message);
  return static_cast<int>(error.code);
}

Result<std::shared_ptr<const Policy>> load(const GlobalOptions& global) {
  return load_policy(global.config, LoadOptions{global.credentials_directory});
}

int usage_error(Io& io, const std::string& message) {
  io.log.error("{}", message);
  return static_cast<int>(ExitCode::usage);
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
      for (const auto& f : list)
        arr.push_back({{"store", f.store}, {"table", f.table}, {"message", f.message}});
      return arr;
    };
    j["warnings"] = findings(report->warnings);
    j["notes"] = findings(report->notes);
    io.out << j.dump(2) << '\n';
  } else {
    for (const auto& w : report->warnings) io.log.warning("{}", w.message);
    for (const auto& n : report->notes) io.out << "note: " << n.message << '\n';
    io.out << p.file.string() << ": policy valid: " << p.rules.size() << " rules over "
           << p.stores.size() << " stores, time zone " << p.timezone
           << "; every table and column found\n";
  }
  return 0;
}

int run_sweep_command(const GlobalOptions& global, const SweepCommandOptions& options, Io& io) {
  std::optional<Day> as_of;
  if (options.as_of) {
    as_of = parse_date_text(*options.as_of);
    if (!as_of)
      return usage_error(
          io, fmt::format("--as-of '{}' is not a date; accepted: YYYY-MM-DD", *options.as_of));
  }
  auto loaded = load(global);
  if (!loaded) return exit_with(loaded.error(), io);
  const Policy& policy = **loaded;
  for (const auto& name : options.rules) {
    if (!policy.find_rule(name)) {
      std::vector<std::string> names;
      for (const auto& r : policy.rules) names.push_back(r.name);
      return usage_error(io, fmt::format("--rule {}: the policy has no such rule; its rules: {}",
                                         name, fmt::join(names, ", ")));
    }
  }
  SweepOptions sweep;
  sweep.dry_run = options.dry_run;
  sweep.rules = options.rules;
  sweep.as_of = as_of ? *as_of : today(policy, io.clock);
  sweep.state_dir = global.state_dir;
  SweepControl control;
  std::optional<ProgressLine> progress;
  if (io.progress && !options.quiet && options.format != Format::json) {
    progress.emplace(*io.progress, options.dry_run ? "plan" : "sweep");
    control.on_progress = [&](const SweepProgress& p) { progress->update(p); };
  }
  auto outcome = run_sweep(policy, sweep, io.clock, io.log, control);
  if (progress) progress->finish();
  if (!outcome) return exit_with(outcome.error(), io);
  if (options.format == Format::json) {
    io.out << outcome->report.to_json().dump(2) << '\n';
  } else if (options.format == Format::html) {
    int html = write_html_for(policy, outcome->report, options.rules, io);
    io.out.flush();
    if (outcome->code == ExitCode::ok && html != 0) return html;
  } else {
    write_text_report(outcome->report, io.out);
  }
  io.out.flush();
  return static_cast<int>(outcome->code);
}

int run_audit_verify(const GlobalOptions& global, Io& io) {
  auto result = verify_audit_log(global.state_dir);
  if (!result) return exit_with(result.error(), io);
  if (!result->ok) {
    io.log.error("audit log broken: {}", result->message);
    return static_cast<int>(ExitCode::data_error);
  }
  io.out << fmt::format("{}: {} entries, hash chain intact\n",
                        audit_log_path(global.state_dir).string(), result->lines);
  return 0;
}

int run_audit_show(const GlobalOptions& global, const AuditShowOptions& options, Io& io) {
  if (options.since && !parse_date_text(*options.since)) {
    return usage_error(
        io, fmt::format("--since '{}' is not a date; accepted: YYYY-MM-DD", *options.since));
  }
  auto lines = read_audit_log(global.state_dir, AuditFilter{options.rule, options.since});
  if (!lines) return exit_with(lines.error(), io);
  for (const auto& line : *lines) io.out << line.dump() << '\n';
  return 0;
}

}  // namespace retentiond
