#include "stores/postgresql/postgres_store.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <regex>
#include <set>

#include "policy/conninfo.hpp"
#include "stores/batch_keys.hpp"
#include "stores/outbox.hpp"
#include "util/digest.hpp"

namespace retentiond {
namespace {

using pq::literal;
using pq::Param;
using pq::quote;

// A whole partition is dropped only if its lock comes at once: waiting for
// the parent's exclusive lock would queue the application's queries behind
// it. Otherwise its rows are deleted batch by batch like any others.
constexpr std::chrono::milliseconds kPartitionLockWait{200};

std::string ms(std::chrono::milliseconds d) { return fmt::format("{}ms", d.count()); }

// The rows of a batch are named by ctid as `ctid = ANY(ARRAY(SELECT
// unnest($1::tid[])))`: with the array as a plain parameter the planner
// estimates it element by element and, past a few thousand ctids, prefers a
// sequential scan of the whole table to a TID scan.
//
// A text[] literal of optional values (NULL unquoted).
std::string array_literal(const std::vector<std::optional<std::string>>& items) {
  std::string out = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out += ',';
    if (!items[i]) {
      out += "NULL";
      continue;
    }
    out += '"';
    for (char c : *items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string array_literal(const std::vector<std::string>& items) {
  std::vector<std::optional<std::string>> all(items.begin(), items.end());
  return array_literal(all);
}

// A policy value (`where`, `{ value: X }`) as a quoted literal of no type,
// numbers included: PostgreSQL then reads it as the column's type, as SQLite
// applies the column's affinity. A bare 75 would be an integer, and
// `where: { department: 75 }` on a text column an error (text = integer).
std::string scalar_literal(const Scalar& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return "NULL";
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return literal(std::to_string(x));
        else if constexpr (std::is_same_v<T, double>)
          return literal(fmt::format("{}", x));
        else
          return literal(x);
      },
      v);
}

// An instant as PostgreSQL reads it, in UTC.
std::string utc_text(std::chrono::sys_seconds t, bool with_offset) {
  return date::format(with_offset ? "%F %T+00" : "%F %T", t);
}

std::chrono::microseconds held_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

bool is_text_type(const std::string& t) {
  return t == "text" || t == "varchar" || t == "bpchar" || t == "name";
}
bool is_integer_type(const std::string& t) { return t == "int2" || t == "int4" || t == "int8"; }

}  // namespace

std::string postgres_store_label(const StoreSpec& spec) {
  return fmt::format("store '{}' (postgresql: {}, schema {})", spec.name,
                     redacted_conninfo(spec.dsn), spec.schema);
}

const PostgresStore::Column* PostgresStore::TableInfo::column(const std::string& name) const {
  for (const auto& c : columns)
    if (c.name == name) return &c;
  return nullptr;
}

PostgresStore::PostgresStore(const StoreSpec& spec, const StoreOptions& options)
    : spec_(spec), options_(options) {
  conn_ = std::make_unique<pq::Connection>(spec.dsn, label());
  // Names are always written in full ("schema"."table"); an empty search
  // path keeps a table or function of the same name elsewhere out of reach.
  conn_->run("SET search_path = ''; SET TIME ZONE 'UTC'");
  conn_->exec(fmt::format("SET lock_timeout = {}", literal(ms(options.busy_timeout))));
  if (options.dry_run) {
    conn_->run("SET default_transaction_read_only = on");
  } else {
    // A batch is durable before the audit log says so, and an archive copy
    // before its rows leave the live store, whatever the server's default.
    conn_->run("SET synchronous_commit = on");
  }
}

std::string PostgresStore::qualified(const std::string& table) const {
  return quote(spec_.schema) + "." + quote(table);
}

const PostgresStore::TableInfo& PostgresStore::table(const std::string& name) {
  if (auto it = tables_.find(name); it != tables_.end()) return it->second;
  TableInfo info;
  auto r = conn_->exec(
      "SELECT c.relkind::text, a.attname::text, format_type(a.atttypid, a.atttypmod), "
      "t.typname::text FROM pg_catalog.pg_class c "
      "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT "
      "a.attisdropped "
      "LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
      "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p') ORDER BY a.attnum",
      {spec_.schema, name});
  for (int i = 0; i < r.rows(); ++i) {
    info.exists = true;
    info.partitioned = r.text(i, 0) == "p";
    if (!r.is_null(i, 1)) info.columns.push_back({r.text(i, 1), r.text(i, 2), r.text(i, 3)});
  }
  return tables_[name] = std::move(info);
}

PostgresStore::AnchorKind PostgresStore::anchor_kind(const Rule& rule) {
  const Column* c = table(rule.table).column(rule.anchor);
  if (!c) return AnchorKind::unusable;
  const std::string& t = c->type_name;
  if (t == "date") return AnchorKind::date;
  if (t == "timestamp") return AnchorKind::timestamp;
  if (t == "timestamptz") return AnchorKind::timestamptz;
  if (is_text_type(t)) return AnchorKind::text;
  if (is_integer_type(t)) return AnchorKind::integer;
  return AnchorKind::unusable;
}

// What a stage acts on, in SQL on the alias t. For date and timestamp[tz]
// and integer anchors `window` is exact; for text anchors it is the index
// range that holds every readable anchor of the window, and in_window()
// decides each row as SQLite's day functions do.
struct PostgresStore::Selection {
  const Rule* rule = nullptr;
  AnchorKind kind = AnchorKind::date;
  DayWindow days;
  const date::time_zone* zone = nullptr;
  std::string table;   // "schema"."table"
  std::string anchor;  // t."anchor"
  std::string anchor_type;
  std::string key;  // t."key"
  std::string key_type;
  std::string window;
  std::string undated;  // the anchor cannot be read (exact kinds)
  std::string scope = "TRUE";
  std::string held = "FALSE";
  std::string pending = "TRUE";
  std::vector<Param> params;  // $1: the hold keys of another database, if any

