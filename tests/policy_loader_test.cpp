#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <string>
#include <variant>
#include <vector>

#include "policy/policy.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
namespace fs = std::filesystem;

namespace {

// The head every small policy below shares: two stores and the start of the rules.
constexpr std::string_view kHead = R"(version: 1
timezone: Europe/Paris
stores:
  health: { kind: sqlite, path: health.db }
  archive: { kind: sqlite, path: archive.db }
rules:
)";

constexpr std::string_view kClaimsRule = R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    keep_for: 3 years
    action: delete
)";

constexpr std::string_view kVisitsRule = R"(  - name: visits
    store: health
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    keep_for: 13 months
    action: anonymize
    anonymize:
      ip: "null"
      visitor_id: hmac
      mark: anonymized_at
)";

// A key file as the contract wants it: 32 bytes, readable by its owner only.
constexpr std::string_view kKey = "0123456789abcdef0123456789abcdef";

std::string policy_with(std::string_view rules, std::string_view head = kHead) {
  return std::string(head) + std::string(rules);
}

// `text` with the one occurrence of `from` replaced by `to`; fails the test
// when `from` is not there, so that a typo in a test cannot make it pass.
std::string edited(std::string_view text, std::string_view from, std::string_view to) {
  std::string out(text);
  auto pos = out.find(from);
  INFO("looking for '" << from << "'");
  REQUIRE(pos != std::string::npos);
  REQUIRE(out.find(from, pos + 1) == std::string::npos);
  out.replace(pos, from.size(), to);
  return out;
}

// The 1-based line of the one line marked "# <-": where the error must point.
int marked_line(std::string_view yaml) {
  auto pos = yaml.find("# <-");
  REQUIRE(pos != std::string_view::npos);
  REQUIRE(yaml.find("# <-", pos + 1) == std::string_view::npos);
  return 1 +
         static_cast<int>(std::count(yaml.begin(), yaml.begin() + static_cast<long>(pos), '\n'));
}

Result<std::shared_ptr<const Policy>> load(const TempDir& dir, std::string_view yaml,
                                           const LoadOptions& options = {}) {
  return load_policy(dir.write("policy.yaml", yaml), options);
}

// A copy of the loaded policy: the Result (and the policy it owns) is often a temporary.
Policy loaded(const Result<std::shared_ptr<const Policy>>& result) {
  INFO((result ? std::string("loaded") : result.error().message));
  REQUIRE(result.has_value());
  return **result;
}

struct Position {
  int line = 0;
  int column = 0;
};

// Checks that `message` starts with "FILE:LINE:COLUMN: " and returns the position.
Position position_in(const std::string& message, const fs::path& file) {
  INFO("message: " << message);
  std::string prefix = file.string() + ":";
  REQUIRE(message.rfind(prefix, 0) == 0);
  std::size_t pos = prefix.size();
  auto number = [&]() {
    std::size_t start = pos;
    while (pos < message.size() && std::isdigit(static_cast<unsigned char>(message[pos]))) ++pos;
    REQUIRE(pos > start);
    return std::stoi(message.substr(start, pos - start));
  };
  Position at;
  at.line = number();
  REQUIRE(message.substr(pos, 1) == ":");
  ++pos;
  at.column = number();
  REQUIRE(message.substr(pos, 2) == ": ");
  CHECK(at.column >= 1);
  return at;
}

// Loads `yaml`, expects ExitCode::config pointing at the line marked "# <-"
// with a message containing every one of `says`; returns the message.
std::string refused(const TempDir& dir, std::string_view yaml, std::vector<std::string> says,
                    const LoadOptions& options = {}) {
  auto result = load(dir, yaml, options);
  INFO("policy:\n" << yaml);
  REQUIRE_FALSE(result.has_value());
  const std::string& message = result.error().message;
  INFO("message: " << message);
  CHECK(result.error().code == ExitCode::config);
  CHECK(static_cast<int>(result.error().code) == 78);
  CHECK(position_in(message, dir / "policy.yaml").line == marked_line(yaml));
  for (const auto& s : says) CHECK_THAT(message, Catch::Contains(s));
  return message;
}

}  // namespace

TEST_CASE("the small policy the refusals below start from loads", "[policy]") {
  TempDir dir;
  const Policy p = loaded(load(dir, policy_with(kClaimsRule)));
  REQUIRE(p.rules.size() == 1);
  CHECK(p.rules[0].name == "claims");
  dir.write("hmac.key", kKey, 0600);
  std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key\ntimezone:");
  CHECK(loaded(load(dir, policy_with(kVisitsRule, head))).rules.size() == 1);
}

