// `check` on a SQLite store: tables, columns and the anchor's index, read
// through the read-only connection.
#include <fmt/format.h>

#include <algorithm>

#include "stores/sqlite/sqlite_store.hpp"

namespace retentiond {
namespace {

using sqlite::Database;

bool has_column(const std::vector<std::pair<std::string, std::string>>& columns,
                std::string_view name) {
  return std::any_of(columns.begin(), columns.end(),
                     [&](const auto& c) { return sqlite::same_identifier(c.first, name); });
}

bool anchor_indexed(Database& db, const std::string& table, const std::string& column) {
  sqlite::Statement list(
      db, fmt::format("SELECT name FROM pragma_index_list({})", sqlite::quote(table)));
  while (list.step()) {
    sqlite::Statement info(db, fmt::format("SELECT name FROM pragma_index_info({}) WHERE seqno = 0",
                                           sqlite::quote(list.column_text(0))));
    if (info.step() && sqlite::same_identifier(info.column_text(0), column)) return true;
  }
  return false;
}

}  // namespace

void SqliteStore::check(const Rule& rule, CheckFindings& out) {
  Database& db = *db_;
  if (!db.table_exists(rule.table)) {
    out.errors.push_back(
        fmt::format("{}: table '{}' does not exist (rule '{}')", label(), rule.table, rule.name));
    return;
  }
  auto columns = db.columns(rule.table);
  for (const auto& [column, why] : columns_used(rule)) {
    if (!has_column(columns, column)) {
      out.errors.push_back(fmt::format("{}: table '{}' has no column '{}' (the {} of rule '{}')",
                                       label(), rule.table, column, why, rule.name));
      return;
    }
  }
  if (rule.hold) {
    if (auto* t = std::get_if<HoldByTable>(&*rule.hold)) {
      if (!db.table_exists(t->table)) {
        out.errors.push_back(fmt::format("{}: hold table '{}' does not exist (rule '{}')", label(),
                                         t->table, rule.name));
        return;
      }
      if (!has_column(db.columns(t->table), t->key)) {
        out.errors.push_back(fmt::format("{}: hold table '{}' has no column '{}' (rule '{}')",
                                         label(), t->table, t->key, rule.name));
        return;
      }
    }
  }
  if (!anchor_indexed(db, rule.table, rule.anchor)) {
    out.warnings.push_back(
        {spec_.name, rule.table,
         fmt::format("anchor column '{}' of table '{}' has no index: every sweep of rule '{}' "
                     "will scan the whole table (CREATE INDEX {}_{} ON {}({}))",
                     rule.anchor, rule.table, rule.name, rule.table, rule.anchor, rule.table,
                     rule.anchor)});
  }
}

void SqliteStore::check_archive(const Rule& rule, Store& live, CheckFindings& out) {
  Database& db = *db_;
  if (!db.table_exists(rule.table)) {
    out.notes.push_back({spec_.name, rule.table,
                         fmt::format("archive table '{}' will be created by the first "
                                     "sweep with the columns of the live table",
                                     rule.table)});
    return;
  }
  auto* live_sqlite = dynamic_cast<SqliteStore*>(&live);
  if (!live_sqlite || !live_sqlite->db().table_exists(rule.table)) return;
  auto archive_columns = db.columns(rule.table);
  for (const auto& [column, type] : live_sqlite->db().columns(rule.table)) {
    if (!has_column(archive_columns, column)) {
      out.errors.push_back(fmt::format(
          "{}: archive table '{}' has no column '{}', which the live table has (rule '{}')",
          label(), rule.table, column, rule.name));
      return;
    }
  }
}

}  // namespace retentiond
