#include "stores/sqlite/sqlite_store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <map>

#include "stores/batch_keys.hpp"
#include "stores/outbox.hpp"
#include "stores/sqlite/anchor_census.hpp"
#include "stores/sqlite/side_effects.hpp"
#include "util/digest.hpp"

namespace retentiond {
namespace {

using sqlite::quote;
using sqlite::Statement;
using sqlite::Value;

constexpr std::string_view kOutbox = "_retentiond_outbox";
// The live store, attached read-only to its archive's connection: rows in the
// archive are held by the hold table kept in the live store, and a batch's
// rows are copied from it in one statement.
constexpr std::string_view kLiveSchema = "retentiond_live";

// Percent-encodes a path for a file: URI (ATTACH ... ?mode=ro).
std::string file_uri(const std::filesystem::path& path, std::string_view query) {
  std::string out = "file:";
  for (unsigned char c : path.string()) {
    if (std::isalnum(c) || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += fmt::format("%{:02X}", c);
    }
  }
  return out + "?" + std::string(query);
}

Value to_value(const Scalar& s) {
  return std::visit([](const auto& v) -> Value { return v; }, s);
}

// A key as text for the batch digest: the digest proves which rows a batch
// touched to someone who holds the keys, without the log holding any.
std::string key_text(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return "";
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return std::to_string(x);
        else if constexpr (std::is_same_v<T, double>)
          return fmt::format("{}", x);
        else if constexpr (std::is_same_v<T, std::string>)
          return x;
        else
          return "x'" + sha256_hex(x.bytes) + "'";
      },
      v);
}

// `where: { column: value | [values] }` as SQL on the alias t.
void add_where_conditions(const Rule& rule, std::vector<std::string>& conds,
                          std::vector<Value>& binds) {
  for (const auto& c : rule.where) {
    std::vector<std::string> alternatives;
    std::vector<std::string> marks;
    for (const auto& v : c.values) {
      if (std::holds_alternative<std::monostate>(v)) {
        alternatives.push_back(fmt::format("t.{} IS NULL", quote(c.column)));
      } else {
        marks.push_back("?");
        binds.push_back(to_value(v));
      }
    }
    if (!marks.empty()) {
      alternatives.insert(alternatives.begin(),
                          fmt::format("t.{} IN ({})", quote(c.column), fmt::join(marks, ", ")));
    }
    conds.push_back(alternatives.size() == 1
                        ? alternatives[0]
                        : fmt::format("({})", fmt::join(alternatives, " OR ")));
  }
}

std::chrono::microseconds held_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

}  // namespace

struct SqliteStore::Row {
  Value ident;
  Value anchor;
  std::vector<Value> values;  // the requested columns, in order
};

// A batch as read: every row in order, or, read for its keys alone (given to
// a BatchKeys as they come), only the first and the last row, which bound the
// range the statement then acts on: a batch of 40 000 rows need not be held.
struct SqliteStore::BatchRead {
  std::vector<Row> rows;
  std::int64_t count = 0;
  bool null_key = false;  // read for its keys: one of them was NULL
  const Row& first() const { return rows.front(); }
  const Row& last() const { return rows.back(); }
};

struct SqliteStore::Selection {
  std::string from;    // "main"."t" AS t
  std::string window;  // the anchor's day is in the window
  std::vector<Value> window_binds;
  std::string scope;  // the rule's `where:` ("1" without one)
  std::vector<Value> scope_binds;
  std::string base;  // window and scope
  std::vector<Value> base_binds;
  std::string held = "0";     // the row is held
  std::string pending = "1";  // anonymize: not anonymised yet
  std::vector<Value> pending_binds;
  std::string where;  // what a batch acts on: base, not held, pending
  std::vector<Value> binds;
  std::string anchor;  // quoted anchor column
  std::string ident;   // rowid or the quoted key of a WITHOUT ROWID table
};