TEST_CASE("the contract's example policy loads in full", "[policy]") {
  TempDir dir;
  dir.write("keys/hmac.key", kKey, 0600);
  const std::string yaml = R"(version: 1
timezone: Europe/Paris          # IANA zone
schedule: "03:15"
batch_size: 500
max_transaction: 20ms
hmac_key_file: keys/hmac.key

stores:
  health:       { kind: sqlite, path: health.db }
  health_archive: { kind: sqlite, path: ./archive/../archive/health-archive.db }
  web:          { kind: sqlite, path: /var/lib/mgen/web.db }

rules:
  - name: amo-affiliation
    category: compulsory-health-insurance
    basis: "Privacy policy art. 8.1"
    store: health
    table: affiliations
    key: id
    anchor: rights_closed_on
    anchor_format: date
    where: { regime: AMO, kind: [1, 2], code: "5" }
    hold: { column: litigation_pending }
    keep_for: 5 years
    action: delete

  - name: amo-health-data
    store: health
    table: claims
    key: claim_id
    anchor: paid_on
    anchor_format: unixepoch
    hold: { table: legal_holds, key: claim_id }
    stages:
      - after: 3 years
        action: archive
        to: health_archive
      - after: P13Y
        action: delete

  - name: audience-visits
    store: web
    table: visits
    key: id
    anchor: visited_at
    anchor_format: datetime
    keep_for: 13 months
    action: anonymize
    anonymize:
      visitor_id: hmac
      ip: "null"
      user_agent: null
      country: { value: "XX" }
      score: { value: 0 }
      birth_date: year
      signup_on: month
      postcode: { truncate: 2 }
      mark: anonymized_at
)";
  const fs::path file = dir.write("policy.yaml", yaml);
  const Policy p = loaded(load_policy(file));

  CHECK(p.file == file);
  CHECK(p.timezone == "Europe/Paris");
  REQUIRE(p.zone != nullptr);
  CHECK(p.zone->name() == "Europe/Paris");
  REQUIRE(p.schedule.has_value());
  CHECK(p.schedule->hours == std::vector<int>{3});
  CHECK(p.schedule->minutes == std::vector<int>{15});
  CHECK(p.batch_size == 500);
  CHECK(p.max_transaction == std::chrono::milliseconds{20});
  CHECK(p.hmac_key == kKey);
  CHECK(p.hmac_key_file == dir / "keys/hmac.key");

  SECTION("policy_sha256 is the SHA-256 of the file's bytes") {
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(p.sha256 == sha256_hex(yaml));
    // A comment changes the bytes, so the digest, though not the meaning.
    const Policy commented = loaded(load(dir, yaml + "# reviewed\n"));
    CHECK(commented.sha256 == sha256_hex(yaml + "# reviewed\n"));
    CHECK(commented.sha256 != p.sha256);
  }

  SECTION("stores, with relative paths resolved against the policy's folder") {
    REQUIRE(p.stores.size() == 3);
    CHECK(p.stores[0].name == "health");
    CHECK(p.stores[0].kind == StoreKind::sqlite);
    CHECK(p.stores[0].path == dir / "health.db");
    CHECK(p.stores[1].path == dir / "archive/health-archive.db");
    CHECK(p.stores[2].path == fs::path("/var/lib/mgen/web.db"));
    CHECK(p.find_store("web") == &p.stores[2]);
    CHECK(p.find_store("nope") == nullptr);
  }

  SECTION("the short form, with where and hold by column") {
    REQUIRE(p.rules.size() == 3);
    const Rule& r = p.rules[0];
    CHECK(r.name == "amo-affiliation");
    CHECK(r.category == "compulsory-health-insurance");
    CHECK(r.basis == "Privacy policy art. 8.1");
    CHECK(r.store == "health");
    CHECK(r.table == "affiliations");
    CHECK(r.key == "id");
    CHECK(r.anchor == "rights_closed_on");
    CHECK(r.anchor_format == AnchorFormat::date);
    REQUIRE(r.where.size() == 3);
    CHECK(r.where[0].column == "regime");
    CHECK(r.where[0].values == std::vector<Scalar>{std::string("AMO")});
    CHECK(r.where[1].column == "kind");
    CHECK(r.where[1].values == std::vector<Scalar>{std::int64_t{1}, std::int64_t{2}});
    CHECK(r.where[2].column == "code");
    CHECK(r.where[2].values == std::vector<Scalar>{std::string("5")});  // quoted stays text
    REQUIRE(r.hold.has_value());
    REQUIRE(std::holds_alternative<HoldByColumn>(*r.hold));
    CHECK(std::get<HoldByColumn>(*r.hold).column == "litigation_pending");
    REQUIRE(r.stages.size() == 1);
    CHECK(r.stages[0].number == 1);
    CHECK(r.stages[0].after == Period{5, 0, 0});
    CHECK(r.stages[0].action == Action::erase);
    CHECK(r.archive_stage() == nullptr);
    CHECK_FALSE(r.anonymize.has_value());
    CHECK(p.find_rule("amo-affiliation") == &r);
  }

  SECTION("the long form, with stages and hold by table") {
    const Rule& r = p.rules[1];
    CHECK(r.name == "amo-health-data");
    CHECK(r.anchor_format == AnchorFormat::unixepoch);
    CHECK(r.where.empty());
    REQUIRE(r.hold.has_value());
    REQUIRE(std::holds_alternative<HoldByTable>(*r.hold));
    CHECK(std::get<HoldByTable>(*r.hold).table == "legal_holds");
    CHECK(std::get<HoldByTable>(*r.hold).key == "claim_id");
    REQUIRE(r.stages.size() == 2);
    CHECK(r.stages[0].number == 1);
    CHECK(r.stages[0].after == Period{3, 0, 0});
    CHECK(r.stages[0].action == Action::archive);
    CHECK(r.stages[0].to == "health_archive");
    CHECK(r.stages[1].number == 2);
    CHECK(r.stages[1].after == Period{13, 0, 0});
    CHECK(r.stages[1].action == Action::erase);
    CHECK(r.archive_stage() == &r.stages[0]);
  }

  SECTION("anonymisation with every method and a mark") {
    const Rule& r = p.rules[2];
    CHECK(r.anchor_format == AnchorFormat::datetime);
    REQUIRE(r.stages.size() == 1);
    CHECK(r.stages[0].after == Period{0, 13, 0});
    CHECK(r.stages[0].action == Action::anonymize);
    REQUIRE(r.anonymize.has_value());
    CHECK(r.anonymize->mark == std::optional<std::string>("anonymized_at"));
    using K = AnonymizeMethod::Kind;
    const auto& c = r.anonymize->columns;
    REQUIRE(c.size() == 8);
    CHECK(c[0].column == "visitor_id");
    CHECK(c[0].method.kind == K::hmac);
    CHECK(c[1].column == "ip");
    CHECK(c[1].method.kind == K::null);
    CHECK(c[2].column == "user_agent");
    CHECK(c[2].method.kind == K::null);
    CHECK(c[3].column == "country");
    CHECK(c[3].method.kind == K::value);
    CHECK(c[3].method.value == Scalar{std::string("XX")});
    CHECK(c[4].method.kind == K::value);
    CHECK(c[4].method.value == Scalar{std::int64_t{0}});
    CHECK(c[5].column == "birth_date");
    CHECK(c[5].method.kind == K::year);
    CHECK(c[6].column == "signup_on");
    CHECK(c[6].method.kind == K::month);
    CHECK(c[7].column == "postcode");
    CHECK(c[7].method.kind == K::truncate);
    CHECK(c[7].method.truncate == 2);
  }
}

