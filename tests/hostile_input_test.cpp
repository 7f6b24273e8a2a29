// Hostile input, through the real binary: each gets its clear error, and
// where retentiond refuses, nothing is changed (every file in the folder
// keeps its bytes). docs/hostile-inputs.md lists them with what each gets.
// Also the secrets: the hmac key and a PostgreSQL password never appear in
// any output or in the state directory, and a running daemon cannot dump core.
#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sweep_support.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;

namespace {

// Every file under `root` (but the state directory, the captured output and
// the copy of the binary run as another user)
// and its content's digest: equal snapshots mean nothing was written.
std::map<std::string, std::string> snapshot(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    auto rel = fs::relative(it->path(), root).string();
    if (rel == "state" || rel.starts_with("state/") || rel.starts_with("retentiond.")) {
      if (it->is_directory() && rel == "state") it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file()) files[rel] = sha256_hex(read_file(it->path()));
  }
  return files;
}

std::string names(const std::map<std::string, std::string>& files) {
  std::string out;
  for (const auto& [name, digest] : files) out += name + " " + digest.substr(0, 12) + "\n";
  return out;
}

// A folder with a policy and its stores, and the binary run on it.
struct Folder {
  TempDir dir;
  fs::path policy = dir / "policy.yaml";
  fs::path state = dir / "state";

  void write_policy(std::string_view yaml) const { dir.write("policy.yaml", yaml); }

  ProcessOutcome retentiond(std::vector<std::string> args, const fs::path& state_dir = {}) const {
    std::vector<std::string> all{"-c", policy.string(), "--state-dir",
                                 (state_dir.empty() ? state : state_dir).string()};
    all.insert(all.end(), args.begin(), args.end());
    return run_retentiond(dir, all);
  }
  ProcessOutcome sweep(std::vector<std::string> more = {}) const {
    std::vector<std::string> args{"sweep", "--as-of", "2026-01-01"};
    args.insert(args.end(), more.begin(), more.end());
    return retentiond(args);
  }
};

#define SHOW(outcome)                                  \
  INFO("exit " << (outcome).exit_code << "\nstdout:\n" \
               << (outcome).out << "\nstderr:\n"       \
               << (outcome).err)

constexpr std::string_view kVisitsPolicy = R"(version: 1
timezone: Europe/Paris
stores:
  web: { kind: sqlite, path: web.db }
rules:
  - name: visits
    store: web
    table: visits
    key: id
    anchor: visited_at
    keep_for: 13 months
    action: delete
)";

// The store of kVisitsPolicy: one row past its period, one not.
void make_visits(const Folder& f) {
  exec(f.dir / "web.db", R"(
    CREATE TABLE visits (id INTEGER PRIMARY KEY, visited_at TEXT, ip TEXT, visitor TEXT, coded_at TEXT);
    CREATE INDEX visits_visited_at ON visits (visited_at);
    INSERT INTO visits VALUES (1, '2015-01-01', '192.0.2.1', 'alice', NULL), (2, '2025-12-01', '192.0.2.2', 'bob', NULL);
  )");
}

// kVisitsPolicy with `from` (a whole line, or the start of one) replaced.
std::string visits_policy_with(std::string_view from, std::string_view to) {
  std::string p(kVisitsPolicy);
  auto at = p.find(from);
  if (at == std::string::npos) throw std::logic_error("not in the policy: " + std::string(from));
  return p.replace(at, from.size(), to);
}

// Runs a real sweep on a refused policy: exit 78, FILE:LINE:COLUMN and the
// reason on stderr, nothing on stdout, no file changed, no state created.
void expect_refused_policy(const Folder& f, const std::string& where, const std::string& why) {
  auto before = snapshot(f.dir.path());
  auto r = f.sweep();
  SHOW(r);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Catch::Contains(f.policy.string() + ":" + where + ": "));
  CHECK_THAT(r.err, Catch::Contains(why));
  CHECK(r.out.empty());
  CHECK(names(snapshot(f.dir.path())) == names(before));
  CHECK_FALSE(fs::exists(f.state));
}

}  // namespace

