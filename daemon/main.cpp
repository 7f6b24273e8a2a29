// retentiond: the command line. Parses arguments, wires the real clock and
// stderr logging, and hands over to one command of the library.
#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>
#include <string>

#include "commands/commands.hpp"
#include "commands/compare_command.hpp"
#include "report/progress_line.hpp"
#include "service/notifier.hpp"
#include "service/service.hpp"

using namespace retentiond;

namespace {

constexpr int kUsage = static_cast<int>(ExitCode::usage);

std::filesystem::path default_state_dir() {
  // systemd's StateDirectory= sets STATE_DIRECTORY (a ':'-separated list).
  if (const char* env = std::getenv("STATE_DIRECTORY"); env && *env) {
    std::string dirs(env);
    return dirs.substr(0, dirs.find(':'));
  }
  return "/var/lib/retentiond";
}

}  // namespace

int main(int argc, char** argv) {
  // No core files: the process holds the hmac key (and would hold store
  // credentials) in memory, and a core dump would copy them to disk, where
  // they outlive the process. systemd-coredump honours this limit as well.
  const rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);

  CLI::App app{
      "retentiond: enforce a data retention schedule over SQLite, PostgreSQL and file stores"};
  app.set_version_flag("--version", std::string("retentiond ") + RETENTIOND_VERSION);
  app.require_subcommand(1, 1);
  app.fallthrough();

  GlobalOptions global;
  global.state_dir = default_state_dir();
  if (const char* creds = std::getenv("CREDENTIALS_DIRECTORY"); creds && *creds) {
    global.credentials_directory = creds;
  }
  std::string log_level = "info";
  app.add_option("-c,--config", global.config, "policy file")->capture_default_str();
  app.add_option("--state-dir", global.state_dir, "state directory (audit log, last run)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, notice, warning or error")
      ->check(CLI::IsMember({"debug", "info", "notice", "warning", "error"}))
      ->capture_default_str();

  const std::map<std::string, Format> report_formats{{"text", Format::text},
                                                     {"json", Format::json}};
  const std::map<std::string, Format> sweep_formats{
      {"text", Format::text}, {"json", Format::json}, {"html", Format::html}};

  CheckOptions check;
  auto* check_cmd = app.add_subcommand(
      "check",
      "validate the policy and that every store, table and column exists; changes nothing");
  check_cmd->add_option("--format", check.format, "text or json")
      ->transform(CLI::CheckedTransformer(report_formats, CLI::ignore_case));

  auto add_sweep_options = [&](CLI::App* cmd, SweepCommandOptions& o) {
    cmd->add_option("--rule", o.rules, "only the named rule (repeatable)")
        ->take_last()
        ->expected(1)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    cmd->add_option("--as-of", o.as_of,
                    "evaluate as if today were DATE (YYYY-MM-DD) in the policy's time zone");
    cmd->add_option("--format", o.format, "text, json, or html (the auditor's report)")
        ->transform(CLI::CheckedTransformer(sweep_formats, CLI::ignore_case));
    cmd->add_flag("-q,--quiet", o.quiet, "no progress line on a terminal's stderr");
  };
  SweepCommandOptions sweep;
  auto* sweep_cmd = app.add_subcommand("sweep", "one sweep now, then exit");
  sweep_cmd->add_flag("--dry-run", sweep.dry_run,
                      "only plan: open stores read-only and change nothing");
  add_sweep_options(sweep_cmd, sweep);
  sweep_cmd
      ->add_option("--plan", sweep.plan,
                   "act only as this approved plan says (signed FILE.sig beside it); "
                   "its as_of and rules are used")
      ->type_name("FILE")
      ->excludes("--dry-run")
      ->excludes("--as-of")
      ->excludes("--rule");

  SweepCommandOptions plan;
  plan.dry_run = true;
  auto* plan_cmd =
      app.add_subcommand("plan", "what a sweep would do (the same as sweep --dry-run)");
  add_sweep_options(plan_cmd, plan);
  std::optional<std::filesystem::path> compare_with;
  plan_cmd
      ->add_option("--compare", compare_with,
                   "the impact of a policy change: what this policy acts on that OLD keeps, "
                   "and the reverse, today and over 12 months")
      ->type_name("OLD.yaml");
  plan_cmd
      ->add_option("--out", plan.out,
                   "also write the plan to FILE, for an approver to sign (ssh-keygen -Y sign -n "
                   "retentiond-plan FILE)")
      ->type_name("FILE")
      ->excludes("--compare");

  RunOptions run;
  auto* run_cmd = app.add_subcommand(
      "run",
      "the daemon, in the foreground (systemd Type=notify): sweeps on the policy's "
      "schedule, on SIGUSR1; SIGHUP reloads the policy");
  run_cmd->add_flag("--dry-run", run.dry_run,
                    "shadow mode: only plan, and write each plan's report to the state directory");
  run_cmd
      ->add_option("--metrics-file", run.metrics_file,
                   "Prometheus textfile written after each sweep (wins over metrics_file:)")
      ->type_name("PATH");

  auto* audit_cmd = app.add_subcommand("audit", "the audit log");
  audit_cmd->require_subcommand(1, 1);
  auto* verify_cmd =
      audit_cmd->add_subcommand("verify", "check the audit log's hash chain end to end");
  AuditShowOptions show;
  auto* show_cmd = audit_cmd->add_subcommand("show", "print audit entries (JSON lines)");
  show_cmd->add_option("--rule", show.rule, "only entries of this rule");
  show_cmd->add_option("--since", show.since, "only entries on or after DATE (YYYY-MM-DD, UTC)");
  AuditFindOptions find;
  auto* find_cmd = audit_cmd->add_subcommand(
      "find", "was this record acted on? The entries that did, with proofs; exit 1 when none did");
  find_cmd->add_option("--rule", find.rule, "the rule")->required();
  find_cmd->add_option("--key", find.key, "the record's key as text (a file's relative path)")
      ->required();
  find_cmd->add_option("--store", find.store, "only entries on this store");
  find_cmd->add_option("--format", find.format, "text, or json (the receipt)")
      ->transform(CLI::CheckedTransformer(report_formats, CLI::ignore_case));
  std::filesystem::path receipt_file;
  auto* check_receipt_cmd = audit_cmd->add_subcommand(
      "check-receipt", "verify a receipt (audit find --format json) against the audit log");
  check_receipt_cmd->add_option("FILE", receipt_file, "the receipt")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "retentiond: " << e.what()
              << "\nRun 'retentiond --help' or 'retentiond COMMAND --help' for usage.\n";
    return kUsage;
  }

  Logger logger(std::cerr, *parse_log_level(log_level), Logger::stderr_is_journal());
  SystemClock clock;
  Io io{std::cout, logger, clock, stderr_is_interactive() ? &std::cerr : nullptr};
  if (run_cmd->parsed()) {
    SystemdNotifier notifier;
    return run_daemon(global, run, io, notifier);
  }
  if (check_cmd->parsed()) return run_check(global, check, io);
  if (sweep_cmd->parsed()) return run_sweep_command(global, sweep, io);
  if (plan_cmd->parsed() && compare_with) {
    return run_plan_compare(global, {*compare_with, plan.rules, plan.as_of, plan.format}, io);
  }
  if (plan_cmd->parsed()) return run_sweep_command(global, plan, io);
  if (verify_cmd->parsed()) return run_audit_verify(global, io);
  if (show_cmd->parsed()) return run_audit_show(global, show, io);
  if (find_cmd->parsed()) return run_audit_find(global, find, io);
  if (check_receipt_cmd->parsed()) return run_audit_check_receipt(global, receipt_file, io);
  return kUsage;
}
