#include "side_effects.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace retentiond {
namespace {

std::string upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool same_name(std::string_view a, std::string_view b) { return upper(std::string(a)) == upper(std::string(b)); }

bool changes_other_rows(const std::string& fk_action) {
  std::string a = upper(fk_action);
  return a == "CASCADE" || a == "SET NULL" || a == "SET DEFAULT";
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
    sqlite::Statement fks(db, fmt::format("SELECT \"table\", \"from\", \"to\", on_update, on_delete FROM pragma_foreign_key_list({})",
                                          sqlite::quote(child)));
    while (fks.step()) {
      if (!same_name(fks.column_text(0), rule.table)) continue;
      std::string on_update = fks.column_text(3), on_delete = fks.column_text(4);
      std::string parent_column = fks.column_is_null(2) ? std::string() : fks.column_text(2);
      if (deletes && changes_other_rows(on_delete)) {
        return fmt::format("table '{}' references '{}' with ON DELETE {}: deleting rows of '{}' would also change rows of '{}', "
                           "which no rule names; add a rule for '{}' that runs first, or change the foreign key",
                           child, rule.table, on_delete, rule.table, child, child);
      }
      bool touches_key = std::any_of(anonymized.begin(), anonymized.end(), [&](const std::string& c) {
        return parent_column.empty() ? same_name(c, rule.key) : same_name(c, parent_column);
      });
      if (touches_key && changes_other_rows(on_update)) {
        return fmt::format("table '{}' references column '{}' of '{}' with ON UPDATE {}: anonymising it would also change rows of '{}'",
                           child, parent_column.empty() ? rule.key : parent_column, rule.table, on_update, child);
      }
    }
  }
  sqlite::Statement triggers(db, "SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND tbl_name = ?1 COLLATE NOCASE");
  triggers.bind(1, rule.table);
  while (triggers.step()) {
    std::string sql = upper(triggers.column_text(1));
    // The event comes before " ON <table>": "... AFTER DELETE ON t".
    std::string head = sql.substr(0, sql.find(" ON "));
    bool fires = (deletes && head.find("DELETE") != std::string::npos) ||
                 (action == Action::anonymize && head.find("UPDATE") != std::string::npos);
    if (fires) {
      return fmt::format("trigger '{}' fires on {} of table '{}' and may change other data that no rule names; "
                         "drop or rewrite it, or handle these rows outside retentiond",
                         triggers.column_text(0), deletes ? "DELETE" : "UPDATE", rule.table);
    }
  }
  return std::nullopt;
}

}  // namespace retentiond
