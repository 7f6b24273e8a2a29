// A SQLite store as the sweep sees it: counting what a stage would act on,
// and acting on it one short transaction (one batch) at a time. Everything
// kind-specific lives here; stages, windows, audit and reports live in
// sweep.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "audit_log.hpp"
#include "calendar.hpp"
#include "policy.hpp"
#include "report.hpp"
#include "sqlite.hpp"
#include "sqlite_functions.hpp"

namespace retentiond {

// The anchor days a stage acts on: after < day <= through. `after` is the
// next stage's cutoff (rows past it belong to that stage), none for the last.
struct DayWindow {
  std::optional<Day> after;
  Day through;
};

// Where a rule's rows are in this store: its own table in the live store, or
// the copy of that table in the archive store.
enum class Place { live, archive };

// A position in (anchor, row identity) order: batches resume after it, so
// rows that are held, excluded or in conflict are read once, not per batch.
struct Cursor {
  std::optional<sqlite::Value> anchor;
  sqlite::Value ident;
};

struct BatchResult {
  std::int64_t affected = 0;
  std::int64_t conflicts = 0;
  bool more = false;               // the window may hold more rows
  std::optional<AuditEntry> entry; // what was committed, to append to the audit log
};

class SqliteStore {
 public:
  struct Options {
    bool dry_run = true;
    bool create = false;  // an archive destination: created when missing
    std::chrono::milliseconds busy_timeout{5000};
  };

  SqliteStore(const StoreSpec& spec, const Options& options, const SqlFunctionContext& functions);

  const StoreSpec& spec() const { return spec_; }
  sqlite::Database& db() { return *db_; }
  bool table_exists(const std::string& table) { return db_->table_exists(table); }

  // Rows of the rule in `window` that are not held (and, for anonymize, not
  // yet anonymised), and those that are held.
  Counts count(const Rule& rule, const DayWindow& window, Action action, Place place,
               const SqliteStore* hold_source);
  std::int64_t count_undated(const Rule& rule);

  // One transaction: up to `limit` rows of the window acted on, and the
  // batch's audit entry written to the outbox table in the same commit.
  // `entry` carries the fields known before (rule, stage, ...); time,
  // affected and keys_sha256 are filled in here.
  BatchResult delete_batch(const Rule& rule, const DayWindow& window, Place place, int limit,
                           Cursor& cursor, AuditEntry entry, const SqliteStore* hold_source);
  BatchResult anonymize_batch(const Rule& rule, const DayWindow& window, int limit, Cursor& cursor,
                              AuditEntry entry);
  BatchResult archive_batch(const Rule& rule, const DayWindow& window, SqliteStore& archive,
                            int limit, Cursor& cursor, AuditEntry entry);

  // Appends to `audit` every outbox entry a crash left behind (unless the
  // log already has it) and empties the outbox. Returns how many were appended.
  Result<int> settle_outbox(AuditLog& audit);
  // The entry of the last batch is now in the audit log: its outbox row can go
  // (it is removed in the next transaction, or by forget_outbox_rows()).
  void outbox_entry_logged() { settled_outbox_ids_.push_back(last_outbox_id_); }
  // Removes the outbox rows of logged entries now, in a transaction of its own.
  void forget_outbox_rows();

 private:
  struct Selection;
  Selection select(const Rule& rule, const DayWindow& window, Place place, const SqliteStore* hold_source,
                   bool want_held, bool only_pending, Action action) const;
  void attach_hold_source(const SqliteStore* hold_source);
  struct Row;
  std::vector<Row> fetch_batch(const Selection& sel, const std::vector<std::string>& columns, Cursor& cursor,
                               int limit);
  void write_outbox(const AuditEntry& entry);
  void delete_settled_outbox_rows();  // REQUIRES: inside a write transaction
  std::string ident_of(const Rule& rule);

  StoreSpec spec_;
  Options options_;
  const SqlFunctionContext* functions_;
  std::unique_ptr<sqlite::Database> db_;
  std::vector<std::int64_t> settled_outbox_ids_;
  std::int64_t last_outbox_id_ = 0;
  std::optional<std::string> attached_hold_source_;
};

// "2026-11-27T03:15:00.123Z"
std::string utc_timestamp(std::chrono::system_clock::time_point t);

}  // namespace retentiond
