#include "store_fixture.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "sweep_support.hpp"

namespace retentiond::test {

namespace fs = std::filesystem;

namespace {

std::string quote_identifier(std::string_view name) {
  std::string q = "\"";
  for (char c : name) {
    if (c == '"') q += '"';
    q += c;
  }
  return q + '"';
}

// A YAML double-quoted scalar.
std::string yaml_string(std::string_view text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + '"';
}

// The first column of every row of a SQLite store. Read through a read-write
// connection, as the next sweep would: it rolls back what a killed
// transaction left in a hot journal (a read-only one could not).
std::vector<std::string> sqlite_column(const fs::path& file, std::string_view sql) {
  if (!fs::exists(file)) throw std::runtime_error("no such store file: " + file.string());
  sqlite::Database db(file, sqlite::OpenMode::read_write);
  sqlite::Statement s(db, sql);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_is_null(0) ? "<null>" : s.column_text(0));
  return out;
}

}  // namespace

std::string sql_literal(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

std::string Variant::name() const {
  if (kind == StoreKind::sqlite) return "sqlite";
  return archive_in_other_database ? "postgresql-other-database" : "postgresql";
}

TestStores::TestStores(Variant variant) : variant_(variant) {
  // At least 32 bytes, used as they are (the trailing newline included).
  hmac_key_ = "conformance-k3y-0123456789abcdef-0123456789\n";
  dir_.write("hmac.key", hmac_key_, 0600);
  if (kind() == StoreKind::postgresql) main_database_ = std::make_unique<TestDatabase>();
}

TestStores::~TestStores() = default;

void TestStores::add(const std::string& name, Role role) {
  if (roles_.count(name)) throw std::logic_error("store added twice: " + name);
  names_.push_back(name);
  roles_[name] = role;
  if (kind() == StoreKind::postgresql && role == Role::archive &&
      variant_.archive_in_other_database && !other_database_) {
    other_database_ = std::make_unique<TestDatabase>();
  }
  if (role == Role::live) {
    if (kind() == StoreKind::sqlite) {
      retentiond::test::exec(file(name), "SELECT 1");
    } else {
      auto place = pg(name);
      place.database->exec("CREATE SCHEMA " + quote_identifier(place.schema));
    }
  }
}

fs::path TestStores::file(const std::string& name) const { return dir_ / (name + ".db"); }

TestStores::PgPlace TestStores::pg(const std::string& name) const {
  auto it = roles_.find(name);
  if (it == roles_.end()) throw std::logic_error("no such store: " + name);
  bool other = it->second == Role::archive && variant_.archive_in_other_database;
  return {other ? other_database_.get() : main_database_.get(), name};
}

std::string TestStores::store_yaml(const std::string& name) const {
  if (!roles_.count(name)) throw std::logic_error("no such store: " + name);
  if (kind() == StoreKind::sqlite) return fmt::format("{{ kind: sqlite, path: {}.db }}", name);
  auto place = pg(name);
  return fmt::format("{{ kind: postgresql, dsn: {}, schema: {} }}",
                     yaml_string(place.database->dsn()), place.schema);
}

std::string TestStores::policy_yaml(std::string_view rules, int batch_size) const {
  std::string out = fmt::format(
      "version: 1\ntimezone: Europe/Paris\nbatch_size: {}\nhmac_key_file: hmac.key\nstores:\n",
      batch_size);
  for (const auto& name : names_) out += fmt::format("  {}: {}\n", name, store_yaml(name));
  out += "rules:\n";
  out += rules;
  return out;
}

std::shared_ptr<const Policy> TestStores::policy(std::string_view rules, int batch_size) const {
  return write_policy(dir_, policy_yaml(rules, batch_size));
}

void TestStores::exec(const std::string& name, std::string_view sql) const {
  if (kind() == StoreKind::sqlite) {
    retentiond::test::exec(file(name), sql);
    return;
  }
  auto place = pg(name);
  std::string schema = quote_identifier(place.schema);
  place.database->exec("CREATE SCHEMA IF NOT EXISTS " + schema + "; SET search_path TO " + schema);
  place.database->exec("BEGIN;\n" + std::string(sql) + ";\nCOMMIT;");
}

std::vector<std::string> TestStores::query_column(const std::string& name,
                                                  std::string_view sql) const {
  if (kind() == StoreKind::sqlite) return sqlite_column(file(name), sql);
  auto place = pg(name);
  place.database->exec("SET search_path TO " + quote_identifier(place.schema));
  return place.database->query_column(sql);
}

std::int64_t TestStores::query_int(const std::string& name, std::string_view sql) const {
  if (kind() == StoreKind::sqlite) {
    auto column = sqlite_column(file(name), sql);
    if (column.size() != 1) throw std::runtime_error("not one row: " + std::string(sql));
    return std::stoll(column.front());
  }
  auto place = pg(name);
  place.database->exec("SET search_path TO " + quote_identifier(place.schema));
  return place.database->query_int(sql);
}

std::set<std::string> TestStores::query_set(const std::string& name, std::string_view sql) const {
  auto column = query_column(name, sql);
  return {column.begin(), column.end()};
}

bool TestStores::table_exists(const std::string& name, const std::string& table) const {
  if (kind() == StoreKind::sqlite) {
    if (!fs::exists(file(name))) return false;
    return !sqlite_column(file(name), fmt::format("SELECT name FROM sqlite_schema WHERE type = "
                                                  "'table' AND name = {}",
                                                  sql_literal(table)))
                .empty();
  }
  auto place = pg(name);
  return place.database->query_int(fmt::format(
             "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = {} AND tablename = {}",
             sql_literal(place.schema), sql_literal(table))) > 0;
}

std::vector<std::string> TestStores::columns(const std::string& name,
                                             const std::string& table) const {
  if (kind() == StoreKind::sqlite) {
    return sqlite_column(
        file(name),
        fmt::format("SELECT name || ' ' || type FROM pragma_table_info({}) ORDER BY cid",
                    sql_literal(table)));
  }
  auto place = pg(name);
  return place.database->query_column(fmt::format(
      "SELECT attname || ' ' || format_type(atttypid, atttypmod) FROM pg_catalog.pg_attribute "
      "WHERE attrelid = {}::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      sql_literal(quote_identifier(place.schema) + "." + quote_identifier(table))));
}

void TestStores::analyze(const std::string& name) const {
  if (kind() == StoreKind::sqlite) {
    retentiond::test::exec(file(name), "ANALYZE");
    return;
  }
  auto place = pg(name);
  for (const auto& table : place.database->query_column(fmt::format(
           "SELECT quote_ident(tablename) FROM pg_catalog.pg_tables WHERE schemaname = {}",
           sql_literal(place.schema)))) {
    place.database->exec("ANALYZE " + quote_identifier(place.schema) + "." + table);
  }
}

std::string TestStores::dump(const std::string& name) const {
  if (kind() == StoreKind::sqlite) {
    if (!fs::exists(file(name))) return "";
    return retentiond::test::dump(file(name));
  }
  auto place = pg(name);
  // The schemas say whether the store (and retentiond's bookkeeping schema)
  // was created; the outbox's rows are the bookkeeping a sweep leaves.
  std::string out = "schemas:";
  for (const auto& s : place.database->query_column(
           "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname NOT LIKE 'pg\\_%' AND "
           "nspname <> 'information_schema' ORDER BY nspname COLLATE \"C\"")) {
    out += " " + s;
  }
  out += "\n";
  if (place.database->query_int(
          "SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = 'retentiond'") > 0) {
    out += place.database->dump("retentiond");
  }
  return out + place.database->dump(place.schema);
}

std::vector<std::string> TestStores::undated_values() const {
  if (kind() == StoreKind::sqlite) return {"NULL", "''", "'garbage'", "'2015-02-30'"};
  return {"NULL", "'infinity'", "'-infinity'"};
}

std::vector<InstantAnchor> TestStores::instant_anchors() const {
  std::vector<InstantAnchor> out{{"text (anchor_format datetime)", "TEXT", "datetime"}};
  if (kind() == StoreKind::postgresql) {
    out.push_back({"timestamptz", "timestamptz", ""});
    out.push_back({"timestamp (UTC)", "timestamp", ""});
  }
  return out;
}

std::string TestStores::year_kept(std::string_view day) const {
  if (kind() == StoreKind::sqlite) return std::string(day.substr(0, 4));
  return std::string(day.substr(0, 4)) + "-01-01";
}

std::string TestStores::month_kept(std::string_view day) const {
  if (kind() == StoreKind::sqlite) return std::string(day.substr(0, 7));
  return std::string(day.substr(0, 7)) + "-01";
}

std::string TestStores::day_plus_sql(std::string_view base, std::string_view days) const {
  if (kind() == StoreKind::sqlite)
    return fmt::format("date({}, printf('+%d days', {}))", sql_literal(base), days);
  return fmt::format("(DATE {} + ({}))", sql_literal(base), days);
}

}  // namespace retentiond::test