  bool exact() const { return kind != AnchorKind::text; }
  std::string where() const {
    return fmt::format("({}) AND ({}) AND NOT ({}) AND ({})", window, scope, held, pending);
  }
};

PostgresStore::Selection PostgresStore::select(const StageWork& work) {
  const Rule& rule = *work.rule;
  Selection sel;
  sel.rule = &rule;
  sel.kind = anchor_kind(rule);
  sel.days = work.window;
  sel.zone = options_.zone;
  sel.table = qualified(rule.table);
  sel.anchor = "t." + quote(rule.anchor);
  const TableInfo& info = table(rule.table);
  if (const Column* c = info.column(rule.anchor)) sel.anchor_type = c->type;
  if (const Column* c = info.column(rule.key)) sel.key_type = c->type;
  sel.key = "t." + quote(rule.key);
  if (sel.kind == AnchorKind::unusable) {
    throw StoreError(StoreError::Kind::unavailable,
                     fmt::format("the anchor column '{}' of table {} is of type {}, which cannot "
                                 "be read as a date; accepted: date, timestamp, timestamptz, or "
                                 "text and integer with anchor_format",
                                 rule.anchor, sel.table, sel.anchor_type));
  }
  using date::days;
  const date::time_zone& zone = *options_.zone;
  std::vector<std::string> conds;
  const DayWindow& w = work.window;
  auto start_of = [&](Day d) { return start_of_local_day(d, zone); };
  switch (sel.kind) {
    case AnchorKind::date:
      conds.push_back(w.after ? fmt::format("{} > '{}'::date", sel.anchor, format_day(*w.after))
                              : fmt::format("{} > '-infinity'::date", sel.anchor));
      conds.push_back(fmt::format("{} <= '{}'::date", sel.anchor, format_day(w.through)));
      sel.undated = fmt::format("{0} IS NULL OR {0} IN ('infinity', '-infinity')", sel.anchor);
      break;
    case AnchorKind::timestamp:
    case AnchorKind::timestamptz: {
      bool tz = sel.kind == AnchorKind::timestamptz;
      std::string type = tz ? "timestamptz" : "timestamp";
      conds.push_back(w.after ? fmt::format("{} >= '{}'::{}", sel.anchor,
                                            utc_text(start_of(*w.after + days{1}), tz), type)
                              : fmt::format("{} > '-infinity'::{}", sel.anchor, type));
      conds.push_back(fmt::format("{} < '{}'::{}", sel.anchor,
                                  utc_text(start_of(w.through + days{1}), tz), type));
      sel.undated = fmt::format("{0} IS NULL OR {0} IN ('infinity', '-infinity')", sel.anchor);
      break;
    }
    case AnchorKind::integer:
      if (w.after)
        conds.push_back(fmt::format("{} >= {}", sel.anchor,
                                    start_of(*w.after + days{1}).time_since_epoch().count()));
      conds.push_back(fmt::format("{} < {}", sel.anchor,
                                  start_of(w.through + days{1}).time_since_epoch().count()));
      sel.undated = fmt::format("{} IS NULL", sel.anchor);
      break;
    case AnchorKind::text:
      // The same margins as on SQLite: a datetime's local day may differ
      // from its text's by the zone's offset.
      if (rule.anchor_format == AnchorFormat::datetime) {
        if (w.after)
          conds.push_back(fmt::format("{} >= '{}'", sel.anchor, format_day(*w.after - days{2})));
        conds.push_back(fmt::format("{} < '{}'", sel.anchor, format_day(w.through + days{3})));
      } else {
        if (w.after)
          conds.push_back(fmt::format("{} >= '{}'", sel.anchor, format_day(*w.after + days{1})));
        conds.push_back(fmt::format("{} < '{}'", sel.anchor, format_day(w.through + days{1})));
      }
      break;
    case AnchorKind::unusable:
      break;
  }
  sel.window = fmt::format("{}", fmt::join(conds, " AND "));

  std::vector<std::string> scope;
  for (const auto& c : rule.where) {
    std::vector<std::string> alternatives, values;
    for (const auto& v : c.values) {
      if (std::holds_alternative<std::monostate>(v))
        alternatives.push_back(fmt::format("t.{} IS NULL", quote(c.column)));
      else
        values.push_back(scalar_literal(v));
    }
    if (!values.empty())
      alternatives.insert(alternatives.begin(),
                          fmt::format("t.{} IN ({})", quote(c.column), fmt::join(values, ", ")));
    scope.push_back(fmt::format("({})", fmt::join(alternatives, " OR ")));
  }
  if (!scope.empty()) sel.scope = fmt::format("{}", fmt::join(scope, " AND "));
  sel.held = held_condition(rule, work.place, work.live, sel);
  if (work.action == Action::anonymize) sel.pending = pending_condition(rule);
  return sel;
}

// Never NULL: a hold errs on the side of keeping, as on SQLite (NULL, 0,
// empty text and the usual words for "no" do not hold; anything else does).
std::string PostgresStore::held_condition(const Rule& rule, Place place, Store* live,
                                          Selection& sel) {
  if (!rule.hold) return "FALSE";
  if (auto* col = std::get_if<HoldByColumn>(&*rule.hold)) {
    const Column* c = table(rule.table).column(col->column);
    std::string v = "t." + quote(col->column);
    std::string type = c ? c->type_name : "text";
    if (type == "bool") return fmt::format("COALESCE({}, FALSE)", v);
    if (is_integer_type(type) || type == "numeric" || type == "float4" || type == "float8")
      return fmt::format("COALESCE({} <> 0, FALSE)", v);
    if (is_text_type(type)) {
      return fmt::format(
          "COALESCE(regexp_replace(lower({}), '\\s', '', 'g') NOT IN ('', '0', 'false', 'f', "
          "'no', 'n', 'off'), FALSE)",
          v);
    }
    return fmt::format("({} IS NOT NULL)", v);
  }
  const auto& t = std::get<HoldByTable>(*rule.hold);
  auto* source = place == Place::archive ? dynamic_cast<PostgresStore*>(live) : this;
  if (!source) source = this;
  if (source == this || same_database(*source)) {
    // Rows in an archive are held by the list kept in the live store.
    return fmt::format("EXISTS (SELECT 1 FROM {} AS h WHERE h.{} = {})", source->qualified(t.table),
                       quote(t.key), sel.key);
  }
  // The list is in another database: its keys come along as a parameter.
  auto r = source->connection().exec(
      fmt::format("SELECT DISTINCT h.{}::text FROM {} AS h WHERE "
                  "h.{} IS NOT NULL",
                  quote(t.key), source->qualified(t.table), quote(t.key)));
  std::vector<std::string> keys;
  for (int i = 0; i < r.rows(); ++i) keys.push_back(r.text(i, 0));
  sel.params = {array_literal(keys)};
  return fmt::format("{}::text = ANY($1::text[])", sel.key);
}

// Not yet anonymised: the mark is unset, or some column still differs from
// what anonymisation writes (every method but hmac, which needs a mark, is
// idempotent).
std::string PostgresStore::pending_condition(const Rule& rule) {
  const Anonymization& a = *rule.anonymize;
  if (a.mark) return fmt::format("t.{} IS NULL", quote(*a.mark));
  std::vector<std::string> done;
  for (const auto& c : a.columns) {
    if (c.method.kind == AnonymizeMethod::Kind::hmac) return "TRUE";
    done.push_back(fmt::format("t.{} IS NOT DISTINCT FROM {}", quote(c.column),
                               anonymize_expression(rule, c)));
  }
  return fmt::format("NOT ({})", fmt::join(done, " AND "));
}

// What a column becomes, in SQL over t; hmac is computed by retentiond
// (the same value as on SQLite), so it has no expression here.
std::string PostgresStore::anonymize_expression(const Rule& rule, const ColumnAnonymization& c) {
  std::string col = "t." + quote(c.column);
  const Column* info = table(rule.table).column(c.column);
  std::string type = info ? info->type_name : "text";
  using K = AnonymizeMethod::Kind;
  switch (c.method.kind) {
    case K::null:
      return "NULL";
    case K::value:
      return scalar_literal(c.method.value);
    case K::truncate:
      return fmt::format("left({}, {})", col, c.method.truncate);
    case K::hmac:
      return col;
    case K::year:
    case K::month: {
      bool month = c.method.kind == K::month;
      std::string unit = month ? "'month'" : "'year'";
      if (type == "date") return fmt::format("date_trunc({}, {})::date", unit, col);
      if (type == "timestamp") return fmt::format("date_trunc({}, {})", unit, col);
      if (type == "timestamptz")
        return fmt::format("date_trunc({}, {}, {})", unit, col,
                           literal(options_.zone ? options_.zone->name() : "UTC"));
      if (is_integer_type(type)) {
        return fmt::format(
            "extract(epoch FROM date_trunc({}, to_timestamp({}) AT TIME ZONE 'UTC'))::bigint", unit,
            col);
      }
      // Text keeps "YYYY" or "YYYY-MM", as on SQLite; what cannot be read
      // as a date is removed.
      return month ? fmt::format("CASE WHEN {0} ~ '^[0-9]{{4}}-[0-9]{{2}}' THEN left({0}, 7) END",
                                 col)
                   : fmt::format("CASE WHEN {0} ~ '^[0-9]{{4}}' THEN left({0}, 4) END", col);
    }
  }
  return "NULL";
}

bool PostgresStore::in_window(const Selection& sel,
                              const std::optional<std::string>& anchor) const {
  if (sel.exact()) return true;
  if (!anchor) return false;
  auto day = anchor_day(AnchorValue{*anchor}, sel.rule->anchor_format, *sel.zone);
  return day && *day <= sel.days.through && (!sel.days.after || *day > *sel.days.after);
}

Counts PostgresStore::count(const StageWork& work, bool with_undated) {
  Counts counts;
  const Rule& rule = *work.rule;
  if (!table(rule.table).exists) return counts;  // an archive table not created yet
  Selection sel = select(work);
  pq::Transaction tx(*conn_, pq::Transaction::Mode::read_only);
  if (sel.exact()) {
    auto r =
        conn_->exec(fmt::format("SELECT count(*) FILTER (WHERE NOT ({0}) AND ({1})), "
                                "count(*) FILTER (WHERE {0}) FROM {2} AS t WHERE ({3}) AND ({4})",
                                sel.held, sel.pending, sel.table, sel.window, sel.scope),
                    sel.params);
    counts.matched = r.integer(0, 0);
    counts.held = r.integer(0, 1);
    if (with_undated) {
      auto u = conn_->exec(fmt::format("SELECT count(*) FROM {} AS t WHERE ({}) AND ({})",
                                       sel.table, sel.scope, sel.undated));
      counts.undated = u.integer(0, 0);
    }
  } else {
    // Each distinct anchor text once, read by retentiond's calendar.
    auto r = conn_->exec(
        fmt::format("SELECT {0}, {1}, {2}, count(*) FROM {3} AS t WHERE {4} GROUP BY 1, 2, 3",
                    sel.anchor, sel.held, sel.pending, sel.table,
                    with_undated ? sel.scope : fmt::format("({}) AND ({})", sel.window, sel.scope)),
        sel.params);
    for (int i = 0; i < r.rows(); ++i) {
      auto anchor = r.value(i, 0);
      std::int64_t n = r.integer(i, 3);
      if (!anchor || !anchor_day(AnchorValue{*anchor}, rule.anchor_format, *options_.zone)) {
        counts.undated += with_undated ? n : 0;
        continue;
      }
      if (!in_window(sel, anchor)) continue;
      if (r.text(i, 1) == "t")
        counts.held += n;
      else if (r.text(i, 2) == "t")
        counts.matched += n;
    }
  }
  tx.commit();
  return counts;
}

void PostgresStore::begin_batch(pq::Transaction&) {
  // A statement that runs past three lock waits is not a short batch any
  // more: it is stopped and rolled back, and the sweep ends busy (75).
  conn_->exec(fmt::format("SET LOCAL statement_timeout = {}",
                          literal(ms(options_.busy_timeout * 3 + std::chrono::seconds{1}))));
}

void PostgresStore::ensure_outbox() {
  if (outbox_ready_) return;
  auto r = conn_->exec("SELECT to_regclass('retentiond.outbox') IS NOT NULL");
  if (r.text(0, 0) != "t") {
    pq::Transaction tx(*conn_);
    // Daemons starting together create it once.
    conn_->exec("SELECT pg_advisory_xact_lock(hashtext('retentiond'), 0)");
    conn_->run(
        "CREATE SCHEMA IF NOT EXISTS retentiond; "
        "CREATE TABLE IF NOT EXISTS retentiond.outbox (id bigserial PRIMARY KEY, "
        "owner text NOT NULL, entry text NOT NULL)");
    tx.commit();
  }
  outbox_ready_ = true;
}

void PostgresStore::write_outbox(const AuditEntry& entry) {
  auto r = conn_->exec("INSERT INTO retentiond.outbox (owner, entry) VALUES ($1, $2) RETURNING id",
                       {options_.owner, entry.to_json().dump()});
  last_outbox_id_ = r.integer(0, 0);
}

void PostgresStore::forget_outbox_rows() {
  if (logged_outbox_ids_.empty()) return;
  std::vector<std::string> ids;
  for (auto id : logged_outbox_ids_) ids.push_back(std::to_string(id));
  conn_->exec("DELETE FROM retentiond.outbox WHERE id = ANY($1::bigint[])", {array_literal(ids)});
  logged_outbox_ids_.clear();
}

Result<int> PostgresStore::settle_outbox(AuditLog& audit) {
  auto exists = conn_->exec("SELECT to_regclass('retentiond.outbox') IS NOT NULL");
  if (exists.text(0, 0) != "t") return 0;
  // Only this installation's rows: another daemon's are its own to settle.
  auto r = conn_->exec("SELECT id, entry FROM retentiond.outbox WHERE owner = $1 ORDER BY id",
                       {options_.owner});
  std::vector<OutboxRow> rows;
  for (int i = 0; i < r.rows(); ++i) rows.push_back({r.integer(i, 0), r.text(i, 1)});
  auto appended = settle_outbox_rows(rows, audit, label(), logged_outbox_ids_);
  if (appended && !rows.empty()) forget_outbox_rows();
  return appended;
}

namespace {

class AdvisoryClaim final : public Store::Claim {
 public:
  AdvisoryClaim(pq::Connection& c, std::string key) : c_(c), key_(std::move(key)) {}
  ~AdvisoryClaim() override {
    try {
      c_.exec("SELECT pg_advisory_unlock(hashtext('retentiond'), hashtext($1))", {key_});
    } catch (const StoreError&) {
      // The session is gone, and its locks with it.
    }
  }