SqliteStore::SqliteStore(const StoreSpec& spec, const StoreOptions& options)
    : spec_(spec), options_(options) {
  functions_.zone = options.zone;
  functions_.hmac_key = options.hmac_key;
  using sqlite::OpenMode;
  OpenMode mode = options.dry_run  ? OpenMode::read_only
                  : options.create ? OpenMode::create
                                   : OpenMode::read_write;
  db_ = std::make_unique<sqlite::Database>(spec.path, mode, options.busy_timeout);
  // An application committing back to back must not starve the sweep.
  db_->poll_when_busy(options.busy_timeout);
  register_sql_functions(*db_, functions_);
  db_->exec(fmt::format("PRAGMA cache_size = -{}",
                        static_cast<long>(options.cache_mib) * 1024));  // in KiB
  if (!options.dry_run) {
    // A committed batch must survive a power cut before the audit log says
    // so, and an archive copy before its rows leave the live store.
    db_->exec("PRAGMA synchronous = FULL");
    // Deleting a row that other rows still reference fails (and the batch
    // rolls back) instead of leaving orphans; cascades are refused up front
    // (side_effects.hpp).
    db_->exec("PRAGMA foreign_keys = ON");
    // A batch's time is its write lock's; the WAL is checkpointed after it.
    db_->checkpoint_when_asked();
    // The baseline for others_committed(): an application that writes while
    // the sweep counts is seen before the first batch.
    others_committed();
  }
}

bool SqliteStore::others_committed() {
  std::int64_t version = data_version(*db_);
  return std::exchange(data_version_, version) != version;
}

// Rows are identified by rowid; a WITHOUT ROWID table has none, and its
// rows are identified by the rule's key instead.
std::string SqliteStore::ident_of(const Rule& rule) {
  return db_->without_rowid(rule.table) ? "t." + quote(rule.key) : "t.rowid";
}

void SqliteStore::attach_live(const SqliteStore* live) {
  if (!live) return;
  std::string uri = file_uri(live->spec().path, "mode=ro");
  if (attached_live_ == uri) return;
  // One archive may serve the rules of several live stores.
  if (attached_live_) db_->exec(fmt::format("DETACH DATABASE {}", kLiveSchema));
  attached_live_.reset();
  Statement s(*db_, fmt::format("ATTACH DATABASE ?1 AS {}", kLiveSchema));
  s.bind(1, uri);
  s.step();
  attached_live_ = uri;
}

SqliteStore::Selection SqliteStore::select(const Rule& rule, const DayWindow& w, Place place,
                                           const SqliteStore* hold_source, Action action,
                                           const AnchorCensus* census,
                                           std::string_view schema) const {
  Selection sel;
  sel.from = fmt::format("{}.{} AS t", schema, quote(rule.table));
  sel.anchor = "t." + quote(rule.anchor);
  std::vector<std::string> conds;
  IndexRange range = index_range(rule.anchor_format, w, *functions_.zone);
  if (range.low) {
    conds.push_back(sel.anchor + " >= ?");
    sel.window_binds.push_back(*range.low);
  }
  conds.push_back(sel.anchor + " < ?");
  sel.window_binds.push_back(range.high);
  if (census && census->exact) {
    // The range less the values the census found in it but not in the window
    // (anchor_census.hpp): a comparison through the index, no function call.
    if (!census->excluded.empty()) {
      std::vector<std::string> marks(census->excluded.size(), "?");
      conds.push_back(fmt::format("{} NOT IN ({})", sel.anchor, fmt::join(marks, ", ")));
      sel.window_binds.insert(sel.window_binds.end(), census->excluded.begin(),
                              census->excluded.end());
    }
  } else {
    // The exact test is the day function, applied to the rows the range lets through.
    std::string day = fmt::format("{}({})", day_function(rule.anchor_format), sel.anchor);
    conds.push_back(day + " <= ?");
    sel.window_binds.push_back(static_cast<std::int64_t>(w.through.time_since_epoch().count()));
    if (w.after) {
      conds.push_back(day + " > ?");
      sel.window_binds.push_back(static_cast<std::int64_t>(w.after->time_since_epoch().count()));
    }
  }
  sel.window = fmt::format("{}", fmt::join(conds, " AND "));
  std::vector<std::string> scope;
  add_where_conditions(rule, scope, sel.scope_binds);
  sel.scope = scope.empty() ? "1" : fmt::format("{}", fmt::join(scope, " AND "));
  sel.base = fmt::format("{} AND {}", sel.window, sel.scope);
  sel.base_binds = sel.window_binds;
  sel.base_binds.insert(sel.base_binds.end(), sel.scope_binds.begin(), sel.scope_binds.end());

  if (rule.hold) {
    if (auto* col = std::get_if<HoldByColumn>(&*rule.hold)) {
      sel.held = fmt::format("retentiond_truthy(t.{})", quote(col->column));
    } else {
      const auto& t = std::get<HoldByTable>(*rule.hold);
      // Rows in an archive are held by the list kept in the live store.
      std::string_view hold_schema = place == Place::archive && hold_source ? kLiveSchema : schema;
      sel.held = fmt::format("EXISTS (SELECT 1 FROM {}.{} AS h WHERE h.{} = t.{})", hold_schema,
                             quote(t.table), quote(t.key), quote(rule.key));
    }
  }
  if (action == Action::anonymize && rule.anonymize) {
    const Anonymization& a = *rule.anonymize;
    if (a.mark) {
      sel.pending = fmt::format("t.{} IS NULL", quote(*a.mark));
    } else {
      // Without a mark, a row is done when every column already holds what
      // anonymisation would write (every method but hmac is idempotent).
      std::vector<std::string> done;
      for (const auto& c : a.columns) {
        std::string col = "t." + quote(c.column);
        using K = AnonymizeMethod::Kind;
        switch (c.method.kind) {
          case K::null:
            done.push_back(col + " IS NULL");
            break;
          case K::value:
            done.push_back(col + " IS ?");
            sel.pending_binds.push_back(to_value(c.method.value));
            break;
          case K::year:
            done.push_back(fmt::format("{0} IS retentiond_year({0})", col));
            break;
          case K::month:
            done.push_back(fmt::format("{0} IS retentiond_month({0})", col));
            break;
          case K::truncate:
            done.push_back(
                fmt::format("({0} IS NULL OR length({0}) <= {1})", col, c.method.truncate));
            break;
          case K::hmac:
            done.push_back("0");
            break;  // refused without a mark at load time
        }
      }
      sel.pending = fmt::format("NOT ({})", fmt::join(done, " AND "));
    }
  }
  // What a batch acts on: in the window, not held, not yet done.
  sel.where = fmt::format("{} AND NOT ({}) AND ({})", sel.base, sel.held, sel.pending);
  sel.binds = sel.base_binds;
  sel.binds.insert(sel.binds.end(), sel.pending_binds.begin(), sel.pending_binds.end());
  return sel;
}

