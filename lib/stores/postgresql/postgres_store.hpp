// A PostgreSQL store: the tables of one schema of one database, reached
// through libpq. What differs from SQLite lives here:
//
// - The cutoff is computed by retentiond's calendar and compared in SQL, so
//   that the anchor's index is used: exactly for columns of type date,
//   timestamp (read as UTC) and timestamptz; for text and integer anchors
//   (anchor_format) the index narrows the rows and retentiond reads each
//   anchor as it does on SQLite, so both kinds agree to the day.
// - Batches are short transactions under lock_timeout/statement_timeout
//   (from busy_timeout) that lock their rows FOR UPDATE SKIP LOCKED: a row
//   the application holds only delays that row, which is retried at the end
//   of the stage, waiting up to busy_timeout. Rows are acted on by their
//   physical address (ctid) inside the transaction that locked them, so a
//   key that is not unique never takes an unexpired or held row along.
// - Archive into the same database is one transaction (DELETE ... RETURNING
//   feeding the INSERT); into another database the copy commits first, as
//   for SQLite.
// - A delete stage drops whole partitions of a table range-partitioned on
//   the anchor when every row of the partition would be deleted anyway.
// - Several daemons may share the database: a rule's stage is claimed with
//   an advisory lock, and each daemon's outbox rows carry its installation id.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "stores/postgresql/pq.hpp"
#include "stores/store.hpp"

namespace retentiond {

// "store 'NAME' (postgresql: dbname=... host=..., schema S)"; no password.
std::string postgres_store_label(const StoreSpec& spec);

class PostgresStore final : public Store {
 public:
  // Connects; throws pq::PqError when the server cannot be reached.
  PostgresStore(const StoreSpec& spec, const StoreOptions& options);

  const StoreSpec& spec() const override { return spec_; }
  std::string label() const override { return postgres_store_label(spec_); }
  bool has_table(const Rule& rule) override { return table(rule.table).exists; }
  std::optional<std::string> refusal(const Rule& rule, Action action) override;
  Counts count(const StageWork& work, bool with_undated) override;
  std::unique_ptr<Batches> batches(const StageWork& work, std::int64_t matched) override;
  std::unique_ptr<Claim> claim(const StageWork& work) override;
  Result<int> settle_outbox(AuditLog& audit) override;
  void outbox_entry_logged() override { logged_outbox_ids_.push_back(last_outbox_id_); }
  void forget_outbox_rows() override;
  void check(const Rule& rule, CheckFindings& out) override;
  void check_archive(const Rule& rule, Store& live, CheckFindings& out) override;

  pq::Connection& connection() { return *conn_; }
  // "schema"."table"
  std::string qualified(const std::string& table) const;

 private:
  friend class PostgresBatches;

  struct Column {
    std::string name;
    std::string type;       // format_type(): "timestamp with time zone", "character varying(20)"
    std::string type_name;  // pg_type.typname: "timestamptz", "varchar", "int8"
  };
  struct TableInfo {
    bool exists = false;
    bool partitioned = false;
    std::vector<Column> columns;
    const Column* column(const std::string& name) const;
  };
  const TableInfo& table(const std::string& name);

  // How a rule's anchor is compared.
  enum class AnchorKind { date, timestamp, timestamptz, text, integer, unusable };
  AnchorKind anchor_kind(const Rule& rule);

  struct Selection;
  Selection select(const StageWork& work);
  std::string held_condition(const Rule& rule, Place place, Store* live, Selection& sel);
  std::string pending_condition(const Rule& rule);
  std::string anonymize_expression(const Rule& rule, const ColumnAnonymization& c);
  bool in_window(const Selection& sel, const std::optional<std::string>& anchor) const;

  void ensure_outbox();
  void write_outbox(const AuditEntry& entry);
  void begin_batch(pq::Transaction& tx);
  bool same_database(const PostgresStore& other) const { return spec_.dsn == other.spec_.dsn; }
  void create_archive_table(const Rule& rule, PostgresStore& live);

  StoreSpec spec_;
  StoreOptions options_;
  std::unique_ptr<pq::Connection> conn_;
  std::map<std::string, TableInfo> tables_;
  bool outbox_ready_ = false;
  std::vector<std::int64_t> logged_outbox_ids_;
  std::int64_t last_outbox_id_ = 0;
};

}  // namespace retentiond