 private:
  pq::Connection& c_;
  std::string key_;
};

}  // namespace

std::unique_ptr<Store::Claim> PostgresStore::claim(const StageWork& work) {
  // One key per table and rule stage: two daemons never act on the same
  // rows at once, and a rule's stages on one table never overlap anyway.
  std::string key = fmt::format("{}/{}/{}", qualified(work.rule->table), work.rule->name,
                                work.place == Place::live ? "live" : "archive");
  auto r = conn_->exec("SELECT pg_try_advisory_lock(hashtext('retentiond'), hashtext($1))", {key});
  if (r.text(0, 0) != "t") return nullptr;
  return std::make_unique<AdvisoryClaim>(*conn_, key);
}

std::optional<std::string> PostgresStore::refusal(const Rule& rule, Action action) {
  std::string rel = qualified(rule.table);
  bool updates = action == Action::anonymize;
  // Triggers on the table or its partitions that fire on the change.
  auto triggers = conn_->exec(
      "SELECT t.tgname::text, t.tgrelid::regclass::text FROM pg_catalog.pg_trigger t "
      "WHERE NOT t.tgisinternal AND (t.tgtype & $2::int) <> 0 AND (t.tgrelid = $1::regclass OR "
      "t.tgrelid IN (SELECT inhrelid FROM pg_catalog.pg_inherits WHERE inhparent = "
      "$1::regclass))",
      {rel, updates ? "16" : "8"});
  if (triggers.rows() > 0) {
    return fmt::format(
        "trigger '{}' on {} fires on {} and would change data no rule names; drop the trigger or "
        "sweep this table another way",
        triggers.text(0, 0), triggers.text(0, 1), updates ? "UPDATE" : "DELETE");
  }
  auto fks = conn_->exec(
      fmt::format("SELECT conname::text, conrelid::regclass::text FROM pg_catalog.pg_constraint "
                  "WHERE contype = 'f' AND confrelid = $1::regclass AND {} IN ('c', 'n', 'd')",
                  updates ? "confupdtype" : "confdeltype"),
      {rel});
  if (fks.rows() > 0) {
    return fmt::format(
        "foreign key '{}' of {} would {} its rows along with this table's; no rule names them",
        fks.text(0, 0), fks.text(0, 1), updates ? "change" : "delete or change");
  }
  if (action == Action::archive) {
    // The key must identify a row: the archive recognises a resumed move by it.
    auto unique = conn_->exec(
        "SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique "
        "AND i.indpred IS NULL AND i.indexprs IS NULL AND (SELECT array_agg(a.attname::text) FROM "
        "pg_catalog.pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) "
        "<@ ARRAY[$2, $3] AND $2 = ANY(SELECT a.attname::text FROM pg_catalog.pg_attribute a "
        "WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))",
        {rel, rule.key, rule.anchor});
    if (unique.rows() == 0) {
      return fmt::format(
          "archive needs a key that identifies one row, but {} has no unique index on '{}' "
          "(CREATE UNIQUE INDEX ON {} ({}))",
          rel, rule.key, rel, quote(rule.key));
    }
  }
  return std::nullopt;
}

void PostgresStore::create_archive_table(const Rule& rule, PostgresStore& live) {
  if (table(rule.table).exists) return;
  const TableInfo& source = live.table(rule.table);
  std::vector<std::string> defs;
  for (const auto& c : source.columns) defs.push_back(quote(c.name) + " " + c.type);
  pq::Transaction tx(*conn_);
  conn_->exec(fmt::format("CREATE SCHEMA IF NOT EXISTS {}", quote(spec_.schema)));
  conn_->exec(fmt::format("CREATE TABLE IF NOT EXISTS {} ({})", qualified(rule.table),
                          fmt::join(defs, ", ")));
  // Unique: the key identifies a row, and finding it already there is how an
  // interrupted move is recognised.
  conn_->exec(fmt::format("CREATE UNIQUE INDEX IF NOT EXISTS {} ON {} ({})",
                          quote("retentiond_" + rule.table + "_" + rule.key), qualified(rule.table),
                          quote(rule.key)));
  if (rule.anchor != rule.key) {
    conn_->exec(fmt::format("CREATE INDEX IF NOT EXISTS {} ON {} ({})",
                            quote("retentiond_" + rule.table + "_" + rule.anchor),
                            qualified(rule.table), quote(rule.anchor)));
  }
  tx.commit();
  tables_.erase(rule.table);
}

// ---------------------------------------------------------------------------
// Batches

class PostgresBatches final : public Batches {
 public:
  PostgresBatches(PostgresStore& store, const StageWork& work)
      : store_(store), work_(work), sel_(store.select(work)) {
    const Rule& rule = *work.rule;
    store_.ensure_outbox();
    if (work.action == Action::archive) {
      archive_ = dynamic_cast<PostgresStore*>(work.archive);
      archive_->create_archive_table(rule, store_);
      for (const auto& c : store_.table(rule.table).columns) columns_.push_back(quote(c.name));
    }
    if (work.action == Action::anonymize) {
      for (const auto& c : rule.anonymize->columns)
        if (c.method.kind == AnonymizeMethod::Kind::hmac) hmac_columns_.push_back(c.column);
    }
    if (work.action == Action::erase && work.place == Place::live &&
        store_.table(rule.table).partitioned && sel_.kind != AnchorKind::text) {
      find_droppable_partitions();
    }
  }