namespace {

// Rows in an archive are held by the hold table of the live store (of the
// same kind: the loader refuses an archive of another kind).
const SqliteStore* hold_source_of(const StageWork& work) {
  return work.place == Place::archive ? dynamic_cast<const SqliteStore*>(work.live) : nullptr;
}

}  // namespace

std::optional<std::string> SqliteStore::refusal(const Rule& rule, Action action) {
  return side_effects_of(*db_, rule, action);
}

namespace {

std::string census_key(const Rule& rule, const DayWindow& w) {
  return fmt::format("{}\x1f{}\x1f{}\x1f{}\x1f{}", rule.table, rule.anchor,
                     static_cast<int>(rule.anchor_format),
                     w.after ? w.after->time_since_epoch().count() : -1'000'000'000,
                     w.through.time_since_epoch().count());
}

}  // namespace

const AnchorCensus* SqliteStore::fresh_census(const Rule& rule, const DayWindow& window) {
  auto it = censuses_.find(census_key(rule, window));
  if (it == censuses_.end() || it->second.data_version != data_version(*db_)) return nullptr;
  return &it->second;
}

Counts SqliteStore::count(const StageWork& work, bool with_undated) {
  const Rule& rule = *work.rule;
  const DayWindow& window = work.window;
  Place place = work.place;
  const SqliteStore* hold_source = hold_source_of(work);
  Counts counts;
  if (!db_->table_exists(rule.table)) return counts;  // an archive table not created yet
  if (place == Place::archive) attach_live(hold_source);
  // One read of the anchor's values (through its index) counts the window
  // and, over the whole table, the undated rows; the batches then use it.
  const AnchorCensus& census = censuses_[census_key(rule, window)] = take_census(
      *db_, rule.table, rule.anchor, rule.anchor_format, window, *functions_.zone, with_undated);
  Selection sel = select(rule, window, place, hold_source, work.action, &census);
  const bool whole_scope = sel.scope == "1";
  if (census.exact && whole_scope && sel.held == "0" && sel.pending == "1") {
    // No `where:`, no hold, nothing done already: every row of the window is matched.
    counts.matched = census.window_rows;
    counts.undated = census.undated_rows.value_or(0);
    return counts;
  }
  std::vector<Value> binds;
  auto add = [&](const std::vector<Value>& v) { binds.insert(binds.end(), v.begin(), v.end()); };
  {
    // One pass over the window (through the anchor's index) counts both.
    Statement s(*db_, fmt::format("SELECT count(*) FILTER (WHERE NOT ({0}) AND ({1})), count(*) "
                                  "FILTER (WHERE {0}) FROM {2} WHERE {3}",
                                  sel.held, sel.pending, sel.from, sel.base));
    add(sel.pending_binds);
    add(sel.base_binds);
    int i = 1;
    for (const auto& v : binds) s.bind(i++, v);
    s.step();
    counts.matched = s.column_int(0);
    counts.held = s.column_int(1);
  }
  if (with_undated && whole_scope && census.exact) {
    counts.undated = census.undated_rows.value_or(0);
  } else if (with_undated) {
    // Undated rows within the rule's `where:` sort anywhere (NULL, '',
    // 'garbage', '2015-02-30'): the whole scope is read, anchor by anchor.
    Statement s(*db_, fmt::format("SELECT count(*) FROM {} WHERE ({}) AND {}({}) IS NULL", sel.from,
                                  sel.scope, day_function(rule.anchor_format), sel.anchor));
    int i = 1;
    for (const auto& v : sel.scope_binds) s.bind(i++, v);
    s.step();
    counts.undated = s.column_int(0);
  }
  return counts;
}

