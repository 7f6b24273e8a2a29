// A throw-away PostgreSQL 15 server for the tests, and fresh databases on it.
//
// Under ctest one server serves every test process: the fixture test
// postgresql.server.start runs scripts/pg-test-server.sh and the tests find it
// through RETENTIOND_TEST_PG_DIR. Run directly, the test binary starts a
// private server on first use and stops it at exit. Tests that need
// PostgreSQL fail when no server can be had; they never skip.
//
// The server's timezone is America/New_York (neither UTC nor Europe/Paris),
// authentication is trust, and it listens on a Unix socket only.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace retentiond::test {

// libpq keyword/value connection string for the test server, without dbname
// ("host=/…/sock port=N user=postgres"). Starts the private server on first
// call when RETENTIOND_TEST_PG_DIR does not name a running one. Throws
// std::runtime_error (with the start script's output) if no server can be
// started; every later call throws the same error without trying again.
const std::string& pg_server_conninfo();

// A fresh, empty database (named rt_<pid>_<n>) on the test server, dropped
// WITH (FORCE) when the object goes, whatever is still connected to it.
//
// exec() and the query functions share one session (opened on first use, as
// the superuser postgres): settings made with SET and an open transaction
// carry over from one call to the next. After a failed statement, a
// transaction left aborted is rolled back so the next call starts clean.
class TestDatabase {
 public:
  TestDatabase();
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  std::string name() const { return name_; }
  // pg_server_conninfo() + " dbname=NAME".
  std::string dsn() const;
  // The same as dsn(), logging in as `role` (see create_role).
  std::string dsn_for(std::string_view role) const;

  // Runs a script of one or more statements (one PQexec: without BEGIN and
  // COMMIT of its own, the script is one transaction, and statements that
  // refuse a transaction block, such as VACUUM, must come alone). Throws
  // std::runtime_error with the server's message, SQLSTATE and the SQL when
  // a statement fails.
  void exec(std::string_view sql) const;
  // The single value of a query returning one row of one column (an integer).
  std::int64_t query_int(std::string_view sql) const;
  // The first column of every row, as text; NULL as "<null>".
  std::vector<std::string> query_column(std::string_view sql) const;
  std::set<std::string> query_set(std::string_view sql) const;

  // Every row of every ordinary table in `schema` (partitions included, a
  // partitioned parent not, so no row shows twice), tables ordered by name
  // and rows by their text, each value quoted as a SQL literal and NULL as
  // NULL. Equal dumps mean equal content. Values are rendered in this
  // session's settings (timestamptz in America/New_York).
  std::string dump(std::string_view schema = "public") const;

  // A LOGIN role (no password needed: trust). Roles are cluster-wide, shared
  // by every database and test process on the server: creating one that
  // exists is harmless (it is made LOGIN if it was not), and it outlives
  // this database.
  void create_role(std::string_view name) const;

 private:
  struct Session;
  Session& session() const;

  std::string name_;
  mutable std::unique_ptr<Session> session_;
};

}  // namespace retentiond::test
