// The PostgreSQL test harness itself: the server, fresh databases, roles.
#include "postgres_server.hpp"

#include <libpq-fe.h>

#include <catch2/catch.hpp>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace retentiond::test;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;

Conn connect(const std::string& dsn) {
  Conn c{PQconnectdb(dsn.c_str()), &PQfinish};
  REQUIRE(c != nullptr);
  INFO(PQerrorMessage(c.get()));
  REQUIRE(PQstatus(c.get()) == CONNECTION_OK);
  return c;
}

std::string value(PGconn* c, const char* sql) {
  std::unique_ptr<PGresult, decltype(&PQclear)> r{PQexec(c, sql), &PQclear};
  INFO(PQerrorMessage(c));
  REQUIRE(PQresultStatus(r.get()) == PGRES_TUPLES_OK);
  REQUIRE(PQntuples(r.get()) == 1);
  return PQgetvalue(r.get(), 0, 0);
}

}  // namespace

TEST_CASE("postgresql: the test server answers on a Unix socket, as postgres, in America/New_York",
          "[postgresql]") {
  const std::string& conninfo = pg_server_conninfo();
  CHECK_THAT(conninfo, StartsWith("host=/"));
  CHECK_THAT(conninfo, Contains("/sock port="));
  CHECK_THAT(conninfo, Contains(" user=postgres"));
  CHECK_THAT(conninfo, !Contains("dbname"));

  TestDatabase db;
  CHECK(db.query_column("SHOW timezone") == std::vector<std::string>{"America/New_York"});
  // An instant shown in the server's zone: five hours behind UTC in January.
  CHECK(db.query_column("SELECT '2024-01-15 12:00:00+00'::timestamptz::text") ==
        std::vector<std::string>{"2024-01-15 07:00:00-05"});
  CHECK(db.query_column("SHOW listen_addresses") == std::vector<std::string>{""});
  CHECK(db.query_column("SHOW server_encoding") == std::vector<std::string>{"UTF8"});
  CHECK(db.query_int("SHOW max_connections") == 200);
  CHECK(db.query_column("SELECT current_user") == std::vector<std::string>{"postgres"});
}

TEST_CASE("postgresql: a TestDatabase runs scripts and answers queries", "[postgresql]") {
  TestDatabase db;
  CHECK_THAT(db.name(), StartsWith("rt_"));
  CHECK(db.dsn() == pg_server_conninfo() + " dbname=" + db.name());
  CHECK(db.query_column("SELECT current_database()") == std::vector<std::string>{db.name()});

  db.exec(R"(
    CREATE TABLE items (id bigint PRIMARY KEY, label text, note text);
    INSERT INTO items VALUES (2, 'b', NULL), (1, 'a', 'x'), (3, 'a', '');
  )");
  CHECK(db.query_int("SELECT count(*) FROM items") == 3);
  CHECK(db.query_int("SELECT -9000000000") == -9000000000);
  CHECK(db.query_column("SELECT note FROM items ORDER BY id") ==
        std::vector<std::string>{"x", "<null>", ""});
  CHECK(db.query_set("SELECT label FROM items") == std::set<std::string>{"a", "b"});
  CHECK(db.query_column("SELECT 1 WHERE false").empty());

  SECTION("a failing statement throws with the server's message and the SQL") {
    try {
      db.exec("INSERT INTO items VALUES (1, 'again', NULL)");
      FAIL("no exception");
    } catch (const std::runtime_error& e) {
      CHECK_THAT(e.what(), Contains("duplicate key value"));
      CHECK_THAT(e.what(), Contains("23505"));
      CHECK_THAT(e.what(), Contains("INSERT INTO items VALUES (1, 'again', NULL)"));
    }
    CHECK_THROWS_WITH(db.query_int("SELECT * FROM no_such_table"), Contains("no_such_table"));
    // A transaction the failure aborted is rolled back; the session goes on.
    CHECK_THROWS(db.exec("BEGIN; DELETE FROM items; SELECT 1/0;"));
    CHECK(db.query_int("SELECT count(*) FROM items") == 3);
  }

  SECTION("query_int wants exactly one integer") {
    CHECK_THROWS_WITH(db.query_int("SELECT id FROM items"), Contains("3 row(s)"));
    CHECK_THROWS_WITH(db.query_int("SELECT 1, 2"), Contains("2 column(s)"));
    CHECK_THROWS_WITH(db.query_int("SELECT NULL::int"), Contains("NULL"));
    CHECK_THROWS_WITH(db.query_int("SELECT 'abc'"), Contains("not an integer"));
    CHECK_THROWS(db.query_int("CREATE TABLE other (x int)"));
  }

  SECTION("dump shows every row of every table, NULL as NULL") {
    db.exec(R"(
      CREATE TABLE "A table" (k int, "odd ""name""" text);
      INSERT INTO "A table" VALUES (NULL, 'NULL');
      CREATE SCHEMA other;
      CREATE TABLE other.hidden (x int);
      INSERT INTO other.hidden VALUES (1);
    )");
    CHECK(db.dump() ==
          "table A table (k, odd \"name\")\n"
          "  NULL, 'NULL'\n"
          "table items (id, label, note)\n"
          "  '1', 'a', 'x'\n"
          "  '2', 'b', NULL\n"
          "  '3', 'a', ''\n");
    CHECK(db.dump("other") == "table hidden (x)\n  '1'\n");

    std::string before = db.dump();
    db.exec("UPDATE items SET note = NULL WHERE id = 3");
    CHECK(db.dump() != before);
    db.exec("UPDATE items SET note = '' WHERE id = 3");
    CHECK(db.dump() == before);
  }
}

