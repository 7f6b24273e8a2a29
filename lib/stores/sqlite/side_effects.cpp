#include "stores/sqlite/side_effects.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace retentiond {
namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool changes_other_rows(const std::string& fk_action) {
  std::string a = upper(fk_action);
  return a == "CASCADE" || a == "SET NULL" || a == "SET DEFAULT";
}

// Archive finds a row in the archive by its key, to tell the copy an
// interrupted sweep left (same key, same content) from a conflict. A key that
// several rows share, or a NULL key, cannot tell rows apart: two identical
// rows would become one in the archive. So archive needs a key that the
// schema makes unique, and that no row leaves NULL.
std::optional<std::string> archive_key_problem(sqlite::Database& db, const Rule& rule) {
  bool without_rowid = db.without_rowid(rule.table);
  bool found = false, not_null = false;
  std::string type;
  std::int64_t pk = 0, pk_columns = 0;
  sqlite::Statement columns(
      db, fmt::format("SELECT name, type, \"notnull\", pk FROM pragma_table_info({})",
                      sqlite::quote(rule.table)));
  while (columns.step()) {
    if (columns.column_int(3) > 0) ++pk_columns;
    if (sqlite::same_identifier(columns.column_text(0), rule.key)) {
      found = true;
      type = upper(columns.column_text(1));
      not_null = columns.column_int(2) != 0;
      pk = columns.column_int(3);
    }
  }
  if (!found) return std::nullopt;  // a missing column is reported where the rows are read
  bool sole_primary_key = pk == 1 && pk_columns == 1;
  if (sole_primary_key && (without_rowid || type == "INTEGER"))
    return std::nullopt;  // unique and never NULL
  bool unique = sole_primary_key || db.has_unique_index(rule.table, rule.key);
  if (!unique) {
    return fmt::format(
        "archive moves rows by their key, and column '{}' of table '{}' is not unique (no PRIMARY "
        "KEY "
        "or UNIQUE index on it alone): two rows with the same key would become one in the archive; "
        "name a unique key, or make this one unique",
        rule.key, rule.table);
  }
  if (!not_null) {
    sqlite::Statement nulls(db, fmt::format("SELECT count(*) FROM main.{} WHERE {} IS NULL",
                                            sqlite::quote(rule.table), sqlite::quote(rule.key)));
    nulls.step();
    if (auto n = nulls.column_int(0); n > 0) {
      return fmt::format(
          "{} row(s) of table '{}' have no key ('{}' is NULL): archive could not tell them apart "
          "in "
          "the archive; give them a key",
          n, rule.table, rule.key);
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> side_effects_of(sqlite::Database& db, const Rule& rule, Action action) {
  bool deletes = action == Action::erase || action == Action::archive;
  std::vector<std::string> anonymized;
  if (action == Action::anonymize && rule.anonymize) {
    for (const auto& c : rule.anonymize->columns) anonymized.push_back(c.column);
  }
  sqlite::Statement tables(db, "SELECT name FROM sqlite_schema WHERE type = 'table'");
  while (tables.step()) {
    std::string child = tables.column_text(0);
    sqlite::Statement fks(db, fmt::format("SELECT \"table\", \"from\", \"to\", on_update, "
                                          "on_delete FROM pragma_foreign_key_list({})",
                                          sqlite::quote(child)));
    while (fks.step()) {
      if (!sqlite::same_identifier(fks.column_text(0), rule.table)) continue;
      std::string on_update = fks.column_text(3), on_delete = fks.column_text(4);
      std::string parent_column = fks.column_is_null(2) ? std::string() : fks.column_text(2);
      if (deletes && changes_other_rows(on_delete)) {
        return fmt::format(
            "table '{}' references '{}' with ON DELETE {}: deleting rows of '{}' would also change "
            "rows of '{}', "
            "which no rule names; add a rule for '{}' that runs first, or change the foreign key",
            child, rule.table, on_delete, rule.table, child, child);
      }
      bool touches_key =
          std::any_of(anonymized.begin(), anonymized.end(), [&](const std::string& c) {
            return parent_column.empty() ? sqlite::same_identifier(c, rule.key)
                                         : sqlite::same_identifier(c, parent_column);
          });
      if (touches_key && changes_other_rows(on_update)) {
        return fmt::format(
            "table '{}' references column '{}' of '{}' with ON UPDATE {}: anonymising it would "
            "also change rows of '{}'",
            child, parent_column.empty() ? rule.key : parent_column, rule.table, on_update, child);
      }
    }
  }
  sqlite::Statement triggers(db,
                             "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND "
                             "tbl_name = ?1 COLLATE NOCASE");
  triggers.bind(1, rule.table);
  while (triggers.step()) {
    std::string sql = upper(triggers.column_text(1));
    // The event comes before " ON <table>": "... AFTER DELETE ON t".
    std::string head = sql.substr(0, sql.find(" ON "));
    bool fires = (deletes && head.find("DELETE") != std::string::npos) ||
                 (action == Action::anonymize && head.find("UPDATE") != std::string::npos);
    if (fires) {
      return fmt::format(
          "trigger '{}' fires on {} of table '{}' and may change other data that no rule names; "
          "drop or rewrite it, or handle these rows outside retentiond",
          triggers.column_text(0), deletes ? "DELETE" : "UPDATE", rule.table);
    }
  }
  if (action == Action::archive) return archive_key_problem(db, rule);
  return std::nullopt;
}

}  // namespace retentiond