TEST_CASE("hostile policies are refused with FILE:LINE:COLUMN, exit 78, and nothing is touched",
          "[hostile]") {
  Folder f;
  make_visits(f);

  SECTION("identifiers carrying SQL") {
    struct Case {
      std::string from, to, where;
    };
    std::vector<Case> cases{
        {"    table: visits", "    table: \"visits; DROP TABLE visits\"", "8:12"},
        {"    key: id", "    key: 'id\" OR 1=1 --'", "9:10"},
        {"    anchor: visited_at", "    anchor: \"visited_at) OR (1=1\"", "10:13"},
        {"    action: delete", "    action: delete\n    where: { \"ip = ip OR 1\": x }", "13:14"},
        {"    action: delete",
         "    action: delete\n    hold: { column: \"1); DELETE FROM visits; --\" }", "13:21"},
        {"    action: delete",
         "    action: delete\n    hold: { table: \"visits WHERE 1=1\", key: id }", "13:20"},
        {"    keep_for: 13 months\n    action: delete",
         "    keep_for: 13 months\n    action: anonymize\n    anonymize: { \"ip = NULL, visitor\": "
         "\"null\" }",
         "13:18"},
        {"    keep_for: 13 months\n    action: delete",
         "    keep_for: 13 months\n    action: anonymize\n    anonymize: { ip: \"null\", mark: "
         "\"coded_at = 1 --\" }",
         "13:36"},
    };
    for (const auto& c : cases) {
      DYNAMIC_SECTION(c.to) {
        f.write_policy(visits_policy_with(c.from, c.to));
        expect_refused_policy(f, c.where, "is not a plain SQL identifier");
      }
    }
  }

  SECTION("a YAML alias bomb (billion laughs) is not expanded") {
    // Ten levels of ten aliases each: 10^10 values if expanded.
    std::string bomb =
        "    where:\n      ip: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (int i = 1; i <= 9; ++i) {
      std::vector<std::string> refs(10, fmt::format("*l{}", i - 1));
      bomb += fmt::format("      c{}: &l{} [{}]\n", i, i, fmt::join(refs, ", "));
    }
    f.write_policy(
        visits_policy_with("    keep_for: 13 months\n", bomb + "    keep_for: 13 months\n"));
    auto started = std::chrono::steady_clock::now();
    // An alias is the node it names: the error points at the list that l0 anchors.
    expect_refused_policy(f, "12:11", "where value must be text, found a list");
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds{10});
  }

  SECTION("a 100 MB policy file is refused before it is read") {
    f.write_policy(kVisitsPolicy);
    fs::resize_file(f.policy, 100 * 1024 * 1024);  // sparse: written in no time
    expect_refused_policy(f, "1:1",
                          "the policy file is 104857600 bytes; accepted: at most 1048576 bytes");
  }

  SECTION("deeply nested YAML") {
    for (int depth : {100'000, 5'000}) {
      DYNAMIC_SECTION(depth << " levels") {
        std::string nested = std::string(static_cast<std::size_t>(depth), '[') +
                             std::string(static_cast<std::size_t>(depth), ']');
        f.write_policy(visits_policy_with("    keep_for: 13 months\n",
                                          "    basis: " + nested + "\n    keep_for: 13 months\n"));
        auto before = snapshot(f.dir.path());
        auto r = f.sweep();
        SHOW(r);
        CHECK(r.exit_code == 78);
        CHECK_THAT(r.err, Catch::Contains(f.policy.string() + ":11:"));
        CHECK_THAT(r.err, Catch::Contains("nested too deeply"));
        CHECK(names(snapshot(f.dir.path())) == names(before));
      }
    }
  }

  SECTION("bytes that are not UTF-8") {
    f.write_policy(visits_policy_with("    keep_for: 13 months",
                                      "    basis: \"caf\xe9\"\n    keep_for: 13 months"));
    expect_refused_policy(f, "11:16", "not valid UTF-8");
  }

  SECTION("a period of 999999 years") {
    f.write_policy(visits_policy_with("    keep_for: 13 months", "    keep_for: 999999 years"));
    expect_refused_policy(f, "11:15", "longer than 1000 years");
  }
}

TEST_CASE("SQL in a where value is a value to compare, never SQL", "[hostile]") {
  Folder f;
  make_visits(f);
  f.write_policy(visits_policy_with("    action: delete",
                                    "    action: delete\n    where: { ip: \"x' OR '1'='1\" }"));
  auto r = f.sweep({"--format", "json"});
  SHOW(r);
  REQUIRE(r.exit_code == 0);
  CHECK(nlohmann::json::parse(r.out).at("totals").at("affected") == 0);
  CHECK(query_int(f.dir / "web.db", "SELECT count(*) FROM visits") == 2);
}

