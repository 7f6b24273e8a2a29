#include "stores/postgresql/pq.hpp"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <cstdlib>

#include "stores/sql_identifier.hpp"

namespace retentiond::pq {
namespace {

// Lock and statement timeouts, deadlocks and serialisation failures: the
// application held what the sweep needed; nothing is lost, retry later.
StoreError::Kind kind_of(const std::string& sqlstate) {
  if (sqlstate == "55P03" || sqlstate == "57014" || sqlstate == "40P01" || sqlstate == "40001")
    return StoreError::Kind::busy;
  if (sqlstate.starts_with("XX")) return StoreError::Kind::damaged;
  return StoreError::Kind::unavailable;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

Result::~Result() {
  if (r_) PQclear(r_);
}
int Result::rows() const { return PQntuples(r_); }
int Result::columns() const { return PQnfields(r_); }
bool Result::is_null(int row, int column) const { return PQgetisnull(r_, row, column) != 0; }
std::string Result::text(int row, int column) const {
  return std::string(PQgetvalue(r_, row, column),
                     static_cast<std::size_t>(PQgetlength(r_, row, column)));
}
std::optional<std::string> Result::value(int row, int column) const {
  if (is_null(row, column)) return std::nullopt;
  return text(row, column);
}
std::int64_t Result::integer(int row, int column) const {
  if (is_null(row, column)) return 0;
  return std::strtoll(PQgetvalue(r_, row, column), nullptr, 10);
}
std::int64_t Result::affected() const {
  const char* n = PQcmdTuples(r_);
  return n && *n ? std::strtoll(n, nullptr, 10) : 0;
}

Connection::Connection(const std::string& conninfo, const std::string& label) {
  c_ = PQconnectdb(conninfo.c_str());
  // The server's notices ("schema ... already exists, skipping") are not
  // for the administrator reading the sweep's output.
  if (c_)
    PQsetNoticeProcessor(
        c_, [](void*, const char*) {}, nullptr);
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    std::string message = c_ ? trimmed(PQerrorMessage(c_)) : "out of memory";
    if (c_) PQfinish(c_);
    c_ = nullptr;
    throw PqError(StoreError::Kind::unavailable, "",
                  fmt::format("cannot connect to {}: {}", label, message));
  }
}

Connection::~Connection() {
  if (c_) PQfinish(c_);
}

Result Connection::checked(pg_result* r) {
  Result result(r);
  auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY)
    return result;
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string message = r ? trimmed(PQresultErrorMessage(r)) : "";
  if (message.empty()) message = trimmed(PQerrorMessage(c_));
  if (sqlstate.empty() && PQstatus(c_) != CONNECTION_OK) {
    throw PqError(StoreError::Kind::unavailable, "", "the connection was lost: " + message);
  }
  throw PqError(kind_of(sqlstate), sqlstate, message);
}

Result Connection::exec(std::string_view sql, const std::vector<Param>& params) {
  std::string text(sql);
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  return checked(PQexecParams(c_, text.c_str(), static_cast<int>(params.size()), nullptr,
                              values.data(), nullptr, nullptr, 0));
}

void Connection::run(std::string_view sql) {
  // PQexec stops a script at its first error and returns that error's result.
  checked(PQexec(c_, std::string(sql).c_str()));
}

std::string Connection::database() const { return PQdb(c_); }

Transaction::Transaction(Connection& c, Mode mode) : c_(c) {
  c_.exec(mode == Mode::read_only ? "BEGIN READ ONLY" : "BEGIN");
}

Transaction::~Transaction() {
  if (done_) return;
  try {
    c_.exec("ROLLBACK");
  } catch (const PqError&) {
    // The connection is gone: the server rolled back already.
  }
}

void Transaction::commit() {
  c_.exec("COMMIT");
  done_ = true;
}

std::string quote(std::string_view identifier) { return quote_identifier(identifier); }

std::string literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

}  // namespace retentiond::pq
