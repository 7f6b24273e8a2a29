// The MGEN demo data set in PostgreSQL: the SQLite stores are generated into
// a scratch folder by the same code (so the same seed gives the same
// records), then each table is copied across with native types through
// COPY FROM STDIN, in one transaction.
#include <date/date.h>
#include <fmt/format.h>
#include <libpq-fe.h>
#include <stdlib.h>

#include <array>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "mgen_demo.hpp"
#include "policy/conninfo.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "time/anchor.hpp"

namespace retentiond::demo {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// A small RAII layer over libpq: what loading needs, nothing more.

std::string trimmed(const char* text) {
  std::string s = text ? text : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using PgResult = std::unique_ptr<PGresult, ResultDeleter>;

class PgConnection {
 public:
  explicit PgConnection(const std::string& dsn) : c_(PQconnectdb(dsn.c_str())) {
    if (!c_ || PQstatus(c_) != CONNECTION_OK) {
      // libpq's message names the server and the user, never the password.
      std::string why = c_ ? trimmed(PQerrorMessage(c_)) : "out of memory";
      if (c_) PQfinish(c_);
      throw PostgresUnavailable(
          fmt::format("cannot connect to PostgreSQL ({}): {}", redacted_conninfo(dsn), why));
    }
  }
  ~PgConnection() { PQfinish(c_); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  // Runs SQL (one statement, or several without parameters); throws on error.
  PgResult exec(const std::string& sql) {
    PgResult r(PQexec(c_, sql.c_str()));
    check(r.get(), sql);
    return r;
  }
  PgResult exec(const std::string& sql, const std::vector<std::string>& params) {
    std::vector<const char*> values;
    for (const auto& p : params) values.push_back(p.c_str());
    PgResult r(PQexecParams(c_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0));
    check(r.get(), sql);
    return r;
  }

  // COPY ... FROM STDIN: start() it, put() text-format lines, end() it.
  void copy_start(const std::string& sql) {
    PgResult r(PQexec(c_, sql.c_str()));
    if (!r || PQresultStatus(r.get()) != PGRES_COPY_IN) check(r.get(), sql);
  }
  void copy_put(const std::string& data) {
    if (data.empty()) return;
    if (PQputCopyData(c_, data.data(), static_cast<int>(data.size())) != 1)
      throw std::runtime_error("COPY failed: " + trimmed(PQerrorMessage(c_)));
  }
  void copy_end(const std::string& what) {
    if (PQputCopyEnd(c_, nullptr) != 1)
      throw std::runtime_error("COPY failed: " + trimmed(PQerrorMessage(c_)));
    while (PGresult* raw = PQgetResult(c_)) {
      PgResult r(raw);
      check(r.get(), what);
    }
  }

 private:
  void check(PGresult* r, const std::string& sql) {
    auto status = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return;
    std::string why = r ? trimmed(PQresultErrorMessage(r)) : "";
    if (why.empty()) why = trimmed(PQerrorMessage(c_));
    std::string first_line = sql.substr(0, sql.find('\n'));
    throw std::runtime_error(fmt::format("PostgreSQL: {} (in: {})", why, first_line));
  }

  PGconn* c_;
};

std::string quote_ident(std::string_view name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

// ---------------------------------------------------------------------------
// The PostgreSQL schema of the data set.

// How a SQLite value becomes PostgreSQL's text form of the column's type.
enum class Conv {
  integer,      // INTEGER as it is
  text,         // TEXT as it is
  boolean,      // a 0/1 flag
  date,         // "YYYY-MM-DD" text; unreadable text (2019-02-30, 'unknown') becomes NULL
  timestamptz,  // ISO 8601 text (UTC without an offset); unreadable becomes NULL
  epoch,        // seconds since 1970; text ('n/a') becomes NULL
};

struct PgColumn {
  std::string_view name;
  std::string_view type;  // with constraints
  Conv conv;
};

struct PgTable {
  std::string_view schema;  // the store's name in policies/mgen.yaml
  std::string_view file;    // the SQLite file the rows come from
  std::string_view table;
  std::vector<PgColumn> columns;
  std::vector<std::string_view> indexes;  // "name (columns)"
};

// The SQLite schema of mgen_demo.cpp with native types: keys bigint, dates
// date, datetime text timestamptz, seconds since 1970 bigint, the 0/1 hold
// flag boolean. Every rule's anchor is then of a type its anchor_format
// agrees with: date <-> date, datetime <-> timestamptz, unixepoch <-> bigint.
const std::vector<PgTable>& pg_tables() {
  static const std::vector<PgTable> all{
      {"amo",
       "amo.db",
       "affiliations",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"member_number", "text NOT NULL", Conv::text},
        {"beneficiary_rank", "integer NOT NULL", Conv::integer},
        {"last_name", "text", Conv::text},
        {"first_name", "text", Conv::text},
        {"birth_date", "date", Conv::date},
        {"opened_on", "date", Conv::date},
        {"rights_closed_on", "date", Conv::date},
        {"litigation_pending", "boolean NOT NULL DEFAULT false", Conv::boolean}},
       {"affiliations_rights_closed_on (rights_closed_on)", "affiliations_member (member_number)"}},
      {"amo",
       "amo.db",
       "claims",
       {{"claim_id", "bigint PRIMARY KEY", Conv::integer},
        {"member_number", "text NOT NULL", Conv::text},
        {"care_on", "date", Conv::date},
        {"act_code", "text", Conv::text},
        {"amount_cents", "integer", Conv::integer},
        {"reimbursed_cents", "integer", Conv::integer},
        {"paid_on", "date", Conv::date}},
       {"claims_paid_on (paid_on)"}},
      {"mutual",
       "mutual.db",
       "memberships",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"member_number", "text NOT NULL", Conv::text},
        {"plan", "text", Conv::text},
        {"monthly_fee_cents", "integer", Conv::integer},
        {"joined_on", "date", Conv::date},
        {"ended_on", "date", Conv::date}},
       {"memberships_ended_on (ended_on)"}},
      {"services",
       "services.db",
       "service_contracts",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"member_number", "text NOT NULL", Conv::text},
        {"service", "text NOT NULL", Conv::text},
        {"started_on", "date", Conv::date},
        {"ended_on", "date", Conv::date},
        {"monthly_amount_cents", "integer", Conv::integer}},
       {"service_contracts_ended_on (ended_on)"}},
      {"web",
       "web.db",
       "accounts",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"member_number", "text", Conv::text},
        {"email", "text", Conv::text},
        {"display_name", "text", Conv::text},
        {"created_at", "timestamptz", Conv::timestamptz},
        {"contract_ended_on", "date", Conv::date},
        {"coded_at", "timestamptz", Conv::timestamptz}},
       {"accounts_contract_ended_on (contract_ended_on)"}},
      {"web",
       "web.db",
       "contact_requests",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"name", "text", Conv::text},
        {"email", "text", Conv::text},
        {"subject", "text", Conv::text},
        {"message", "text", Conv::text},
        {"received_at", "timestamptz", Conv::timestamptz}},
       {"contact_requests_received_at (received_at)"}},
      {"web",
       "web.db",
       "visits",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"visitor_id", "text", Conv::text},
        {"ip", "inet", Conv::text},
        {"user_agent", "text", Conv::text},
        {"page", "text", Conv::text},
        {"visited_at", "timestamptz", Conv::timestamptz},
        {"anonymized_at", "timestamptz", Conv::timestamptz}},
       {"visits_visited_at (visited_at)"}},
      {"web",
       "web.db",
       "cookies",
       {{"id", "bigint PRIMARY KEY", Conv::integer},
        {"visitor_id", "text", Conv::text},
        {"name", "text", Conv::text},
        {"value", "text", Conv::text},
        {"set_at", "bigint", Conv::epoch}},
       {"cookies_set_at (set_at)"}},
  };
  return all;
}