  BatchResult next(int limit, AuditEntry entry) override {
    while (!partitions_.empty()) {
      std::string part = partitions_.back();
      partitions_.pop_back();
      if (auto dropped = drop_partition(part, entry)) return std::move(*dropped);
    }
    BatchResult result = act(limit, std::move(entry));
    if (!result.more && phase_ == Phase::skip_locked) {
      // Rows the application held locked were skipped: once more, waiting
      // for them up to busy_timeout (then the sweep ends busy, 75).
      phase_ = Phase::wait;
      cursor_.reset();
      result.more = true;
    }
    return result;
  }

 private:
  using AnchorKind = PostgresStore::AnchorKind;
  enum class Phase { skip_locked, wait };

  struct Row {
    std::string partition;  // regclass text of the table the row is in
    std::string oid;
    std::string ctid;
    std::optional<std::string> anchor;
    std::optional<std::string> key;
    std::vector<std::optional<std::string>> extra;  // hmac inputs, or the row as jsonb
  };

  // Where the next batch starts: at the last anchor read, leaving out the
  // rows read there that were not acted on (archive conflicts, text anchors
  // outside the window). Rows acted on have left the selection by
  // themselves. Batches follow the anchor's index alone, with no sort of the
  // window behind the LIMIT.
  struct CursorPos {
    std::string anchor;
    std::vector<std::string> passed;  // "tableoid:ctid" of rows left at `anchor`
  };

