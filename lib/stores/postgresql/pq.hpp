// RAII over libpq: a connection closes in its destructor, a result is
// cleared, a transaction rolls back unless committed. <libpq-fe.h> stays out
// of this header. Failures throw PqError, a StoreError classified by the
// server's SQLSTATE (lock and statement timeouts are "busy").
//
// Values cross as text (libpq's text format): every value retentiond reads
// or writes is a key, an anchor, a hold flag or an anonymised column, and
// PostgreSQL's text forms of them are exact; parameters are sent untyped and
// take the type of the column they meet.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stores/store_error.hpp"

struct pg_conn;
struct pg_result;

namespace retentiond::pq {

class PqError : public StoreError {
 public:
  PqError(Kind kind, std::string sqlstate, const std::string& message)
      : StoreError(kind, message), sqlstate_(std::move(sqlstate)) {}
  const std::string& sqlstate() const { return sqlstate_; }

 private:
  std::string sqlstate_;
};

// A parameter: text, or NULL.
using Param = std::optional<std::string>;

class Result {
 public:
  explicit Result(pg_result* r) : r_(r) {}
  ~Result();
  Result(Result&& o) noexcept : r_(std::exchange(o.r_, nullptr)) {}
  Result& operator=(Result&&) = delete;
  Result(const Result&) = delete;

  int rows() const;
  int columns() const;
  bool is_null(int row, int column) const;
  std::string text(int row, int column) const;  // "" for NULL
  std::optional<std::string> value(int row, int column) const;
  std::int64_t integer(int row, int column) const;
  // Rows changed by an INSERT/UPDATE/DELETE.
  std::int64_t affected() const;

 private:
  pg_result* r_;
};

class Connection {
 public:
  // Connects with `conninfo` (a libpq connection string or URI). `label`
  // names the store in errors. Throws PqError (unavailable) on failure,
  // with libpq's message (which never contains a password).
  Connection(const std::string& conninfo, const std::string& label);
  ~Connection();
  Connection(Connection&& o) noexcept : c_(std::exchange(o.c_, nullptr)) {}
  Connection& operator=(Connection&&) = delete;
  Connection(const Connection&) = delete;

  // Runs one statement (with $1, $2... parameters) and returns its result.
  Result exec(std::string_view sql, const std::vector<Param>& params = {});
  // Runs statements without parameters (a script).
  void run(std::string_view sql);
  // The database connected to.
  std::string database() const;

 private:
  // Takes `r`; throws its error, classified, unless it succeeded.
  Result checked(pg_result* r);
  pg_conn* c_ = nullptr;
};

// BEGIN in the constructor (READ ONLY when asked); ROLLBACK in the destructor
// unless committed.
class Transaction {
 public:
  enum class Mode { read_write, read_only };
  explicit Transaction(Connection& c, Mode mode = Mode::read_write);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& c_;
  bool done_ = false;
};

// "name" with embedded quotes doubled.
std::string quote(std::string_view identifier);
// 'text' as a literal, quotes doubled (standard_conforming_strings is on
// from PostgreSQL 9.1).
std::string literal(std::string_view text);
}  // namespace retentiond::pq