SqliteStore::BatchRead SqliteStore::fetch_batch(const Selection& sel,
                                                const std::vector<std::string>& columns,
                                                Cursor& cursor, int limit, BatchKeys* keys) {
  std::string where = sel.where;
  std::vector<Value> binds = sel.binds;
  bool by_row = cursor.order == BatchOrder::by_row;
  // Each batch resumes where the last one ended instead of re-reading the
  // rows it skipped (held, excluded, in conflict). Row values compare in
  // index order.
  if (by_row && cursor.ident) {
    where += fmt::format(" AND {} > ?", sel.ident);
    binds.push_back(*cursor.ident);
  } else if (!by_row && cursor.anchor) {
    where += fmt::format(" AND ({}, {}) > (?, ?)", sel.anchor, sel.ident);
    binds.push_back(*cursor.anchor);
    binds.push_back(*cursor.ident);
  }
  std::vector<std::string> cols{sel.ident, sel.anchor};
  cols.insert(cols.end(), columns.begin(), columns.end());
  std::string order = by_row ? sel.ident : fmt::format("{}, {}", sel.anchor, sel.ident);
  Statement s(*db_,
              fmt::format("SELECT {} FROM {} WHERE {} ORDER BY {} LIMIT {}", fmt::join(cols, ", "),
                          table_clause(sel, cursor.order), where, order, limit));
  for (std::size_t i = 0; i < binds.size(); ++i) s.bind(static_cast<int>(i + 1), binds[i]);
  BatchRead read;
  while (s.step()) {
    Row row{s.column(0), s.column(1), {}};
    for (std::size_t i = 0; i < columns.size(); ++i)
      row.values.push_back(s.column(static_cast<int>(i + 2)));
    cursor.anchor = row.anchor;
    cursor.ident = row.ident;
    ++read.count;
    if (!keys) {
      read.rows.push_back(std::move(row));
      continue;
    }
    read.null_key = read.null_key || std::holds_alternative<std::monostate>(row.values[0]);
    keys->add(key_text(row.values[0]));
    if (read.rows.size() < 2)
      read.rows.push_back(std::move(row));
    else
      read.rows[1] = std::move(row);
  }
  return read;
}

BatchOrder SqliteStore::choose_order(const Rule& rule, std::int64_t matched) {
  // The rowid span is a free estimate of the table's size; a WITHOUT ROWID
  // table is read in anchor order.
  if (ident_of(rule) != "t.rowid") return BatchOrder::by_anchor;
  Statement s(*db_,
              fmt::format("SELECT max(rowid) - min(rowid) + 1 FROM main.{}", quote(rule.table)));
  if (!s.step() || s.column_is_null(0)) return BatchOrder::by_anchor;
  // Past a tenth of the table, reading all of it once in row order costs
  // less than rewriting pages batch after batch.
  constexpr std::int64_t kRowOrderFraction = 10;
  return matched * kRowOrderFraction >= s.column_int(0) ? BatchOrder::by_row
                                                        : BatchOrder::by_anchor;
}