  pq::Connection& conn() { return store_.connection(); }

  std::vector<Row> fetch(int limit) {
    std::vector<std::string> cols{"t.tableoid::regclass::text", "t.tableoid::oid::text",
                                  "t.ctid::text", sel_.anchor + "::text", sel_.key + "::text"};
    for (const auto& c : hmac_columns_) cols.push_back(fmt::format("t.{}::text", quote(c)));
    bool copy_rows = archive_ && !store_.same_database(*archive_);
    if (copy_rows) cols.push_back("to_jsonb(t)::text");
    std::string where = sel_.where();
    std::vector<Param> params = sel_.params;
    if (cursor_) {
      std::string a = fmt::format("{}::{}", literal(cursor_->anchor), sel_.anchor_type);
      where += fmt::format(" AND {} >= {}", sel_.anchor, a);
      if (!cursor_->passed.empty()) {
        params.push_back(array_literal(cursor_->passed));
        where += fmt::format(
            " AND NOT ({} = {} AND (t.tableoid::text || ':' || t.ctid::text) = ANY(${}::text[]))",
            sel_.anchor, a, params.size());
      }
    }
    auto r = conn().exec(fmt::format("SELECT {} FROM {} AS t WHERE {} ORDER BY {} LIMIT {} "
                                     "FOR UPDATE OF t{}",
                                     fmt::join(cols, ", "), sel_.table, where, sel_.anchor, limit,
                                     phase_ == Phase::skip_locked ? " SKIP LOCKED" : ""),
                         params);
    std::vector<Row> rows;
    for (int i = 0; i < r.rows(); ++i) {
      Row row{r.text(i, 0), r.text(i, 1), r.text(i, 2), r.value(i, 3), r.value(i, 4), {}};
      for (int c = 5; c < r.columns(); ++c) row.extra.push_back(r.value(i, c));
      rows.push_back(std::move(row));
    }
    return rows;
  }

