#include "sweep/check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "stores/sqlite/sqlite.hpp"

namespace retentiond {
namespace {

using sqlite::Database;

// Every column a rule reads or writes in its own table, with why.
std::vector<std::pair<std::string, std::string>> columns_used(const Rule& rule) {
  std::vector<std::pair<std::string, std::string>> cols{{rule.key, "key"}, {rule.anchor, "anchor"}};
  for (const auto& w : rule.where) cols.emplace_back(w.column, "where");
  if (rule.hold) {
    if (auto* c = std::get_if<HoldByColumn>(&*rule.hold)) cols.emplace_back(c->column, "hold");
  }
  if (rule.anonymize) {
    for (const auto& c : rule.anonymize->columns) cols.emplace_back(c.column, "anonymize");
    if (rule.anonymize->mark) cols.emplace_back(*rule.anonymize->mark, "mark");
  }
  return cols;
}

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

std::string store_label(const StoreSpec& spec) {
  return fmt::format("store '{}' ({})", spec.name, spec.path.string());
}

}  // namespace

Result<CheckReport> check_stores(const Policy& policy) {
  CheckReport report;
  std::map<std::string, std::unique_ptr<Database>> open;
  auto database = [&](const StoreSpec& spec) -> Database& {
    auto& db = open[spec.name];
    if (!db) db = std::make_unique<Database>(spec.path, sqlite::OpenMode::read_only);
    return *db;
  };
  const StoreSpec* current = nullptr;
  try {
    for (const auto& rule : policy.rules) {
      const StoreSpec& spec = *policy.find_store(rule.store);
      current = &spec;
      Database& db = database(spec);
      if (!db.table_exists(rule.table)) {
        return fail(ExitCode::unavailable, fmt::format("{}: table '{}' does not exist (rule '{}')",
                                                       store_label(spec), rule.table, rule.name));
      }
      auto columns = db.columns(rule.table);
      for (const auto& [column, why] : columns_used(rule)) {
        if (!has_column(columns, column)) {
          return fail(ExitCode::unavailable,
                      fmt::format("{}: table '{}' has no column '{}' (the {} of rule '{}')",
                                  store_label(spec), rule.table, column, why, rule.name));
        }
      }
      if (rule.hold) {
        if (auto* t = std::get_if<HoldByTable>(&*rule.hold)) {
          if (!db.table_exists(t->table)) {
            return fail(ExitCode::unavailable,
                        fmt::format("{}: hold table '{}' does not exist (rule '{}')",
                                    store_label(spec), t->table, rule.name));
          }
          if (!has_column(db.columns(t->table), t->key)) {
            return fail(ExitCode::unavailable,
                        fmt::format("{}: hold table '{}' has no column '{}' (rule '{}')",
                                    store_label(spec), t->table, t->key, rule.name));
          }
        }
      }
      if (!anchor_indexed(db, rule.table, rule.anchor)) {
        report.warnings.push_back(
            {spec.name, rule.table,
             fmt::format("anchor column '{}' of table '{}' has no index: every sweep of rule '{}' "
                         "will scan the whole table (CREATE INDEX {}_{} ON {}({}))",
                         rule.anchor, rule.table, rule.name, rule.table, rule.anchor, rule.table,
                         rule.anchor)});
      }
      if (const Stage* archive = rule.archive_stage()) {
        const StoreSpec& dest = *policy.find_store(archive->to);
        current = &dest;
        std::error_code ec;
        if (!std::filesystem::exists(dest.path, ec)) {
          if (!std::filesystem::is_directory(dest.path.parent_path(), ec)) {
            return fail(ExitCode::unavailable,
                        fmt::format("{}: its folder does not exist (archive of rule '{}')",
                                    store_label(dest), rule.name));
          }
          report.notes.push_back(
              {dest.name, rule.table,
               fmt::format("archive database {} will be created by the first sweep",
                           dest.path.string())});
        } else {
          Database& archive_db = database(dest);
          if (!archive_db.table_exists(rule.table)) {
            report.notes.push_back({dest.name, rule.table,
                                    fmt::format("archive table '{}' will be created by the first "
                                                "sweep with the columns of the live table",
                                                rule.table)});
          } else {
            auto archive_columns = archive_db.columns(rule.table);
            for (const auto& [column, type] : columns) {
              if (!has_column(archive_columns, column)) {
                return fail(ExitCode::unavailable,
                            fmt::format("{}: archive table '{}' has no column '{}', which the live "
                                        "table has (rule '{}')",
                                        store_label(dest), rule.table, column, rule.name));
              }
            }
          }
        }
      }
      ++report.rules_checked;
    }
  } catch (const sqlite::SqliteError& e) {
    return fail(ExitCode::unavailable,
                fmt::format("{}: {}", current ? store_label(*current) : "store", e.what()));
  }
  return report;
}

}  // namespace retentiond
