// retentiond: the command line. Parses arguments, wires the real clock and
// stderr logging, and hands over to one command of the library.
#include <cstdlib>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "commands.hpp"

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
  CLI::App app{"retentiond: enforce a data retention schedule over SQLite, PostgreSQL and file stores"};
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
  app.add_option("--state-dir", global.state_dir, "state directory (audit log, last run)")->capture_default_str();
  app.add_option("--log-level", log_level, "debug, info, notice, warning or error")
      ->check(CLI::IsMember({"debug", "info", "notice", "warning", "error"}))
      ->capture_default_str();

  const std::map<std::string, Format> report_formats{{"text", Format::text}, {"json", Format::json}};

  CheckOptions check;
  auto* check_cmd = app.add_subcommand("check", "validate the policy and that every store, table and column exists; changes nothing");
  check_cmd->add_option("--format", check.format, "text or json")
      ->transform(CLI::CheckedTransformer(report_formats, CLI::ignore_case));

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "retentiond: " << e.what() << "\nRun 'retentiond --help' or 'retentiond COMMAND --help' for usage.\n";
    return kUsage;
  }

  Logger logger(std::cerr, *parse_log_level(log_level), Logger::stderr_is_journal());
  SystemClock clock;
  Io io{std::cout, logger, clock};
  if (check_cmd->parsed()) return run_check(global, check, io);
  return kUsage;
}