void SqliteStore::write_outbox(const AuditEntry& entry) {
  db_->exec(fmt::format(
      "CREATE TABLE IF NOT EXISTS main.{} (id INTEGER PRIMARY KEY, entry TEXT NOT NULL)",
      quote(kOutbox)));
  Statement s(*db_, fmt::format("INSERT INTO main.{} (entry) VALUES (?1)", quote(kOutbox)));
  s.bind(1, entry.to_json().dump());
  s.step();
  last_outbox_id_ = sqlite3_last_insert_rowid(db_->handle());
}

void SqliteStore::forget_outbox_rows() {
  if (settled_outbox_ids_.empty()) return;
  sqlite::Transaction tx(*db_);
  Statement s(*db_, fmt::format("DELETE FROM main.{} WHERE id = ?1", quote(kOutbox)));
  for (auto id : settled_outbox_ids_) {
    s.bind(1, id);
    s.step();
    s.reset();
  }
  tx.commit();
  settled_outbox_ids_.clear();
}

Result<int> SqliteStore::settle_outbox(AuditLog& audit) {
  if (!db_->table_exists(std::string(kOutbox))) return 0;
  std::vector<OutboxRow> rows;
  {
    Statement s(*db_, fmt::format("SELECT id, entry FROM main.{} ORDER BY id", quote(kOutbox)));
    while (s.step()) rows.push_back({s.column_int(0), s.column_text(1)});
  }
  auto appended = settle_outbox_rows(rows, audit, label(), settled_outbox_ids_);
  if (appended && *appended >= 0 && !rows.empty()) forget_outbox_rows();
  return appended;
}

// Acts with one statement on exactly the rows of a batch: the selection's
// own conditions, between the batch's first and last row in (anchor, ident)
// order. Inside the batch's transaction nothing else changes the table, so
// these are the rows just read; the caller checks the count.
// The table as a statement names it; in row order the anchor's index is
// kept out, so that the planner follows the row identity.
std::string SqliteStore::table_clause(const Selection& sel, BatchOrder order) {
  return order == BatchOrder::by_row ? sel.from + " NOT INDEXED" : sel.from;
}

std::pair<std::string, std::vector<Value>> SqliteStore::batch_range(const Selection& sel,
                                                                    const BatchRead& read,
                                                                    BatchOrder order) {
  const Row& first = read.first();
  const Row& last = read.last();
  if (order == BatchOrder::by_row)
    return {fmt::format("{} BETWEEN ? AND ?", sel.ident), {first.ident, last.ident}};
  // The plain bounds on the anchor let the planner scan just the batch's
  // slice of the index; the row values then cut it exactly.
  return {fmt::format("{0} BETWEEN ? AND ? AND ({0}, {1}) >= (?, ?) AND ({0}, {1}) <= (?, ?)",
                      sel.anchor, sel.ident),
          {first.anchor, last.anchor, first.anchor, first.ident, last.anchor, last.ident}};
}

std::int64_t SqliteStore::act_on_batch_range(const std::string& statement_head,
                                             const Selection& sel,
                                             const std::vector<Value>& head_binds,
                                             const BatchRead& read, BatchOrder order) {
  auto [range, range_binds] = batch_range(sel, read, order);
  Statement s(*db_, fmt::format("{} WHERE {} AND {}", statement_head, sel.where, range));
  int i = 1;
  for (const auto& v : head_binds) s.bind(i++, v);
  for (const auto& v : sel.binds) s.bind(i++, v);
  for (const auto& v : range_binds) s.bind(i++, v);
  s.step();
  auto changed = db_->changes();
  if (changed != read.count) {
    // Never expected inside the batch's own transaction; the caller's
    // transaction rolls back when this propagates.
    throw sqlite::SqliteError(
        1, fmt::format("a batch of {} rows changed {} instead; rolled back", read.count, changed));
  }
  return changed;
}

void SqliteStore::record_batch(BatchResult& result, AuditEntry entry, BatchKeys& digest) {
  if (result.affected == 0) return;
  entry.affected = result.affected;
  entry.keys_sha256 = digest.finish();
  write_outbox(entry);
  result.entry = std::move(entry);
}

// The batches of one stage, resuming after the last row each one read.
class SqliteBatches final : public Batches {
 public:
  SqliteBatches(SqliteStore& store, const StageWork& work, BatchOrder order)
      : store_(store), work_(work) {
    cursor_.order = order;
  }

  BatchResult next(int limit, AuditEntry entry) override {
    bool others_writing = store_.others_committed();
    BatchResult result = act(limit, std::move(entry));
    result.others_writing = others_writing;
    return result;
  }

