// The policy: an administrator's retention schedule, loaded, validated and
// then immutable. Everything downstream (plan, sweep, report) reads it.
#pragma once

#include <date/tz.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "time/anchor.hpp"
#include "time/period.hpp"
#include "time/schedule.hpp"
#include "util/error.hpp"

namespace retentiond {

// Where something was written in the policy file, for messages.
struct SourceLocation {
  int line = 0;    // 1-based
  int column = 0;  // 1-based
};

enum class StoreKind { sqlite, postgresql, files };
std::string_view to_string(StoreKind kind);

struct StoreSpec {
  std::string name;
  StoreKind kind = StoreKind::sqlite;
  std::filesystem::path path;  // sqlite: absolute (resolved against the policy's folder)
  std::string dsn;             // postgresql: a libpq connection string or URI, never a password
  std::string schema;          // postgresql: where the rules' tables are ("public" by default)
  std::filesystem::path root;  // files: absolute (resolved against the policy's folder)
  SourceLocation location;
};

enum class Action { erase, archive, anonymize };  // `delete` is a keyword
std::string_view to_string(Action action);

// A scalar from the policy (a where value, an anonymisation constant).
// std::monostate is YAML null.
using Scalar = std::variant<std::monostate, std::int64_t, double, std::string>;

struct WhereCondition {
  std::string column;
  std::vector<Scalar> values;  // the column equals one of these
};

struct HoldByColumn {
  std::string column;  // held while truthy
};
struct HoldByTable {
  std::string table;  // in the same store
  std::string key;    // held while `table` lists the row's key in this column
};
using Hold = std::variant<HoldByColumn, HoldByTable>;

struct AnonymizeMethod {
  enum class Kind { null, value, hmac, year, month, truncate } kind = Kind::null;
  Scalar value;      // Kind::value
  int truncate = 0;  // Kind::truncate: characters kept
};
std::string to_string(const AnonymizeMethod& method);

struct ColumnAnonymization {
  std::string column;
  AnonymizeMethod method;
};

struct Anonymization {
  std::vector<ColumnAnonymization> columns;  // in policy order
  std::optional<std::string> mark;           // set to the time of anonymisation
};

// Rules on a files store (docs/files.md): what a table rule says with
// table, key, anchor and hold.
enum class FileAnchor { mtime, name };
std::string_view to_string(FileAnchor anchor);

struct HoldByFile {
  std::string name;  // a file of this name in the file's folder or one above it holds it
};
struct HoldByList {
  std::filesystem::path list;  // absolute: relative paths or globs, one a line
};
using FileHold = std::variant<HoldByFile, HoldByList>;

struct FileSelection {
  std::string pattern;  // a glob relative to the store's root (util/glob.hpp)
  FileAnchor anchor = FileAnchor::mtime;
  std::optional<FileHold> hold;
  bool remove_empty_folders = false;  // folders the sweep emptied go too (never the root)
};

struct Stage {
  int number = 1;  // 1-based, in order of `after`
  Period after;
  Action action = Action::erase;
  std::string to;  // archive: the destination store's name
  SourceLocation location;
};

struct Rule {
  std::string name;
  std::string category;
  std::string basis;
  std::string store;
  std::string table;   // a files rule: its pattern, as reports and the audit log show it
  std::string key;     // empty for a files rule: a file's relative path is its key
  std::string anchor;  // a files rule: "mtime" or "name"
  AnchorFormat anchor_format = AnchorFormat::date;
  bool anchor_format_set = false;  // written in the policy (PostgreSQL's own types need none)
  std::vector<WhereCondition> where;
  std::optional<Hold> hold;
  std::vector<Stage> stages;  // at least one; strictly increasing periods
  std::optional<Anonymization> anonymize;
  std::optional<FileSelection> files;  // set exactly when the rule's store is of kind files
  SourceLocation location;

  // The store an archive stage moves rows to, if any.
  const Stage* archive_stage() const;
};

// Four eyes (docs/approved-plans.md): who may approve a plan, and how far
// an approved plan is trusted.
struct ApprovalSettings {
  std::filesystem::path allowed_signers;  // OpenSSH allowed-signers file, absolute
  Period max_age{0, 0, 7};                // a plan older than this is stale
  std::int64_t tolerance = 0;             // records a stage may match beyond what the plan said
};

struct Policy {
  std::filesystem::path file;
  std::string sha256;  // of the file's bytes, hex
  std::string timezone;
  const date::time_zone* zone = nullptr;
  std::optional<Schedule> schedule;  // none: the daemon sweeps only on SIGUSR1
  // How long one write transaction (one batch) should hold the store's
  // lock; batches are sized to it as the sweep goes (sweep/batch_pacer.hpp).
  std::chrono::milliseconds max_transaction{50};
  // The most records one batch may take; none: as many as fit in max_transaction.
  std::optional<int> batch_size;
  // How long a batch waits for a lock someone else holds.
  std::chrono::milliseconds busy_timeout{5000};
  int cache_mib = 16;  // SQLite page cache per store connection
  std::optional<std::filesystem::path> hmac_key_file;
  std::string hmac_key;  // the key's bytes; empty when no rule uses hmac
  std::optional<std::filesystem::path> metrics_file;
  std::optional<ApprovalSettings> approval;
  // A real sweep acts only with an approved plan (sweep --plan FILE).
  bool require_approval = false;
  std::vector<StoreSpec> stores;
  std::vector<Rule> rules;

  const StoreSpec* find_store(std::string_view name) const;
  const Rule* find_rule(std::string_view name) const;
};

struct LoadOptions {
  // systemd's LoadCredential= directory ($CREDENTIALS_DIRECTORY): a file named
  // "hmac-key" there replaces hmac_key_file.
  std::optional<std::filesystem::path> credentials_directory;
  // Where relative paths (stores, key file, hold lists) are read from; the
  // policy file's folder when unset. `plan --compare` reads an old version
  // taken out of version control as if it stood next to the current one.
  std::optional<std::filesystem::path> base_dir = std::nullopt;
};

// Reads and validates a policy file. Errors: ExitCode::no_input when the file
// is missing or unreadable; ExitCode::config with one line
// "FILE:LINE:COLUMN: what is wrong; what is accepted" for anything invalid.
Result<std::shared_ptr<const Policy>> load_policy(const std::filesystem::path& file,
                                                  const LoadOptions& options = {});

// True for a plain SQL identifier: [A-Za-z_][A-Za-z0-9_]*, at most 63 chars.
bool is_plain_identifier(std::string_view name);

}  // namespace retentiond