TEST_CASE("anchors holding blobs, huge strings, floats or mixed types are undated and untouched",
          "[hostile]") {
  Folder f;
  f.write_policy(R"(version: 1
timezone: Europe/Paris
stores:
  s: { kind: sqlite, path: s.db }
rules:
  - name: by-date
    store: s
    table: d
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
  - name: by-datetime
    store: s
    table: dt
    key: id
    anchor: at
    anchor_format: datetime
    keep_for: 1 year
    action: delete
  - name: by-epoch
    store: s
    table: ue
    key: id
    anchor: at
    anchor_format: unixepoch
    keep_for: 1 year
    action: delete
)");
  // Row 1 of each table is a readable anchor past its period; every other
  // row is hostile. Columns without a type keep what is put in them.
  exec(f.dir / "s.db", R"(
    CREATE TABLE d (id INTEGER PRIMARY KEY, at);
    CREATE INDEX d_at ON d (at);
    INSERT INTO d VALUES
      (1, '2015-01-01'), (2, CAST('2015-01-01' AS BLOB)), (3, x'00ff'), (4, 2015.5), (5, 20150101),
      (6, '2015-01-01' || printf('%.10000000c', 'x')), (7, printf('%.10000000c', '2')), (8, ''),
      (9, NULL), (10, ' 2015-01-01'), (11, '2015-1-1'), (12, '2015-02-30'), (13, 'never');
    CREATE TABLE dt (id INTEGER PRIMARY KEY, at);
    CREATE INDEX dt_at ON dt (at);
    INSERT INTO dt VALUES
      (1, '2015-01-01 10:00:00'), (2, CAST('2015-01-01 10:00:00' AS BLOB)), (3, 2457023.5), (4, 1420070400),
      (5, '2015-01-01T10:00:00' || printf('%.10000000c', 'Z')), (6, '2015-01-01 25:00:00');
    CREATE TABLE ue (id INTEGER PRIMARY KEY, at);
    CREATE INDEX ue_at ON ue (at);
    INSERT INTO ue VALUES
      (1, 1420070400), (2, 1420070400.0), (3, 1420070400.5), (4, '1420070400'), (5, x'01'),
      (6, printf('%.10000000c', '1')), (7, -99999999999999), (8, 9223372036854775807);
  )");
  auto hostile_rows = [&] {
    std::string all;
    for (const char* t : {"d", "dt", "ue"}) {
      all += sha256_hex(fmt::format(
          "{}", fmt::join(query_column(
                              f.dir / "s.db",
                              fmt::format("SELECT quote(at) FROM {} WHERE id > 1 ORDER BY id", t)),
                          "|")));
    }
    return all;
  };
  auto before = hostile_rows();
  auto r = f.sweep({"--format", "json"});
  SHOW(r);
  REQUIRE(r.exit_code == 0);
  auto report = nlohmann::json::parse(r.out);
  std::map<std::string, std::pair<int, int>> counts;  // rule: undated, affected
  for (const auto& e : report.at("rules"))
    counts[e.at("rule")] = {e.at("undated"), e.at("affected")};
  CHECK(counts["by-date"] == std::pair{12, 1});
  CHECK(counts["by-datetime"] == std::pair{5, 1});
  CHECK(counts["by-epoch"] == std::pair{7, 1});
  CHECK(hostile_rows() == before);
  for (const char* t : {"d", "dt", "ue"}) {
    CHECK(query_int(f.dir / "s.db", fmt::format("SELECT count(*) FROM {} WHERE id = 1", t)) == 0);
  }
}

TEST_CASE("a WITHOUT ROWID table is deleted from, archived and anonymised like any other",
          "[hostile]") {
  Folder f;
  f.dir.write("hmac.key", std::string(32, 'k'), 0600);
  f.write_policy(R"(version: 1
timezone: Europe/Paris
hmac_key_file: hmac.key
stores:
  s: { kind: sqlite, path: s.db }
  a: { kind: sqlite, path: a.db }
rules:
  - name: codes
    store: s
    table: codes
    key: code
    anchor: at
    keep_for: 1 year
    action: delete
  - name: moved
    store: s
    table: moved
    key: code
    anchor: at
    keep_for: 1 year
    action: archive
    to: a
  - name: people
    store: s
    table: people
    key: code
    anchor: at
    keep_for: 1 year
    action: anonymize
    anonymize: { name: hmac, mark: coded_at }
)");
  exec(f.dir / "s.db", R"(
    CREATE TABLE codes (code TEXT PRIMARY KEY, at TEXT) WITHOUT ROWID;
    INSERT INTO codes VALUES ('a', '2015-01-01'), ('b', '2015-01-02'), ('c', '2025-12-01');
    CREATE TABLE moved (code TEXT PRIMARY KEY, at TEXT, v TEXT) WITHOUT ROWID;
    INSERT INTO moved VALUES ('a', '2015-01-01', 'one'), ('b', '2025-12-01', 'two');
    CREATE TABLE people (code TEXT PRIMARY KEY, at TEXT, name TEXT, coded_at TEXT) WITHOUT ROWID;
    INSERT INTO people VALUES ('a', '2015-01-01', 'alice', NULL), ('b', '2025-12-01', 'bob', NULL);
  )");
  auto r = f.sweep();
  SHOW(r);
  REQUIRE(r.exit_code == 0);
  CHECK(query_column(f.dir / "s.db", "SELECT code FROM codes ORDER BY code") ==
        std::vector<std::string>{"c"});
  CHECK(query_column(f.dir / "s.db", "SELECT code FROM moved") == std::vector<std::string>{"b"});
  CHECK(query_column(f.dir / "a.db", "SELECT code || v FROM moved") ==
        std::vector<std::string>{"aone"});
  CHECK(query_column(f.dir / "s.db", "SELECT name FROM people ORDER BY code") ==
        std::vector<std::string>{hmac_sha256_hex(std::string(32, 'k'), "alice"), "bob"});
  auto again = f.sweep({"--format", "json"});
  CHECK(nlohmann::json::parse(again.out).at("totals").at("affected") == 0);
}