 private:
  BatchResult act(int limit, AuditEntry entry) {
    const Rule& rule = *work_.rule;
    switch (work_.action) {
      case Action::erase:
        return store_.delete_batch(rule, work_.window, work_.place, limit, cursor_,
                                   std::move(entry), hold_source_of(work_));
      case Action::anonymize:
        return store_.anonymize_batch(rule, work_.window, limit, cursor_, std::move(entry));
      case Action::archive:
        return store_.archive_batch(rule, work_.window, dynamic_cast<SqliteStore&>(*work_.archive),
                                    limit, cursor_, std::move(entry));
    }
    return {};
  }

  SqliteStore& store_;
  StageWork work_;
  Cursor cursor_;
};

std::unique_ptr<Batches> SqliteStore::batches(const StageWork& work, std::int64_t matched) {
  return std::make_unique<SqliteBatches>(*this, work, choose_order(*work.rule, matched));
}

BatchResult SqliteStore::delete_batch(const Rule& rule, const DayWindow& window, Place place,
                                      int limit, Cursor& cursor, AuditEntry entry,
                                      const SqliteStore* hold_source) {
  BatchResult result;
  if (!db_->table_exists(rule.table)) return result;
  if (place == Place::archive) attach_live(hold_source);
  sqlite::Transaction tx(*db_);  // BEGIN IMMEDIATE: waits (busy_timeout) for the write lock
  auto lock_taken = std::chrono::steady_clock::now();
  Selection sel =
      select(rule, window, place, hold_source, Action::erase, fresh_census(rule, window));
  sel.ident = ident_of(rule);
  BatchKeys digest(options_.receipts);
  auto read = fetch_batch(sel, {"t." + quote(rule.key)}, cursor, limit, &digest);
  result.more = read.count == limit;
  if (read.count > 0) {
    digest.hash_in_background();  // while the DELETE runs
    result.affected =
        act_on_batch_range(fmt::format("DELETE FROM {}", table_clause(sel, cursor.order)), sel, {},
                           read, cursor.order);
    record_batch(result, std::move(entry), digest);
  }
  tx.commit();
  result.write_lock_held = held_since(lock_taken);
  db_->checkpoint_if_due();
  return result;
}

namespace {

// The SQL that anonymises one column, and the values it binds.
std::string anonymize_expression(const ColumnAnonymization& c, std::vector<Value>& binds) {
  std::string col = quote(c.column);
  using K = AnonymizeMethod::Kind;
  switch (c.method.kind) {
    case K::null:
      return "NULL";
    case K::value:
      binds.push_back(to_value(c.method.value));
      return "?";
    case K::hmac:
      return fmt::format("retentiond_hmac({})", col);
    case K::year:
      return fmt::format("retentiond_year({})", col);
    case K::month:
      return fmt::format("retentiond_month({})", col);
    case K::truncate:
      return fmt::format("substr({}, 1, {})", col, c.method.truncate);
  }
  return "NULL";
}

}  // namespace

BatchResult SqliteStore::anonymize_batch(const Rule& rule, const DayWindow& window, int limit,
                                         Cursor& cursor, AuditEntry entry) {
  BatchResult result;
  const Anonymization& a = *rule.anonymize;
  sqlite::Transaction tx(*db_);  // BEGIN IMMEDIATE: waits (busy_timeout) for the write lock
  auto lock_taken = std::chrono::steady_clock::now();
  Selection sel =
      select(rule, window, Place::live, nullptr, Action::anonymize, fresh_census(rule, window));
  sel.ident = ident_of(rule);
  std::vector<std::string> sets;
  std::vector<Value> set_binds;
  for (const auto& c : a.columns)
    sets.push_back(fmt::format("{} = {}", quote(c.column), anonymize_expression(c, set_binds)));
  if (a.mark) {
    sets.push_back(fmt::format("{} = ?", quote(*a.mark)));
    set_binds.push_back(entry.time);
  }
  BatchKeys digest(options_.receipts);
  auto read = fetch_batch(sel, {"t." + quote(rule.key)}, cursor, limit, &digest);
  if (read.count > 0) {
    digest.hash_in_background();  // while the UPDATE runs
    result.affected = act_on_batch_range(
        fmt::format("UPDATE {} SET {}", table_clause(sel, cursor.order), fmt::join(sets, ", ")),
        sel, set_binds, read, cursor.order);
  }
  result.more = read.count == limit;
  record_batch(result, std::move(entry), digest);
  tx.commit();
  result.write_lock_held = held_since(lock_taken);
  db_->checkpoint_if_due();
  return result;
}

