#include "stores/sqlite/sqlite.hpp"

#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "stores/data_paths.hpp"
#include "stores/sql_identifier.hpp"

namespace retentiond::sqlite {
namespace {

// A write refused by the system (a read-only mount, a folder or file the
// user may not write; SQLite creates its journal or WAL beside the
// database) names the folder and, for the systemd unit, the drop-in that
// grants it. SQLite does not always keep the errno (its READONLY_DIRECTORY
// comes from its own check), so the folder and the file are asked again.
std::string write_refused_advice(sqlite3* db, int rc) {
  int primary = rc & 0xff;
  if (!db || (primary != SQLITE_READONLY && primary != SQLITE_CANTOPEN && primary != SQLITE_IOERR))
    return "";
  const char* file = sqlite3_db_filename(db, "main");
  if (!file || !*file) return "";
  std::string folder = std::filesystem::path(file).parent_path().string();
  for (const std::string& path : {folder, std::string(file)}) {
    if (::access(path.c_str(), W_OK) == 0) continue;
    int error = errno;
    if (error != EROFS && error != EACCES) return "";
    return fmt::format(
        " ({} may not be written: {}; SQLite writes its journal beside the "
        "database, in {}): {}",
        path, std::strerror(error), folder, data_paths_advice(error, folder));
  }
  return "";
}

[[noreturn]] void throw_error(sqlite3* db, int rc, std::string_view what) {
  std::string detail = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  throw SqliteError(rc, fmt::format("{}: {}{}", what, detail, write_refused_advice(db, rc)));
}

}  // namespace

bool SqliteError::busy() const {
  int primary = code_ & 0xff;
  return primary == SQLITE_BUSY || primary == SQLITE_LOCKED;
}

bool SqliteError::corrupt() const {
  int primary = code_ & 0xff;
  return primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT;
}

StoreError::Kind SqliteError::kind_of(int code) {
  int primary = code & 0xff;
  if (primary == SQLITE_BUSY || primary == SQLITE_LOCKED) return Kind::busy;
  if (primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT) return Kind::damaged;
  return Kind::unavailable;
}

void Database::poll_when_busy(std::chrono::milliseconds timeout) {
  polling_ = std::make_unique<Polling>(Polling{timeout, {}});
  sqlite3_busy_handler(
      db_,
      [](void* state, int tries) -> int {
        auto& p = *static_cast<Polling*>(state);
        auto now = std::chrono::steady_clock::now();
        if (tries == 0) p.since = now;
        if (now - p.since >= p.timeout) return 0;  // SQLITE_BUSY to the caller
        sqlite3_sleep(1);
        return 1;
      },
      polling_.get());
}

Database::Database(const std::filesystem::path& path, OpenMode mode,
                   std::chrono::milliseconds busy_timeout)
    : path_(path) {
  // URI filenames: the archive stage attaches the live store's hold list as
  // "file:...?mode=ro". Store paths are absolute, so none reads as a URI.
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  switch (mode) {
    case OpenMode::read_only:
      flags |= SQLITE_OPEN_READONLY;
      break;
    case OpenMode::read_write:
      flags |= SQLITE_OPEN_READWRITE;
      break;
    case OpenMode::create:
      flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
      break;
  }
  std::error_code ec;
  if (mode != OpenMode::create && !std::filesystem::exists(path, ec)) {
    // SQLite would only say "unable to open database file".
    throw SqliteError(SQLITE_CANTOPEN,
                      fmt::format("cannot open {}: the file does not exist", path.string()));
  }
  int rc = sqlite3_open_v2(path.c_str(), &db_, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string detail = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SqliteError(rc, fmt::format("cannot open {}: {}", path.string(), detail));
  }
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, static_cast<int>(busy_timeout.count()));
  // Opening is lazy: read the schema now so that a file that is not a
  // database fails here, with its name, and not in the middle of a sweep.
  try {
    exec("SELECT count(*) FROM sqlite_schema");
  } catch (const SqliteError&) {
    sqlite3_close_v2(db_);  // the destructor does not run for a throwing constructor
    db_ = nullptr;
    throw;
  }
}

Database::~Database() {
  if (db_) sqlite3_close_v2(db_);
}

void Database::exec(std::string_view sql) {
  // Runs every statement of `sql`, in order.
  while (!sql.empty()) {
    const char* tail = nullptr;
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &raw, &tail);
    if (rc != SQLITE_OK) throw_error(db_, rc, fmt::format("cannot prepare \"{}\"", sql));
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> stmt(raw, sqlite3_finalize);
    sql.remove_prefix(static_cast<std::size_t>(tail - sql.data()));
    if (!stmt) continue;  // only white space or a comment was left
    while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE)
      throw_error(db_, rc, fmt::format("\"{}\" failed", sqlite3_sql(stmt.get())));
  }
}

std::int64_t Database::changes() const { return sqlite3_changes64(db_); }