TEST_CASE("a policy without schedule, batch_size or hmac key takes the defaults", "[policy]") {
  TempDir dir;
  const Policy p = loaded(load(dir, policy_with(kClaimsRule)));
  CHECK_FALSE(p.schedule.has_value());
  // Batches sized by time alone: 50 ms transactions, no bound on the count.
  CHECK_FALSE(p.batch_size.has_value());
  CHECK(p.max_transaction == std::chrono::milliseconds{50});
  CHECK(p.hmac_key.empty());
  CHECK(p.rules[0].anchor_format == AnchorFormat::date);
  CHECK(p.stores[0].path == dir / "health.db");
}

TEST_CASE("a 5-field cron schedule is accepted", "[policy]") {
  TempDir dir;
  auto yaml = edited(policy_with(kClaimsRule), "timezone: Europe/Paris\n",
                     "timezone: Europe/Paris\nschedule: \"15 3 * * *\"\n");
  const Policy p = loaded(load(dir, yaml));
  REQUIRE(p.schedule.has_value());
  CHECK(p.schedule->hours == std::vector<int>{3});
  CHECK(p.schedule->minutes == std::vector<int>{15});
}

// ---- refusals: each points at the offending line and says what is wrong ----

TEST_CASE("an unknown key is refused, not ignored", "[policy]") {
  TempDir dir;
  SECTION("in a rule: keep_fro must not keep data forever") {
    refused(dir, edited(policy_with(kClaimsRule), "keep_for: 3 years", "keep_fro: 3 years  # <-"),
            {"unknown key 'keep_fro'", "keep_for"});
  }
  SECTION("at the top") {
    refused(dir,
            edited(policy_with(kClaimsRule), "version: 1", "version: 1\nshedule: \"03:15\"  # <-"),
            {"unknown key 'shedule'", "schedule"});
  }
  SECTION("in a store") {
    refused(dir, edited(policy_with(kClaimsRule), "path: health.db }", "paht: health.db }  # <-"),
            {"unknown key 'paht'", "path"});
  }
  SECTION("in a stage") {
    refused(dir, policy_with(R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    stages:
      - after: 3 years
        action: archive
        to: archive
      - aftr: 13 years  # <-
        action: delete
)"),
            {"unknown key 'aftr'", "after"});
  }
  SECTION("in a hold") {
    refused(dir,
            edited(policy_with(kClaimsRule),
                   "    keep_for:", "    hold: { column: held, until: 2030 }  # <-\n    keep_for:"),
            {"unknown key 'until'"});
  }
}