bool SqliteStore::copy_batch(const Rule& rule, const DayWindow& window, const AnchorCensus* census,
                             SqliteStore& live, const std::vector<std::string>& names,
                             const BatchRead& read, BatchOrder order) {
  // A unique index on the key is what tells, by the count of rows inserted,
  // that none was there already; NULL keys are distinct to it.
  if (read.null_key || !db_->table_exists(rule.table) ||
      !db_->has_unique_index(rule.table, rule.key))
    return false;
  attach_live(&live);
  Selection sel = select(rule, window, Place::live, nullptr, Action::archive, census, kLiveSchema);
  sel.ident = live.ident_of(rule);
  auto [range, range_binds] = batch_range(sel, read, order);
  std::vector<std::string> from_live;
  for (const auto& n : names) from_live.push_back("t." + n);
  sqlite::Transaction tx(*db_);
  Statement copy(*db_,
                 fmt::format("INSERT OR IGNORE INTO main.{} ({}) SELECT {} FROM {} WHERE {} AND {}",
                             quote(rule.table), fmt::join(names, ", "), fmt::join(from_live, ", "),
                             table_clause(sel, order), sel.where, range));
  int i = 1;
  for (const auto& v : sel.binds) copy.bind(i++, v);
  for (const auto& v : range_binds) copy.bind(i++, v);
  copy.step();
  // Fewer: a key already there (a resumed move, a conflict) or a row the
  // archive's table refused; the transaction rolls back and the caller goes
  // row by row.
  if (db_->changes() != read.count) return false;
  tx.commit();  // durable (synchronous = FULL) before any row leaves the live store
  return true;
}

std::vector<bool> SqliteStore::copy_row_by_row(
    const Rule& rule, const std::vector<std::pair<std::string, std::string>>& columns,
    const std::vector<std::string>& names, std::size_t key_pos, const std::vector<Row>& rows) {
  std::vector<bool> conflict(rows.size(), false);
  sqlite::Transaction tx(*db_);
  if (!db_->table_exists(rule.table)) {
    std::vector<std::string> defs;
    for (const auto& [name, type] : columns)
      defs.push_back(type.empty() ? quote(name) : quote(name) + " " + type);
    db_->exec(fmt::format("CREATE TABLE main.{} ({})", quote(rule.table), fmt::join(defs, ", ")));
    // Unique: the key identifies a row, and an insert that meets its key
    // already there is how an interrupted move is recognised.
    db_->exec(fmt::format("CREATE UNIQUE INDEX main.{} ON {} ({})",
                          quote("retentiond_" + rule.table + "_" + rule.key), quote(rule.table),
                          quote(rule.key)));
    if (rule.anchor != rule.key) {
      db_->exec(fmt::format("CREATE INDEX main.{} ON {} ({})",
                            quote("retentiond_" + rule.table + "_" + rule.anchor),
                            quote(rule.table), quote(rule.anchor)));
    }
  }
  Statement find(*db_, fmt::format("SELECT {} FROM main.{} WHERE {} IS ?1", fmt::join(names, ", "),
                                   quote(rule.table), quote(rule.key)));
  std::vector<std::string> marks(names.size(), "?");
  // With a unique index on the key, the insert itself says whether the key
  // is new (the common case, one statement a row); otherwise, and for NULL
  // keys (distinct to a unique index), the archive is searched first.
  bool unique_key = db_->has_unique_index(rule.table, rule.key);
  std::string insert_sql = fmt::format("INTO main.{} ({}) VALUES ({})", quote(rule.table),
                                       fmt::join(names, ", "), fmt::join(marks, ", "));
  // OR IGNORE also ignores every other constraint the archive's table may
  // have (NOT NULL, CHECK, another UNIQUE): a row it skipped and that the
  // search below does not find is inserted again without it, so that the
  // archive's refusal fails the batch instead of losing the row.
  Statement insert_or_ignore(*db_, "INSERT OR IGNORE " + insert_sql);
  Statement insert(*db_, "INSERT " + insert_sql);
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const auto& values = rows[r].values;
    if (unique_key && !std::holds_alternative<std::monostate>(values[key_pos])) {
      for (std::size_t i = 0; i < values.size(); ++i)
        insert_or_ignore.bind(static_cast<int>(i + 1), values[i]);
      insert_or_ignore.step();
      insert_or_ignore.reset();
      if (db_->changes() > 0) continue;  // copied
    }
    find.bind(1, values[key_pos]);
    bool same = false, other = false;
    while (find.step()) {
      bool equal = true;
      for (std::size_t i = 0; i < values.size() && equal; ++i)
        equal = find.column(static_cast<int>(i)) == values[i];
      (equal ? same : other) = true;
    }
    find.reset();
    if (same) continue;  // copied by an interrupted sweep: only the delete is left to do
    if (other) {
      conflict[r] = true;  // never overwrite what the archive holds
      continue;
    }
    for (std::size_t i = 0; i < values.size(); ++i) insert.bind(static_cast<int>(i + 1), values[i]);
    insert.step();
    insert.reset();
  }
  tx.commit();  // durable (synchronous = FULL) before any row leaves the live store
  return conflict;
}

