// Helpers for the sweep tests: SQLite files built by the test, policies
// written next to them, and a sweep run on a fake clock.
#pragma once

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/receipts.hpp"
#include "policy/policy.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "sweep/sweep.hpp"
#include "test_support.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/log.hpp"

extern char** environ;

namespace retentiond::test {

// A day from "YYYY-MM-DD"; a typo fails the test instead of testing nothing.
inline Day day(std::string_view text) {
  auto d = parse_date_text(text);
  if (!d) throw std::invalid_argument("not a date: " + std::string(text));
  return *d;
}

// Noon UTC on `text`: the same calendar day in Europe/Paris.
inline std::chrono::system_clock::time_point noon_utc(std::string_view text) {
  return std::chrono::system_clock::time_point{day(text)} + std::chrono::hours{12};
}

// A database the test builds and reads, with the library's RAII wrapper.
inline sqlite::Database open_db(const std::filesystem::path& file) {
  return sqlite::Database(file, sqlite::OpenMode::create);
}

// Runs a script of SQL statements in one transaction.
inline void exec(const std::filesystem::path& file, std::string_view sql) {
  auto db = open_db(file);
  char* error = nullptr;
  std::string script = "BEGIN;\n" + std::string(sql) + ";\nCOMMIT;";
  if (sqlite3_exec(db.handle(), script.c_str(), nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw std::runtime_error("SQL failed: " + message + "\n" + std::string(sql));
  }
}

inline std::int64_t query_int(const std::filesystem::path& file, std::string_view sql) {
  sqlite::Database db(file, sqlite::OpenMode::read_only);
  sqlite::Statement s(db, sql);
  if (!s.step()) throw std::runtime_error("no row: " + std::string(sql));
  return s.column_int(0);
}

// The first column of every row, as text (NULL as "<null>").
inline std::vector<std::string> query_column(const std::filesystem::path& file,
                                             std::string_view sql) {
  sqlite::Database db(file, sqlite::OpenMode::read_only);
  sqlite::Statement s(db, sql);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_is_null(0) ? "<null>" : s.column_text(0));
  return out;
}

inline std::set<std::string> query_set(const std::filesystem::path& file, std::string_view sql) {
  auto v = query_column(file, sql);
  return {v.begin(), v.end()};
}

inline bool table_exists(const std::filesystem::path& file, std::string_view table) {
  if (!std::filesystem::exists(file)) return false;
  sqlite::Database db(file, sqlite::OpenMode::read_only);
  return db.table_exists(table);
}

// Every row of every table, with each value's type: equal dumps mean equal
// content, whatever the file's page layout.
inline std::string dump(const std::filesystem::path& file) {
  sqlite::Database db(file, sqlite::OpenMode::read_only);
  std::vector<std::string> tables;
  {
    sqlite::Statement s(db, "SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name");
    while (s.step()) tables.push_back(s.column_text(0));
  }
  std::ostringstream out;
  for (const auto& t : tables) {
    out << "table " << t << "\n";
    sqlite::Statement s(db, "SELECT * FROM " + sqlite::quote(t) + " ORDER BY rowid");
    while (s.step()) {
      for (int i = 0; i < s.column_count(); ++i) {
        out << (s.column_is_null(i) ? std::string("NULL") : "'" + s.column_text(i) + "'") << "|";
      }
      out << "\n";
    }
  }
  return out.str();
}

// Writes `yaml` as policy.yaml in `dir` and loads it; the test stops if it is
// refused.
inline std::shared_ptr<const Policy> write_policy(const TempDir& dir, std::string_view yaml) {
  auto file = dir.write("policy.yaml", yaml);
  auto policy = load_policy(file);
  if (!policy) FAIL("policy refused: " << policy.error().message);
  return *policy;
}

// A sweep (or plan) as of `as_of` on a clock standing at `now`, logging into
// a string the test can print.
struct Sweep {
  const TempDir& dir;
  std::ostringstream log_text;
  Logger log{log_text, LogLevel::debug, false};
  FakeClock clock;
  std::chrono::milliseconds busy_timeout{2000};

  explicit Sweep(const TempDir& d, std::string_view now_day = "2026-06-15")
      : dir(d), clock(noon_utc(now_day)) {}