TEST_CASE("malformed YAML is refused with its position", "[policy]") {
  TempDir dir;
  SECTION("a key and value on a line without a colon") {
    refused(dir,
            edited(policy_with(kClaimsRule), "    key: id\n",
                   "    key: id\n    anchor paid_on  # <-\n"),
            {"malformed YAML"});
  }
  SECTION("a bad indentation") {
    refused(
        dir,
        edited(policy_with(kClaimsRule), "    key: id\n", "    key: id\n  anchor: paid_on  # <-\n"),
        {"malformed YAML"});
  }
  SECTION("an unclosed flow list") {
    refused(dir,
            edited(policy_with(kClaimsRule), "    key: id\n",
                   "    where: { regime: [AMO, RC }  # <-\n    key: id\n"),
            {"malformed YAML"});
  }
  SECTION("a tab in the indentation") {
    refused(dir, edited(policy_with(kClaimsRule), "    key: id\n", "\tkey: id  # <-\n"),
            {"malformed YAML"});
  }
  SECTION("not a mapping at all") {
    auto result = load(dir, "just some text\n");
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ExitCode::config);
    CHECK(position_in(result.error().message, dir / "policy.yaml").line == 1);
  }
}

TEST_CASE("a bad period is refused", "[policy]") {
  TempDir dir;
  auto good = policy_with(kClaimsRule);
  SECTION("unknown unit") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: 3 fortnights  # <-"),
            {"unknown unit 'fortnights'", "days|weeks|months|years", "P5Y"});
  }
  SECTION("zero") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: 0 days  # <-"), {"zero", "P5Y"});
  }
  SECTION("negative") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: -3 years  # <-"),
            {"-3 years", "P5Y"});
  }
  SECTION("negative in ISO 8601") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: P-3Y  # <-"), {"P-3Y", "P5Y"});
  }
  SECTION("hours") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: PT5H  # <-"), {"PT5H"});
  }
  SECTION("a number without a unit") {
    refused(dir, edited(good, "keep_for: 3 years", "keep_for: 3  # <-"), {"unit"});
  }
  SECTION("in a stage") {
    refused(dir, policy_with(R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    stages:
      - after: 3 centuries  # <-
        action: delete
)"),
            {"unknown unit 'centuries'"});
  }
}

TEST_CASE("an unknown action is refused", "[policy]") {
  TempDir dir;
  refused(dir, edited(policy_with(kClaimsRule), "action: delete", "action: purge  # <-"),
          {"unknown action 'purge'", "delete, archive, anonymize"});
}

TEST_CASE("an unknown anonymisation method is refused", "[policy]") {
  TempDir dir;
  dir.write("hmac.key", kKey, 0600);
  std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key\ntimezone:");
  SECTION("by name") {
    refused(dir, edited(policy_with(kVisitsRule, head), "ip: \"null\"", "ip: scramble  # <-"),
            {"unknown anonymisation method 'scramble'", "column 'ip'", "hmac", "truncate"});
  }
  SECTION("as a mapping") {
    refused(dir, edited(policy_with(kVisitsRule, head), "ip: \"null\"", "ip: { shuffle: 3 }  # <-"),
            {"unknown anonymisation method 'shuffle'", "truncate"});
  }
}

