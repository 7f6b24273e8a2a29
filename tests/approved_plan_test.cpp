// Approved plans (four eyes), as an administrator and an approver use them:
// the real binary, real ssh-keys made by ssh-keygen, signatures made by
// `ssh-keygen -Y sign`. A refused plan leaves every store byte for byte as it was.
#include <date/date.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sweep_support.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

extern char** environ;

using retentiond::test::TempDir;
namespace fs = std::filesystem;
namespace t = retentiond::test;

namespace {

#define SHOW(outcome)                                  \
  INFO("exit " << (outcome).exit_code << "\nstdout:\n" \
               << (outcome).out << "\nstderr:\n"       \
               << (outcome).err)

constexpr int kNotApproved = 77;

// Runs ssh-keygen as an approver would, its output to /dev/null; returns its exit status.
int ssh_keygen(const std::vector<std::string>& args) {
  std::vector<std::string> all{"/usr/bin/ssh-keygen"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  ::posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  ::posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  ::posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t child = 0;
  int spawned = ::posix_spawn(&child, argv[0], &actions, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) throw std::runtime_error("cannot run /usr/bin/ssh-keygen");
  int status = 0;
  ::waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string policy_text(std::string_view extra = "") {
  return fmt::format(R"(version: 1
timezone: Europe/Paris
approval: {{ allowed_signers: allowed_signers, max_age: 7 days, tolerance: 0 }}
{}stores:
  web: {{ kind: sqlite, path: web.db }}
rules:
  - name: audience-visits
    store: web
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    keep_for: 13 months
    action: delete
)",
                     extra);
}

// A policy folder with a store, an approver (alice, in the allowed signers)
// and someone else with an ssh key (mallory, not in them).
struct Approval {
  TempDir dir;
  fs::path policy;
  fs::path db = dir / "web.db";
  fs::path state = dir / "state";
  fs::path plan = dir / "plan.json";

  explicit Approval(std::string_view extra = "") {
    policy = dir.write("policy.yaml", policy_text(extra));
    for (const char* who : {"alice", "mallory"}) {
      REQUIRE(ssh_keygen(
                  {"-q", "-t", "ed25519", "-N", "", "-C", who, "-f", (dir / who).string()}) == 0);
    }
    dir.write("allowed_signers", "alice@example.org namespaces=\"retentiond-plan\" " +
                                     t::read_file(dir / "alice.pub"));
    t::exec(db,
            "CREATE TABLE visits (id INTEGER PRIMARY KEY, visited_at TEXT);"
            "INSERT INTO visits VALUES (1, '2020-01-01 10:00:00'), (2, '2020-02-01 10:00:00'),"
            " (3, '2099-01-01 10:00:00')");
  }

  t::ProcessOutcome retentiond(std::vector<std::string> args) const {
    std::vector<std::string> all{"-c", policy.string(), "--state-dir", state.string()};
    all.insert(all.end(), args.begin(), args.end());
    TempDir capture;
    return t::run_retentiond(capture, all);
  }

  void sign(const char* who = "alice", const char* ns = "retentiond-plan") const {
    fs::path sig = plan;
    sig += ".sig";
    fs::remove(sig);
    REQUIRE(ssh_keygen({"-Y", "sign", "-f", (dir / who).string(), "-n", ns, plan.string()}) == 0);
  }

  void make_plan(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{"plan", "--out", plan.string()};
    args.insert(args.end(), extra.begin(), extra.end());
    auto r = retentiond(args);
    SHOW(r);
    REQUIRE(r.exit_code == 0);
  }

  std::set<std::string> ids() const { return t::query_set(db, "SELECT id FROM visits"); }
  std::string store_digest() const { return retentiond::sha256_hex(t::read_file(db)); }
};

// Refused: exit 77, the message names the plan file and the reason, the
// store's bytes and the audit log unchanged.
void check_refused(const Approval& a, std::string_view reason) {
  std::string before = a.store_digest();
  auto r = a.retentiond({"sweep", "--plan", a.plan.string()});
  SHOW(r);
  CHECK(r.exit_code == kNotApproved);
  CHECK_THAT(r.err, Catch::Contains(a.plan.string()) && Catch::Contains("nothing was done") &&
                        Catch::Contains(std::string(reason)));
  CHECK(a.store_digest() == before);
  CHECK(a.ids() == std::set<std::string>{"1", "2", "3"});
  CHECK_FALSE(fs::exists(retentiond::audit_log_path(a.state)));
}

}  // namespace

TEST_CASE("an approved plan is carried out exactly: its as_of, its rows, its signer in the audit",
          "[approval]") {
  Approval a;
  // Planned as of 2021-02-15: only record 1 (2020-01-01) was past 13 months
  // then; record 2 is past them today but the plan does not cover it.
  a.make_plan({"--as-of", "2021-02-15"});
  auto plan = nlohmann::json::parse(t::read_file(a.plan));
  CHECK(plan.at("as_of") == "2021-02-15");
  CHECK(plan.at("policy_sha256") == retentiond::sha256_hex(t::read_file(a.policy)));
  REQUIRE(plan.at("entries").size() == 1);
  CHECK(plan.at("entries")[0].at("cutoff") == "2020-01-15");
  CHECK(plan.at("entries")[0].at("matched") == 1);
  a.sign();

  auto r = a.retentiond({"sweep", "--plan", a.plan.string()});
  SHOW(r);
  REQUIRE(r.exit_code == 0);
  CHECK(a.ids() == std::set<std::string>{"2", "3"});
  auto lines = t::audit_lines(a.state);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].at("as_of") == "2021-02-15");
  CHECK(lines[0].at("affected") == 1);
  CHECK(lines[0].at("plan_sha256") == retentiond::sha256_hex(t::read_file(a.plan)));
  CHECK(lines[0].at("approved_by") == "alice@example.org");
  auto verified = a.retentiond({"audit", "verify"});
  SHOW(verified);
  CHECK(verified.exit_code == 0);

  // The same plan again finds nothing more to do and changes nothing.
  auto again = a.retentiond({"sweep", "--plan", a.plan.string()});
  SHOW(again);
  CHECK(again.exit_code == 0);
  CHECK(a.ids() == std::set<std::string>{"2", "3"});
}