  // After a batch: `acted` are the rows it changed.
  void advance(const std::vector<Row>& rows, const std::set<const Row*>& acted) {
    if (rows.empty()) return;
    std::string last = rows.back().anchor.value_or("");
    if (!cursor_ || cursor_->anchor != last) cursor_ = CursorPos{last, {}};
    for (const auto& r : rows)
      if (r.anchor.value_or("") == last && !acted.count(&r))
        cursor_->passed.push_back(r.oid + ":" + r.ctid);
  }

  // The rows grouped by the (partition) table they are in.
  static std::map<std::string, std::vector<const Row*>> by_partition(
      const std::vector<const Row*>& rows) {
    std::map<std::string, std::vector<const Row*>> groups;
    for (const Row* r : rows) groups[r->partition].push_back(r);
    return groups;
  }

  static std::string ctids(const std::vector<const Row*>& rows) {
    std::vector<std::string> ids;
    for (const Row* r : rows) ids.push_back(r->ctid);
    return array_literal(ids);
  }

  void expect_changed(std::int64_t changed, std::size_t rows) {
    if (changed != static_cast<std::int64_t>(rows)) {
      // Never expected on rows this transaction holds locked; rolled back.
      throw StoreError(
          StoreError::Kind::unavailable,
          fmt::format("a batch of {} rows changed {} instead; rolled back", rows, changed));
    }
  }

  BatchResult act(int limit, AuditEntry entry) {
    BatchResult result;
    auto lock_taken = std::chrono::steady_clock::now();
    pq::Transaction tx(conn());
    store_.begin_batch(tx);
    auto rows = fetch(limit);
    result.more = static_cast<int>(rows.size()) == limit;
    std::vector<const Row*> due;
    for (const auto& r : rows)
      if (store_.in_window(sel_, r.anchor)) due.push_back(&r);
    BatchKeys digest(store_.options_.receipts);
    std::set<const Row*> acted(due.begin(), due.end());
    if (!due.empty()) {
      switch (work_.action) {
        case Action::erase:
          for (const auto& [part, group] : by_partition(due)) {
            auto r = conn().exec(
                fmt::format("DELETE FROM {} WHERE ctid = ANY(ARRAY(SELECT unnest($1::tid[])))",
                            part),
                {ctids(group)});
            expect_changed(r.affected(), group.size());
          }
          result.affected = static_cast<std::int64_t>(due.size());
          for (const Row* r : due) digest.add(r->key.value_or(""));
          break;
        case Action::anonymize:
          anonymize(due, entry.time);
          result.affected = static_cast<std::int64_t>(due.size());
          for (const Row* r : due) digest.add(r->key.value_or(""));
          break;
        case Action::archive:
          acted = archive(due, result, digest);
          break;
      }
    }
    advance(rows, acted);
    record(result, std::move(entry), digest);
    tx.commit();
    result.write_lock_held = held_since(lock_taken);
    return result;
  }

  // Fills in the batch's audit entry and writes it to the outbox, when the
  // batch changed anything. REQUIRES: inside the batch's transaction.
  void record(BatchResult& result, AuditEntry entry, BatchKeys& digest) {
    if (result.affected == 0) return;
    entry.affected = result.affected;
    entry.keys_sha256 = digest.finish();
    store_.write_outbox(entry);
    result.entry = std::move(entry);
  }