TEST_CASE("a store that is not defined is refused", "[policy]") {
  TempDir dir;
  SECTION("as the rule's store") {
    refused(dir, edited(policy_with(kClaimsRule), "store: health", "store: halth  # <-"),
            {"store 'halth'", "not defined"});
  }
  SECTION("as an archive's destination") {
    refused(dir, policy_with(R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    stages:
      - after: 3 years
        action: archive
        to: nowhere  # <-
      - after: 13 years
        action: delete
)"),
            {"'nowhere'", "not defined"});
  }
}

TEST_CASE("two rules with the same name are refused", "[policy]") {
  TempDir dir;
  std::string second = edited(kClaimsRule, "name: claims", "name: claims  # <-");
  second = edited(second, "keep_for: 3 years", "keep_for: 5 years");
  refused(dir, policy_with(std::string(kClaimsRule) + second), {"'claims'", "twice"});
}

TEST_CASE("identifiers with SQL in them are refused", "[policy]") {
  TempDir dir;
  auto good = policy_with(kClaimsRule);
  const std::string plain = "not a plain SQL identifier";
  SECTION("table") {
    refused(dir, edited(good, "table: claims", "table: claims; DROP TABLE x  # <-"),
            {"table 'claims; DROP TABLE x'", plain});
  }
  SECTION("key") {
    refused(dir, edited(good, "key: id", "key: \"id\\\" OR 1=1 --\"  # <-"), {"key", plain});
  }
  SECTION("anchor") {
    refused(dir, edited(good, "anchor: paid_on", "anchor: paid_on) OR (1=1  # <-"),
            {"anchor 'paid_on) OR (1=1'", plain});
  }
  SECTION("where column") {
    refused(dir,
            edited(good,
                   "    keep_for:", "    where:\n      regime = 1 OR 1: AMO  # <-\n    keep_for:"),
            {"where column 'regime = 1 OR 1'", plain});
  }
  SECTION("hold column") {
    refused(
        dir,
        edited(good, "    keep_for:", "    hold: { column: \"held; --\" }  # <-\n    keep_for:"),
        {"hold column", plain});
  }
  SECTION("anonymize column") {
    dir.write("hmac.key", kKey, 0600);
    std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key\ntimezone:");
    refused(dir,
            edited(policy_with(kVisitsRule, head), "ip: \"null\"",
                   "ip; DELETE FROM visits: \"null\"  # <-"),
            {"column 'ip; DELETE FROM visits'", plain});
  }
  SECTION("mark column") {
    dir.write("hmac.key", kKey, 0600);
    std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key\ntimezone:");
    refused(dir,
            edited(policy_with(kVisitsRule, head), "mark: anonymized_at",
                   "mark: anonymized_at = 1  # <-"),
            {"mark column", plain});
  }
}

TEST_CASE("an unknown time zone is refused", "[policy]") {
  TempDir dir;
  refused(
      dir,
      edited(policy_with(kClaimsRule), "timezone: Europe/Paris", "timezone: Europe/Pariss  # <-"),
      {"unknown time zone 'Europe/Pariss'", "IANA"});
}

TEST_CASE("hmac without a mark column is refused", "[policy]") {
  TempDir dir;
  dir.write("hmac.key", kKey, 0600);
  std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key\ntimezone:");
  std::string yaml = edited(policy_with(kVisitsRule, head), "      mark: anonymized_at\n", "");
  yaml = edited(yaml, "visitor_id: hmac", "visitor_id: hmac  # <-");
  refused(dir, yaml, {"hmac", "mark"});
}

TEST_CASE("a rule without an anchor is refused", "[policy]") {
  TempDir dir;
  auto yaml = edited(policy_with(kClaimsRule), "    anchor: paid_on\n", "");
  yaml = edited(yaml, "- name: claims", "- name: claims  # <-");
  refused(dir, yaml, {"rule 'claims'", "no 'anchor'"});
}