TEST_CASE("a plan that is not approved is refused with nothing changed", "[approval]") {
  Approval a;
  a.make_plan();

  SECTION("unsigned") { check_refused(a, "not signed"); }
  SECTION("signed by a key not in the allowed signers") {
    a.sign("mallory");
    check_refused(a, "not by a signer in");
  }
  SECTION("signed by the approver for another purpose (ssh-keygen namespace)") {
    a.sign("alice", "file");
    check_refused(a, "does not verify");
  }
  SECTION("edited after it was signed") {
    a.sign();
    auto plan = nlohmann::ordered_json::parse(t::read_file(a.plan));
    plan["entries"][0]["matched"] = 5;
    a.dir.write("plan.json", plan.dump(2));
    check_refused(a, "does not verify");
  }
  SECTION("made for another policy (the policy was edited since)") {
    a.sign();
    a.dir.write("policy.yaml", policy_text() + "# art. 10: reviewed\n");
    check_refused(a, "the policy changed since the plan was made");
  }
  SECTION("older than max_age") {
    auto plan = nlohmann::ordered_json::parse(t::read_file(a.plan));
    auto ten_days_ago =
        std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now() - date::days{10});
    plan["made_at"] = date::format("%FT%TZ", ten_days_ago);
    a.dir.write("plan.json", plan.dump(2));
    a.sign();
    check_refused(a, "stale");
  }
  SECTION("exceeded: a record with an old anchor arrived after the plan was made") {
    a.sign();
    t::exec(a.db, "INSERT INTO visits VALUES (4, '2019-06-01 10:00:00')");
    std::string before = a.store_digest();
    auto r = a.retentiond({"sweep", "--plan", a.plan.string()});
    SHOW(r);
    CHECK(r.exit_code == kNotApproved);
    CHECK_THAT(r.err, Catch::Contains("exceeded") && Catch::Contains("now matches 3 record(s), "
                                                                     "the plan 2"));
    CHECK(a.store_digest() == before);
    CHECK(a.ids() == std::set<std::string>{"1", "2", "3", "4"});
    CHECK_FALSE(fs::exists(retentiond::audit_log_path(a.state)));
  }
}

TEST_CASE("a tolerance lets a plan through that a few new records exceed", "[approval]") {
  Approval a;
  std::string text = policy_text();
  text.replace(text.find("tolerance: 0"), 12, "tolerance: 1");
  a.policy = a.dir.write("policy.yaml", text);
  a.make_plan();
  a.sign();
  t::exec(a.db, "INSERT INTO visits VALUES (4, '2019-06-01 10:00:00')");
  auto r = a.retentiond({"sweep", "--plan", a.plan.string()});
  SHOW(r);
  CHECK(r.exit_code == 0);
  CHECK(a.ids() == std::set<std::string>{"3"});
}

TEST_CASE("require_approval: a sweep without an approved plan is refused", "[approval]") {
  Approval a("require_approval: true\n");
  std::string before = a.store_digest();
  auto r = a.retentiond({"sweep"});
  SHOW(r);
  CHECK(r.exit_code == kNotApproved);
  CHECK_THAT(r.err, Catch::Contains("require_approval") && Catch::Contains("nothing was done"));
  CHECK(a.store_digest() == before);

  // Plans and dry runs still work; an approved plan sweeps.
  auto dry = a.retentiond({"sweep", "--dry-run"});
  SHOW(dry);
  CHECK(dry.exit_code == 0);
  a.make_plan();
  a.sign();
  auto approved = a.retentiond({"sweep", "--plan", a.plan.string()});
  SHOW(approved);
  CHECK(approved.exit_code == 0);
  CHECK(a.ids() == std::set<std::string>{"3"});
}

TEST_CASE("approval settings are checked like the rest of the policy", "[approval]") {
  Approval a;
  auto check_with = [&](std::string text) {
    a.dir.write("policy.yaml", text);
    return a.retentiond({"check"});
  };
  std::string typo = policy_text();
  typo.replace(typo.find("max_age"), 7, "max_aeg");
  auto r = check_with(typo);
  SHOW(r);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Catch::Contains("unknown key 'max_aeg' in approval"));

  std::string no_signers = policy_text("require_approval: true\n");
  no_signers.erase(
      no_signers.find("approval: {"),
      no_signers.find('\n', no_signers.find("approval: {")) - no_signers.find("approval: {") + 1);
  r = check_with(no_signers);
  SHOW(r);
  CHECK(r.exit_code == 78);
  CHECK_THAT(r.err, Catch::Contains("require_approval: true needs approval"));

  // --plan and --as-of together: the plan's as_of is the only one.
  r = a.retentiond({"sweep", "--plan", a.plan.string(), "--as-of", "2021-01-01"});
  CHECK(r.exit_code == 64);
}
