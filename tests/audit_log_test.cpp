// The audit log (CONTRACT.md, "The audit log"): append-only, hash-chained,
// and `audit verify` names the first bad line of any edit, removal (the last
// line included) or reordering.
#include "audit/audit_log.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "sweep_support.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;

namespace {

AuditEntry sample_entry(int n) {
  return AuditEntry{fmt::format("2026-06-15T03:15:{:02}.000Z", n % 60),
                    "amo-health-data",
                    1,
                    "archive",
                    "health",
                    "claims",
                    "2026-06-15",
                    "2023-06-15",
                    n,
                    sha256_hex(fmt::format("keys of batch {}", n)),
                    sha256_hex("the policy"),
                    "",
                    ""};
}

// Makes what was appended durable and records the head beside the log.
void sync(AuditLog& log) { REQUIRE(log.sync().has_value()); }

// A log of `n` entries in `state_dir`.
void write_log(const fs::path& state_dir, int n) {
  auto log = AuditLog::open(state_dir);
  REQUIRE(log.has_value());
  for (int i = 1; i <= n; ++i) {
    auto seq = log->append(sample_entry(i));
    REQUIRE(seq.has_value());
    REQUIRE(*seq == i);
  }
  sync(*log);
}

std::vector<std::string> lines_of(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void write_lines(const fs::path& file, const std::vector<std::string>& lines) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  for (const auto& l : lines) out << l << '\n';
}

VerifyResult verify(const fs::path& state_dir) {
  auto result = verify_audit_log(state_dir);
  if (!result) FAIL("verify refused: " << result.error().message);
  return *result;
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("a log written by append verifies, across reopenings", "[audit]") {
  TempDir dir;
  auto state = dir / "state";
  write_log(state, 4);
  auto first = verify(state);
  CHECK(first.ok);
  CHECK(first.lines == 4);

  // Reopened (the next sweep): the chain continues from the last line.
  {
    auto log = AuditLog::open(state);
    REQUIRE(log.has_value());
    CHECK_FALSE(log->warning().has_value());
    CHECK(log->last_seq() == 4);
    auto seq = log->append(sample_entry(5));
    REQUIRE(seq.has_value());
    CHECK(*seq == 5);
    sync(*log);
  }
  auto second = verify(state);
  CHECK(second.ok);
  CHECK(second.lines == 5);

  auto lines = lines_of(audit_log_path(state));
  REQUIRE(lines.size() == 5);
  std::string prev(64, '0');
  for (std::size_t i = 0; i < lines.size(); ++i) {
    auto line = nlohmann::json::parse(lines[i]);
    CHECK(line.at("seq") == i + 1);
    CHECK(line.at("prev") == prev);
    CHECK(line.at("hash") == audit_line_hash(line));
    prev = line.at("hash");
  }
}

TEST_CASE("verify names the first bad line of a tampered log", "[audit]") {
  TempDir dir;
  auto state = dir / "state";
  write_log(state, 5);
  auto file = audit_log_path(state);
  auto lines = lines_of(file);
  REQUIRE(lines.size() == 5);
  std::string expected_line;

  SECTION("an edited line") {
    auto pos = lines[2].find("\"affected\":3");
    REQUIRE(pos != std::string::npos);
    lines[2].replace(pos, 12, "\"affected\":0");
    expected_line = "3";
  }
  SECTION("an edited line whose hash was recomputed") {
    auto line = nlohmann::json::parse(lines[2]);
    line["affected"] = 0;
    line["hash"] = audit_line_hash(line);
    lines[2] = line.dump();
    expected_line = "4";  // line 3 is consistent in itself; line 4 no longer follows it
  }
  SECTION("a line removed in the middle") {
    lines.erase(lines.begin() + 2);
    expected_line = "3";
  }
  SECTION("the last line removed") {
    lines.pop_back();
    expected_line = "5";
  }
  SECTION("the last two lines removed") {
    lines.resize(3);
    expected_line = "4";
  }
  SECTION("every line removed") {
    lines.clear();
    expected_line = "1";
  }
  SECTION("the log file removed") {
    fs::remove(file);
    expected_line = "1";
  }
  SECTION("two lines swapped") {
    std::swap(lines[1], lines[2]);
    expected_line = "2";
  }
  SECTION("the first line moved to the end") {
    std::rotate(lines.begin(), lines.begin() + 1, lines.end());
    expected_line = "1";
  }
  SECTION("the tail rewritten as a consistent chain") {
    // Someone recomputes every hash from line 4 on: only the head beside the
    // log knows the last line was another one.
    std::string prev = nlohmann::json::parse(lines[2]).at("hash");
    for (std::size_t i = 3; i < lines.size(); ++i) {
      auto line = nlohmann::json::parse(lines[i]);
      line["affected"] = 0;
      line["prev"] = prev;
      line["hash"] = audit_line_hash(line);
      prev = line["hash"];
      lines[i] = line.dump();
    }
    expected_line = "5";
  }
  SECTION("a line that is not JSON") {
    lines[1] = "{ damaged";
    expected_line = "2";
  }

  if (fs::exists(file)) write_lines(file, lines);
  auto result = verify(state);
  CHECK_FALSE(result.ok);
  INFO(result.message);
  CHECK_THAT(result.message, Catch::Contains("audit.jsonl:" + expected_line + ":"));
  // No earlier line is named.
  std::smatch m;
  REQUIRE(std::regex_search(result.message, m, std::regex("audit\\.jsonl:([0-9]+):")));
  CHECK(m[1] == expected_line);
}

TEST_CASE("audit verify exits 65 on a broken chain and 0 on a good one", "[audit]") {
  TempDir dir;
  auto state = dir / "state";
  write_log(state, 3);
  auto good = run_retentiond(dir, {"--state-dir", state.string(), "audit", "verify"});
  INFO(good.err);
  CHECK(good.exit_code == 0);
  CHECK_THAT(good.out, Catch::Contains("3 entries"));

  auto lines = lines_of(audit_log_path(state));
  lines.erase(lines.begin() + 1);
  write_lines(audit_log_path(state), lines);
  auto bad = run_retentiond(dir, {"--state-dir", state.string(), "audit", "verify"});
  INFO(bad.err);
  CHECK(bad.exit_code == 65);
  CHECK_THAT(bad.err, Catch::Contains("audit.jsonl:2:"));
}

TEST_CASE("a torn last line is cut off by open, with a warning", "[audit]") {
  TempDir dir;
  auto state = dir / "state";
  write_log(state, 3);
  auto file = audit_log_path(state);
  auto good_bytes = read_file(file);
  {
    std::ofstream out(file, std::ios::binary | std::ios::app);
    out << R"({"seq":4,"time":"2026-06-15T03:15:04.000Z","rule":"amo-he)";
  }
  auto torn = verify(state);
  CHECK_FALSE(torn.ok);
  CHECK_THAT(torn.message, Catch::Contains("audit.jsonl:4:"));

  {
    auto log = AuditLog::open(state);
    REQUIRE(log.has_value());
    REQUIRE(log->warning().has_value());
    CHECK_THAT(*log->warning(), Catch::Contains(file.string()));
    CHECK(log->last_seq() == 3);
    CHECK(read_file(file) == good_bytes);
    auto seq = log->append(sample_entry(4));
    REQUIRE(seq.has_value());
    CHECK(*seq == 4);
    sync(*log);
  }
  auto repaired = verify(state);
  CHECK(repaired.ok);
  CHECK(repaired.lines == 4);
  CHECK(read_file(file).back() == '\n');

  // A log that ends cleanly is left alone.
  auto again = AuditLog::open(state);
  REQUIRE(again.has_value());
  CHECK_FALSE(again->warning().has_value());
}

TEST_CASE("the state folder and the log are private, whatever the umask", "[audit]") {
  TempDir dir;
  auto state = dir / "var" / "state";
  {
    // Restored however the block ends.
    struct Umask {
      mode_t old = ::umask(0);
      ~Umask() { ::umask(old); }
    } open_umask;
    auto log = AuditLog::open(state);
    REQUIRE(log.has_value());
    REQUIRE(log->append(sample_entry(1)).has_value());
    sync(*log);
  }
  CHECK(mode_of(state) == 0700);
  CHECK(mode_of(audit_log_path(state)) == 0600);
  CHECK(mode_of(state / "audit.head") == 0600);
  for (const auto& f : fs::directory_iterator(state)) {
    INFO(f.path());
    CHECK((mode_of(f.path()) & 077) == 0);
  }
}

TEST_CASE("audit entries hold digests of keys, never row data", "[audit][sweep]") {
  TempDir dir;
  auto db = dir / "main.db";
  dir.write("hmac.key", "0123456789abcdef0123456789abcdef", 0600);
  exec(db, R"(
    CREATE TABLE claims (ref TEXT PRIMARY KEY, member TEXT, amount_cents INTEGER, paid_on TEXT);
    INSERT INTO claims VALUES ('REF-alpha-1', 'Jeanne Dupont', 12345, '2001-02-03'),
      ('REF-bravo-2', 'Paul Martin', 67890, '2019-04-05');
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, number TEXT, ended_on TEXT, coded_at TEXT);
    INSERT INTO accounts VALUES (4242, '1850675123456', '2020-07-08', NULL);
  )");
  auto policy = write_policy(dir, R"(version: 1
timezone: Europe/Paris
hmac_key_file: hmac.key
stores:
  main: { kind: sqlite, path: main.db }
  archive: { kind: sqlite, path: archive.db }
rules:
  - name: claims
    store: main
    table: claims
    key: ref
    anchor: paid_on
    stages:
      - { after: 3 years, action: archive, to: archive }
      - { after: 13 years, action: delete }
  - name: accounts
    store: main
    table: accounts
    key: id
    anchor: ended_on
    keep_for: 6 months
    action: anonymize
    anonymize: { number: hmac, mark: coded_at }
)");
  Sweep sweep(dir);
  auto done = sweep.run(*policy, "2026-06-15");
  REQUIRE(done.code == ExitCode::ok);
  REQUIRE(done.report.totals().affected == 3);
  std::string coded = query_column(db, "SELECT number FROM accounts").at(0);