TEST_CASE("the hmac key file must exist, be long enough and be private", "[policy]") {
  TempDir dir;
  std::string head = edited(kHead, "timezone:", "hmac_key_file: hmac.key  # <-\ntimezone:");
  const std::string yaml = policy_with(kVisitsRule, head);
  SECTION("missing") { refused(dir, yaml, {"hmac.key", "does not exist"}); }
  SECTION("shorter than 32 bytes") {
    dir.write("hmac.key", kKey.substr(0, 31), 0600);
    refused(dir, yaml, {"hmac.key", "31 bytes", "at least 32"});
  }
  SECTION("readable by others (mode 0644)") {
    dir.write("hmac.key", kKey, 0644);
    refused(dir, yaml, {"hmac.key", "group or others", "chmod 600"});
  }
  SECTION("readable by the group (mode 0640)") {
    dir.write("hmac.key", kKey, 0640);
    refused(dir, yaml, {"group or others"});
  }
  SECTION("a folder") {
    fs::create_directory(dir / "hmac.key");
    refused(dir, yaml, {"hmac.key", "not a regular file"});
  }
  SECTION("0600 and 0400 with 32 bytes are accepted") {
    dir.write("hmac.key", kKey, 0600);
    CHECK(loaded(load(dir, yaml)).hmac_key == kKey);
    dir.write("hmac.key", std::string(kKey) + "\n", 0400);
    CHECK(loaded(load(dir, yaml)).hmac_key == std::string(kKey) + "\n");  // bytes as they are
  }
  SECTION("no hmac_key_file at all") {
    std::string no_key = edited(yaml, "hmac_key_file: hmac.key  # <-\n", "");
    no_key = edited(no_key, "version: 1", "version: 1  # <-");
    refused(dir, no_key, {"hmac_key_file"});
  }
}

TEST_CASE("a key in the credentials directory wins over hmac_key_file", "[policy]") {
  TempDir dir;
  std::string head = edited(kHead, "timezone:", "hmac_key_file: /nonexistent/hmac.key\ntimezone:");
  const std::string yaml = policy_with(kVisitsRule, head);
  const std::string credential = "credential-key-from-systemd-0123456789";
  dir.write("creds/hmac-key", credential, 0600);
  LoadOptions options;
  options.credentials_directory = dir / "creds";
  const Policy p = loaded(load(dir, yaml, options));
  CHECK(p.hmac_key == credential);

  SECTION("even when hmac_key_file exists") {
    dir.write("hmac.key", kKey, 0600);
    std::string local = edited(yaml, "/nonexistent/hmac.key", "hmac.key");
    CHECK(loaded(load(dir, local, options)).hmac_key == credential);
    // Without the credential the policy's own file is used.
    CHECK(loaded(load(dir, local)).hmac_key == kKey);
    LoadOptions no_credential;
    no_credential.credentials_directory = dir / "empty-creds";
    CHECK(loaded(load(dir, local, no_credential)).hmac_key == kKey);
  }
  SECTION("it is enough without hmac_key_file in the policy") {
    std::string no_file = edited(yaml, "hmac_key_file: /nonexistent/hmac.key\n", "");
    CHECK(loaded(load(dir, no_file, options)).hmac_key == credential);
  }
  SECTION("a short credential is still refused") {
    dir.write("creds/hmac-key", "short", 0600);
    auto result = load(dir, yaml, options);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ExitCode::config);
    CHECK_THAT(result.error().message, Catch::Contains("at least 32"));
  }
}

TEST_CASE("a key written twice is refused", "[policy]") {
  TempDir dir;
  SECTION("in a rule") {
    refused(dir,
            edited(policy_with(kClaimsRule), "    action: delete\n",
                   "    action: delete\n    keep_for: 10 years  # <-\n"),
            {"'keep_for'", "twice"});
  }
  SECTION("at the top") {
    refused(dir, edited(policy_with(kClaimsRule), "rules:\n", "timezone: UTC  # <-\nrules:\n"),
            {"'timezone'", "twice"});
  }
  SECTION("a store name") {
    refused(dir,
            edited(policy_with(kClaimsRule), "rules:\n",
                   "  health: { kind: sqlite, path: other.db }  # <-\nrules:\n"),
            {"'health'", "twice"});
  }
  SECTION("in a flow mapping") {
    refused(dir,
            edited(policy_with(kClaimsRule), "path: archive.db }",
                   "path: archive.db, path: x.db }  # <-"),
            {"'path'", "twice"});
  }
}

