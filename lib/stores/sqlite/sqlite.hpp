// RAII over SQLite handles: a database closes in its destructor, a statement
// finalizes, a transaction rolls back unless committed. <sqlite3.h> stays out
// of this header. Failures throw SqliteError; the store layer turns them into
// messages.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "stores/store_error.hpp"
#include "time/anchor.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace retentiond::sqlite {

class SqliteError : public StoreError {
 public:
  SqliteError(int code, const std::string& message)
      : StoreError(kind_of(code), message), code_(code) {}
  int code() const { return code_; }
  // SQLITE_BUSY or SQLITE_LOCKED: another connection held the lock past the timeout.
  bool busy() const;
  // The file is not a database, or is damaged.
  bool corrupt() const;

 private:
  static Kind kind_of(int code);
  int code_;
};

// A SQL value as read or bound. Blob holds bytes.
struct BlobValue {
  std::string bytes;
  bool operator==(const BlobValue&) const = default;
};
using Value = std::variant<std::monostate, std::int64_t, double, std::string, BlobValue>;

enum class OpenMode {
  read_only,   // SQLITE_OPEN_READONLY: dry runs and check; never creates or changes a file
  read_write,  // an existing database
  create,      // read-write, created if missing (archive stores)
};

class Database {
 public:
  Database(const std::filesystem::path& path, OpenMode mode,
           std::chrono::milliseconds busy_timeout = std::chrono::seconds{5});
  ~Database();
  Database(Database&& other) noexcept
      : db_(std::exchange(other.db_, nullptr)),
        path_(std::move(other.path_)),
        polling_(std::move(other.polling_)),
        wal_pages_(std::move(other.wal_pages_)) {}
  Database& operator=(Database&&) = delete;
  Database(const Database&) = delete;

  void exec(std::string_view sql);
  sqlite3* handle() const { return db_; }
  const std::filesystem::path& path() const { return path_; }
  std::int64_t changes() const;

  bool table_exists(std::string_view table);
  // Declared columns of a table, in order (name, declared type).
  std::vector<std::pair<std::string, std::string>> columns(std::string_view table);
  // A WITHOUT ROWID table (its rows have no rowid).
  bool without_rowid(std::string_view table);
  // A unique index, not partial, on `column` alone: no two rows share a value.
  bool has_unique_index(std::string_view table, std::string_view column);

  // Waits for a lock someone else holds by retrying every millisecond, up
  // to `timeout`, instead of SQLite's busy timeout, whose retries grow to
  // 100 ms apart: an application that commits back to back frees the lock
  // for microseconds at a time, and retries that far apart almost never
  // meet such a moment. For the sweep's own connections.
  void poll_when_busy(std::chrono::milliseconds timeout);

  // In WAL mode SQLite checkpoints inside the COMMIT that grows the WAL past
  // 1000 pages: that commit then takes as long as copying the pages into the
  // database and syncing it, though writers are let in meanwhile. After this
  // call it checkpoints only when asked (checkpoint_if_due), so that a
  // batch's measured time is its write lock's alone. For the sweep's own
  // connections; a database in another journal mode is not affected.
  void checkpoint_when_asked();
  // A passive checkpoint (it waits for no one, and writers may go on), when
  // the WAL has grown past 1000 pages since the last.
  void checkpoint_if_due();

 private:
  struct Polling {
    std::chrono::milliseconds timeout;
    std::chrono::steady_clock::time_point since;
  };
  sqlite3* db_ = nullptr;
  std::filesystem::path path_;
  std::unique_ptr<Polling> polling_;  // set by poll_when_busy; the handler's state
  std::unique_ptr<int> wal_pages_;    // set by checkpoint_when_asked; the WAL hook's count
};

class Statement {
 public:
  Statement(Database& db, std::string_view sql);
  ~Statement();
  Statement(Statement&& other) noexcept
      : stmt_(std::exchange(other.stmt_, nullptr)), db_(other.db_) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int index, const Value& value);  // 1-based
  Statement& bind(int index, std::int64_t value) { return bind(index, Value{value}); }
  Statement& bind(int index, std::string_view value) {
    return bind(index, Value{std::string(value)});
  }
  Statement& bind(int index, const std::string& value) { return bind(index, Value{value}); }
  bool step();  // true while a row is available
  void reset();
  int column_count() const;
  Value column(int index) const;  // 0-based
  std::int64_t column_int(int index) const;
  std::string column_text(int index) const;
  bool column_is_null(int index) const;
  std::string column_name(int index) const;

 private:
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

// BEGIN IMMEDIATE in the constructor: the write lock is taken up front, so a
// busy store fails here, before any work, rather than at commit.
class Transaction {
 public:
  explicit Transaction(Database& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Database& db_;
  bool done_ = false;
};

// "name" with embedded quotes doubled. Identifiers are checked plain at load
// time; quoting keeps keywords such as "order" usable as column names.
std::string quote(std::string_view identifier);

// Whether two identifiers name the same thing, as SQLite compares them
// (ASCII letters without case).
bool same_identifier(std::string_view a, std::string_view b);

AnchorValue to_anchor_value(const Value& value);

}  // namespace retentiond::sqlite