  void anonymize(const std::vector<const Row*>& due, const std::string& time) {
    const Rule& rule = *work_.rule;
    const Anonymization& a = *rule.anonymize;
    std::vector<std::string> sets;
    std::size_t h = 0;
    for (const auto& c : a.columns) {
      if (c.method.kind == AnonymizeMethod::Kind::hmac) {
        sets.push_back(fmt::format("{} = v.h{}", quote(c.column), h++));
      } else {
        sets.push_back(
            fmt::format("{} = {}", quote(c.column), store_.anonymize_expression(rule, c)));
      }
    }
    if (a.mark) sets.push_back(fmt::format("{} = {}", quote(*a.mark), literal(time)));
    for (const auto& [part, group] : by_partition(due)) {
      std::vector<Param> params{ctids(group)};
      std::string sql;
      if (hmac_columns_.empty()) {
        sql =
            fmt::format("UPDATE {} AS t SET {} WHERE t.ctid = ANY(ARRAY(SELECT unnest($1::tid[])))",
                        part, fmt::join(sets, ", "));
      } else {
        // The coded identifier is computed here, with the same key and the
        // same text of the value as on SQLite.
        std::vector<std::string> arrays{"$1::tid[]"}, names{"id"};
        for (std::size_t i = 0; i < hmac_columns_.size(); ++i) {
          std::vector<std::optional<std::string>> codes;
          for (const Row* r : group) {
            const auto& v = r->extra[i];
            codes.push_back(v ? std::optional(hmac_sha256_hex(store_.options_.hmac_key, *v))
                              : std::nullopt);
          }
          params.push_back(array_literal(codes));
          arrays.push_back(fmt::format("${}::text[]", i + 2));
          names.push_back(fmt::format("h{}", i));
        }
        sql =
            fmt::format("UPDATE {} AS t SET {} FROM unnest({}) AS v({}) WHERE t.ctid = v.id", part,
                        fmt::join(sets, ", "), fmt::join(arrays, ", "), fmt::join(names, ", "));
      }
      expect_changed(conn().exec(sql, params).affected(), group.size());
    }
  }

  // The archive's rows with the batch's keys, as jsonb text by key.
  std::map<std::string, std::vector<std::string>> archived(const std::vector<const Row*>& due) {
    const Rule& rule = *work_.rule;
    std::vector<std::string> keys;
    for (const Row* r : due)
      if (r->key) keys.push_back(*r->key);
    auto r = archive_->connection().exec(
        fmt::format("SELECT a.{0}::text, to_jsonb(a)::text FROM {1} AS a WHERE a.{0} = "
                    "ANY($1::{2}[])",
                    quote(rule.key), archive_->qualified(rule.table), sel_.key_type),
        {array_literal(keys)});
    std::map<std::string, std::vector<std::string>> out;
    for (int i = 0; i < r.rows(); ++i) out[r.text(i, 0)].push_back(r.text(i, 1));
    return out;
  }

  // Returns the rows that left the live store.
  std::set<const Row*> archive(const std::vector<const Row*>& due, BatchResult& result,
                               BatchKeys& digest) {
    const Rule& rule = *work_.rule;
    bool same_db = store_.same_database(*archive_);
    auto existing = archived(due);
    // The live rows' content, where the archive already has their key.
    std::map<std::string, std::string> live_json;  // by ctid
    if (!existing.empty()) {
      if (!same_db) {
        for (const Row* r : due) live_json[r->ctid] = r->extra.back().value_or("");
      } else {
        std::vector<const Row*> asked;
        for (const Row* r : due)
          if (r->key && existing.count(*r->key)) asked.push_back(r);
        for (const auto& [part, group] : by_partition(asked)) {
          auto j = conn().exec(
              fmt::format("SELECT t.ctid::text, to_jsonb(t)::text FROM {} AS t WHERE t.ctid = "
                          "ANY($1::tid[])",
                          part),
              {ctids(group)});
          for (int i = 0; i < j.rows(); ++i) live_json[j.text(i, 0)] = j.text(i, 1);
        }
      }
    }
    std::vector<const Row*> move, copied;  // copied: an interrupted sweep's, only to delete
    for (const Row* r : due) {
      auto it = r->key ? existing.find(*r->key) : existing.end();
      if (it == existing.end()) {
        move.push_back(r);
        continue;
      }
      const std::string& mine = live_json[r->ctid];
      bool same = std::find(it->second.begin(), it->second.end(), mine) != it->second.end();
      if (same && it->second.size() == 1) {
        copied.push_back(r);
      } else {
        // Never overwrite what the archive holds. The row stays in the
        // window, so the second pass (Phase::wait) reads it again: count it
        // once per stage, or the report shows every conflict twice.
        if (conflicts_seen_.insert(r->oid + "/" + r->ctid).second) ++result.conflicts;
      }
    }
    std::string cols = fmt::format("{}", fmt::join(columns_, ", "));
    if (same_db) {
      // One transaction moves the rows: nothing to lose between two commits.
      for (const auto& [part, group] : by_partition(move)) {
        auto r = conn().exec(fmt::format("WITH moved AS (DELETE FROM {} WHERE ctid = "
                                         "ANY(ARRAY(SELECT unnest($1::tid[]))) RETURNING {}) "
                                         "INSERT INTO {} ({}) SELECT {} FROM moved",
                                         part, cols, archive_->qualified(rule.table), cols, cols),
                             {ctids(group)});
        expect_changed(r.affected(), group.size());
      }
    } else if (!move.empty()) {
      // The copy commits in the archive before any row leaves the live store.
      std::string json = "[";
      for (std::size_t i = 0; i < move.size(); ++i) {
        if (i) json += ",";
        json += move[i]->extra.back().value_or("null");
      }
      json += "]";
      pq::Transaction atx(archive_->connection());
      archive_->begin_batch(atx);
      auto r = archive_->connection().exec(
          fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM jsonb_populate_recordset(NULL::{0}, "
                      "$1::jsonb)",
                      archive_->qualified(rule.table), cols),
          {json});
      expect_changed(r.affected(), move.size());
      atx.commit();
      for (const auto& [part, group] : by_partition(move)) {
        auto d = conn().exec(
            fmt::format("DELETE FROM {} WHERE ctid = ANY(ARRAY(SELECT unnest($1::tid[])))", part),
            {ctids(group)});
        expect_changed(d.affected(), group.size());
      }
    }
    for (const auto& [part, group] : by_partition(copied)) {
      auto d = conn().exec(
          fmt::format("DELETE FROM {} WHERE ctid = ANY(ARRAY(SELECT unnest($1::tid[])))", part),
          {ctids(group)});
      expect_changed(d.affected(), group.size());
    }
    for (const auto* list : {&move, &copied})
      for (const Row* r : *list) digest.add(r->key.value_or(""));
    result.affected = static_cast<std::int64_t>(move.size() + copied.size());
    std::set<const Row*> gone(move.begin(), move.end());
    gone.insert(copied.begin(), copied.end());
    return gone;
  }

