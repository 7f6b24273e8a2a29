#include "store_fixture.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "sweep_support.hpp"
#include "time/anchor.hpp"
#include "util/digest.hpp"

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

// The modification time given to a files record whose day is in its name:
// any time would do; its access time, a month earlier, is one that reading
// the file would move (relatime), so that a dump shows any read.
const std::chrono::sys_seconds kNamedRecordTime{date::sys_days{date::year{2001} / 2 / 3}};
constexpr auto kAccessBefore = std::chrono::days{30};

std::int64_t nanoseconds(const struct timespec& t) {
  return t.tv_sec * std::int64_t{1'000'000'000} + t.tv_nsec;
}

// Writes `file` (folders made) with `content`, mode 0640, and its times.
void write_record_file(const fs::path& file, std::string_view content,
                       std::chrono::sys_seconds mtime) {
  fs::create_directories(file.parent_path());
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  bool ok = ::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size());
  ok = ::fchmod(fd, 0640) == 0 && ok;
  struct timespec times[2]{};
  times[0].tv_sec = (mtime - kAccessBefore).time_since_epoch().count();
  times[1].tv_sec = mtime.time_since_epoch().count();
  ok = ::futimens(fd, times) == 0 && ok;
  ::close(fd);
  if (!ok) throw std::runtime_error("cannot write " + file.string());
}

// The bytes of a file, read without moving its access time (O_NOATIME:
// the tests run as the files' owner).
std::string read_without_atime(const fs::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOATIME);
  if (fd < 0) throw std::system_error(errno, std::generic_category(), "open " + file.string());
  std::string out;
  char buffer[1 << 14];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  if (n < 0) throw std::runtime_error("cannot read " + file.string());
  return out;
}

// Every entry under `root`, in path order, one line each.
std::string dump_tree(const fs::path& root) {
  std::vector<fs::path> entries;
  for (const auto& e : fs::recursive_directory_iterator(root)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  std::string out;
  for (const auto& path : entries) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0)
      throw std::system_error(errno, std::generic_category(), "lstat " + path.string());
    std::string rel = fs::relative(path, root).string();
    // A folder's access time is not in it: listing a folder may move it.
    out += fmt::format("{} mode {:o} ino {} mtime {} ctime {}", rel, st.st_mode, st.st_ino,
                       nanoseconds(st.st_mtim), nanoseconds(st.st_ctim));
    if (S_ISREG(st.st_mode)) {
      out += fmt::format(" size {} atime {} sha256 {}", st.st_size, nanoseconds(st.st_atim),
                         sha256_hex(read_without_atime(path)));
    } else if (S_ISLNK(st.st_mode)) {
      out += " -> " + fs::read_symlink(path).string();
    }
    out += "\n";
  }
  return out;
}

std::string record_content(const Record& r) {
  return r.content.empty() ? "record " + r.key : r.content;
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
  if (kind == StoreKind::files) return hold_list ? "files-hold-list" : "files";
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
    if (is_files()) {
      fs::create_directories(root(name));
      // A list that cannot be read ends the rule: an empty one holds nothing.
      if (variant_.hold_list) dir_.write(hold_list(name).filename().string(), "");
    } else if (kind() == StoreKind::sqlite) {
      retentiond::test::exec(file(name), "SELECT 1");
    } else {
      auto place = pg(name);
      place.database->exec("CREATE SCHEMA " + quote_identifier(place.schema));
    }
  }
}

fs::path TestStores::file(const std::string& name) const { return dir_ / (name + ".db"); }

fs::path TestStores::root(const std::string& name) const {
  if (!roles_.count(name)) throw std::logic_error("no such store: " + name);
  return dir_ / name;
}

fs::path TestStores::hold_list(const std::string& name) const {
  return dir_ / (name + ".holds.txt");
}

void TestStores::sql_only(std::string_view what) const {
  if (is_files()) throw std::logic_error(std::string(what) + " on a files store: tables only");
}

TestStores::PgPlace TestStores::pg(const std::string& name) const {
  auto it = roles_.find(name);
  if (it == roles_.end()) throw std::logic_error("no such store: " + name);
  bool other = it->second == Role::archive && variant_.archive_in_other_database;
  return {other ? other_database_.get() : main_database_.get(), name};
}

