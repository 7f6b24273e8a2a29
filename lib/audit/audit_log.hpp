// The audit log: STATE_DIR/audit.jsonl, append-only, one JSON object per
// committed batch, each line chained to the one before by SHA-256.
//
// Protocol with the stores (see docs/audit-protocol.md): a batch's entry is
// first written into the store, in the same transaction as the change (the
// outbox table), so that "changed" and "to be logged" commit together. After
// the commit the entry is appended here. Once the log is synced (sync(), at
// the end of each stage), the outbox rows of the entries it holds are
// removed. A crash at any point leaves each committed entry in the log, in
// the outbox, or both, and the next sweep appends what the log lacks before
// doing anything else: the log never misses a committed change and never
// claims one that did not commit.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "util/error.hpp"

namespace retentiond {

// What a batch did; seq, prev and hash are added when it is appended.
struct AuditEntry {
  std::string time;  // UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ"
  std::string rule;
  int stage = 1;
  std::string action;
  std::string store;
  std::string table;
  std::string as_of;
  std::string cutoff;
  std::int64_t affected = 0;
  std::string keys_sha256;  // Merkle root of the keys' keyed hashes (receipts.hpp)
  // The policy the sweep ran under; empty in entries written before it was
  // recorded, and then absent from the line.
  std::string policy_sha256;
  // An approved sweep (sweep --plan): the plan file's SHA-256 and who signed
  // it. Written only when set, so that entries and logs without them hash
  // and verify as before.
  std::string plan_sha256;
  std::string approved_by;

  nlohmann::json to_json() const;  // without seq/prev/hash
  static std::optional<AuditEntry> from_json(const nlohmann::json& j);
  bool operator==(const AuditEntry&) const = default;
};

class AuditLog {
 public:
  // Opens (creating 0600 if missing) STATE_DIR/audit.jsonl for appending. A
  // torn last line (a crash while it was written) is cut off, with `warning`
  // set so the caller can log it. Fails with ExitCode::cant_create when the
  // file cannot be written.
  static Result<AuditLog> open(const std::filesystem::path& state_dir);

  AuditLog(AuditLog&& other) noexcept;
  AuditLog& operator=(AuditLog&&) = delete;
  ~AuditLog();

  // Appends one line with a single write(); returns its seq. Not yet
  // durable: see sync().
  Result<std::int64_t> append(const AuditEntry& entry);

  // Makes every appended line durable (fsync) and records the head (seq and
  // hash of the last line) beside the log. Only after this may the outbox
  // rows of the appended entries be removed.
  Result<void> sync();

  // The content of every entry in the log (without seq/prev/hash), to settle
  // outbox rows left by a crash. Reads the file.
  Result<std::set<std::string>> logged_entries() const;
  static std::string entry_key(const AuditEntry& entry);

  const std::optional<std::string>& warning() const { return warning_; }
  std::int64_t last_seq() const { return last_seq_; }

 private:
  AuditLog() = default;
  std::filesystem::path path_;
  std::filesystem::path head_path_;
  int fd_ = -1;
  std::int64_t last_seq_ = 0;
  std::string last_hash_;
  std::optional<std::string> warning_;
};

struct VerifyResult {
  bool ok = true;
  std::int64_t lines = 0;
  std::string message;  // when !ok: names the first bad line and what is wrong
};

// Checks the chain end to end: every line's hash, its link to the line
// before, consecutive seq numbers, and the end of the log against the head
// recorded beside it (so that removing the last lines is found too).
Result<VerifyResult> verify_audit_log(const std::filesystem::path& state_dir);

struct AuditFilter {
  std::optional<std::string> rule;
  std::optional<std::string> since;  // YYYY-MM-DD: entries whose time is on or after
};

// The log's lines (as parsed JSON, fields in their order) that pass the filter.
Result<std::vector<nlohmann::ordered_json>> read_audit_log(const std::filesystem::path& state_dir,
                                                           const AuditFilter& filter);

std::filesystem::path audit_log_path(const std::filesystem::path& state_dir);

// The hash of a line: SHA-256 of its canonical JSON without the "hash" field.
std::string audit_line_hash(const nlohmann::json& line);

}  // namespace retentiond
