#include "commands/commands.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <ostream>

#include "approval/approved_plan.hpp"
#include "audit/audit_log.hpp"
#include "audit/receipts.hpp"
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
  if (options.plan) {
    auto approved = approve_plan(policy, *options.plan, io.clock, io.log);
    if (!approved) return exit_with(approved.error(), io);
    sweep.as_of = approved->as_of;
    sweep.rules = approved->rules;
    sweep.plan_sha256 = approved->sha256;
    sweep.approved_by = approved->signer;
    io.log.info("plan {} (sha256 {}) approved by '{}': sweeping as of {}", options.plan->string(),
                approved->sha256, approved->signer, format_day(approved->as_of));
  }
  SweepControl control;
  std::optional<ProgressLine> progress;
  if (io.progress && !options.quiet && options.format != Format::json) {
    progress.emplace(*io.progress, options.dry_run ? "plan" : "sweep");
    control.on_progress = [&](const SweepProgress& p) { progress->update(p); };
  }
  auto outcome = run_sweep(policy, sweep, io.clock, io.log, control);
  if (progress) progress->finish();
  if (!outcome) return exit_with(outcome.error(), io);
  if (options.out) {
    // A plan with a failed stage would be approved blind on that stage.
    if (outcome->code != ExitCode::ok) {
      io.log.error("plan not written to {}: not every stage could be counted (above)",
                   options.out->string());
    } else if (auto written = write_plan_file(
                   *options.out,
                   plan_document(policy, outcome->report, options.rules, io.clock.now()));
               !written) {
      return exit_with(written.error(), io);
    }
  }
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

int run_audit_find(const GlobalOptions& global, const AuditFindOptions& options, Io& io) {
  RecordQuery query{options.rule, options.key, options.store};
  auto search = find_record(global.state_dir, query);
  if (!search) return exit_with(search.error(), io);
  const RecordSearch& s = *search;
  std::string where = options.store ? fmt::format(" in store '{}'", *options.store) : "";
  std::string unsearchable;
  if (!s.entries_without_leaves.empty()) {
    // Entries written before receipts existed, or whose leaves a power cut lost.
    unsearchable =
        fmt::format("; {} of them cannot be searched, their leaves not being kept (seq {})",
                    s.entries_without_leaves.size(), fmt::join(s.entries_without_leaves, ", "));
  }
  if (options.format == Format::json) {
    io.out << receipt_json(query, s).dump(2) << '\n';
  } else if (!s.found.empty()) {
    io.out << fmt::format("rule '{}', key '{}'{}: acted on by {} audit entr{}\n", options.rule,
                          options.key, where, s.found.size(), s.found.size() == 1 ? "y" : "ies");
    for (const auto& p : s.found) {
      const auto& l = p.line;
      io.out << fmt::format(
          "  seq {}  {}  {} (stage {}) in store '{}', table '{}'; as of {}, cutoff {}\n",
          l.value("seq", std::int64_t{0}), l.value("time", ""), l.value("action", ""),
          l.value("stage", 0), l.value("store", ""), l.value("table", ""), l.value("as_of", ""),
          l.value("cutoff", ""));
      io.out << fmt::format("    policy sha256 {}\n",
                            l.value("policy_sha256", "(not recorded: an older entry)"));
      io.out << fmt::format(
          "    proof: leaf {} of {}, {} hash{} to keys_sha256 {}; the entry's hash {}\n",
          p.index + 1, p.size, p.proof.size(), p.proof.size() == 1 ? "" : "es",
          l.value("keys_sha256", ""), l.value("hash", ""));
    }
    io.out << "A receipt to keep: the same command with --format json; check it with "
              "'retentiond audit check-receipt FILE'.\n";
  } else {
    io.out << fmt::format(
        "no entry: rule '{}', key '{}'{} was never acted on in {} (searched {} entr{} of the "
        "rule{})\n",
        options.rule, options.key, where, audit_log_path(global.state_dir).string(),
        s.entries_searched, s.entries_searched == 1 ? "y" : "ies", unsearchable);
  }
  io.out.flush();
  return s.found.empty() ? kNoEntry : 0;
}

int run_audit_check_receipt(const GlobalOptions& global, const std::filesystem::path& file,
                            Io& io) {
  std::ifstream in(file);
  if (!in) {
    return exit_with(Error{ExitCode::no_input, fmt::format("{}: cannot be read", file.string())},
                     io);
  }
  nlohmann::json receipt;
  try {
    receipt = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    io.log.error("{}: not a receipt: not JSON ({})", file.string(), e.what());
    return static_cast<int>(ExitCode::data_error);
  }
  auto checked = check_receipt(global.state_dir, receipt);
  if (!checked) return exit_with(checked.error(), io);
  if (!checked->ok) {
    io.log.error("{}: receipt NOT valid: {}", file.string(), checked->message);
    return static_cast<int>(ExitCode::data_error);
  }
  io.out << file.string() << ": " << checked->message << '\n';
  return 0;
}

}  // namespace retentiond