// COPY's text format: backslash, tab, newline and carriage return escaped.
void append_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out += c;
    }
  }
}

// Appends `v` converted by `conv`; returns false where a value that is not
// NULL in SQLite could not be read as the column's type (and became NULL).
bool append_value(std::string& out, const sqlite::Value& v, Conv conv) {
  const auto* i = std::get_if<std::int64_t>(&v);
  const auto* s = std::get_if<std::string>(&v);
  bool is_null = std::holds_alternative<std::monostate>(v);
  switch (conv) {
    case Conv::integer:
    case Conv::epoch:
      if (i) {
        out += std::to_string(*i);
        return true;
      }
      if (conv == Conv::integer && !is_null)
        throw std::runtime_error("an integer column holds a value of another type");
      break;
    case Conv::text:
      if (s) {
        append_escaped(out, *s);
        return true;
      }
      if (i) {
        out += std::to_string(*i);
        return true;
      }
      break;
    case Conv::boolean:
      if (i) {
        out += *i != 0 ? "t" : "f";
        return true;
      }
      break;
    case Conv::date:
      if (s) {
        if (auto d = parse_date_text(*s)) {
          out += format_day(*d);
          return true;
        }
      }
      break;
    case Conv::timestamptz:
      if (s) {
        if (auto t = parse_datetime_text(*s)) {
          out += date::format("%F %T+00", *t);
          return true;
        }
      }
      break;
  }
  out += "\\N";
  return is_null;
}