TEST_CASE("NULL and duplicate keys", "[hostile]") {
  Folder f;
  f.dir.write("hmac.key", std::string(32, 'k'), 0600);
  auto rule = [](std::string name, std::string table, std::string action) {
    return fmt::format(R"(
  - name: {}
    store: s
    table: {}
    key: k
    anchor: at
    keep_for: 1 year
{})",
                       name, table, action);
  };
  std::string head = R"(version: 1
timezone: Europe/Paris
hmac_key_file: hmac.key
stores:
  s: { kind: sqlite, path: s.db }
  a: { kind: sqlite, path: a.db }
rules:)";
  // Keys NULL, shared by two different rows, and shared by two equal rows.
  constexpr std::string_view kRows =
      "(NULL, '2015-01-01', 'n1', NULL), (NULL, '2015-01-01', 'n2', NULL), (1, '2015-01-01', 'x', "
      "NULL), "
      "(1, '2015-01-01', 'y', NULL), (2, '2015-01-01', 'same', NULL), (2, '2015-01-01', 'same', "
      "NULL), "
      "(3, '2025-12-01', 'recent', NULL)";

  SECTION(
      "delete and anonymise identify rows by rowid: every row past its period is acted on once") {
    f.write_policy(
        head + rule("gone", "gone", "    action: delete") +
        rule("coded", "coded", "    action: anonymize\n    anonymize: { v: hmac, mark: m }"));
    exec(f.dir / "s.db", fmt::format(R"(
      CREATE TABLE gone (k INTEGER, at TEXT, v TEXT, m TEXT);
      INSERT INTO gone VALUES {0};
      CREATE TABLE coded (k INTEGER, at TEXT, v TEXT, m TEXT);
      INSERT INTO coded VALUES {0};
    )",
                                     kRows));
    auto r = f.sweep({"--format", "json"});
    SHOW(r);
    REQUIRE(r.exit_code == 0);
    CHECK(query_column(f.dir / "s.db", "SELECT v FROM gone") == std::vector<std::string>{"recent"});
    CHECK(query_int(f.dir / "s.db",
                    "SELECT count(*) FROM coded WHERE m IS NOT NULL AND length(v) = 64") == 6);
    CHECK(query_column(f.dir / "s.db", "SELECT v FROM coded WHERE m IS NULL") ==
          std::vector<std::string>{"recent"});
    CHECK(audit_affected_total(f.state) == 12);
  }

  SECTION("archive refuses a key that is not unique, before moving anything") {
    f.write_policy(head + rule("moved", "moved", "    action: archive\n    to: a"));
    exec(f.dir / "s.db",
         fmt::format("CREATE TABLE moved (k INTEGER, at TEXT, v TEXT, m TEXT); "
                     "CREATE INDEX moved_k ON moved (k); INSERT INTO moved VALUES {};",
                     kRows));
    auto before = snapshot(f.dir.path());
    auto r = f.sweep();
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("column 'k' of table 'moved' is not unique"));
    CHECK(names(snapshot(f.dir.path())) == names(before));  // no archive created either
  }

  SECTION("archive refuses rows without a key, before moving anything") {
    f.write_policy(head + rule("moved", "moved", "    action: archive\n    to: a"));
    exec(f.dir / "s.db",
         "CREATE TABLE moved (k TEXT PRIMARY KEY, at TEXT, v TEXT); "
         "INSERT INTO moved VALUES (NULL, '2015-01-01', 'n1'), (NULL, '2015-01-01', 'n1'), "
         "('a', '2015-01-01', 'x');");
    auto before = snapshot(f.dir.path());
    auto r = f.sweep();
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("2 row(s) of table 'moved' have no key"));
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }

  SECTION("archive by a unique key moves every row once") {
    f.write_policy(head + rule("moved", "moved", "    action: archive\n    to: a"));
    exec(f.dir / "s.db",
         "CREATE TABLE moved (id INTEGER PRIMARY KEY, k TEXT NOT NULL UNIQUE, at TEXT, v TEXT); "
         "INSERT INTO moved VALUES (1, 'a', '2015-01-01', 'same'), (2, 'b', '2015-01-01', 'same'), "
         "(3, 'c', '2025-12-01', 'recent');");
    auto r = f.sweep();
    SHOW(r);
    REQUIRE(r.exit_code == 0);
    CHECK(query_column(f.dir / "a.db", "SELECT k FROM moved ORDER BY k") ==
          std::vector<std::string>{"a", "b"});
    CHECK(query_column(f.dir / "s.db", "SELECT k FROM moved") == std::vector<std::string>{"c"});
  }
}