  std::filesystem::path state_dir() const { return dir / "state"; }

  Result<SweepOutcome> try_run(const Policy& policy, std::string_view as_of, bool dry_run,
                               std::vector<std::string> rules = {}) {
    SweepOptions o;
    o.dry_run = dry_run;
    o.rules = std::move(rules);
    o.as_of = day(as_of);
    o.state_dir = state_dir();
    o.busy_timeout = busy_timeout;
    return run_sweep(policy, o, clock, log);
  }

  SweepOutcome run(const Policy& policy, std::string_view as_of, bool dry_run = false,
                   std::vector<std::string> rules = {}) {
    auto outcome = try_run(policy, as_of, dry_run, std::move(rules));
    INFO("log:\n" << log_text.str());
    if (!outcome) FAIL("sweep refused: " << outcome.error().message);
    return std::move(*outcome);
  }
};

// The report's entry for a rule, stage and store; the test stops if there is
// none.
inline const ReportEntry& entry(const Report& report, std::string_view rule, int stage = 1,
                                std::optional<std::string_view> store = std::nullopt) {
  for (const auto& e : report.entries) {
    if (e.rule == rule && e.stage == stage && (!store || e.store == *store)) return e;
  }
  FAIL("no report entry for rule " << rule << " stage " << stage);
  throw std::logic_error("unreachable");
}

// The audit log's entries (every field), in order.
inline std::vector<nlohmann::ordered_json> audit_lines(const std::filesystem::path& state_dir) {
  auto lines = read_audit_log(state_dir, {});
  if (!lines) FAIL("cannot read the audit log: " << lines.error().message);
  return *lines;
}

// The keys_sha256 a batch that acted on `keys` has: the Merkle root of
// their keyed hashes under the state directory's receipt secret.
inline std::string keys_root(const std::filesystem::path& state_dir,
                             std::vector<std::string> keys) {
  auto secret = receipt_secret(state_dir, false);
  if (!secret || !*secret) FAIL("no receipt secret in " << state_dir);
  KeyHasher hasher(**secret);
  std::vector<Hash> leaves;
  for (const auto& k : keys) leaves.push_back(hasher(k));
  std::sort(leaves.begin(), leaves.end());
  return to_hex(merkle_root(leaves));
}

inline std::int64_t audit_affected_total(const std::filesystem::path& state_dir) {
  std::int64_t total = 0;
  for (const auto& l : audit_lines(state_dir)) total += l.at("affected").get<std::int64_t>();
  return total;
}

// The real binary in a child process, stdout and stderr going to files (no
// pipe to fill up), without the systemd variables of the caller's
// environment. Returns the child's pid.
inline pid_t spawn_retentiond(const std::vector<std::string>& args,
                              const std::filesystem::path& out_file,
                              const std::filesystem::path& err_file) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string_view var(*e);
    if (var.starts_with("CREDENTIALS_DIRECTORY=") || var.starts_with("STATE_DIRECTORY=") ||
        var.starts_with("NOTIFY_SOCKET=") || var.starts_with("WATCHDOG_") ||
        var.starts_with("JOURNAL_STREAM=")) {
      continue;
    }
    env.emplace_back(var);
  }
  std::vector<char*> argv{const_cast<char*>(RETENTIOND_BINARY)};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t child = ::fork();
  if (child < 0) throw std::runtime_error("fork failed");
  if (child == 0) {
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int in = ::open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || in < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0 ||
        ::dup2(in, 0) < 0) {
      ::_exit(127);
    }
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  return child;
}

struct ProcessOutcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs the binary to its end.
inline ProcessOutcome run_retentiond(const TempDir& scratch, const std::vector<std::string>& args) {
  auto out_file = scratch / "retentiond.stdout";
  auto err_file = scratch / "retentiond.stderr";
  pid_t child = spawn_retentiond(args, out_file, err_file);
  int status = 0;
  if (::waitpid(child, &status, 0) != child) throw std::runtime_error("waitpid failed");
  ProcessOutcome outcome;
  outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  outcome.out = read_file(out_file);
  outcome.err = read_file(err_file);
  return outcome;
}

}  // namespace retentiond::test
