// The commands of the command line, as functions of their options: main.cpp
// parses arguments and calls one of these; tests call them directly.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "time/clock.hpp"
#include "util/error.hpp"
#include "util/log.hpp"

namespace retentiond {

enum class Format { text, json, html };

struct GlobalOptions {
  std::filesystem::path config = "/etc/retentiond/policy.yaml";
  std::filesystem::path state_dir = "/var/lib/retentiond";
  LogLevel log_level = LogLevel::info;
  std::optional<std::filesystem::path> credentials_directory;
};

// What a command writes to and reads the time from.
struct Io {
  std::ostream& out;  // the report: with --format json, exactly one JSON document
  Logger& log;        // everything else, on stderr
  const Clock& clock;
  std::ostream* progress = nullptr;  // a terminal for progress lines, when a person watches
};

struct CheckOptions {
  Format format = Format::text;
};

struct SweepCommandOptions {
  bool dry_run = false;
  std::vector<std::string> rules;
  std::optional<std::string> as_of;  // YYYY-MM-DD; default today in the policy's zone
  Format format = Format::text;
  bool quiet = false;  // no progress line at a terminal
  // plan --out: also write the plan document there, for an approver to sign.
  std::optional<std::filesystem::path> out;
  // sweep --plan: act only as the signed plan says (its as_of, its rules).
  std::optional<std::filesystem::path> plan;
};

struct AuditShowOptions {
  std::optional<std::string> rule;
  std::optional<std::string> since;  // YYYY-MM-DD
};

struct AuditFindOptions {
  std::string rule;
  std::string key;
  std::optional<std::string> store;
  Format format = Format::text;
};

// `audit find`'s exit code when no entry acted on the record: not an error
// (like grep finding nothing), and none of the sysexits codes a failure uses.
inline constexpr int kNoEntry = 1;

// Each returns the process exit code (sysexits), having said why on `io`.
int run_check(const GlobalOptions& global, const CheckOptions& options, Io& io);
int run_sweep_command(const GlobalOptions& global, const SweepCommandOptions& options, Io& io);
int run_audit_verify(const GlobalOptions& global, Io& io);
int run_audit_show(const GlobalOptions& global, const AuditShowOptions& options, Io& io);
int run_audit_find(const GlobalOptions& global, const AuditFindOptions& options, Io& io);
int run_audit_check_receipt(const GlobalOptions& global, const std::filesystem::path& file, Io& io);

}  // namespace retentiond