TEST_CASE("stages must be listed in order of their periods", "[policy]") {
  TempDir dir;
  const std::string rule = R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    stages:
      - after: 13 years
        action: archive
        to: archive
      - after: 3 years  # <-
        action: delete
)";
  refused(dir, policy_with(rule), {"stage 2", "must come after stage 1"});
  SECTION("equal periods, written differently") {
    refused(dir, edited(edited(policy_with(rule), "13 years", "1 week"), "3 years", "7 days"),
            {"stage 2"});
  }
  SECTION("a month is not always later than 30 days") {
    refused(dir, edited(edited(policy_with(rule), "13 years", "30 days"), "3 years", "1 month"),
            {"stage 2"});
  }
  SECTION("in order they load") {
    auto in_order = edited(edited(policy_with(rule), "13 years", "3 years  "),
                           "- after: 3 years  # <-", "- after: 13 years");
    CHECK(loaded(load(dir, in_order)).rules[0].stages.size() == 2);
  }
}

TEST_CASE("stages and keep_for together are refused", "[policy]") {
  TempDir dir;
  refused(dir, policy_with(R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    keep_for: 3 years
    stages:  # <-
      - after: 5 years
        action: delete
)"),
          {"both 'stages' and keep_for"});
}

TEST_CASE("a byte that is not UTF-8 is refused with its position", "[policy]") {
  TempDir dir;
  std::string yaml = edited(policy_with(kClaimsRule), "    key: id\n",
                            "    basis: \"caf\xe9\"  # <-\n    key: id\n");
  std::string message = refused(dir, yaml, {"UTF-8"});
  CHECK(position_in(message, dir / "policy.yaml").column == 16);
  SECTION("a truncated sequence at the end of the file") {
    std::string truncated = policy_with(kClaimsRule) + "# \xc3";
    auto result = load(dir, truncated);
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ExitCode::config);
    CHECK(position_in(result.error().message, dir / "policy.yaml").line ==
          1 + std::count(truncated.begin(), truncated.end(), '\n'));
  }
  SECTION("accents in UTF-8 are fine") {
    CHECK(loaded(load(dir, edited(yaml, "caf\xe9", "caf\xc3\xa9"))).rules[0].basis ==
          "caf\xc3\xa9");
  }
}

TEST_CASE("a policy file over 1 MiB is refused", "[policy]") {
  TempDir dir;
  std::string yaml = policy_with(kClaimsRule);
  std::string padding = "# " + std::string(1024 * 1024 - yaml.size() - 3, 'x') + "\n";
  REQUIRE((yaml + padding).size() == 1024 * 1024);
  CHECK(loaded(load(dir, yaml + padding)).rules.size() == 1);  // exactly 1 MiB is fine
  auto result = load(dir, yaml + padding + "\n");
  REQUIRE_FALSE(result.has_value());
  CHECK(result.error().code == ExitCode::config);
  CHECK(position_in(result.error().message, dir / "policy.yaml").line == 1);
  CHECK_THAT(result.error().message, Catch::Contains("1048576"));
}

TEST_CASE("other mistakes are refused with their line", "[policy]") {
  TempDir dir;
  auto good = policy_with(kClaimsRule);
  SECTION("unknown anchor_format") {
    refused(dir, edited(good, "    keep_for:", "    anchor_format: epoch  # <-\n    keep_for:"),
            {"unknown anchor_format 'epoch'", "date, datetime, unixepoch"});
  }
  SECTION("a rule name that is not lower-case letters, digits and '-'") {
    refused(dir, edited(good, "name: claims", "name: Claims_2024  # <-"), {"'Claims_2024'"});
  }
  SECTION("archive without a destination") {
    refused(dir, edited(good, "action: delete", "action: archive  # <-"), {"to: STORE"});
  }
  SECTION("an unsupported version") {
    refused(dir, edited(good, "version: 1", "version: 2  # <-"), {"version"});
  }
  SECTION("a batch size of zero") {
    refused(dir, edited(good, "version: 1", "version: 1\nbatch_size: 0  # <-"), {"batch_size"});
  }
  SECTION("a max_transaction that is not a duration") {
    refused(dir, edited(good, "version: 1", "version: 1\nmax_transaction: 50  # <-"),
            {"max_transaction", "50ms"});
  }
  SECTION("a schedule that is not a time") {
    refused(dir, edited(good, "version: 1", "version: 1\nschedule: \"25:00\"  # <-"), {"25:00"});
  }
  SECTION("an unknown store kind") {
    refused(
        dir,
        edited(good, "kind: sqlite, path: archive.db }", "kind: mysql, path: archive.db }  # <-"),
        {"unknown store kind 'mysql'"});
  }
  SECTION("a delete stage that is not the last") {
    refused(dir, policy_with(R"(  - name: claims
    store: health
    table: claims
    key: id
    anchor: paid_on
    stages:
      - after: 3 years  # <-
        action: delete
      - after: 5 years
        action: delete
)"),
            {"delete"});
  }
  SECTION("no timezone") {
    refused(dir, edited(good, "version: 1\ntimezone: Europe/Paris", "version: 1  # <-"),
            {"timezone"});
  }
  SECTION("a busy_timeout that is not a duration") {
    for (const char* bad : {"5", "0s", "-1s", "1.5s", "5 hours", "11 min"}) {
      refused(dir,
              edited(good, "version: 1", fmt::format("version: 1\nbusy_timeout: {}  # <-", bad)),
              {"busy_timeout", "500ms, 5s, 2 min"});
    }
  }
  SECTION("an archive into a store of another kind") {
    refused(dir,
            edited(edited(good, "action: delete", "action: archive\n    to: warehouse  # <-"),
                   "stores:", "stores:\n  warehouse: { kind: postgresql, dsn: \"dbname=w\" }"),
            {"'warehouse' is a postgresql store", "same kind"});
  }
}