TEST_CASE("triggers and foreign keys that would change other rows: exit 69, nothing changed",
          "[hostile]") {
  Folder f;
  f.write_policy(R"(version: 1
timezone: Europe/Paris
stores:
  s: { kind: sqlite, path: s.db }
rules:
  - name: members
    store: s
    table: members
    key: id
    anchor: left_on
    keep_for: 1 year
    action: delete
)");
  std::string schema =
      "CREATE TABLE members (id INTEGER PRIMARY KEY, left_on TEXT, email TEXT); "
      "INSERT INTO members VALUES (1, '2015-01-01', 'a@example.org'), (2, '2025-12-01', "
      "'b@example.org');";
  SECTION("ON DELETE CASCADE") {
    exec(f.dir / "s.db",
         schema +
             "CREATE TABLE claims (id INTEGER PRIMARY KEY, member_id INTEGER "
             "REFERENCES members (id) ON DELETE CASCADE); INSERT INTO claims VALUES (10, 1);");
    auto before = snapshot(f.dir.path());
    auto r = f.sweep();
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("ON DELETE CASCADE"));
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
  SECTION("a trigger on delete") {
    exec(f.dir / "s.db",
         schema +
             "CREATE TABLE log (what TEXT); CREATE TRIGGER members_gone AFTER DELETE ON members "
             "BEGIN INSERT INTO log VALUES (old.email); END;");
    auto before = snapshot(f.dir.path());
    auto r = f.sweep();
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("trigger 'members_gone'"));
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
  SECTION("a foreign key without cascade: the referenced row stays, the batch rolls back whole") {
    exec(f.dir / "s.db", schema +
                             "CREATE TABLE claims (id INTEGER PRIMARY KEY, member_id INTEGER "
                             "REFERENCES members (id)); INSERT INTO claims VALUES (10, 1);");
    auto rows = [&] { return dump(f.dir / "s.db"); };
    auto before = rows();
    auto r = f.sweep();
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("FOREIGN KEY"));
    CHECK(rows() == before);
    CHECK(audit_lines(f.state).empty());
  }
}