std::string TestStores::store_yaml(const std::string& name) const {
  if (!roles_.count(name)) throw std::logic_error("no such store: " + name);
  if (kind() == StoreKind::sqlite) return fmt::format("{{ kind: sqlite, path: {}.db }}", name);
  if (is_files()) return fmt::format("{{ kind: files, root: {} }}", name);
  auto place = pg(name);
  return fmt::format("{{ kind: postgresql, dsn: {}, schema: {} }}",
                     yaml_string(place.database->dsn()), place.schema);
}

std::string TestStores::policy_yaml(std::string_view rules, int batch_size) const {
  std::string out = fmt::format(
      // batch_size alone sizes the batches (a generous max_transaction): the
      // tests count batches, which a slow moment of the machine must not change.
      "version: 1\ntimezone: Europe/Paris\nbatch_size: {}\nmax_transaction: 1 min\n"
      "hmac_key_file: hmac.key\nstores:\n",
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
  sql_only("exec");
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
  sql_only("query_column");
  if (kind() == StoreKind::sqlite) return sqlite_column(file(name), sql);
  auto place = pg(name);
  place.database->exec("SET search_path TO " + quote_identifier(place.schema));
  return place.database->query_column(sql);
}

std::int64_t TestStores::query_int(const std::string& name, std::string_view sql) const {
  sql_only("query_int");
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
  sql_only("table_exists");
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
  sql_only("columns");
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
  sql_only("analyze");
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
  if (is_files()) return fs::exists(root(name)) ? dump_tree(root(name)) : "";
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

std::vector<std::optional<std::string>> TestStores::undated_anchors() const {
  if (kind() == StoreKind::sqlite) return {std::nullopt, "", "garbage", "2015-02-30"};
  if (is_files()) return {std::nullopt, "2015-02-30", "20150230", "2015-13-01"};
  return {std::nullopt, "infinity", "-infinity"};
}

std::vector<std::string> TestStores::undated_values() const {
  sql_only("undated_values");
  std::vector<std::string> out;
  for (const auto& a : undated_anchors()) out.push_back(a ? sql_literal(*a) : "NULL");
  return out;
}

std::vector<InstantAnchor> TestStores::instant_anchors() const {
  if (is_files()) return {{"modification time", "", ""}};
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

// --- Records.

namespace {

// The file of a record, relative to the root.
fs::path record_path(const RecordSet& set, const Record& r) {
  if (set.instant) return fs::path(set.name) / r.key / "record.rec";
  return fs::path(set.name) / r.key / ((r.anchor ? *r.anchor : std::string("undated")) + ".rec");
}

std::string anchor_column_type(const RecordSet& set) {
  return set.instant ? set.instant->column_type : "DATE";
}

}  // namespace

void TestStores::put(const std::string& name, const RecordSet& set,
                     const std::vector<Record>& records) const {
  bool live = roles_.at(name) == Role::live;
  for (const auto& r : records) {
    if (r.held && !live)
      throw std::logic_error("record " + r.key + " held in archive store " + name);
  }
  if (is_files()) {
    for (const auto& r : records) {
      std::chrono::sys_seconds mtime = kNamedRecordTime;
      if (set.instant) {
        auto instant = r.anchor ? parse_datetime_text(*r.anchor) : std::nullopt;
        if (!instant) throw std::logic_error("a file's modification time must be an instant");
        mtime = *instant;
      }
      write_record_file(root(name) / record_path(set, r), record_content(r), mtime);
      if (r.held) set_held(name, set, r.key, true);
    }
    return;
  }
  std::string sql = fmt::format(
      "CREATE TABLE IF NOT EXISTS {} (id TEXT PRIMARY KEY, content TEXT, "
      "at {})",
      set.name, anchor_column_type(set));
  if (live) sql += fmt::format(";\nCREATE TABLE IF NOT EXISTS {}_holds (id TEXT)", set.name);
  for (const auto& r : records) {
    sql += fmt::format(";\nINSERT INTO {} VALUES ({}, {}, {})", set.name, sql_literal(r.key),
                       sql_literal(record_content(r)), r.anchor ? sql_literal(*r.anchor) : "NULL");
    if (r.held)
      sql += fmt::format(";\nINSERT INTO {}_holds VALUES ({})", set.name, sql_literal(r.key));
  }
  exec(name, sql);
}

void TestStores::set_held(const std::string& name, const RecordSet& set, const std::string& key,
                          bool held) const {
  if (roles_.at(name) != Role::live) throw std::logic_error("holds are the live store's");
  if (is_files() && variant_.hold_list) {
    // A listed folder holds everything below it.
    // Lines are whole: "\n" before each, so that c1 is not found in c10.
    std::string line = "\n" + set.name + "/" + key, list = "\n" + read_file(hold_list(name));
    auto at = list.find(line + "\n");
    if (held && at == std::string::npos) list += line.substr(1) + "\n";
    if (!held && at != std::string::npos) list.erase(at, line.size());
    dir_.write(hold_list(name).filename().string(), list.substr(1));
    return;
  }
  if (is_files()) {
    fs::path hold = root(name) / set.name / key / ".hold";
    if (held) {
      fs::create_directories(hold.parent_path());
      write_record_file(hold, "", kNamedRecordTime);
    } else {
      fs::remove(hold);
    }
    return;
  }
  exec(name, held ? fmt::format("INSERT INTO {}_holds VALUES ({})", set.name, sql_literal(key))
                  : fmt::format("DELETE FROM {}_holds WHERE id = {}", set.name, sql_literal(key)));
}

std::map<std::string, std::string> TestStores::records(const std::string& name,
                                                       const RecordSet& set) const {
  std::map<std::string, std::string> out;
  auto add = [&](const std::string& key, std::string text) {
    if (!out.emplace(key, std::move(text)).second)
      throw std::runtime_error("record " + key + " twice in store " + name);
  };
  if (is_files()) {
    fs::path folder = root(name) / set.name;
    if (!fs::is_directory(folder)) return out;
    for (const auto& record_dir : fs::directory_iterator(folder)) {
      if (!record_dir.is_directory() || record_dir.is_symlink()) continue;
      for (const auto& f : fs::directory_iterator(record_dir.path())) {
        if (f.is_symlink() || !f.is_regular_file() || f.path().extension() != ".rec") continue;
        struct stat st {};
        if (::lstat(f.path().c_str(), &st) != 0)
          throw std::system_error(errno, std::generic_category(), "lstat " + f.path().string());
        add(record_dir.path().filename().string(),
            fmt::format("{}|mode {:o}|mtime {}|{}", f.path().filename().string(),
                        st.st_mode & 07777, nanoseconds(st.st_mtim), read_without_atime(f.path())));
      }
    }
    return out;
  }
  if (!table_exists(name, set.name)) return out;
  for (const auto& row : query_column(
           name, fmt::format("SELECT id || '|' || COALESCE(CAST(at AS TEXT), '<null>') || '|' || "
                             "content FROM {}",
                             set.name))) {
    auto bar = row.find('|');
    add(row.substr(0, bar), row.substr(bar + 1));
  }
  return out;
}

std::set<std::string> TestStores::keys(const std::string& name, const RecordSet& set) const {
  std::set<std::string> out;
  for (const auto& [key, text] : records(name, set)) out.insert(key);
  return out;
}

std::string TestStores::key_text(const RecordSet& set, const Record& record) const {
  return is_files() ? record_path(set, record).string() : record.key;
}

std::string TestStores::report_table(const RecordSet& set) const {
  return is_files() ? set.name + "/*/*.rec" : set.name;
}

std::string TestStores::rule_yaml(const std::string& name, const RecordSet& set) const {
  if (!roles_.count(name)) throw std::logic_error("no such store: " + name);
  if (is_files()) {
    return fmt::format("    store: {}\n    pattern: \"{}\"\n    anchor: {}\n    hold: {}\n", name,
                       report_table(set), set.instant ? "mtime" : "name",
                       variant_.hold_list
                           ? fmt::format("{{ list: {} }}", hold_list(name).filename().string())
                           : std::string("{ file: .hold }"));
  }
  std::string format;
  if (set.instant && !set.instant->anchor_format.empty())
    format = fmt::format("    anchor_format: {}\n", set.instant->anchor_format);
  return fmt::format(
      "    store: {0}\n    table: {1}\n    key: id\n    anchor: at\n{2}    hold: {{ table: "
      "{1}_holds, key: id }}\n",
      name, set.name, format);
}

}  // namespace retentiond::test
