#include "postgres_server.hpp"

#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <stdexcept>
#include <system_error>
#include <utility>

#ifndef RETENTIOND_SOURCE_DIR
#error "RETENTIOND_SOURCE_DIR must name the source folder (it holds scripts/pg-test-server.sh)"
#endif

extern char** environ;

namespace retentiond::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kScript = RETENTIOND_SOURCE_DIR "/scripts/pg-test-server.sh";

// ---------------------------------------------------------------------------
// libpq, owned.

struct ConnDeleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// Warnings reach stderr; NOTICEs ("… does not exist, skipping") do not.
void on_notice(void*, const PGresult* r) {
  const char* severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
  if (severity != nullptr && std::strcmp(severity, "WARNING") == 0) {
    std::cerr << "PostgreSQL " << PQresultErrorMessage(r);
  }
}

Conn connect(const std::string& dsn) {
  Conn c{PQconnectdb(dsn.c_str())};
  if (!c) throw std::runtime_error("PQconnectdb: out of memory");
  if (PQstatus(c.get()) != CONNECTION_OK) {
    throw std::runtime_error("cannot connect to PostgreSQL (" + dsn +
                             "): " + PQerrorMessage(c.get()));
  }
  PQsetNoticeReceiver(c.get(), on_notice, nullptr);
  return c;
}

// A statement's outcome: the result, or the server's message and SQLSTATE.
struct Outcome {
  Result result;
  std::string error;  // empty on success
  std::string sqlstate;
};

// Runs `sql` (one statement or a script) with PQexec, or with PQexecParams
// when there are parameters (then one statement only). Leaves the connection
// usable after a failure: a COPY is ended and an aborted transaction rolled
// back.
Outcome run(PGconn* c, const std::string& sql, const std::vector<std::string>& params = {}) {
  Outcome out;
  if (params.empty()) {
    out.result.reset(PQexec(c, sql.c_str()));
  } else {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    out.result.reset(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0));
  }
  ExecStatusType status = out.result ? PQresultStatus(out.result.get()) : PGRES_FATAL_ERROR;
  switch (status) {
    case PGRES_COMMAND_OK:
    case PGRES_TUPLES_OK:
    case PGRES_EMPTY_QUERY:
      return out;
    case PGRES_COPY_IN:
      PQputCopyEnd(c, "COPY FROM STDIN is not supported by TestDatabase");
      out.error = "COPY FROM STDIN is not supported here\n";
      break;
    case PGRES_COPY_OUT: {
      char* buffer = nullptr;
      while (PQgetCopyData(c, &buffer, 0) > 0) PQfreemem(buffer);
      out.error = "COPY TO STDOUT is not supported here\n";
      break;
    }
    default:
      out.error = out.result ? PQresultErrorMessage(out.result.get()) : PQerrorMessage(c);
      if (out.result) {
        const char* state = PQresultErrorField(out.result.get(), PG_DIAG_SQLSTATE);
        if (state != nullptr) out.sqlstate = state;
      }
      break;
  }
  while (PGresult* rest = PQgetResult(c)) PQclear(rest);
  if (out.error.empty()) out.error = "unexpected result status\n";
  if (PQstatus(c) == CONNECTION_OK && PQtransactionStatus(c) == PQTRANS_INERROR) {
    Result{PQexec(c, "ROLLBACK")};
  }
  return out;
}

[[noreturn]] void fail(std::string_view where, const Outcome& o, std::string_view sql) {
  std::string message{where};
  message += ": ";
  message += o.error;
  if (!message.empty() && message.back() == '\n') message.pop_back();
  if (!o.sqlstate.empty()) message += " [SQLSTATE " + o.sqlstate + "]";
  message += "\nSQL: ";
  message += sql;
  throw std::runtime_error(message);
}

std::string quote_identifier(std::string_view name) {
  std::string q = "\"";
  for (char ch : name) {
    if (ch == '"') q += '"';
    q += ch;
  }
  return q + '"';
}

// A value in a libpq connection string.
std::string conninfo_value(std::string_view v) {
  bool plain = !v.empty();
  for (char ch : v) {
    if (ch == ' ' || ch == '\t' || ch == '\n' || ch == '\'' || ch == '\\' || ch == '=') {
      plain = false;
    }
  }
  if (plain) return std::string{v};
  std::string q = "'";
  for (char ch : v) {
    if (ch == '\'' || ch == '\\') q += '\\';
    q += ch;
  }
  return q + '\'';
}

