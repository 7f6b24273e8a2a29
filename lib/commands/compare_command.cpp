#include "commands/compare_command.hpp"

#include <date/date.h>
#include <fmt/format.h>

#include <ostream>

#include "policy/policy.hpp"
#include "report/policy_compare.hpp"
#include "sweep/sweep.hpp"
#include "time/anchor.hpp"

namespace retentiond {

int run_plan_compare(const GlobalOptions& global, const CompareCommandOptions& options, Io& io) {
  auto failed = [&](ExitCode code, const std::string& message) {
    io.log.error("{}", message);
    return static_cast<int>(code);
  };
  std::optional<Day> as_of;
  if (options.as_of) {
    as_of = parse_date_text(*options.as_of);
    if (!as_of)
      return failed(ExitCode::usage, fmt::format("--as-of '{}' is not a date; accepted: YYYY-MM-DD",
                                                 *options.as_of));
  }
  LoadOptions load;
  load.credentials_directory = global.credentials_directory;
  auto current = load_policy(global.config, load);
  if (!current) return failed(current.error().code, current.error().message);
  // The old version is read as if it stood next to the current one: its
  // relative paths name the same stores, even when it was taken out of
  // version control into another folder.
  load.base_dir = global.config.parent_path().empty() ? std::filesystem::path(".")
                                                      : global.config.parent_path();
  auto old = load_policy(options.old_policy, load);
  if (!old) return failed(old.error().code, fmt::format("--compare: {}", old.error().message));
  for (const auto& name : options.rules) {
    if (!(*current)->find_rule(name) && !(*old)->find_rule(name)) {
      return failed(ExitCode::usage,
                    fmt::format("--rule {}: neither {} nor {} has a rule of that name", name,
                                global.config.string(), options.old_policy.string()));
    }
  }
  CompareOptions compare;
  compare.as_of = as_of ? *as_of : today(**current, io.clock);
  compare.rules = options.rules;
  PolicyComparison result = compare_policies(**old, **current, compare);
  for (const auto& r : result.rules) {
    for (const auto& s : r.stages) {
      if (s.error) io.log.error("rule '{}': {}", r.rule, *s.error);
    }
  }
  if (options.format == Format::json) {
    io.out << result.to_json().dump(2) << '\n';
  } else if (options.format == Format::html) {
    write_html_comparison(
        result, io.out,
        date::format("%FT%TZ", std::chrono::floor<std::chrono::seconds>(io.clock.now())));
  } else {
    write_text_comparison(result, io.out);
  }
  io.out.flush();
  return static_cast<int>(result.code);
}

}  // namespace retentiond
