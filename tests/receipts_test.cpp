// Erasure receipts: the Merkle tree of a batch's keys (audit/merkle), and
// `audit find` / `audit check-receipt` as a data-protection officer uses
// them, on records deleted, archived and anonymised by real sweeps.
#include <catch2/catch.hpp>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "audit/merkle.hpp"
#include "sweep_support.hpp"
#include "test_support.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::vector<Hash> leaves_of(int n) {
  KeyHasher h("a secret of at least thirty-two bytes, for tests");
  std::vector<Hash> leaves;
  for (int i = 0; i < n; ++i) leaves.push_back(h(std::to_string(i)));
  return leaves;
}

}  // namespace

TEST_CASE("a leaf's inclusion proof leads to the root, and nothing else does", "[receipts]") {
  for (int n : {1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33, 100}) {
    auto leaves = leaves_of(n);
    Hash root = merkle_root(leaves);
    for (int i = 0; i < n; ++i) {
      INFO(n << " leaves, leaf " << i);
      auto proof = inclusion_proof(leaves, i);
      auto got = root_from_proof(leaves[i], i, n, proof);
      REQUIRE(got);
      CHECK(*got == root);
      // Another leaf, another position, another tree size: no.
      if (n > 1) CHECK(root_from_proof(leaves[(i + 1) % n], i, n, proof) != std::optional(root));
      if (n > 1) CHECK(root_from_proof(leaves[i], (i + 1) % n, n, proof) != std::optional(root));
      if (!proof.empty()) {
        proof[0][0] ^= 1;
        CHECK(root_from_proof(leaves[i], i, n, proof) != std::optional<Hash>(root));
      }
    }
  }
  CHECK_FALSE(root_from_proof(leaves_of(1)[0], 1, 1, {}));
}

TEST_CASE("keys are hashed with HMAC-SHA256, as OpenSSL's own HMAC computes it", "[receipts]") {
  for (std::string secret : {std::string(32, 's'), std::string(64, 'x'), std::string(100, 'y'),
                             std::string("\0\1binary secret of 32 bytes.....", 32)}) {
    KeyHasher h(secret);
    for (std::string key : std::vector<std::string>{
             "", "1", "123456789", "claims/c1/2020-01-01.rec", std::string(200, 'k')}) {
      INFO(secret.size() << "-byte secret, key " << key);
      CHECK(to_hex(h(key)) == hmac_sha256_hex(secret, key));
    }
  }
}

TEST_CASE("the root is RFC 9162's tree hash", "[receipts]") {
  // MTH({d0}) = SHA-256(0x00 || d0); MTH({d0, d1}) = SHA-256(0x01 || MTH(d0) || MTH(d1)),
  // computed here with plain SHA-256 over the same bytes.
  auto leaves = leaves_of(3);
  auto hex_of = [](const std::string& bytes) { return retentiond::sha256_hex(bytes); };
  auto raw = [](const Hash& h) { return std::string(h.begin(), h.end()); };
  auto unhex = [&raw](const std::string& hex) { return raw(*hash_from_hex(hex)); };
  std::string l0 = hex_of(std::string(1, '\0') + raw(leaves[0]));
  std::string l1 = hex_of(std::string(1, '\0') + raw(leaves[1]));
  std::string l2 = hex_of(std::string(1, '\0') + raw(leaves[2]));
  std::string n01 = hex_of(std::string(1, '\1') + unhex(l0) + unhex(l1));
  std::string root = hex_of(std::string(1, '\1') + unhex(n01) + unhex(l2));
  CHECK(to_hex(merkle_root(std::span(leaves).first(1))) == l0);
  CHECK(to_hex(merkle_root(std::span(leaves).first(2))) == n01);
  CHECK(to_hex(merkle_root(leaves)) == root);
}

namespace {

constexpr std::string_view kPolicy = R"(version: 1
timezone: Europe/Paris
batch_size: 40
hmac_key_file: hmac.key
stores:
  app: { kind: sqlite, path: app.db }
  vault: { kind: sqlite, path: vault.db }
rules:
  - name: old-visits
    store: app
    table: visits
    key: id
    anchor: at
    keep_for: 1 year
    action: delete
  - name: claims
    store: app
    table: claims
    key: claim_id
    anchor: paid_on
    stages:
      - { after: 3 years, action: archive, to: vault }
      - { after: 13 years, action: delete }
  - name: accounts
    store: app
    table: accounts
    key: login
    anchor: closed_on
    keep_for: 6 months
    action: anonymize
    anonymize: { email: "null", mark: anonymized_at }
)";