bool Database::table_exists(std::string_view table) {
  // SQLite's own names are not case-sensitive: "Claims" is the table claims.
  Statement stmt(*this,
                 "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 COLLATE NOCASE");
  stmt.bind(1, table);
  return stmt.step();
}

std::vector<std::pair<std::string, std::string>> Database::columns(std::string_view table) {
  std::vector<std::pair<std::string, std::string>> out;
  Statement stmt(*this, fmt::format("SELECT name, type FROM pragma_table_info({})", quote(table)));
  while (stmt.step()) out.emplace_back(stmt.column_text(0), stmt.column_text(1));
  return out;
}

bool Database::without_rowid(std::string_view table) {
  Statement s(
      *this, "SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = ?1 COLLATE NOCASE");
  s.bind(1, table);
  return s.step() && s.column_int(0) != 0;
}

void Database::checkpoint_when_asked() {
  wal_pages_ = std::make_unique<int>(0);
  sqlite3_wal_hook(
      db_,
      [](void* count, sqlite3*, const char* schema, int pages) {
        if (std::string_view(schema) == "main") *static_cast<int*>(count) = pages;
        return SQLITE_OK;
      },
      wal_pages_.get());
}

void Database::checkpoint_if_due() {
  // SQLite's own threshold (PRAGMA wal_autocheckpoint's default).
  constexpr int kCheckpointPages = 1000;
  if (!wal_pages_ || *wal_pages_ < kCheckpointPages) return;
  *wal_pages_ = 0;
  // A passive checkpoint that cannot copy every page now leaves the rest to
  // the next one; it is never a reason to fail a sweep.
  sqlite3_wal_checkpoint_v2(db_, "main", SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
}

bool Database::has_unique_index(std::string_view table, std::string_view column) {
  // A partial index is unique only among the rows it covers.
  Statement list(*this, fmt::format("SELECT name FROM pragma_index_list({}) "
                                    "WHERE \"unique\" AND NOT partial",
                                    quote(table)));
  while (list.step()) {
    Statement info(
        *this, fmt::format("SELECT name FROM pragma_index_info({})", quote(list.column_text(0))));
    int n = 0;
    bool on_column = false;
    while (info.step()) {
      ++n;
      on_column = !info.column_is_null(0) && same_identifier(info.column_text(0), column);
    }
    if (n == 1 && on_column) return true;
  }
  return false;
}

Statement::Statement(Database& db, std::string_view sql) : db_(db.handle()) {
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) throw_error(db_, rc, fmt::format("cannot prepare \"{}\"", sql));
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Statement& Statement::bind(int index, const Value& value) {
  int rc = std::visit(
      [&](const auto& v) -> int {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, std::monostate>)
          return sqlite3_bind_null(stmt_, index);
        else if constexpr (std::is_same_v<T, std::int64_t>)
          return sqlite3_bind_int64(stmt_, index, v);
        else if constexpr (std::is_same_v<T, double>)
          return sqlite3_bind_double(stmt_, index, v);
        else if constexpr (std::is_same_v<T, std::string>)
          return sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
        else
          return sqlite3_bind_blob64(stmt_, index, v.bytes.data(), v.bytes.size(),
                                     SQLITE_TRANSIENT);
      },
      value);
  if (rc != SQLITE_OK) throw_error(db_, rc, "cannot bind a value");
  return *this;
}

bool Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  throw_error(db_, rc, fmt::format("\"{}\" failed", sqlite3_sql(stmt_)));
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

int Statement::column_count() const { return sqlite3_column_count(stmt_); }

Value Statement::column(int i) const {
  switch (sqlite3_column_type(stmt_, i)) {
    case SQLITE_INTEGER:
      return sqlite3_column_int64(stmt_, i);
    case SQLITE_FLOAT:
      return sqlite3_column_double(stmt_, i);
    case SQLITE_TEXT: {
      auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
      return std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)));
    }
    case SQLITE_BLOB: {
      auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, i));
      return BlobValue{
          std::string(p ? p : "", static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))};
    }
    default:
      return std::monostate{};
  }
}

std::int64_t Statement::column_int(int i) const { return sqlite3_column_int64(stmt_, i); }

std::string Statement::column_text(int i) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
  return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
           : std::string();
}

bool Statement::column_is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

std::string Statement::column_name(int i) const { return sqlite3_column_name(stmt_, i); }

Transaction::Transaction(Database& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) {
    // Rolling back cannot be reported from a destructor; SQLite rolls back
    // by itself when the connection closes if this fails.
    sqlite3_exec(db_.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

std::string quote(std::string_view identifier) { return quote_identifier(identifier); }

bool same_identifier(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         sqlite3_strnicmp(a.data(), b.data(), static_cast<int>(a.size())) == 0;
}

AnchorValue to_anchor_value(const Value& value) {
  return std::visit(
      [](const auto& v) -> AnchorValue {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, BlobValue>)
          return Blob{};
        else
          return v;
      },
      value);
}

}  // namespace retentiond::sqlite
