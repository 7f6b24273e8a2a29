// A SQLite store: a database file, reached through one connection (read-only
// in a dry run). Everything SQLite-specific of the sweep lives here: the
// selection in SQLite's dialect with retentiond's own SQL functions, the
// batch orders, the archive's two-step copy, the outbox table.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stores/batch_keys.hpp"
#include "stores/sqlite/anchor_census.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "stores/sqlite/sqlite_functions.hpp"
#include "stores/store.hpp"
#include "util/digest.hpp"

namespace retentiond {

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

class SqliteStore final : public Store {
 public:
  // Throws sqlite::SqliteError when the file cannot be opened.
  SqliteStore(const StoreSpec& spec, const StoreOptions& options);

  const StoreSpec& spec() const override { return spec_; }
  std::string label() const override { return store_label(spec_); }
  bool has_table(const Rule& rule) override { return db_->table_exists(rule.table); }
  std::optional<std::string> refusal(const Rule& rule, Action action) override;
  Counts count(const StageWork& work, bool with_undated) override;
  std::unique_ptr<Batches> batches(const StageWork& work, std::int64_t matched) override;
  // One host writes a SQLite file: the state directory's sweep lock is enough.
  std::unique_ptr<Claim> claim(const StageWork&) override { return std::make_unique<Claim>(); }
  Result<int> settle_outbox(AuditLog& audit) override;
  void outbox_entry_logged() override { settled_outbox_ids_.push_back(last_outbox_id_); }
  void forget_outbox_rows() override;
  void check(const Rule& rule, CheckFindings& out) override;
  void check_archive(const Rule& rule, Store& live, CheckFindings& out) override;

  sqlite::Database& db() { return *db_; }

 private:
  friend class SqliteBatches;
  struct Selection;
  // `census`: the window's values (anchor_census.hpp); without one, or an
  // inexact one, the window is tested with the day function. `schema`: the
  // name the table's database has on this connection.
  Selection select(const Rule& rule, const DayWindow& window, Place place,
                   const SqliteStore* hold_source, Action action, const AnchorCensus* census,
                   std::string_view schema = "main") const;
  // The census the last count() took for the rule's window, if no other
  // connection has committed since. REQUIRES: inside the batch's write
  // transaction (nobody can commit until it ends).
  const AnchorCensus* fresh_census(const Rule& rule, const DayWindow& window);
  // Attaches the live store read-only to this (its archive's) connection.
  void attach_live(const SqliteStore* live);
  // The order for acting on `matched` rows of the rule's table (see BatchOrder).
  BatchOrder choose_order(const Rule& rule, std::int64_t matched);

  // One transaction: up to `limit` rows of the window acted on, and the
  // batch's audit entry written to the outbox table in the same commit.
  BatchResult delete_batch(const Rule& rule, const DayWindow& window, Place place, int limit,
                           Cursor& cursor, AuditEntry entry, const SqliteStore* hold_source);
  BatchResult anonymize_batch(const Rule& rule, const DayWindow& window, int limit, Cursor& cursor,
                              AuditEntry entry);
  BatchResult archive_batch(const Rule& rule, const DayWindow& window, SqliteStore& archive,
                            int limit, Cursor& cursor, AuditEntry entry);

  struct Row;
  struct BatchRead;
  // The next batch's rows from the cursor on, with the requested columns.
  // With `keys`, the first column is the key: each row's goes to `keys` as it
  // is read, and only the first and the last row are kept.
  BatchRead fetch_batch(const Selection& sel, const std::vector<std::string>& columns,
                        Cursor& cursor, int limit, BatchKeys* keys = nullptr);
  static std::string table_clause(const Selection& sel, BatchOrder order);
  // The rows of a batch, from its first to its last: the SQL and its values.
  static std::pair<std::string, std::vector<sqlite::Value>> batch_range(const Selection& sel,
                                                                        const BatchRead& read,
                                                                        BatchOrder order);
  // On the archive: copies the batch's rows from `live` with one INSERT ...
  // SELECT and commits, when every one of them is new to the archive (the
  // common case); otherwise changes nothing and returns false. REQUIRES: the
  // live store's write transaction in which `read` was read.
  bool copy_batch(const Rule& rule, const DayWindow& window, const AnchorCensus* census,
                  SqliteStore& live, const std::vector<std::string>& names, const BatchRead& read,
                  BatchOrder order);
  // On the archive, in one transaction: copies each of `rows` (every column,
  // the key at `key_pos`) that the archive does not hold yet, creating the
  // archive's table on the first batch. Returns, row by row, whether the
  // archive already holds a different row under the key (a conflict: never
  // overwritten). REQUIRES: the live store's write transaction.
  std::vector<bool> copy_row_by_row(const Rule& rule,
                                    const std::vector<std::pair<std::string, std::string>>& columns,
                                    const std::vector<std::string>& names, std::size_t key_pos,
                                    const std::vector<Row>& rows);
  std::int64_t act_on_batch_range(const std::string& statement_head, const Selection& sel,
                                  const std::vector<sqlite::Value>& head_binds,
                                  const BatchRead& read, BatchOrder order);
  void write_outbox(const AuditEntry& entry);
  // Fills in the batch's audit entry and writes it to the outbox, when the
  // batch changed anything. REQUIRES: inside the batch's transaction.
  void record_batch(BatchResult& result, AuditEntry entry, BatchKeys& digest);
  std::string ident_of(const Rule& rule);
  // Whether another connection committed to the file since the last call
  // (PRAGMA data_version), the first call comparing with the file as opened.
  bool others_committed();

  StoreSpec spec_;
  StoreOptions options_;
  SqlFunctionContext functions_;  // before db_: the connection's functions use it
  std::unique_ptr<sqlite::Database> db_;
  std::vector<std::int64_t> settled_outbox_ids_;
  std::int64_t last_outbox_id_ = 0;
  std::optional<std::string> attached_live_;
  std::int64_t data_version_ = 0;
  // By rule table, anchor and window: taken by count(), used by the batches.
  std::map<std::string, AnchorCensus> censuses_;
};

}  // namespace retentiond