TEST_CASE("a store that is not a database, or is damaged: exit 69 and its bytes unchanged",
          "[hostile]") {
  Folder f;
  f.write_policy(kVisitsPolicy);
  auto db = f.dir / "web.db";
  auto real_store = [&] {
    exec(db, R"(
      CREATE TABLE visits (id INTEGER PRIMARY KEY, visited_at TEXT, pad TEXT);
      CREATE INDEX visits_visited_at ON visits (visited_at);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
        INSERT INTO visits SELECT i, date('2010-01-01', printf('+%d days', i / 4)), printf('%.200c', 'p') FROM n;
    )");
  };
  bool damaged_data_only = false;
  SECTION("text") { f.dir.write("web.db", "visited_at,ip\n2015-01-01,192.0.2.1\n"); }
  SECTION("random bytes") {
    std::string noise;
    for (int i = 0; i < 8192; ++i) noise += static_cast<char>((i * 7919 + 13) % 251);
    f.dir.write("web.db", noise);
  }
  SECTION("a real database cut in the middle") {
    real_store();
    fs::resize_file(db, fs::file_size(db) / 2);
  }
  SECTION("a real database with pages overwritten in the middle") {
    real_store();
    std::fstream out(db, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(fs::file_size(db) / 3 / 4096 * 4096));
    for (int i = 0; i < 3 * 4096; ++i) out.put(static_cast<char>((i * 31 + 7) % 256));
    damaged_data_only = true;
  }
  auto before = snapshot(f.dir.path());
  std::vector<std::vector<std::string>> commands{{"sweep", "--as-of", "2026-01-01"},
                                                 {"plan", "--as-of", "2026-01-01"}};
  // check reads the schema only: damage inside the data is found by the plan
  // or sweep that reads it.
  if (!damaged_data_only) commands.push_back({"check"});
  for (const auto& args : commands) {
    auto r = f.retentiond(args);
    SHOW(r);
    CHECK(r.exit_code == 69);
    CHECK_THAT(r.err, Catch::Contains("store 'web'"));
    CHECK_THAT(r.err, Catch::Contains("not a database") || Catch::Contains("malformed"));
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
}

namespace {

// The binary run as `uid`/`gid` (a forked child drops root before exec).
// It runs from a copy in `scratch`: the build tree may be in a folder that
// user cannot enter (a clone in /root, mode 0700), and the test is about the
// state directory's permissions, not the checkout's.
ProcessOutcome run_as(uid_t uid, gid_t gid, const TempDir& scratch,
                      const std::vector<std::string>& args) {
  auto out_file = scratch / "retentiond.stdout";
  auto err_file = scratch / "retentiond.stderr";
  auto binary = scratch / "retentiond.binary";
  if (!fs::exists(binary)) {
    fs::copy_file(RETENTIOND_BINARY, binary);
    fs::permissions(binary, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                fs::perms::others_read | fs::perms::others_exec);
  }
  std::vector<char*> argv{const_cast<char*>(binary.c_str())};
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  char path_env[] = "PATH=/usr/bin:/bin";
  char* envp[] = {path_env, nullptr};
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0666);
    if (out < 0 || err < 0 || ::dup2(out, 1) < 0 || ::dup2(err, 2) < 0) ::_exit(126);
    if (::setgroups(0, nullptr) != 0 || ::setresgid(gid, gid, gid) != 0 ||
        ::setresuid(uid, uid, uid) != 0)
      ::_exit(126);
    ::execve(argv[0], argv.data(), envp);
    ::_exit(127);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  ProcessOutcome o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = read_file(out_file);
  o.err = read_file(err_file);
  return o;
}

}  // namespace