constexpr std::size_t kCopyChunk = 1 << 20;

// Copies one table from its SQLite file; returns the rows copied and counts
// the values that became NULL.
std::int64_t copy_table(PgConnection& pg, const fs::path& dir, const PgTable& t,
                        std::int64_t& unreadable) {
  std::vector<std::string> names;
  for (const auto& c : t.columns) names.push_back(quote_ident(c.name));
  std::string columns = fmt::format("{}", fmt::join(names, ", "));
  std::string target = quote_ident(t.schema) + "." + quote_ident(t.table);

  sqlite::Database db(dir / t.file, sqlite::OpenMode::read_only);
  sqlite::Statement select(
      db, fmt::format("SELECT {} FROM {} ORDER BY rowid", columns, sqlite::quote(t.table)));
  pg.copy_start(fmt::format("COPY {} ({}) FROM STDIN", target, columns));
  std::string buffer;
  buffer.reserve(kCopyChunk + 4096);
  std::int64_t rows = 0;
  while (select.step()) {
    for (std::size_t c = 0; c < t.columns.size(); ++c) {
      if (c) buffer += '\t';
      if (!append_value(buffer, select.column(static_cast<int>(c)), t.columns[c].conv))
        ++unreadable;
    }
    buffer += '\n';
    ++rows;
    if (buffer.size() >= kCopyChunk) {
      pg.copy_put(buffer);
      buffer.clear();
    }
  }
  pg.copy_put(buffer);
  pg.copy_end("COPY " + target);
  return rows;
}

// A scratch folder, removed with what is in it.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "retentiond-demo-data.XXXXXX").string();
    if (!::mkdtemp(pattern.data()))
      throw std::system_error(errno, std::generic_category(), "cannot create a scratch folder");
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace

std::vector<std::string> postgresql_schemas() {
  std::vector<std::string> out;
  for (const auto& t : pg_tables())
    if (out.empty() || out.back() != t.schema) out.emplace_back(t.schema);
  out.emplace_back(kArchiveSchema);
  return out;
}

std::vector<std::string> existing_postgresql_schemas(const std::string& dsn) {
  PgConnection pg(dsn);
  auto r = pg.exec(
      "SELECT nspname::text FROM pg_catalog.pg_namespace WHERE nspname = ANY($1::text[]) ORDER "
      "BY 1",
      {fmt::format("{{{}}}", fmt::join(postgresql_schemas(), ","))});
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) out.emplace_back(PQgetvalue(r.get(), i, 0));
  return out;
}