struct Installation {
  TempDir dir;
  fs::path policy = dir / "policy.yaml";
  fs::path state = dir / "state";
  fs::path app = dir / "app.db";

  Installation() {
    dir.write("policy.yaml", std::string(kPolicy));
    dir.write("hmac.key", std::string(48, 'k'), 0600);
    retentiond::test::exec(app, R"(
      CREATE TABLE visits (id INTEGER PRIMARY KEY, at TEXT);
      CREATE TABLE claims (claim_id TEXT PRIMARY KEY, paid_on TEXT, amount INTEGER);
      CREATE TABLE accounts (login TEXT PRIMARY KEY, closed_on TEXT, email TEXT, anonymized_at TEXT);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
        INSERT INTO visits SELECT i, date('2025-06-01', printf('+%d days', i)) FROM n;
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100)
        INSERT INTO claims SELECT printf('C%04d', i), date('2010-06-01', printf('+%d months', i)), i FROM n;
      INSERT INTO accounts VALUES ('ada', '2025-01-10', 'ada@example.org', NULL),
                                  ('bob', '2026-11-30', 'bob@example.org', NULL);
    )");
  }

  retentiond::test::ProcessOutcome run(std::vector<std::string> args) const {
    args.insert(args.begin(), {"-c", policy.string(), "--state-dir", state.string()});
    return retentiond::test::run_retentiond(dir, args);
  }
  retentiond::test::ProcessOutcome find(const std::string& rule, const std::string& key,
                                        bool as_json = false) const {
    std::vector<std::string> args{"audit", "find", "--rule", rule, "--key", key};
    if (as_json) args.insert(args.end(), {"--format", "json"});
    return run(args);
  }
  // `audit find --format json` saved as a receipt file, then checked.
  retentiond::test::ProcessOutcome check(const json& receipt, const std::string& name) const {
    dir.write(name, receipt.dump(2));
    return run({"audit", "check-receipt", (dir / name).string()});
  }
};

#define SHOW(outcome)                                  \
  INFO("exit " << (outcome).exit_code << "\nstdout:\n" \
               << (outcome).out << "\nstderr:\n"       \
               << (outcome).err)

}  // namespace

TEST_CASE("a receipt for a deleted, an archived and an anonymised record verifies", "[receipts]") {
  Installation in;
  auto swept = in.run({"sweep", "--as-of", "2026-12-01"});
  SHOW(swept);
  REQUIRE(swept.exit_code == 0);

  struct Case {
    std::string rule, key, action;
  };
  // visit 30 (2025-07-01) is past 1 year; claim C0050 (2014-08-01) past 3
  // years but not 13: archived; C0001 (2010-07-01) past 13: deleted at once;
  // ada's account closed in January 2025: anonymised.
  for (const auto& c : {Case{"old-visits", "30", "delete"}, Case{"claims", "C0050", "archive"},
                        Case{"claims", "C0001", "delete"}, Case{"accounts", "ada", "anonymize"}}) {
    INFO(c.rule << " " << c.key);
    auto text = in.find(c.rule, c.key);
    SHOW(text);
    CHECK(text.exit_code == 0);
    CHECK_THAT(text.out, Catch::Contains("acted on by 1 audit entry"));
    CHECK_THAT(text.out, Catch::Contains(c.action + " (stage"));
    CHECK_THAT(text.out, Catch::Contains("policy sha256 "));

    auto found = in.find(c.rule, c.key, true);
    REQUIRE(found.exit_code == 0);
    json receipt = json::parse(found.out);
    CHECK(receipt["found"] == true);
    REQUIRE(receipt["entries"].size() == 1);
    CHECK(receipt["entries"][0]["entry"]["action"] == c.action);
    CHECK(receipt["entries"][0]["entry"]["rule"] == c.rule);
    auto checked = in.check(receipt, "receipt.json");
    SHOW(checked);
    CHECK(checked.exit_code == 0);
    CHECK_THAT(checked.out, Catch::Contains("receipt valid"));
    CHECK_THAT(checked.out, Catch::Contains("key '" + c.key + "'"));
  }

  SECTION("the leaves kept for receipts hold no key in clear") {
    for (const auto& f : fs::directory_iterator(in.state / "receipts")) {
      std::string bytes = retentiond::test::read_file(f.path());
      CHECK(bytes.size() % 32 == 0);
      CHECK(bytes.find("C0050") == std::string::npos);
      CHECK(bytes.find("ada") == std::string::npos);
    }
    CHECK((fs::status(in.state / "receipt.key").permissions() & fs::perms::group_all) ==
          fs::perms::none);
  }
}