  // Partitions of a table range-partitioned on the anchor whose whole range
  // lies in the window: candidates to drop instead of deleting their rows.
  void find_droppable_partitions() {
    const Rule& rule = *work_.rule;
    auto strategy = conn().exec(
        "SELECT p.partstrat = 'r' AND p.partnatts = 1 AND a.attname::text = $2 FROM "
        "pg_catalog.pg_partitioned_table p JOIN pg_catalog.pg_attribute a ON a.attrelid = "
        "p.partrelid AND a.attnum = p.partattrs[0] WHERE p.partrelid = $1::regclass",
        {sel_.table, rule.anchor});
    if (strategy.rows() == 0 || strategy.text(0, 0) != "t") return;
    auto parts = conn().exec(
        "SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid) FROM "
        "pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid WHERE "
        "i.inhparent = $1::regclass AND c.relkind = 'r' ORDER BY 1 DESC",
        {sel_.table});
    static const std::regex bound(R"(^FOR VALUES FROM \((.+)\) TO \((.+)\)$)");
    for (int i = 0; i < parts.rows(); ++i) {
      std::smatch m;
      std::string text = parts.text(i, 1);
      if (!std::regex_match(text, m, bound)) continue;  // DEFAULT: anything may be there
      std::string from = m[1], to = m[2];
      if (to == "MAXVALUE") continue;
      // Every value of the partition is < TO: it is all in the window when
      // TO is at most the first anchor after the window (and FROM past its start).
      std::string first_after = window_limit(sel_.days.through + date::days{1});
      std::string check = fmt::format("{}::{} <= {}", to, sel_.anchor_type, first_after);
      if (sel_.days.after) {
        if (from == "MINVALUE") continue;
        check += fmt::format(" AND {}::{} >= {}", from, sel_.anchor_type,
                             window_limit(*sel_.days.after + date::days{1}));
      }
      if (conn().exec("SELECT " + check).text(0, 0) == "t") partitions_.push_back(parts.text(i, 0));
    }
  }

  // The first anchor value of `day`, as a literal of the anchor's type.
  std::string window_limit(Day day) {
    auto start = start_of_local_day(day, *sel_.zone);
    switch (sel_.kind) {
      case AnchorKind::date:
        return fmt::format("'{}'::date", format_day(day));
      case AnchorKind::timestamp:
        return fmt::format("'{}'::timestamp", utc_text(start, false));
      case AnchorKind::timestamptz:
        return fmt::format("'{}'::timestamptz", utc_text(start, true));
      default:
        return fmt::format("{}", start.time_since_epoch().count());
    }
  }

  // Drops `part` when every row in it would be deleted by this stage anyway
  // (none held, none outside the rule's `where`); nullopt when it must be
  // swept row by row instead.
  std::optional<BatchResult> drop_partition(const std::string& part, AuditEntry& entry) {
    auto lock_taken = std::chrono::steady_clock::now();
    pq::Transaction tx(conn());
    conn().exec(fmt::format("SET LOCAL lock_timeout = {}", literal(ms(kPartitionLockWait))));
    try {
      // Writers wait (briefly) while the partition is read and dropped, so
      // that no row arrives unseen.
      conn().exec(fmt::format("LOCK TABLE {} IN SHARE MODE", part));
      auto check =
          conn().exec(fmt::format("SELECT count(*), count(*) FILTER (WHERE NOT ({})) FROM {} AS t",
                                  sel_.where(), part),
                      sel_.params);
      std::int64_t rows = check.integer(0, 0);
      if (rows == 0 || check.integer(0, 1) != 0) return std::nullopt;
      auto keys =
          conn().exec(fmt::format("SELECT {0}::text FROM {1} AS t ORDER BY {0}", sel_.key, part));
      BatchKeys digest(store_.options_.receipts);
      for (int i = 0; i < keys.rows(); ++i) digest.add(keys.text(i, 0));
      conn().exec(fmt::format("ALTER TABLE {} DETACH PARTITION {}", sel_.table, part));
      conn().exec(fmt::format("DROP TABLE {}", part));
      BatchResult result;
      result.affected = rows;
      result.more = true;
      record(result, entry, digest);
      tx.commit();
      result.write_lock_held = held_since(lock_taken);
      return result;
    } catch (const pq::PqError& e) {
      // Busy or not ours to drop (only the owner may): row by row instead.
      if (e.kind() == StoreError::Kind::busy || e.sqlstate() == "42501") return std::nullopt;
      throw;
    }
  }

  PostgresStore& store_;
  StageWork work_;
  PostgresStore::Selection sel_;
  PostgresStore* archive_ = nullptr;
  std::vector<std::string> columns_;       // archive: the live table's columns, quoted
  std::vector<std::string> hmac_columns_;  // anonymize: columns coded by retentiond
  std::vector<std::string> partitions_;    // still to try dropping
  Phase phase_ = Phase::skip_locked;
  std::optional<CursorPos> cursor_;
  std::set<std::string> conflicts_seen_;  // "oid/ctid" of rows counted as conflicts
};

std::unique_ptr<Batches> PostgresStore::batches(const StageWork& work, std::int64_t) {
  return std::make_unique<PostgresBatches>(*this, work);
}

}  // namespace retentiond