PostgresLoad load_postgresql(const std::string& dsn, const GenerateOptions& options, bool overwrite,
                             const std::function<void(const TableCount&)>& progress) {
  PgConnection pg(dsn);  // fail before generating when the server cannot be reached
  pg.exec("SET client_min_messages = warning");
  // Text without an offset is UTC (as retentiond reads it); no search path:
  // every name is written with its schema.
  pg.exec("SET TIME ZONE 'UTC'");
  pg.exec("SET search_path = ''");
  auto schemas = postgresql_schemas();
  if (!overwrite) {
    // Checked again in the transaction below; this only fails early.
    auto existing = existing_postgresql_schemas(dsn);
    if (!existing.empty())
      throw SchemaExists(fmt::format("schema '{}' already exists", existing.front()));
  }

  ScratchDir scratch;
  GenerateOptions sqlite_options = options;
  sqlite_options.indexes = false;  // the scratch copy is only read, once, in order
  generate(scratch.path(), sqlite_options);

  PostgresLoad load;
  pg.exec("BEGIN");
  for (const auto& s : schemas) {
    if (overwrite) pg.exec(fmt::format("DROP SCHEMA IF EXISTS {} CASCADE", quote_ident(s)));
    pg.exec(fmt::format("CREATE SCHEMA {}", quote_ident(s)));
  }
  for (const auto& t : pg_tables()) {
    std::vector<std::string> defs;
    for (const auto& c : t.columns)
      defs.push_back(fmt::format("{} {}", quote_ident(c.name), c.type));
    pg.exec(fmt::format("CREATE TABLE {}.{} ({})", quote_ident(t.schema), quote_ident(t.table),
                        fmt::join(defs, ", ")));
    std::int64_t rows = copy_table(pg, scratch.path(), t, load.unreadable);
    for (auto index : t.indexes) {
      auto open = index.find(" (");
      pg.exec(fmt::format("CREATE INDEX {} ON {}.{} {}", quote_ident(index.substr(0, open)),
                          quote_ident(t.schema), quote_ident(t.table), index.substr(open + 1)));
    }
    load.tables.push_back({std::string(t.schema), std::string(t.table), rows});
    if (progress) progress(load.tables.back());
  }
  pg.exec("COMMIT");
  // Statistics and the visibility map, as autovacuum would leave them.
  for (const auto& t : pg_tables())
    pg.exec(fmt::format("VACUUM (ANALYZE) {}.{}", quote_ident(t.schema), quote_ident(t.table)));
  return load;
}

std::string postgresql_policy_text(const std::string& dsn) {
  std::string text(mgen_policy_text());
  std::string escaped;
  for (char c : dsn) {
    if (c == '"' || c == '\\') escaped += '\\';
    escaped += c;
  }
  // Each `NAME: { kind: sqlite, path: FILE }` line of the stores section
  // becomes a schema of the database; comments stay.
  static const std::regex store_line(
      R"(^(  ([a-z_]+):\s*)\{ kind: sqlite, path: [^}]*\}(\s*#.*)?$)");
  std::istringstream in(text);
  std::string out, line;
  bool in_stores = false;
  std::set<std::string> replaced;
  while (std::getline(in, line)) {
    if (line == "stores:") {
      in_stores = true;
      out +=
          "# retentiond-demo-data --postgresql: each store is a schema of one PostgreSQL "
          "database.\n";
    } else if (in_stores && !line.empty() && line[0] != ' ' && line[0] != '#') {
      in_stores = false;
    }
    std::smatch m;
    if (in_stores && std::regex_match(line, m, store_line)) {
      std::string name = m[2];
      line = fmt::format("{}{{ kind: postgresql, dsn: \"{}\", schema: {} }}{}", m[1].str(), escaped,
                         name, m[3].str());
      replaced.insert(name);
    }
    out += line;
    out += '\n';
  }
  auto schemas = postgresql_schemas();
  if (replaced != std::set<std::string>(schemas.begin(), schemas.end())) {
    throw std::runtime_error(
        "policies/mgen.yaml's stores are not the data set's schemas; the PostgreSQL policy "
        "cannot be written");
  }
  return out;
}

}  // namespace retentiond::demo
