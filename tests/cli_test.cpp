// The real binary, as an administrator or a script runs it: exit codes,
// stdout and stderr.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "stores/sqlite/sqlite.hpp"
#include "sweep_support.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

extern char** environ;

using retentiond::test::TempDir;
namespace fs = std::filesystem;

namespace {

using Outcome = retentiond::test::ProcessOutcome;

// The binary run to its end, its output captured in a scratch folder.
Outcome run(const std::vector<std::string>& args) {
  TempDir capture;
  return retentiond::test::run_retentiond(capture, args);
}

#define SHOW(outcome)                                  \
  INFO("exit " << (outcome).exit_code << "\nstdout:\n" \
               << (outcome).out << "\nstderr:\n"       \
               << (outcome).err)

constexpr std::string_view kPolicy = R"(version: 1
timezone: Europe/Paris
schedule: "03:15"
stores:
  web: { kind: sqlite, path: web.db }
rules:
  - name: audience-visits
    store: web
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    keep_for: 13 months
    action: delete
)";

// A folder with the policy above and the store it names.
struct Setup {
  TempDir dir;
  fs::path policy = dir.write("policy.yaml", kPolicy);

  explicit Setup(bool index_anchor = true) {
    retentiond::sqlite::Database db(dir / "web.db", retentiond::sqlite::OpenMode::create);
    db.exec("CREATE TABLE visits (id INTEGER PRIMARY KEY, visited_at TEXT, ip TEXT)");
    db.exec("INSERT INTO visits VALUES (1, '2020-01-01 10:00:00', '192.0.2.1')");
    if (index_anchor) db.exec("CREATE INDEX visits_visited_at ON visits (visited_at)");
  }

  Outcome retentiond(std::vector<std::string> args) const {
    std::vector<std::string> all{"-c", policy.string(), "--state-dir", (dir / "state").string()};
    all.insert(all.end(), args.begin(), args.end());
    return run(all);
  }
};

}  // namespace

TEST_CASE("check exits 0 on a valid policy whose stores exist", "[cli]") {
  Setup s;
  auto r = s.retentiond({"check"});
  SHOW(r);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.out, Catch::Contains(s.policy.string()));
}

TEST_CASE("check exits 78 on an invalid policy, naming FILE:LINE:COLUMN", "[cli]") {
  Setup s;
  std::string bad(kPolicy);
  bad.replace(bad.find("keep_for:"), 9, "keep_fro:");  // line 13
  s.dir.write("policy.yaml", bad);
  auto r = s.retentiond({"check"});
  SHOW(r);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Catch::Contains(s.policy.string() + ":13:5: "));
  CHECK_THAT(r.err, Catch::Contains("keep_fro"));
  CHECK(r.out.empty());
}

TEST_CASE("check exits 66 when the policy file does not exist", "[cli]") {
  Setup s;
  fs::remove(s.policy);
  auto r = s.retentiond({"check"});
  SHOW(r);
  CHECK(r.exit_code == 66);
  CHECK_THAT(r.err, Catch::Contains(s.policy.string()));
  CHECK(r.out.empty());
}

TEST_CASE("check exits 69 when a column is missing", "[cli]") {
  Setup s;
  std::string bad(kPolicy);
  bad.replace(bad.find("anchor: visited_at"), 18, "anchor: visit_time");
  s.dir.write("policy.yaml", bad);
  auto r = s.retentiond({"check"});
  SHOW(r);
  CHECK(r.exit_code == 69);
  CHECK_THAT(r.err, Catch::Contains("'visit_time'"));
  CHECK_THAT(r.err, Catch::Contains("'visits'"));
  CHECK_THAT(r.err, Catch::Contains("'web'"));
}

TEST_CASE("a bad command line exits 64 with a usage hint", "[cli]") {
  Setup s;
  std::vector<std::vector<std::string>> bad_lines{
      {"check", "--frobnicate"},  // unknown option
      {"frobnicate"},             // unknown command
      {},                         // no command
      {"check", "--format", "xml"},
      {"--log-level", "loud", "check"},
  };
  for (const auto& args : bad_lines) {
    std::string line;
    for (const auto& a : args) line += a + " ";
    DYNAMIC_SECTION("retentiond " << line) {
      auto r = s.retentiond(args);
      SHOW(r);
      CHECK(r.exit_code == 64);
      CHECK_THAT(r.err, Catch::Contains("--help"));
      CHECK(r.out.empty());
    }
  }
}

TEST_CASE("--help exits 0 on every command", "[cli]") {
  for (std::vector<std::string> command : {std::vector<std::string>{},
                                           {"run"},
                                           {"sweep"},
                                           {"plan"},
                                           {"check"},
                                           {"audit"},
                                           {"audit", "verify"},
                                           {"audit", "show"}}) {
    std::string line;
    for (const auto& a : command) line += a + " ";
    DYNAMIC_SECTION("retentiond " << line << "--help") {
      command.push_back("--help");
      auto r = run(command);
      SHOW(r);
      CHECK(r.exit_code == 0);
      // The usage line of that command, not the program's general help.
      std::string usage = "retentiond " + line;
      CHECK_THAT(r.out, Catch::Contains("Usage:") && Catch::Contains(usage));
    }
  }
}

TEST_CASE("check --format json prints exactly one JSON document on stdout", "[cli]") {
  Setup s(/*index_anchor=*/false);  // a warning, which must go to stderr
  auto r = s.retentiond({"check", "--format", "json"});
  SHOW(r);
  REQUIRE(r.exit_code == 0);
  nlohmann::json doc;
  // parse() refuses anything after the document but whitespace.
  REQUIRE_NOTHROW(doc = nlohmann::json::parse(r.out));
  REQUIRE(doc.is_object());
  CHECK(doc.at("valid") == true);
  CHECK(doc.at("policy_sha256") == retentiond::sha256_hex(kPolicy));
  CHECK(doc.at("timezone") == "Europe/Paris");
  REQUIRE(doc.at("warnings").is_array());
  REQUIRE(doc.at("warnings").size() == 1);
  CHECK(doc.at("warnings")[0].at("table") == "visits");
  CHECK_THAT(doc.at("warnings")[0].at("message").get<std::string>(), Catch::Contains("visited_at"));
}

TEST_CASE("check warns on stderr, and still exits 0, when an anchor has no index", "[cli]") {
  Setup s(/*index_anchor=*/false);
  auto r = s.retentiond({"check"});
  SHOW(r);
  CHECK(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("'visited_at'"));
  CHECK_THAT(r.err, Catch::Contains("index"));
  auto indexed = Setup().retentiond({"check"});
  CHECK(indexed.exit_code == 0);
  CHECK(indexed.err.find("index") == std::string::npos);
}