TEST_CASE("postgresql: each TestDatabase is a database of its own, gone after destruction",
          "[postgresql]") {
  TestDatabase keeper;
  std::string first_name;
  Conn open{nullptr, &PQfinish};
  {
    TestDatabase first;
    TestDatabase second;
    first_name = first.name();
    CHECK(first.name() != second.name());
    first.exec("CREATE TABLE only_here (x int)");
    CHECK(first.query_int("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'") == 1);
    CHECK(second.query_int("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'") == 0);
    CHECK(keeper.query_int("SELECT count(*) FROM pg_database WHERE datname = '" + first_name +
                           "'") == 1);

    // A connection still open (as a store under test might leave one) does
    // not keep the database alive: DROP ... WITH (FORCE) ends it.
    open = connect(first.dsn());
    CHECK(value(open.get(), "SELECT count(*) FROM only_here") == "0");
  }
  CHECK(keeper.query_int("SELECT count(*) FROM pg_database WHERE datname = '" + first_name + "'") ==
        0);
  std::unique_ptr<PGresult, decltype(&PQclear)> r{PQexec(open.get(), "SELECT 1"), &PQclear};
  CHECK(PQresultStatus(r.get()) != PGRES_TUPLES_OK);
}

TEST_CASE("postgresql: a role made by create_role logs in with dsn_for", "[postgresql]") {
  TestDatabase db;
  db.create_role("rt_harness_reader");
  db.create_role("rt_harness_reader");  // again: harmless
  db.exec(
      "CREATE TABLE t (x int); INSERT INTO t VALUES (7);"
      "GRANT SELECT ON t TO rt_harness_reader;");

  std::string dsn = db.dsn_for("rt_harness_reader");
  CHECK_THAT(dsn, Contains("user=rt_harness_reader"));
  CHECK_THAT(dsn, !Contains("user=postgres"));
  Conn reader = connect(dsn);
  CHECK(value(reader.get(), "SELECT current_user") == "rt_harness_reader");
  CHECK(value(reader.get(), "SELECT current_database()") == db.name());
  CHECK(value(reader.get(), "SELECT x FROM t") == "7");
  CHECK(value(reader.get(), "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user") ==
        "false");

  // Role names that need quoting, in SQL and in the connection string.
  db.create_role("Odd 'role'");
  Conn odd = connect(db.dsn_for("Odd 'role'"));
  CHECK(value(odd.get(), "SELECT current_user") == "Odd 'role'");
}