TEST_CASE("busy_timeout takes ms, s and min, with or without the space", "[policy]") {
  TempDir dir;
  auto good = policy_with(kClaimsRule);
  CHECK(loaded(load(dir, good)).busy_timeout == std::chrono::seconds{5});
  for (auto [text, ms] : std::vector<std::pair<std::string, int>>{
           {"500ms", 500}, {"5s", 5000}, {"2 min", 120000}, {"250 ms", 250}}) {
    auto p = loaded(load(dir, edited(good, "version: 1", "version: 1\nbusy_timeout: " + text)));
    CHECK(p.busy_timeout == std::chrono::milliseconds{ms});
  }
}

TEST_CASE("a PostgreSQL store's dsn is read by libpq, and a password in it is refused unseen",
          "[policy][postgresql]") {
  TempDir dir;
  auto good = policy_with(kClaimsRule);
  auto with_store = [&](std::string_view line) {
    return edited(good, "stores:", "stores:\n  crm: " + std::string(line));
  };
  auto p = loaded(load(
      dir, with_store(R"({ kind: postgresql, dsn: "host=/run/postgresql dbname=mgen user=rd" })")));
  CHECK(p.find_store("crm")->schema == "public");
  auto q = loaded(load(
      dir,
      with_store(R"({ kind: postgresql, dsn: "postgresql://rd@db.example/mgen", schema: amo })")));
  CHECK(q.find_store("crm")->schema == "amo");
  for (const char* dsn :
       {"host=db dbname=mgen password=s3cr3t-Pw", "postgresql://rd:s3cr3t-Pw@db/mgen"}) {
    auto message =
        refused(dir, with_store(fmt::format(R"({{ kind: postgresql, dsn: "{}" }}  # <-)", dsn)),
                {"store 'crm': dsn carries a password", "passfile"});
    CHECK(message.find("s3cr3t-Pw") == std::string::npos);
  }
  refused(dir, with_store(R"({ kind: postgresql, dsn: "host=db dbname" }  # <-)"),
          {"store 'crm': dsn is not a libpq connection string"});
  refused(dir, with_store(R"({ kind: postgresql, dsn: "dbname=x", schema: "a;b" }  # <-)"),
          {"schema"});
}

TEST_CASE("a missing or unreadable policy file is no_input (66)", "[policy]") {
  TempDir dir;
  SECTION("missing") {
    auto result = load_policy(dir / "nope.yaml");
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ExitCode::no_input);
    CHECK(static_cast<int>(result.error().code) == 66);
    CHECK_THAT(result.error().message, Catch::Contains((dir / "nope.yaml").string()));
  }
  SECTION("a folder") {
    fs::create_directory(dir / "policy.d");
    auto result = load_policy(dir / "policy.d");
    REQUIRE_FALSE(result.has_value());
    CHECK(result.error().code == ExitCode::no_input);
  }
  SECTION("without read permission") {
    auto file = dir.write("policy.yaml", policy_with(kClaimsRule), 0000);
    fs::permissions(dir.path(),
                    fs::perms::owner_all | fs::perms::group_exec | fs::perms::others_exec);
    // Root reads any file: load it as an ordinary user ("nobody") in a child.
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      if (::geteuid() == 0 && (::setgid(65534) != 0 || ::setuid(65534) != 0)) ::_exit(100);
      auto result = load_policy(file);
      ::_exit(result ? 0 : static_cast<int>(result.error().code));
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 66);
  }
}