// The connection string with keyword `key` set to `value` (replaced where it
// appears, added where it does not).
std::string with_keyword(std::string_view conninfo, std::string_view key, std::string_view value) {
  std::string out;
  bool replaced = false;
  std::size_t i = 0;
  while (i < conninfo.size()) {
    while (i < conninfo.size() && std::isspace(static_cast<unsigned char>(conninfo[i]))) ++i;
    if (i >= conninfo.size()) break;
    std::size_t start = i;
    bool quoted = false;
    while (i < conninfo.size() &&
           (quoted || !std::isspace(static_cast<unsigned char>(conninfo[i])))) {
      if (conninfo[i] == '\\' && i + 1 < conninfo.size()) {
        i += 2;
        continue;
      }
      if (conninfo[i] == '\'') quoted = !quoted;
      ++i;
    }
    std::string_view token = conninfo.substr(start, i - start);
    if (!out.empty()) out += ' ';
    std::size_t eq = token.find('=');
    std::string_view k = token.substr(0, eq);
    while (!k.empty() && std::isspace(static_cast<unsigned char>(k.back()))) k.remove_suffix(1);
    if (eq != std::string_view::npos && k == key) {
      out += std::string{key} + '=' + conninfo_value(value);
      replaced = true;
    } else {
      out += token;
    }
  }
  if (!replaced)
    out += std::string{out.empty() ? "" : " "} + std::string{key} + '=' + conninfo_value(value);
  return out;
}

// ---------------------------------------------------------------------------
// The server.