  // Digests aside (hex, which could hold any short run of digits by
  // chance), nothing in the log is the rows' content.
  std::string text;
  for (auto line : audit_lines(sweep.state_dir())) {
    for (const char* digest : {"keys_sha256", "policy_sha256", "prev", "hash"}) {
      CHECK(line.at(digest) != coded);
      line.erase(digest);
    }
    text += line.dump() + "\n";
  }
  for (std::string row_data : {"REF-alpha-1", "REF-bravo-2", "Jeanne", "Paul", "12345", "67890",
                               "2001-02-03", "2019-04-05", "4242", "1850675123456", "2020-07-08"}) {
    INFO(row_data);
    CHECK(text.find(row_data) == std::string::npos);
  }
  const std::set<std::string> fields{"seq",         "time",          "rule",  "stage",  "action",
                                     "store",       "table",         "as_of", "cutoff", "affected",
                                     "keys_sha256", "policy_sha256", "prev",  "hash"};
  auto lines = audit_lines(sweep.state_dir());
  CHECK(lines.size() == 3);
  for (const auto& line : lines) {
    std::set<std::string> keys;
    for (const auto& [k, v] : line.items()) keys.insert(k);
    CHECK(keys == fields);
    CHECK(std::regex_match(line.at("keys_sha256").get<std::string>(), std::regex("[0-9a-f]{64}")));
    CHECK(std::regex_match(line.at("time").get<std::string>(),
                           std::regex("2026-06-15T12:00:00(\\.[0-9]+)?Z")));
  }
}