TEST_CASE("a forged or edited receipt does not verify", "[receipts]") {
  Installation in;
  REQUIRE(in.run({"sweep", "--as-of", "2026-12-01"}).exit_code == 0);
  auto found = in.find("old-visits", "30", true);
  REQUIRE(found.exit_code == 0);
  const json good = json::parse(found.out);
  REQUIRE(in.check(good, "good.json").exit_code == 0);

  auto expect_refused = [&](json receipt, const std::string& why) {
    auto r = in.check(receipt, "forged.json");
    SHOW(r);
    CHECK(r.exit_code == 65);
    CHECK_THAT(r.err, Catch::Contains("receipt NOT valid"));
    CHECK_THAT(r.err, Catch::Contains(why));
  };
  SECTION("another key claimed with the same proof") {
    json r = good;
    r["key"] = "31";
    expect_refused(r, "its leaf is not key '31'");
  }
  SECTION("the entry's date or count edited") {
    json r = good;
    r["entries"][0]["entry"]["time"] = "2020-01-01T00:00:00.000Z";
    expect_refused(r, "does not match its hash");
  }
  SECTION("a proof hash changed") {
    json r = good;
    std::string h = r["entries"][0]["proof"][0];
    h[0] = h[0] == '0' ? '1' : '0';
    r["entries"][0]["proof"][0] = h;
    expect_refused(r, "the proof does not lead");
  }
  SECTION("a key never swept given the receipt of another") {
    json r = good;
    r["key"] = "199";
    auto leaf = in.find("old-visits", "199", true);
    r["leaf"] = json::parse(leaf.out)["leaf"];
    expect_refused(r, "the proof does not lead");
  }
  SECTION("an entry rewritten whole, with a hash that matches, is not the log's line") {
    json r = good;
    auto& e = r["entries"][0]["entry"];
    e["affected"] = 1;
    json copy = e;
    copy.erase("hash");
    e["hash"] = retentiond::sha256_hex(copy.dump());
    expect_refused(r, "is not the line of that seq");
  }
  SECTION("a log edited after the receipt was made") {
    auto log = retentiond::test::read_file(in.state / "audit.jsonl");
    auto at = log.find("\"affected\":40");
    REQUIRE(at != std::string::npos);
    log.replace(at, 13, "\"affected\":41");
    in.dir.write("state/audit.jsonl", log, 0600);
    expect_refused(good, "the audit log itself is broken");
  }
}

TEST_CASE("a key never acted on: \"no entry\", exit 1", "[receipts]") {
  Installation in;
  SECTION("before any sweep") {
    auto r = in.find("old-visits", "30");
    SHOW(r);
    CHECK(r.exit_code == 1);
  }
  REQUIRE(in.run({"sweep", "--as-of", "2026-12-01"}).exit_code == 0);
  // Visit 199 (2025-12-17) is kept for a few more days, visit 9999 never
  // existed, bob's account closed days ago, claim C9999 never existed.
  for (auto [rule, key] : {std::pair{"old-visits", "199"}, std::pair{"old-visits", "9999"},
                           std::pair{"accounts", "bob"}, std::pair{"claims", "C9999"}}) {
    INFO(rule << " " << key);
    auto r = in.find(rule, key);
    SHOW(r);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::StartsWith("no entry: rule '" + std::string(rule) + "', key '" +
                                        std::string(key) + "' was never acted on"));
    auto j = in.find(rule, key, true);
    CHECK(j.exit_code == 1);
    CHECK(json::parse(j.out)["found"] == false);
    auto checked = in.check(json::parse(j.out), "empty.json");
    CHECK(checked.exit_code == 65);
  }
  // The same key under another rule is another record.
  CHECK(in.find("accounts", "30").exit_code == 1);
}

TEST_CASE("entries written before receipts are named, and the log still verifies", "[receipts]") {
  Installation in;
  REQUIRE(in.run({"sweep", "--as-of", "2026-12-01"}).exit_code == 0);
  // An older installation kept no leaves.
  fs::remove_all(in.state / "receipts");
  auto r = in.find("old-visits", "30");
  SHOW(r);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.out, Catch::Contains("cannot be searched, their leaves not being kept (seq 1, 2"));
  CHECK(in.run({"audit", "verify"}).exit_code == 0);
}