BatchResult SqliteStore::archive_batch(const Rule& rule, const DayWindow& window,
                                       SqliteStore& archive, int limit, Cursor& cursor,
                                       AuditEntry entry) {
  BatchResult result;
  auto columns = db_->columns(rule.table);
  std::vector<std::string> names, selected;
  for (const auto& [name, type] : columns) {
    names.push_back(quote(name));
    selected.push_back("t." + quote(name));
  }
  auto key_pos =
      static_cast<std::size_t>(std::find_if(columns.begin(), columns.end(),
                                            [&](const auto& c) { return c.first == rule.key; }) -
                               columns.begin());
  if (key_pos == columns.size())
    throw sqlite::SqliteError(1, fmt::format("table {} has no column {}", rule.table, rule.key));
  // The live store's write lock is taken first and held until the rows are
  // gone: nobody changes them between the copy and the delete.
  sqlite::Transaction live_tx(*db_);
  auto lock_taken = std::chrono::steady_clock::now();
  const AnchorCensus* census = fresh_census(rule, window);
  Selection sel = select(rule, window, Place::live, nullptr, Action::archive, census);
  sel.ident = ident_of(rule);
  Cursor start = cursor;
  // The keys first: a batch whose rows are all new to the archive is copied
  // by the archive's connection in one statement, without the rows passing
  // through here.
  auto digest = std::make_unique<BatchKeys>(options_.receipts);
  auto read = fetch_batch(sel, {"t." + quote(rule.key)}, cursor, limit, digest.get());
  result.more = read.count == limit;
  if (read.count == 0) {
    live_tx.commit();
    result.write_lock_held = held_since(lock_taken);
    return result;
  }
  const bool copied = archive.copy_batch(rule, window, census, *this, names, read, cursor.order);
  const auto& rows = read.rows;  // every row when not copied in one statement
  std::vector<bool> conflict;
  if (!copied) {
    // Row by row: the same rows read again, every column, and each one
    // checked against what the archive holds under its key.
    cursor = start;
    digest = std::make_unique<BatchKeys>(options_.receipts);
    read = fetch_batch(sel, selected, cursor, limit);
    conflict = archive.copy_row_by_row(rule, columns, names, key_pos, rows);
    result.conflicts = std::count(conflict.begin(), conflict.end(), true);
  }

  if (result.conflicts == 0) {
    if (!copied)
      for (const auto& row : rows) digest->add(key_text(row.values[key_pos]));
    digest->hash_in_background();  // while the DELETE runs
    result.affected =
        act_on_batch_range(fmt::format("DELETE FROM {}", table_clause(sel, cursor.order)), sel, {},
                           read, cursor.order);
  } else {
    // Conflicting rows stay: delete the others one by one.
    Statement del(*db_, fmt::format("DELETE FROM main.{} WHERE {} = ?1", quote(rule.table),
                                    sel.ident.substr(2)));
    for (std::size_t r = 0; r < rows.size(); ++r) {
      if (conflict[r]) continue;
      del.bind(1, rows[r].ident);
      del.step();
      del.reset();
      if (db_->changes() > 0) {
        ++result.affected;
        digest->add(key_text(rows[r].values[key_pos]));
      }
    }
  }
  record_batch(result, std::move(entry), *digest);
  live_tx.commit();
  result.write_lock_held = held_since(lock_taken);
  db_->checkpoint_if_due();
  archive.db().checkpoint_if_due();
  return result;
}

}  // namespace retentiond
