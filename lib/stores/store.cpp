#include "stores/store.hpp"

#include <fmt/format.h>

#include <filesystem>

#include "stores/files/files_store.hpp"
#include "stores/postgresql/postgres_store.hpp"
#include "stores/sqlite/sqlite_store.hpp"

namespace retentiond {

bool store_exists(const StoreSpec& spec) {
  switch (spec.kind) {
    case StoreKind::sqlite: {
      std::error_code ec;
      return std::filesystem::exists(spec.path, ec);
    }
    case StoreKind::postgresql:
      return true;  // a database server: what is missing is found when it is used
    case StoreKind::files: {
      std::error_code ec;
      return std::filesystem::is_directory(spec.root, ec);
    }
  }
  return false;
}

std::unique_ptr<Store> open_store(const StoreSpec& spec, const StoreOptions& options) {
  switch (spec.kind) {
    case StoreKind::sqlite:
      return std::make_unique<SqliteStore>(spec, options);
    case StoreKind::postgresql:
      return std::make_unique<PostgresStore>(spec, options);
    case StoreKind::files:
      return std::make_unique<FilesStore>(spec, options);
  }
  throw StoreError(StoreError::Kind::unavailable,
                   fmt::format("store kind {} is not supported", to_string(spec.kind)));
}

std::string store_label(const StoreSpec& spec) {
  switch (spec.kind) {
    case StoreKind::sqlite:
      return fmt::format("store '{}' ({})", spec.name, spec.path.string());
    case StoreKind::postgresql:
      return postgres_store_label(spec);
    case StoreKind::files:
      return fmt::format("store '{}' ({})", spec.name, spec.root.string());
  }
  return fmt::format("store '{}'", spec.name);
}

Error explain_store_error(const StoreSpec& spec, const StoreError& e) {
  std::string label = store_label(spec);
  switch (e.kind()) {
    case StoreError::Kind::busy:
      return {ExitCode::temp_fail, fmt::format("{} stayed busy past its timeout; nothing was lost, "
                                               "the next sweep resumes: {}",
                                               label, e.what())};
    case StoreError::Kind::damaged:
      if (spec.kind == StoreKind::sqlite) {
        return {ExitCode::unavailable,
                fmt::format("{} is not a database or its file is malformed; nothing was changed "
                            "in it (check it with: sqlite3 {} 'PRAGMA integrity_check')",
                            label, spec.path.string())};
      }
      return {ExitCode::unavailable,
              fmt::format("{}: {}; nothing was changed in it", label, e.what())};
    case StoreError::Kind::unavailable:
      break;
  }
  return {ExitCode::unavailable, fmt::format("{}: {}", label, e.what())};
}

void check_absent_store(const StoreSpec& spec, const Rule& rule, CheckFindings& out) {
  if (spec.kind == StoreKind::sqlite) {
    std::error_code ec;
    if (!std::filesystem::is_directory(spec.path.parent_path(), ec)) {
      out.errors.push_back(fmt::format("{}: its folder does not exist (archive of rule '{}')",
                                       store_label(spec), rule.name));
      return;
    }
    out.notes.push_back({spec.name, rule.table,
                         fmt::format("archive database {} will be created by the first sweep",
                                     spec.path.string())});
  }
  if (spec.kind == StoreKind::files) {
    std::error_code ec;
    if (!std::filesystem::is_directory(spec.root.parent_path(), ec)) {
      out.errors.push_back(
          fmt::format("{}: its parent folder does not exist (archive of rule '{}')",
                      store_label(spec), rule.name));
      return;
    }
    out.notes.push_back(
        {spec.name, rule.table,
         fmt::format("archive folder {} will be created by the first sweep", spec.root.string())});
  }
}

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

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
  return date::format("%FT%TZ", date::floor<std::chrono::milliseconds>(t));
}

}  // namespace retentiond