TEST_CASE(
    "a state directory or audit log that cannot be written: exit 73 before any store is touched",
    "[hostile]") {
  Folder f;
  f.write_policy(kVisitsPolicy);
  make_visits(f);
  f.dir.write("regular-file", "not a folder\n");

  auto expect_refused = [&](const ProcessOutcome& r, const std::string& what) {
    SHOW(r);
    CHECK(r.exit_code == 73);
    CHECK_THAT(r.err, Catch::Contains(what));
    CHECK(r.out.empty());
    CHECK(query_int(f.dir / "web.db", "SELECT count(*) FROM visits") == 2);
  };
  SECTION("a state directory below a regular file") {
    auto state = f.dir / "regular-file" / "state";
    auto before = snapshot(f.dir.path());
    expect_refused(f.retentiond({"sweep", "--as-of", "2026-01-01"}, state), state.string());
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
  SECTION("a state directory that is a regular file") {
    auto before = snapshot(f.dir.path());
    expect_refused(f.retentiond({"sweep", "--as-of", "2026-01-01"}, f.dir / "regular-file"),
                   "is not a directory");
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
  SECTION("an audit log that is a directory") {
    fs::create_directories(f.state / "audit.jsonl");
    auto before = snapshot(f.dir.path());
    expect_refused(f.sweep(), "cannot write the audit log");
    CHECK(names(snapshot(f.dir.path())) == names(before));
    auto verified = f.retentiond({"audit", "verify"});
    SHOW(verified);
    CHECK(verified.exit_code == 66);
    CHECK_THAT(verified.err, Catch::Contains("not a regular file"));
  }
  SECTION("a state directory and an audit log that the service user may not write") {
    if (::geteuid() != 0) {
      // Not root: permissions hold for this user itself.
      fs::create_directories(f.state);
      fs::permissions(f.state, fs::perms::owner_read | fs::perms::owner_exec);
      expect_refused(f.sweep(), "not writable");
      return;
    }
    const passwd* nobody = ::getpwnam("nobody");
    REQUIRE(nobody != nullptr);
    // Everything readable by nobody but the state directory, which root owns
    // (0755), and the store, which nobody may not even open: it is refused
    // for the state directory first, so the store is never reached.
    fs::permissions(f.dir.path(), fs::perms::owner_all | fs::perms::group_read |
                                      fs::perms::group_exec | fs::perms::others_read |
                                      fs::perms::others_exec);
    ::chmod((f.dir / "web.db").c_str(), 0600);
    fs::create_directories(f.state);
    ::chmod(f.state.c_str(), 0755);
    std::vector<std::string> args{"-c",    f.policy.string(), "--state-dir", f.state.string(),
                                  "sweep", "--as-of",         "2026-01-01"};
    auto before = snapshot(f.dir.path());
    expect_refused(run_as(nobody->pw_uid, nobody->pw_gid, f.dir, args), "is not writable");
    // The state directory is nobody's now, but the audit log in it is root's (0644).
    REQUIRE(::chown(f.state.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
    ::chmod(f.state.c_str(), 0700);
    f.dir.write("state/audit.jsonl", "", 0644);
    expect_refused(run_as(nobody->pw_uid, nobody->pw_gid, f.dir, args),
                   "cannot write the audit log");
    CHECK(names(snapshot(f.dir.path())) == names(before));
  }
}

TEST_CASE("a SQLite store whose folder the sweep may not write: the message names the folder",
          "[hostile]") {
  // The database file itself is writable, but SQLite also creates its
  // journal beside it: an administrator must learn which folder, and which
  // drop-in grants it to the service.
  if (::geteuid() != 0) return;  // the user is switched to nobody below
  const passwd* nobody = ::getpwnam("nobody");
  REQUIRE(nobody != nullptr);
  Folder f;
  f.write_policy(kVisitsPolicy);
  make_visits(f);
  fs::permissions(f.dir.path(), fs::perms::owner_all | fs::perms::group_read |
                                    fs::perms::group_exec | fs::perms::others_read |
                                    fs::perms::others_exec);
  ::chmod((f.dir / "web.db").c_str(), 0666);
  ::chmod(f.policy.c_str(), 0644);
  fs::create_directories(f.state);
  REQUIRE(::chown(f.state.c_str(), nobody->pw_uid, nobody->pw_gid) == 0);
  auto r = run_as(
      nobody->pw_uid, nobody->pw_gid, f.dir,
      {"-c", f.policy.string(), "--state-dir", f.state.string(), "sweep", "--as-of", "2026-01-01"});
  SHOW(r);
  CHECK(r.exit_code == 69);
  CHECK_THAT(r.err, Catch::Contains(f.dir.path().string() +
                                    " may not be written: Permission denied; SQLite writes its "
                                    "journal beside the database"));
  CHECK_THAT(r.err, Catch::Contains("SupplementaryGroups= of "
                                    "/etc/systemd/system/retentiond.service.d/data-paths.conf"));
  CHECK(query_int(f.dir / "web.db", "SELECT count(*) FROM visits") == 2);
}

namespace {

constexpr std::string_view kSecretKey = "KEY-MUST-NOT-LEAK-4c1f9e2b7a5d3086-ae71";
constexpr std::string_view kSecretPassword = "PG-PASSWORD-MUST-NOT-LEAK-93be";

// kVisitsPolicy anonymising with hmac under kSecretKey, beside a PostgreSQL
// store (whose DSN carries kSecretPassword when asked: a policy that is
// then refused).
void write_secret_policy(const Folder& f, bool password_in_dsn = false) {
  f.dir.write("hmac.key", kSecretKey, 0600);
  f.write_policy(
      fmt::format(R"(version: 1
timezone: Europe/Paris
hmac_key_file: hmac.key
stores:
  web: {{ kind: sqlite, path: web.db }}
  crm: {{ kind: postgresql, dsn: "host=/nonexistent dbname=crm user=rd{}" }}
rules:
  - name: visits
    store: web
    table: visits
    key: id
    anchor: visited_at
    keep_for: 13 months
    action: anonymize
    anonymize: {{ visitor: hmac, ip: "null", mark: coded_at }}
)",
                  password_in_dsn ? fmt::format(" password={}", kSecretPassword) : std::string()));
}

// Neither secret, nor the key in hex, in `text`.
void expect_no_secret(const std::string& text) {
  CHECK(text.find(kSecretKey) == std::string::npos);
  CHECK(text.find(sha256_hex(kSecretKey)) == std::string::npos);
  CHECK(text.find(kSecretPassword) == std::string::npos);
  std::string hex;
  for (unsigned char c : kSecretKey) hex += fmt::format("{:02x}", c);
  CHECK(text.find(hex) == std::string::npos);
}

void expect_no_secret_in_files(const fs::path& dir) {
  for (const auto& entry : fs::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    INFO(entry.path());
    expect_no_secret(read_file(entry.path()));
  }
}

}  // namespace

TEST_CASE(
    "the hmac key and a PostgreSQL password never appear in logs, reports or the state directory",
    "[hostile][secrets]") {
  Folder f;
  write_secret_policy(f);
  make_visits(f);
  std::vector<std::pair<std::string, std::string>> outputs;  // command, its stdout and stderr
  auto run = [&](std::vector<std::string> args) {
    auto r = f.retentiond(args);
    outputs.emplace_back(fmt::format("{}", fmt::join(args, " ")), r.out + r.err);
    return r;
  };
  for (const char* format : {"text", "json"})
    run({"--log-level", "debug", "check", "--format", format});
  for (const char* format : {"text", "json", "html"}) {
    run({"--log-level", "debug", "plan", "--as-of", "2026-01-01", "--format", format});
  }
  auto swept = run({"--log-level", "debug", "sweep", "--as-of", "2026-01-01", "--format", "json"});
  REQUIRE(swept.exit_code == 0);
  CHECK(nlohmann::json::parse(swept.out).at("totals").at("affected") == 1);
  CHECK(query_column(f.dir / "web.db", "SELECT visitor FROM visits WHERE id = 1") ==
        std::vector<std::string>{hmac_sha256_hex(kSecretKey, "alice")});
  run({"--log-level", "debug", "sweep", "--as-of", "2026-01-01", "--format", "html"});
  run({"--log-level", "debug", "sweep", "--as-of", "2026-01-01"});
  run({"audit", "verify"});
  run({"audit", "show"});
  // A password in a DSN is refused; the message names the store, not the password.
  write_secret_policy(f, true);
  auto refused = run({"check"});
  CHECK(refused.exit_code == 78);
  CHECK(refused.err.find("store 'crm': dsn carries a password") != std::string::npos);
  CHECK(run({"plan"}).exit_code == 78);
  // A key file that others may read is refused: the message names the file, not its bytes.
  write_secret_policy(f);
  ::chmod((f.dir / "hmac.key").c_str(), 0644);
  CHECK(run({"check"}).exit_code == 78);
  for (const auto& [command, text] : outputs) {
    INFO(command);
    expect_no_secret(text);
  }
  expect_no_secret_in_files(f.state);
}

TEST_CASE("a running daemon cannot dump core, and its log, metrics and state hold no secret",
          "[hostile][secrets]") {
  Folder f;
  write_secret_policy(f);
  make_visits(f);
  auto metrics = f.dir / "metrics.prom";
  auto log = f.dir / "daemon.err";
  pid_t daemon =
      spawn_retentiond({"-c", f.policy.string(), "--state-dir", f.state.string(), "--log-level",
                        "debug", "run", "--metrics-file", metrics.string()},
                       f.dir / "daemon.out", log);
  auto text_of = [](const fs::path& file) {
    return fs::exists(file) ? read_file(file) : std::string();
  };
  auto wait_for = [](auto done) {
    for (int i = 0; i < 400 && !done(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    return done();
  };
  // Signals are handled once it says how it sweeps (the policy has no schedule).
  bool started = wait_for(
      [&] { return text_of(log).find("sweeps run only on SIGUSR1") != std::string::npos; });
  INFO("daemon log:\n" << text_of(log));
  CHECK(started);

  std::string limits = read_file(fmt::format("/proc/{}/limits", daemon));
  auto line = limits.substr(limits.find("Max core file size"));
  line = line.substr(0, line.find('\n'));
  INFO(line);
  std::istringstream fields(line.substr(std::string_view("Max core file size").size()));
  std::string soft, hard;
  fields >> soft >> hard;
  CHECK(soft == "0");
  CHECK(hard == "0");

  if (started) {
    REQUIRE(::kill(daemon, SIGUSR1) == 0);
    CHECK(wait_for([&] { return fs::exists(metrics); }));
  }
  REQUIRE(::kill(daemon, SIGTERM) == 0);
  int status = 0;
  REQUIRE(::waitpid(daemon, &status, 0) == daemon);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(query_column(f.dir / "web.db", "SELECT visitor FROM visits WHERE id = 1") ==
        std::vector<std::string>{hmac_sha256_hex(kSecretKey, "alice")});
  expect_no_secret(read_file(log));
  expect_no_secret(read_file(metrics));
  expect_no_secret_in_files(f.state);
}