// Runs scripts/pg-test-server.sh with `args`; returns its exit status (as
// from waitpid) and everything it wrote to stdout and stderr. The child gets
// no descriptor of ours but the pipe, so neither it nor the server it leaves
// running holds a test's files or pipes open.
std::pair<int, std::string> run_script(const std::vector<std::string>& args,
                                       const std::vector<std::string>& extra_env = {}) {
  std::vector<std::string> argv_s{kScript};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_s.emplace_back(*e);
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
  pid_t child = ::fork();
  if (child < 0) {
    int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw std::system_error(e, std::generic_category(), "fork");
  }
  if (child == 0) {
    int null = ::open("/dev/null", O_RDONLY);
    if (null < 0 || ::dup2(null, 0) < 0 || ::dup2(fds[1], 1) < 0 || ::dup2(fds[1], 2) < 0) {
      ::_exit(126);
    }
    ::close_range(3, ~0U, 0);
    ::execve(argv[0], argv.data(), envp.data());
    static const char msg[] = "cannot execute scripts/pg-test-server.sh\n";
    [[maybe_unused]] auto n = ::write(2, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string output;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    if (n > 0) {
      output.append(buffer, static_cast<std::size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(fds[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  return {status, output};
}

std::string read_conninfo(const fs::path& file) {
  std::ifstream in(file);
  std::string line;
  if (!in || !std::getline(in, line)) {
    throw std::runtime_error("cannot read " + file.string());
  }
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  if (line.empty()) throw std::runtime_error(file.string() + " is empty");
  return line;
}

// The server this process uses: the shared one named by
// RETENTIOND_TEST_PG_DIR, or a private one started here and stopped when the
// process exits (and by the script's supervisor, should the process die
// without exiting).
class Server {
 public:
  Server() {
    try {
      const char* shared = std::getenv("RETENTIOND_TEST_PG_DIR");
      if (shared != nullptr && *shared != '\0') {
        fs::path file = fs::path(shared) / "conninfo";
        if (fs::exists(file)) {
          conninfo_ = read_conninfo(file);
          return;
        }
        std::cerr << "RETENTIOND_TEST_PG_DIR=" << shared
                  << " has no conninfo; starting a private PostgreSQL server\n";
      }
      start_private();
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }

  ~Server() {
    // A forked child that exits normally must not stop its parent's server.
    if (private_dir_.empty() || ::getpid() != owner_) return;
    try {
      auto [status, output] = run_script({"stop", private_dir_.string()});
      if (status != 0) std::cerr << "stopping the private PostgreSQL server: " << output;
      std::error_code ec;
      fs::remove_all(private_dir_, ec);
    } catch (const std::exception& e) {
      std::cerr << "stopping the private PostgreSQL server: " << e.what() << '\n';
    }
  }
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  const std::string& conninfo() const {
    if (!error_.empty()) throw std::runtime_error(error_);
    return conninfo_;
  }

 private:
  void start_private() {
    std::string pattern = (fs::temp_directory_path() / "retentiond-pg-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) {
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + pattern);
    }
    fs::path dir = pattern;
    owner_ = ::getpid();
    auto [status, output] =
        run_script({"start", dir.string()}, {"RETENTIOND_PG_OWNER_PID=" + std::to_string(owner_)});
    if (status != 0) {
      run_script({"stop", dir.string()});
      std::error_code ec;
      fs::remove_all(dir, ec);
      std::string how = WIFEXITED(status) ? "exit status " + std::to_string(WEXITSTATUS(status))
                                          : "signal " + std::to_string(WTERMSIG(status));
      throw std::runtime_error("cannot start the test PostgreSQL server (" + std::string{kScript} +
                               " start " + dir.string() + ", " + how + "):\n" + output);
    }
    private_dir_ = dir;
    conninfo_ = read_conninfo(dir / "conninfo");
  }

  std::string conninfo_;
  std::string error_;
  fs::path private_dir_;
  pid_t owner_ = 0;
};

std::string admin_dsn() { return pg_server_conninfo() + " dbname=postgres"; }

std::atomic<unsigned> database_counter{0};

}  // namespace

const std::string& pg_server_conninfo() {
  static Server server;
  return server.conninfo();
}

// ---------------------------------------------------------------------------
// TestDatabase

struct TestDatabase::Session {
  Conn conn;
};

TestDatabase::TestDatabase() {
  Conn admin = connect(admin_dsn());
  for (int attempt = 0;; ++attempt) {
    name_ = "rt_" + std::to_string(::getpid()) + "_" + std::to_string(++database_counter);
    // template0 accepts no connections, so no one can be "accessing" it.
    std::string sql = "CREATE DATABASE " + quote_identifier(name_) + " TEMPLATE template0";
    Outcome o = run(admin.get(), sql);
    if (o.error.empty()) return;
    // A database left by an earlier process with the same pid.
    if (o.sqlstate == "42P04" && attempt < 100) continue;
    fail("creating a test database", o, sql);
  }
}

TestDatabase::~TestDatabase() {
  try {
    session_.reset();
    Conn admin = connect(admin_dsn());
    std::string sql = "DROP DATABASE IF EXISTS " + quote_identifier(name_) + " WITH (FORCE)";
    Outcome o = run(admin.get(), sql);
    if (!o.error.empty()) std::cerr << "dropping test database " << name_ << ": " << o.error;
  } catch (const std::exception& e) {
    std::cerr << "dropping test database " << name_ << ": " << e.what() << '\n';
  } catch (...) {
    std::cerr << "dropping test database " << name_ << ": unknown error\n";
  }
}

std::string TestDatabase::dsn() const { return pg_server_conninfo() + " dbname=" + name_; }

std::string TestDatabase::dsn_for(std::string_view role) const {
  return with_keyword(pg_server_conninfo(), "user", role) + " dbname=" + name_;
}

TestDatabase::Session& TestDatabase::session() const {
  if (session_ && PQstatus(session_->conn.get()) != CONNECTION_OK) session_.reset();
  if (!session_) session_ = std::make_unique<Session>(Session{connect(dsn())});
  return *session_;
}

void TestDatabase::exec(std::string_view sql) const {
  std::string text{sql};
  Outcome o = run(session().conn.get(), text);
  if (!o.error.empty()) fail(name_, o, text);
}

std::int64_t TestDatabase::query_int(std::string_view sql) const {
  std::string text{sql};
  Outcome o = run(session().conn.get(), text);
  if (!o.error.empty()) fail(name_, o, text);
  PGresult* r = o.result.get();
  auto wrong = [&](const std::string& what) {
    throw std::runtime_error(name_ + ": query_int: " + what + "\nSQL: " + text);
  };
  if (PQresultStatus(r) != PGRES_TUPLES_OK) wrong("the statement returns no rows");
  if (PQntuples(r) != 1 || PQnfields(r) != 1) {
    wrong("expected one row of one column, got " + std::to_string(PQntuples(r)) + " row(s) of " +
          std::to_string(PQnfields(r)) + " column(s)");
  }
  if (PQgetisnull(r, 0, 0)) wrong("the value is NULL");
  std::string_view value = PQgetvalue(r, 0, 0);
  std::int64_t n = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    wrong("not an integer: " + std::string{value});
  }
  return n;
}

std::vector<std::string> TestDatabase::query_column(std::string_view sql) const {
  std::string text{sql};
  Outcome o = run(session().conn.get(), text);
  if (!o.error.empty()) fail(name_, o, text);
  PGresult* r = o.result.get();
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) < 1) {
    throw std::runtime_error(name_ +
                             ": query_column: the statement returns no column\nSQL: " + text);
  }
  std::vector<std::string> column;
  for (int row = 0; row < PQntuples(r); ++row) {
    column.emplace_back(PQgetisnull(r, row, 0) ? "<null>" : PQgetvalue(r, row, 0));
  }
  return column;
}

std::set<std::string> TestDatabase::query_set(std::string_view sql) const {
  auto column = query_column(sql);
  return {std::make_move_iterator(column.begin()), std::make_move_iterator(column.end())};
}

std::string TestDatabase::dump(std::string_view schema) const {
  PGconn* c = session().conn.get();
  auto checked = [&](const std::string& sql, const std::vector<std::string>& params = {}) {
    Outcome o = run(c, sql, params);
    if (!o.error.empty()) fail(name_ + ": dump", o, sql);
    return std::move(o.result);
  };
  const std::string tables_sql =
      "SELECT c.oid::text, c.relname FROM pg_class c"
      " JOIN pg_namespace n ON n.oid = c.relnamespace"
      " WHERE n.nspname = $1 AND c.relkind = 'r' ORDER BY c.relname COLLATE \"C\"";
  const std::string columns_sql =
      "SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0"
      " AND NOT attisdropped ORDER BY attnum";
  Result tables = checked(tables_sql, {std::string{schema}});
  std::string out;
  for (int t = 0; t < PQntuples(tables.get()); ++t) {
    std::string oid = PQgetvalue(tables.get(), t, 0);
    std::string table = PQgetvalue(tables.get(), t, 1);
    Result columns = checked(columns_sql, {oid});
    std::string header, values;
    for (int i = 0; i < PQntuples(columns.get()); ++i) {
      std::string column = PQgetvalue(columns.get(), i, 0);
      header += (i ? ", " : "") + column;
      values += (i ? ", " : "") + std::string{"quote_nullable(t."} + quote_identifier(column) + ")";
    }
    std::string rows_sql =
        "SELECT " +
        (values.empty() ? std::string{"''::text"}
                        : "array_to_string(ARRAY[" + values + "]::text[], ', ')") +
        " COLLATE \"C\" AS r FROM " + quote_identifier(schema) + "." + quote_identifier(table) +
        " t ORDER BY 1";
    Result rows = checked(rows_sql);
    out += "table " + table + " (" + header + ")\n";
    for (int row = 0; row < PQntuples(rows.get()); ++row) {
      out += "  ";
      out += PQgetvalue(rows.get(), row, 0);
      out += '\n';
    }
  }
  return out;
}

void TestDatabase::create_role(std::string_view name) const {
  // Its own connection, so that a transaction the test holds open in the
  // session is not touched (or aborted by a duplicate).
  Conn admin = connect(admin_dsn());
  std::string role = quote_identifier(name);
  std::string sql = "CREATE ROLE " + role + " LOGIN";
  Outcome o = run(admin.get(), sql);
  if (o.error.empty()) return;
  // 42710: it exists; 23505: another process created it at the same moment.
  if (o.sqlstate != "42710" && o.sqlstate != "23505") fail("create_role", o, sql);
  sql = "ALTER ROLE " + role + " LOGIN";
  o = run(admin.get(), sql);
  if (!o.error.empty()) fail("create_role", o, sql);
}

}  // namespace retentiond::test
