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

#include "audit/audit_log.hpp"
#include "time/calendar.hpp"
#include "util/digest.hpp"
#include "policy/policy.hpp"
#include "report/report.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "stores/sqlite/sqlite_functions.hpp"

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
//
// Batches go in one of two orders. In anchor order (through the anchor's
// index) a batch reads only rows of the window: right when the window is a
// small part of the table, as in the daily sweep. In row order (the table's
// own order, no index) consecutive batches touch disjoint table pages: right
// for a large backlog, where anchor order would rewrite the same pages in
// batch after batch when rows were not written in anchor order.
enum class BatchOrder { by_anchor, by_row };

struct Cursor {
  BatchOrder order = BatchOrder::by_anchor;
  std::optional<sqlite::Value> anchor;  // by_anchor only
  std::optional<sqlite::Value> ident;
};

struct BatchResult {
  std::int64_t affected = 0;
  std::int64_t conflicts = 0;
  bool more = false;                             // the window may hold more rows
  std::optional<AuditEntry> entry;               // what was committed, to append to the audit log
  std::chrono::microseconds write_lock_held{0};  // BEGIN IMMEDIATE to COMMIT on this store
};

class SqliteStore {
 public:
  struct Options {
    bool dry_run = true;
    bool create = false;  // an archive destination: created when missing
    std::chrono::milliseconds busy_timeout{5000};
    int cache_mib = 16;  // SQLite page cache of this connection
  };

  SqliteStore(const StoreSpec& spec, const Options& options, const SqlFunctionContext& functions);

  const StoreSpec& spec() const { return spec_; }
  sqlite::Database& db() { return *db_; }
  bool table_exists(const std::string& table) { return db_->table_exists(table); }

  // Rows of the rule in `window` that are not held (and, for anonymize, not
  // yet anonymised), and those that are held; with `with_undated`, also the
  // rule's rows whose anchor cannot be read (a pass over the whole table).
  Counts count(const Rule& rule, const DayWindow& window, Action action, Place place,
               const SqliteStore* hold_source, bool with_undated);

  // The order for acting on `matched` rows of the rule's table (see BatchOrder).
  BatchOrder choose_order(const Rule& rule, std::int64_t matched);

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
  // The entry of the last batch is now appended to the audit log.
  void outbox_entry_logged() { settled_outbox_ids_.push_back(last_outbox_id_); }
  // Removes the outbox rows of the logged entries, in a transaction of its own.
  // REQUIRES: the audit log has been synced since they were appended.
  void forget_outbox_rows();

 private:
  struct Selection;
  Selection select(const Rule& rule, const DayWindow& window, Place place,
                   const SqliteStore* hold_source, Action action) const;
  void attach_hold_source(const SqliteStore* hold_source);
  struct Row;
  std::vector<Row> fetch_batch(const Selection& sel, const std::vector<std::string>& columns,
                               Cursor& cursor, int limit);
  static std::string table_clause(const Selection& sel, BatchOrder order);
  std::int64_t act_on_batch_range(const std::string& statement_head, const Selection& sel,
                                  const std::vector<sqlite::Value>& head_binds,
                                  const std::vector<Row>& rows, BatchOrder order);
  void write_outbox(const AuditEntry& entry);
  // Fills in the batch's audit entry and writes it to the outbox, when the
  // batch changed anything. REQUIRES: inside the batch's transaction.
  void record_batch(BatchResult& result, AuditEntry entry, Sha256& digest);
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
