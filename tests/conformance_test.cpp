// The sweep's guarantees (CONTRACT.md, "What a sweep guarantees", "PostgreSQL
// stores", "File stores", the report and the audit log), written once and run
// against every store kind: SQLite files, PostgreSQL schemas with the archive
// in the same database (one-transaction move), PostgreSQL with the archive in
// another database (copy first, then delete), and files stores (trees of
// files). See store_fixture.hpp.
//
// Each test is registered once per variant ("conformance: ... (sqlite)",
// "... (postgresql)", "... (postgresql-other-database)", "... (files)"),
// tagged [conformance] and [sqlite], [postgresql] or [files]. A guarantee
// every kind gives is stated through records (stores.put, stores.keys,
// stores.rule_yaml) and runs on all of them; what only tables have (where,
// hold columns, non-unique keys, anonymisation, a kill in the middle of a
// SQL move) is written in SQL and runs on the SQL kinds. Sweeps run
// in-process on a fake clock (run_sweep), or through the real binary where
// the exit code, the JSON report or a SIGKILL is what is tested.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store_fixture.hpp"
#include "sweep_support.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using namespace retentiond::test;
namespace fs = std::filesystem;
using Strings = std::set<std::string>;

namespace {

constexpr std::string_view kClaimsDdl =
    "CREATE TABLE claims (claim_id INTEGER PRIMARY KEY, member TEXT, paid_on DATE, held INTEGER)";

// Every column of `table` as text, '|'-separated, NULL as <null>: a row's
// content, as both kinds render it.
std::string row_text_sql(const std::vector<std::string>& columns, std::string_view table,
                         std::string_view where = "") {
  std::string expr;
  for (const auto& c : columns) {
    if (!expr.empty()) expr += " || '|' || ";
    expr += fmt::format("COALESCE(CAST({} AS TEXT), '<null>')", c);
  }
  return fmt::format("SELECT {} FROM {}{}{}", expr, table, where.empty() ? "" : " WHERE ", where);
}

const std::vector<std::string> kClaimColumns{"claim_id", "member", "paid_on", "held"};

Strings claim_rows(const TestStores& stores, const std::string& store,
                   std::string_view where = "") {
  return stores.query_set(store, row_text_sql(kClaimColumns, "claims", where));
}

Strings keys(const TestStores& stores, const std::string& store, std::string_view column,
             std::string_view table) {
  return stores.query_set(store, fmt::format("SELECT CAST({} AS TEXT) FROM {}", column, table));
}

// The records of rules that run on every kind: claims, with days.
const RecordSet kClaims{"claims", std::nullopt};

// The claims rule (on store health) with stages: archive after 3 years,
// delete after 13.
std::string staged_claims_rule(const TestStores& stores) {
  return fmt::format(R"(
  - name: claims
{}    stages:
      - {{ after: 3 years, action: archive, to: archive }}
      - {{ after: 13 years, action: delete }}
)",
                     stores.rule_yaml("health", kClaims));
}

// The claims rule with one action after `period`.
std::string claims_rule(const TestStores& stores, std::string_view period,
                        std::string_view action) {
  return fmt::format(R"(
  - name: claims
{}    keep_for: {}
    action: {}
)",
                     stores.rule_yaml("health", kClaims), period, action);
}

// The day `days` after `base` (YYYY-MM-DD), as YYYY-MM-DD.
std::string day_after(std::string_view base, int days) {
  return format_day(day(base) + date::days{days});
}

// The records of `all` whose key is in `wanted`.
std::map<std::string, std::string> only(const std::map<std::string, std::string>& all,
                                        const Strings& wanted) {
  std::map<std::string, std::string> out;
  for (const auto& [key, text] : all)
    if (wanted.count(key)) out.emplace(key, text);
  return out;
}

// The records of `set` in the live store and in the archive, each in one
// place only: a key in both fails the test.
std::map<std::string, std::string> live_and_archived(const TestStores& stores,
                                                     const RecordSet& set) {
  auto everywhere = stores.records("health", set);
  for (const auto& [key, text] : stores.records("archive", set)) {
    INFO("record " << key);
    CHECK(everywhere.emplace(key, text).second);
  }
  return everywhere;
}

std::int64_t audit_total(const fs::path& state, std::string_view rule, int stage,
                         std::string_view store) {
  std::int64_t total = 0;
  for (const auto& l : audit_lines(state)) {
    if (l.at("rule") == rule && l.at("stage") == stage && l.at("store") == store)
      total += l.at("affected").get<std::int64_t>();
  }
  return total;
}

void check_audit_verifies(const TestStores& stores) {
  auto verified = verify_audit_log(stores.state_dir());
  REQUIRE(verified.has_value());
  INFO(verified->message);
  CHECK(verified->ok);
  auto cli =
      run_retentiond(stores.dir(), {"--state-dir", stores.state_dir().string(), "audit", "verify"});
  INFO("audit verify: " << cli.out << cli.err);
  CHECK(cli.exit_code == 0);
}

// The real binary on the fixture's policy.
ProcessOutcome run_binary(const TestStores& stores, std::vector<std::string> command) {
  std::vector<std::string> args{"-c", stores.policy_file().string(), "--state-dir",
                                stores.state_dir().string()};
  args.insert(args.end(), command.begin(), command.end());
  return run_retentiond(stores.dir(), args);
}

nlohmann::json parse_report(const ProcessOutcome& run) {
  INFO("stdout: " << run.out << "\nstderr: " << run.err);
  nlohmann::json doc;
  REQUIRE_NOTHROW(doc = nlohmann::json::parse(run.out));
  return doc;
}

const nlohmann::json& json_entry(const nlohmann::json& report, std::string_view rule, int stage,
                                 std::string_view store) {
  for (const auto& e : report.at("rules")) {
    if (e.at("rule") == rule && e.at("stage") == stage && e.at("store") == store) return e;
  }
  FAIL("no report entry for rule " << rule << " stage " << stage << " on " << store);
  throw std::logic_error("unreachable");
}

}  // namespace

// ---------------------------------------------------------------------------
// 1. Selection and calendar boundaries.

CONFORMANCE_TEST(calendar_boundaries,
                 "a record is past its period from the day anchor + period in the policy's zone",
                 "[calendar]") {
  TestStores stores(variant);
  stores.add("health");
  const RecordSet monthly{"monthly", std::nullopt}, yearly{"yearly", std::nullopt},
      five_years{"five_years", std::nullopt};
  stores.put("health", monthly,
             {{"mar-29", "2025-03-29"},
              {"mar-30", "2025-03-30"},
              {"mar-31", "2025-03-31"},
              {"apr-01", "2025-04-01"}});
  stores.put("health", yearly,
             {{"feb-27", "2024-02-27"},
              {"feb-28", "2024-02-28"},
              {"leap-day", "2024-02-29"},
              {"mar-01", "2024-03-01"}});
  stores.put("health", five_years,
             {{"feb-27", "2020-02-27"},
              {"feb-28", "2020-02-28"},
              {"leap-day", "2020-02-29"},
              {"mar-01", "2020-03-01"}});
  std::string rules;
  for (auto [name, set, period] :
       {std::tuple{"monthly", monthly, "1 month"}, std::tuple{"yearly", yearly, "1 year"},
        std::tuple{"five-years", five_years, "5 years"}}) {
    rules += fmt::format(R"(
  - name: {}
{}    keep_for: {}
    action: delete
)",
                         name, stores.rule_yaml("health", set), period);
  }
  // Instants in UTC (a timestamp column ignores the Z and is read as UTC),
  // counted by their day in Paris (CEST, UTC+2, in May and June). The test
  // server's own zone is America/New_York: 03:30 UTC on 1 June is still 31
  // May there.
  const auto anchors = stores.instant_anchors();
  std::vector<RecordSet> visits;
  for (std::size_t i = 0; i < anchors.size(); ++i) {
    visits.push_back({fmt::format("visits_{}", i), anchors[i]});
    stores.put("health", visits[i],
               {{"paris-may-31-2359", "2024-05-31T21:59:59Z"},
                {"paris-jun-01-0000", "2024-05-31T22:00:00Z"},
                {"utc-may-31-paris-jun-01", "2024-05-31 23:30:00Z"},
                {"new-york-may-31-paris-jun-01", "2024-06-01T03:30:00Z"},
                {"paris-jun-01-2359", "2024-06-01T21:59:59Z"},
                {"paris-jun-02-0000", "2024-06-01 22:00:00Z"}});
    rules += fmt::format(R"(
  - name: visits-{}
{}    keep_for: 1 year
    action: delete
)",
                         i, stores.rule_yaml("health", visits[i]));
  }
  auto policy = stores.policy(rules);
  Sweep sweep(stores.dir());
  auto tags = [&](const RecordSet& set) { return stores.keys("health", set); };
  // Sweeps `rule` as of `as_of`; its report entry.
  auto sweep_rule = [&](const std::string& rule, std::string_view as_of) {
    auto done = sweep.run(*policy, as_of, false, {rule});
    CHECK(done.code == ExitCode::ok);
    auto e = entry(done.report, rule);
    CHECK(done.report.to_json()["rules"][0]["cutoff"] == e.cutoff);
    CHECK(e.counts.affected == e.counts.matched);
    return e;
  };

  SECTION("1 month: 31 March runs out on 30 April, the last day of April") {
    auto day_before = sweep_rule("monthly", "2025-04-29");
    CHECK(day_before.cutoff == "2025-03-29");
    CHECK(day_before.counts.matched == 1);
    CHECK(tags(monthly) == Strings{"mar-30", "mar-31", "apr-01"});
    auto on_the_day = sweep_rule("monthly", "2025-04-30");
    CHECK(on_the_day.cutoff == "2025-03-31");
    CHECK(on_the_day.counts.matched == 2);
    CHECK(tags(monthly) == Strings{"apr-01"});
  }
  SECTION("1 year: 29 February runs out on 28 February") {
    auto day_before = sweep_rule("yearly", "2025-02-27");
    CHECK(day_before.cutoff == "2024-02-27");
    CHECK(day_before.counts.matched == 1);
    CHECK(tags(yearly) == Strings{"feb-28", "leap-day", "mar-01"});
    auto on_the_day = sweep_rule("yearly", "2025-02-28");
    CHECK(on_the_day.cutoff == "2024-02-29");
    CHECK(on_the_day.counts.matched == 2);
    CHECK(tags(yearly) == Strings{"mar-01"});
  }
  SECTION("5 years: 29 February 2020 runs out on 28 February 2025") {
    auto day_before = sweep_rule("five-years", "2025-02-27");
    CHECK(day_before.cutoff == "2020-02-27");
    CHECK(day_before.counts.matched == 1);
    CHECK(tags(five_years) == Strings{"feb-28", "leap-day", "mar-01"});
    auto on_the_day = sweep_rule("five-years", "2025-02-28");
    CHECK(on_the_day.cutoff == "2020-02-29");
    CHECK(on_the_day.counts.matched == 2);
    CHECK(tags(five_years) == Strings{"mar-01"});
  }
  SECTION("instants count by their local day in Paris") {
    for (std::size_t i = 0; i < anchors.size(); ++i) {
      INFO("anchor of kind " << anchors[i].label);
      std::string rule = fmt::format("visits-{}", i);
      auto day_before = sweep_rule(rule, "2025-05-31");
      CHECK(day_before.cutoff == "2024-05-31");
      CHECK(day_before.counts.matched == 1);
      CHECK(tags(visits[i]) == Strings{"paris-jun-01-0000", "utc-may-31-paris-jun-01",
                                       "new-york-may-31-paris-jun-01", "paris-jun-01-2359",
                                       "paris-jun-02-0000"});
      auto on_the_day = sweep_rule(rule, "2025-06-01");
      CHECK(on_the_day.cutoff == "2024-06-01");
      CHECK(on_the_day.counts.matched == 4);
      CHECK(tags(visits[i]) == Strings{"paris-jun-02-0000"});
    }
  }
}

SQL_CONFORMANCE_TEST(selection, "where selects the rows a rule covers, by one value or a list",
                     "[where]") {
  TestStores stores(variant);
  stores.add("health");
  stores.exec("health", R"(
    CREATE TABLE affiliations (id INTEGER PRIMARY KEY, tag TEXT, regime TEXT, department TEXT,
                               kind INTEGER, closed_on DATE);
    INSERT INTO affiliations VALUES (1, 'amo', 'AMO', '75', 1, '2000-01-01'),
      (2, 'rc', 'RC', '13', 2, '2000-01-01'), (3, 'msa', 'MSA', '75', 2, '2000-01-01'),
      (4, 'none', NULL, '069', 3, '2000-01-01'), (5, 'amo-recent', 'AMO', '75', 1, '2026-01-01'),
      (6, 'rc-undated', 'RC', '13', 2, NULL)
  )");
  auto sweep_where = [&](std::string_view where) {
    auto policy = stores.policy(fmt::format(R"(
  - name: affiliations
    store: health
    table: affiliations
    key: id
    anchor: closed_on
    where: {}
    keep_for: 5 years
    action: delete
)",
                                            where));
    Sweep sweep(stores.dir());
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK_FALSE(entry(done.report, "affiliations").error.has_value());
    return entry(done.report, "affiliations").counts;
  };
  auto tags = [&] { return stores.query_set("health", "SELECT tag FROM affiliations"); };
  const Strings all{"amo", "rc", "msa", "none", "amo-recent", "rc-undated"};
  auto all_but = [&](const Strings& gone) {
    Strings out;
    for (const auto& t : all)
      if (!gone.count(t)) out.insert(t);
    return out;
  };

  SECTION("one value") {
    auto counts = sweep_where("{ regime: AMO }");
    CHECK(counts.affected == 1);
    CHECK(counts.undated == 0);  // the undated row is not AMO
    CHECK(tags() == all_but({"amo"}));
  }
  SECTION("a list") {
    auto counts = sweep_where("{ regime: [MSA, RC] }");
    CHECK(counts.affected == 2);
    CHECK(counts.undated == 1);
    CHECK(tags() == all_but({"rc", "msa"}));
  }
  SECTION("two columns, null in a list") {
    auto counts = sweep_where("{ kind: 3, regime: [null, AMO] }");
    CHECK(counts.affected == 1);
    CHECK(tags() == all_but({"none"}));
  }
  SECTION("a number written plainly, on a text column") {
    auto counts = sweep_where("{ department: 75 }");
    CHECK(counts.affected == 2);
    CHECK(tags() == all_but({"amo", "msa"}));
  }
  SECTION("a quoted number, on an integer column") {
    auto counts = sweep_where(R"({ kind: "2" })");
    CHECK(counts.affected == 2);
    CHECK(counts.undated == 1);
    CHECK(tags() == all_but({"rc", "msa"}));
  }
}

// ---------------------------------------------------------------------------
// 2. Holds.

CONFORMANCE_TEST(holds, "held records are counted as held and never touched, until the hold goes",
                 "[holds]") {
  TestStores stores(variant);
  stores.add("health");
  stores.put("health", kClaims,
             {{"c1", "2000-01-01", true},
              {"c2", "2000-01-01", true},
              {"c3", "2000-01-01"},
              {"c4", "2000-01-01"},
              {"c5", "2099-01-01", true},
              {"c6", std::nullopt, true}});
  auto policy = stores.policy(claims_rule(stores, "5 years", "delete"));
  const auto kept_before = only(stores.records("health", kClaims), {"c1", "c2", "c5", "c6"});
  Sweep sweep(stores.dir());

  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "claims").counts.held == 2);
  CHECK(entry(plan.report, "claims").counts.matched == 2);
  CHECK(entry(plan.report, "claims").counts.undated == 1);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "claims").counts.held == 2);
  CHECK(entry(done.report, "claims").counts.affected == 2);
  CHECK(stores.records("health", kClaims) == kept_before);
  CHECK(audit_affected_total(stores.state_dir()) == 2);

  // The hold on c2 goes: c2 goes at the next sweep.
  stores.set_held("health", kClaims, "c2", false);
  auto after = sweep.run(*policy, "2026-06-15");
  CHECK(after.code == ExitCode::ok);
  CHECK(entry(after.report, "claims").counts.held == 1);
  CHECK(entry(after.report, "claims").counts.affected == 1);
  CHECK(stores.keys("health", kClaims) == Strings{"c1", "c5", "c6"});
  CHECK(audit_affected_total(stores.state_dir()) == 3);
}

SQL_CONFORMANCE_TEST(holds_by_column, "rows held by a column are counted as held and never touched",
                     "[holds]") {
  TestStores stores(variant);
  stores.add("health");
  Sweep sweep(stores.dir());

  SECTION("held by a column while it is truthy") {
    stores.exec("health", std::string(kClaimsDdl) + R"(;
      INSERT INTO claims VALUES (1, 'M1', '2000-01-01', 1), (2, 'M2', '2000-01-01', 2),
        (3, 'M3', '2000-01-01', 0), (4, 'M4', '2000-01-01', NULL),
        (5, 'M5', '2099-01-01', 1), (6, 'M6', NULL, 1)
    )");
    auto policy = stores.policy(R"(
  - name: claims
    store: health
    table: claims
    key: claim_id
    anchor: paid_on
    hold: { column: held }
    keep_for: 5 years
    action: delete
)");
    // 1 and 2 held (any non-zero number), 3 and 4 not (0, NULL); 5 not
    // due, 6 undated.
    auto kept_before = claim_rows(stores, "health", "claim_id IN (1, 2, 5, 6)");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(entry(done.report, "claims").counts.held == 2);
    CHECK(entry(done.report, "claims").counts.affected == 2);
    CHECK(claim_rows(stores, "health") == kept_before);
  }

  SECTION("held by a text column unless it says no, the same on every SQL kind") {
    stores.exec("health", R"(
      CREATE TABLE members (id INTEGER PRIMARY KEY, litigation TEXT, closed_on DATE);
      INSERT INTO members VALUES (1, 'yes', '2000-01-01'), (2, 'true', '2000-01-01'),
        (3, 'Y', '2000-01-01'), (4, 'pending', '2000-01-01'), (5, '1', '2000-01-01'),
        (6, '0.0', '2000-01-01'), (10, 'no', '2000-01-01'), (11, ' No ', '2000-01-01'),
        (12, 'OFF', '2000-01-01'), (13, 'f', '2000-01-01'), (14, 'false', '2000-01-01'),
        (15, '0', '2000-01-01'), (16, '', '2000-01-01'), (17, NULL, '2000-01-01'),
        (18, 'n', '2000-01-01')
    )");
    auto policy = stores.policy(R"(
  - name: members
    store: health
    table: members
    key: id
    anchor: closed_on
    hold: { column: litigation }
    keep_for: 5 years
    action: delete
)");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(entry(done.report, "members").counts.held == 6);
    CHECK(entry(done.report, "members").counts.affected == 9);
    CHECK(keys(stores, "health", "id", "members") == Strings{"1", "2", "3", "4", "5", "6"});
  }
}

CONFORMANCE_ARCHIVE_TEST(holds_in_archive,
                         "records in the archive are held by the live store's holds",
                         "[holds][archive]") {
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  stores.put("health", kClaims,
             {{"c10", "2015-01-01", true},
              {"c11", "2015-01-01"},
              {"c12", "2000-01-01", true},
              {"c13", "2015-03-01"},
              {"c14", "2000-01-01"}});
  auto policy = stores.policy(staged_claims_rule(stores));
  const auto original = stores.records("health", kClaims);
  Sweep sweep(stores.dir());

  // At 2026-06-15: archive (2013-06-15, 2023-06-15], delete up to 2013-06-15.
  auto first = sweep.run(*policy, "2026-06-15");
  CHECK(first.code == ExitCode::ok);
  CHECK(entry(first.report, "claims", 1, "health").counts.held == 1);      // c10
  CHECK(entry(first.report, "claims", 1, "health").counts.affected == 2);  // c11, c13
  CHECK(entry(first.report, "claims", 2, "health").counts.held == 1);      // c12
  CHECK(entry(first.report, "claims", 2, "health").counts.affected == 1);  // c14
  CHECK(stores.keys("health", kClaims) == Strings{"c10", "c12"});
  CHECK(stores.keys("archive", kClaims) == Strings{"c11", "c13"});

  // A hold on an archived claim, in the live store.
  stores.set_held("health", kClaims, "c11", true);
  sweep.clock.set(noon_utc("2030-01-01"));
  auto later = sweep.run(*policy, "2030-01-01");
  CHECK(later.code == ExitCode::ok);
  const auto& in_archive = entry(later.report, "claims", 2, "archive");
  CHECK(in_archive.cutoff == "2017-01-01");
  CHECK(in_archive.counts.held == 1);                                  // c11
  CHECK(in_archive.counts.matched == 1);                               // c13
  CHECK(in_archive.counts.affected == 1);                              // c13
  CHECK(entry(later.report, "claims", 2, "health").counts.held == 2);  // c10, c12
  CHECK(entry(later.report, "claims", 2, "health").counts.affected == 0);
  CHECK(stores.keys("archive", kClaims) == Strings{"c11"});
  // Unchanged, wherever they are.
  CHECK(live_and_archived(stores, kClaims) == only(original, {"c10", "c11", "c12"}));
}

// ---------------------------------------------------------------------------
// 3. Undated records.

CONFORMANCE_ARCHIVE_TEST(undated, "undated records are counted and never touched",
                         "[undated][archive]") {
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  std::vector<Record> records{{"c1", "2015-01-01"}, {"c2", "2000-01-01"}, {"c3", "2099-01-01"}};
  Strings undated_keys;
  for (const auto& anchor : stores.undated_anchors()) {
    records.push_back({fmt::format("u{}", undated_keys.size()), anchor});
    undated_keys.insert(records.back().key);
  }
  stores.put("health", kClaims, records);
  const auto n = static_cast<std::int64_t>(undated_keys.size());
  auto policy = stores.policy(staged_claims_rule(stores));
  const auto undated_records = only(stores.records("health", kClaims), undated_keys);
  REQUIRE(undated_records.size() == undated_keys.size());
  Sweep sweep(stores.dir());

  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "claims", 1, "health").counts.undated == n);
  CHECK(entry(plan.report, "claims", 1, "health").counts.matched == 1);
  CHECK(entry(plan.report, "claims", 2, "health").counts.undated == 0);  // counted once a rule
  CHECK(entry(plan.report, "claims", 2, "health").counts.matched == 1);

  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "claims", 1, "health").counts.undated == n);
  CHECK(entry(done.report, "claims", 1, "health").counts.affected == 1);
  CHECK(entry(done.report, "claims", 2, "health").counts.affected == 1);
  CHECK(done.report.totals().undated == n);
  CHECK(stores.keys("archive", kClaims) == Strings{"c1"});
  auto live = stores.records("health", kClaims);
  CHECK(only(live, undated_keys) == undated_records);
  CHECK(live.size() == undated_keys.size() + 1);  // and c3
}

SQL_CONFORMANCE_TEST(undated_not_anonymised, "undated rows are counted and never anonymised",
                     "[undated][anonymize]") {
  TestStores stores(variant);
  stores.add("health");
  const auto undated = stores.undated_values();
  stores.exec("health", R"(
    CREATE TABLE notes (id INTEGER PRIMARY KEY, note TEXT, ended_on DATE);
    INSERT INTO notes VALUES (1, 'dated', '2000-01-01')
  )");
  for (std::size_t i = 0; i < undated.size(); ++i) {
    stores.exec("health",
                fmt::format("INSERT INTO notes VALUES ({}, 'undated', {})", 100 + i, undated[i]));
  }
  const auto n = static_cast<std::int64_t>(undated.size());
  auto policy = stores.policy(R"(
  - name: notes
    store: health
    table: notes
    key: id
    anchor: ended_on
    keep_for: 1 year
    action: anonymize
    anonymize: { note: "null" }
)");
  auto undated_notes =
      stores.query_set("health", row_text_sql({"id", "note", "ended_on"}, "notes", "id >= 100"));
  Sweep sweep(stores.dir());

  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(entry(plan.report, "notes").counts.undated == n);
  CHECK(entry(plan.report, "notes").counts.matched == 1);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "notes").counts.undated == n);
  CHECK(entry(done.report, "notes").counts.affected == 1);
  CHECK(stores.query_set("health", row_text_sql({"id", "note", "ended_on"}, "notes",
                                                "id >= 100")) == undated_notes);
  CHECK(stores.query_set("health", "SELECT COALESCE(note, '<null>') FROM notes WHERE id = 1") ==
        Strings{"<null>"});
}

// ---------------------------------------------------------------------------
// 4. Stages.

CONFORMANCE_ARCHIVE_TEST(stages, "the latest stage a record has reached wins",
                         "[stages][archive]") {
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  // At 2026-06-15 the archive stage's cutoff is 2023-06-15, the delete
  // stage's 2013-06-15.
  stores.put("health", kClaims,
             {{"c1", "2010-01-01"},
              {"c2", "2013-06-15"},
              {"c3", "2013-06-16"},
              {"c4", "2023-06-15"},
              {"c5", "2023-06-16"},
              {"c6", std::nullopt}});
  auto policy = stores.policy(staged_claims_rule(stores));
  const auto before = only(stores.records("health", kClaims), {"c3", "c4"});
  Sweep sweep(stores.dir());

  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(stores.keys("health", kClaims) == Strings{"c5", "c6"});
  CHECK(stores.keys("archive", kClaims) == Strings{"c3", "c4"});
  CHECK(stores.records("archive", kClaims) == before);
  if (variant.kind != StoreKind::files) {
    // The archive's table was made by the sweep, with the live table's columns.
    CHECK(stores.columns("archive", "claims") == stores.columns("health", "claims"));
  }
  // c1 and c2, past 13 years, went straight to the delete stage.
  const auto& archived = entry(done.report, "claims", 1, "health");
  CHECK(archived.action == "archive");
  CHECK(archived.cutoff == "2023-06-15");
  CHECK(archived.counts.affected == 2);
  CHECK(archived.counts.undated == 1);
  const auto& deleted = entry(done.report, "claims", 2, "health");
  CHECK(deleted.action == "delete");
  CHECK(deleted.cutoff == "2013-06-15");
  CHECK(deleted.counts.affected == 2);
  CHECK(entry(done.report, "claims", 2, "archive").counts.affected == 0);
  CHECK(audit_total(stores.state_dir(), "claims", 1, "health") == 2);
  CHECK(audit_total(stores.state_dir(), "claims", 2, "health") == 2);
  CHECK(audit_total(stores.state_dir(), "claims", 2, "archive") == 0);

  // Ten years later c3 and c4 are past 13 years, in the archive; c5 is past 3.
  sweep.clock.set(noon_utc("2036-06-15"));
  auto later = sweep.run(*policy, "2036-06-15");
  CHECK(later.code == ExitCode::ok);
  CHECK(entry(later.report, "claims", 2, "archive").cutoff == "2023-06-15");
  CHECK(entry(later.report, "claims", 2, "archive").counts.affected == 2);
  CHECK(entry(later.report, "claims", 1, "health").counts.affected == 1);
  CHECK(stores.keys("archive", kClaims) == Strings{"c5"});
  CHECK(stores.keys("health", kClaims) == Strings{"c6"});
  CHECK(audit_total(stores.state_dir(), "claims", 2, "archive") == 2);
}

// ---------------------------------------------------------------------------
// 5. Idempotence; 10. dry runs.

namespace {

// A live store and its archive, the staged claims rule: c2 and c3 due for
// the archive, c1 for deletion, c6 held, c5 undated, c4 recent.
std::string make_staged_claims(TestStores& stores) {
  stores.add("health");
  stores.add("archive", Role::archive);
  stores.put("health", kClaims,
             {{"c1", "2001-01-01"},
              {"c2", "2015-01-01"},
              {"c3", "2020-01-01"},
              {"c4", "2026-01-01"},
              {"c5", std::nullopt},
              {"c6", "2015-01-01", true}});
  return staged_claims_rule(stores);
}

}  // namespace

CONFORMANCE_ARCHIVE_TEST(idempotent,
                         "sweeping twice at the same as-of changes nothing the second time",
                         "[idempotence][archive]") {
  TestStores stores(variant);
  auto policy = stores.policy(make_staged_claims(stores));
  Sweep sweep(stores.dir());
  auto first = sweep.run(*policy, "2026-06-15");
  REQUIRE(first.code == ExitCode::ok);
  CHECK(first.report.totals().affected == 3);  // c2 and c3 archived, c1 deleted
  CHECK(entry(first.report, "claims", 1, "health").counts.held == 1);
  auto live = stores.dump("health");
  auto archive = stores.dump("archive");
  auto log = read_file(audit_log_path(stores.state_dir()));

  sweep.clock.advance(std::chrono::hours{3});
  auto second = sweep.run(*policy, "2026-06-15");
  CHECK(second.code == ExitCode::ok);
  CHECK(second.report.totals().affected == 0);
  for (const auto& e : second.report.entries) {
    INFO(e.rule << " stage " << e.stage << " on " << e.store);
    CHECK(e.counts.affected == 0);
    CHECK(e.counts.matched == 0);
  }
  CHECK(entry(second.report, "claims", 1, "health").counts.held == 1);
  CHECK(stores.dump("health") == live);
  CHECK(stores.dump("archive") == archive);
  CHECK(read_file(audit_log_path(stores.state_dir())) == log);
}

CONFORMANCE_ARCHIVE_TEST(dry_run, "a dry run writes nothing and plans what the sweep then does",
                         "[dry-run][archive]") {
  TestStores stores(variant);
  auto policy = stores.policy(make_staged_claims(stores));
  Sweep sweep(stores.dir());
  auto live = stores.dump("health");
  auto archive = stores.dump("archive");

  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(plan.code == ExitCode::ok);
  CHECK(plan.report.dry_run);
  CHECK(plan.report.totals().affected == 0);
  CHECK(plan.report.totals().matched == 3);
  CHECK(plan.report.totals().held == 1);
  CHECK(plan.report.totals().undated == 1);
  // The real binary, both ways of asking.
  for (std::vector<std::string> command :
       {std::vector<std::string>{"plan", "--as-of", "2026-06-15", "--format", "json"},
        std::vector<std::string>{"sweep", "--dry-run", "--as-of", "2026-06-15", "--format",
                                 "json"}}) {
    INFO(command[0] << " " << command[1]);
    auto run = run_binary(stores, command);
    CHECK(run.exit_code == 0);
    auto report = parse_report(run);
    CHECK(report.at("dry_run") == true);
    CHECK(report.at("totals").at("matched") == 3);
    CHECK(report.at("totals").at("affected") == 0);
  }
  // Not a row, a file, nor a file's access time changed; no archive made.
  CHECK(stores.dump("health") == live);
  CHECK(stores.dump("archive") == archive);
  CHECK(stores.keys("archive", kClaims).empty());
  CHECK_FALSE(fs::exists(audit_log_path(stores.state_dir())));

  auto real = sweep.run(*policy, "2026-06-15");
  CHECK(real.code == ExitCode::ok);
  REQUIRE(real.report.entries.size() == plan.report.entries.size());
  for (std::size_t i = 0; i < plan.report.entries.size(); ++i) {
    const auto& p = plan.report.entries[i];
    const auto& r = real.report.entries[i];
    INFO(p.rule << " stage " << p.stage << " on " << p.store);
    CHECK(r.rule == p.rule);
    CHECK(r.stage == p.stage);
    CHECK(r.store == p.store);
    CHECK(r.cutoff == p.cutoff);
    CHECK(r.counts.affected == p.counts.matched);
    CHECK(r.counts.matched == p.counts.matched);
    CHECK(r.counts.held == p.counts.held);
    CHECK(r.counts.undated == p.counts.undated);
  }
  CHECK(real.report.totals().affected == 3);
}

// ---------------------------------------------------------------------------
// 6. Archiving loses nothing.

CONFORMANCE_ARCHIVE_TEST(archive_without_loss,
                         "archiving loses nothing: a resumed move, and conflicts", "[archive]") {
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  stores.put(
      "health", kClaims,
      {{"c1", "2020-01-01"}, {"c2", "2020-01-02"}, {"c3", "2020-01-03"}, {"c4", "2026-01-01"}});
  auto policy = stores.policy(claims_rule(stores, "3 years", "archive\n    to: archive"));
  const auto original = stores.records("health", kClaims);
  Sweep sweep(stores.dir());
  auto in = [&](const std::string& store) { return stores.keys(store, kClaims); };

  SECTION("the same record already in the archive is the end of an interrupted move") {
    stores.put("archive", kClaims, {{"c1", "2020-01-01"}});
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(in("health") == Strings{"c4"});
    CHECK(in("archive") == Strings{"c1", "c2", "c3"});
    CHECK(entry(done.report, "claims").counts.affected == 3);
    CHECK(entry(done.report, "claims").counts.conflicts == 0);
    CHECK(audit_affected_total(stores.state_dir()) == 3);
    CHECK(live_and_archived(stores, kClaims) == original);
  }

  SECTION("another record with the same key stays live and is a conflict (65)") {
    stores.put("archive", kClaims, {{"c2", "2020-01-02", false, "another claim c2"}});
    const auto archived_2 = stores.records("archive", kClaims);
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::data_error);
    CHECK(entry(done.report, "claims").counts.conflicts == 1);
    CHECK(entry(done.report, "claims").counts.affected == 2);
    CHECK(done.report.to_json()["totals"]["conflicts"] == 1);
    CHECK(only(stores.records("health", kClaims), {"c2"}) == only(original, {"c2"}));
    CHECK(only(stores.records("archive", kClaims), {"c2"}) == archived_2);
    CHECK(in("archive") == Strings{"c1", "c2", "c3"});
    CHECK(in("health") == Strings{"c2", "c4"});
    CHECK(audit_affected_total(stores.state_dir()) == 2);

    // The conflict stays until a person settles it; the binary says so with 65.
    auto again = run_binary(stores, {"sweep", "--as-of", "2026-06-15", "--format", "json"});
    CHECK(again.exit_code == 65);
    auto report = parse_report(again);
    CHECK(report.at("totals").at("conflicts") == 1);
    CHECK(report.at("totals").at("affected") == 0);
    CHECK(json_entry(report, "claims", 1, "health").at("conflicts") == 1);
    CHECK(in("health") == Strings{"c2", "c4"});
    CHECK(only(stores.records("health", kClaims), {"c2"}) == only(original, {"c2"}));
    CHECK(audit_affected_total(stores.state_dir()) == 2);
  }

  SECTION("the same, in an archive the sweep made") {
    REQUIRE(sweep.run(*policy, "2026-06-15").code == ExitCode::ok);
    REQUIRE(in("archive") == Strings{"c1", "c2", "c3"});
    // c1 is back live as it was (the crash window of a copy-first move); c2
    // is back with other content.
    stores.put("health", kClaims, {{"c1", "2020-01-01"}, {"c2", "2020-01-02", false, "c2 again"}});
    const auto c2_again = only(stores.records("health", kClaims), {"c2"});
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::data_error);
    CHECK(entry(done.report, "claims").counts.affected == 1);
    CHECK(entry(done.report, "claims").counts.conflicts == 1);
    CHECK(in("health") == Strings{"c2", "c4"});
    CHECK(in("archive") == Strings{"c1", "c2", "c3"});
    CHECK(only(stores.records("health", kClaims), {"c2"}) == c2_again);
    CHECK(stores.records("archive", kClaims) == only(original, {"c1", "c2", "c3"}));
    CHECK(audit_affected_total(stores.state_dir()) == 4);
  }
}

// ---------------------------------------------------------------------------
// 7. kill -9.

SQL_CONFORMANCE_ARCHIVE_TEST(killed_sweeps,
                             "a sweep killed with SIGKILL at random moments loses nothing",
                             "[crash][archive]") {
  constexpr int kRows = 50'000;
  constexpr int kBatch = 200;
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  const std::string fill = fmt::format(R"(
    WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {})
      INSERT INTO claims (claim_id, member, paid_on, held) SELECT i, 'M' || i, {}, NULL FROM n
  )",
                                       kRows, stores.day_plus_sql("2001-01-01", "i / 10"));
  stores.exec("health", fmt::format(R"({};
    CREATE INDEX claims_paid_on ON claims (paid_on);
    {})",
                                    kClaimsDdl, fill));
  stores.analyze("health");
  stores.policy(R"(
  - name: claims
    store: health
    table: claims
    key: claim_id
    anchor: paid_on
    keep_for: 3 years
    action: archive
    to: archive
)",
                kBatch);
  const auto original = claim_rows(stores, "health");
  REQUIRE(original.size() == kRows);
  const std::vector<std::string> sweep_args{"-c",          stores.policy_file().string(),
                                            "--state-dir", stores.state_dir().string(),
                                            "sweep",       "--as-of",
                                            "2024-01-01"};
  const std::string sql = row_text_sql(kClaimColumns, "claims");

  // Every row is in the live store or the archive (or both, between a
  // copy-first move's two commits), unchanged, and at most once in each.
  auto check_rows = [&] {
    auto live = stores.query_column("health", sql);
    auto archived = stores.table_exists("archive", "claims") ? stores.query_column("archive", sql)
                                                             : std::vector<std::string>{};
    Strings live_set(live.begin(), live.end()), archive_set(archived.begin(), archived.end());
    CHECK(live_set.size() == live.size());
    CHECK(archive_set.size() == archived.size());  // none twice in the archive
    Strings everywhere = live_set;
    everywhere.insert(archive_set.begin(), archive_set.end());
    CHECK(everywhere == original);  // none lost, none changed
    return std::pair{live.size(), archived.size()};
  };

  std::uint64_t seed = std::random_device{}();
  if (const char* env = std::getenv("RETENTIOND_CRASH_SEED"); env && *env)
    seed = std::strtoull(env, nullptr, 10);
  INFO("seed " << seed << " (RETENTIOND_CRASH_SEED replays it)");
  std::mt19937_64 random(seed);
  int max_delay_ms = 150;
  int kills_mid_sweep = 0;
  for (int i = 0; i < 40 && kills_mid_sweep < 5; ++i) {
    INFO("kill " << i + 1 << ", at most " << max_delay_ms << " ms after the start");
    auto [live_before, archive_before] = check_rows();
    if (live_before == 0) {
      // A sweep ran to its end before its kill came: start again from the
      // same rows and a fresh state directory (its outbox is settled).
      stores.exec("archive", "DELETE FROM claims");
      stores.exec("health", fill);
      stores.analyze("health");
      std::filesystem::remove_all(stores.state_dir());
      std::tie(live_before, archive_before) = check_rows();
    }
    pid_t child =
        spawn_retentiond(sweep_args, stores.dir() / "sweep.stdout", stores.dir() / "sweep.stderr");
    std::this_thread::sleep_for(
        std::chrono::milliseconds{std::uniform_int_distribution<int>(0, max_delay_ms)(random)});
    int status = 0;
    bool finished = ::waitpid(child, &status, WNOHANG) == child;
    if (!finished) {
      REQUIRE(::kill(child, SIGKILL) == 0);
      REQUIRE(::waitpid(child, &status, 0) == child);
    }
    if (WIFEXITED(status)) {
      // 75: the killed sweep's session still held the rule's claim.
      INFO(read_file(stores.dir() / "sweep.stderr"));
      CHECK((WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 75));
    }
    auto [live_rows, archive_rows] = check_rows();
    if (finished || live_rows == 0) {
      max_delay_ms = std::max(5, max_delay_ms * 2 / 3);
    } else if (live_rows == live_before && archive_rows == archive_before) {
      max_delay_ms = std::min(5000, max_delay_ms * 3 / 2);
    } else {
      ++kills_mid_sweep;
    }
  }
  std::cout << "conformance kill -9 (" << variant.name() << "): " << kills_mid_sweep
            << " kills mid-sweep, seed " << seed << "\n";
  CHECK(kills_mid_sweep >= 3);

  // The next sweep finishes the move (a killed session may hold its claim a
  // moment longer: 75, try again).
  ProcessOutcome last;
  for (int attempt = 0; attempt < 20; ++attempt) {
    last = run_retentiond(stores.dir(), sweep_args);
    if (last.exit_code != 75) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  INFO("final sweep: " << last.err);
  REQUIRE(last.exit_code == 0);
  auto [live_rows, archive_rows] = check_rows();
  CHECK(live_rows == 0);
  CHECK(archive_rows == static_cast<std::size_t>(kRows));
  CHECK(claim_rows(stores, "archive") == original);
  // The log accounts for every row that left the live store, once.
  CHECK(audit_affected_total(stores.state_dir()) == kRows);
  for (const auto& line : audit_lines(stores.state_dir())) {
    CHECK(line.at("action") == "archive");
    CHECK(line.at("affected").get<int>() <= kBatch);
  }
  check_audit_verifies(stores);
}

// ---------------------------------------------------------------------------
// 8. Anonymisation.

SQL_CONFORMANCE_TEST(anonymise,
                     "anonymisation methods, the mark, a dry run, and no second anonymisation",
                     "[anonymize]") {
  TestStores stores(variant);
  stores.add("health");
  stores.exec("health", R"(
    CREATE TABLE accounts (id INTEGER PRIMARY KEY, member_number TEXT, email TEXT, note TEXT,
                           birth TEXT, joined TEXT, city TEXT, born_on DATE, seen_on DATE,
                           ended_on DATE, coded_at TEXT);
    INSERT INTO accounts VALUES
      (1, '100000007919', 'a@example.org', 'call back', '1980-05-17', '2011-09-03 10:00:00',
       'Marseille', '1980-05-17', '2019-11-23', '2020-01-01', NULL),
      (2, '100000015838', 'b@example.org', 'vip', '1990-01-02', '2012-02-03', 'Lyon',
       '1990-01-02', '2026-01-05', '2026-06-01', NULL),
      (3, NULL, NULL, NULL, NULL, NULL, 'Ly', NULL, NULL, '2025-12-15', NULL);
    CREATE TABLE visits (id INTEGER PRIMARY KEY, ip TEXT, agent TEXT, note TEXT, code TEXT,
                         day TEXT, at DATE);
    INSERT INTO visits VALUES
      (1, '192.0.2.1', 'Mozilla/5.0 (X11)', 'n1', 'c1', '2020-01-01', '2020-01-01'),
      (2, '192.0.2.2', 'curl', 'n2', 'c2', '2020-01-02', '2020-01-02'),
      (3, '192.0.2.3', 'Mozilla/5.0', 'n3', 'c3', '2026-06-01', '2026-06-01')
  )");
  auto policy = stores.policy(R"(
  - name: accounts
    store: health
    table: accounts
    key: id
    anchor: ended_on
    keep_for: 6 months
    action: anonymize
    anonymize:
      member_number: hmac
      email: "null"
      note: { value: REDACTED }
      birth: year
      joined: month
      city: { truncate: 3 }
      born_on: year
      seen_on: month
      mark: coded_at
  - name: visits
    store: health
    table: visits
    key: id
    anchor: at
    keep_for: 13 months
    action: anonymize
    anonymize: { ip: "null", agent: { truncate: 7 }, note: { value: gone }, code: { value: 0 },
                 day: month }
)");
  auto account = [&](int id) {
    return stores
        .query_column("health", row_text_sql({"member_number", "email", "note", "birth", "joined",
                                              "city", "born_on", "seen_on"},
                                             "accounts", fmt::format("id = {}", id)))
        .at(0);
  };
  auto visits = [&] {
    return stores.query_column(
        "health",
        row_text_sql({"ip", "agent", "note", "code", "day", "at"}, "visits") + " ORDER BY id");
  };
  const auto account_2 = account(2);
  Sweep sweep(stores.dir());
  // A dry run plans the four rows and writes none.
  const auto untouched = stores.dump("health");
  auto plan = sweep.run(*policy, "2026-06-15", true);
  CHECK(plan.report.totals().matched == 4);
  CHECK(plan.report.totals().affected == 0);
  CHECK(stores.dump("health") == untouched);
  auto done = sweep.run(*policy, "2026-06-15");
  CHECK(done.code == ExitCode::ok);
  CHECK(entry(done.report, "accounts").counts.affected == 2);
  CHECK(entry(done.report, "visits").counts.affected == 2);
  // The coded identifier: HMAC-SHA256 of the value's text under the key
  // file's bytes, the same on every kind of store.
  const std::string coded = hmac_sha256_hex(stores.hmac_key(), "100000007919");
  CHECK(coded.size() == 64);
  CHECK(account(1) == fmt::format("{}|<null>|REDACTED|1980|2011-09|Mar|{}|{}", coded,
                                  stores.year_kept("1980-05-17"), stores.month_kept("2019-11-23")));
  CHECK(account(3) == "<null>|<null>|REDACTED|<null>|<null>|Ly|<null>|<null>");
  CHECK(account(2) == account_2);  // not yet past its period
  auto marks = stores.query_column("health",
                                   "SELECT COALESCE(coded_at, '<null>') FROM accounts ORDER BY id");
  CHECK(marks ==
        std::vector<std::string>{"2026-06-15T12:00:00.000Z", "<null>", "2026-06-15T12:00:00.000Z"});
  CHECK(visits() == std::vector<std::string>{"<null>|Mozilla|gone|0|2020-01|2020-01-01",
                                             "<null>|curl|gone|0|2020-01|2020-01-02",
                                             "192.0.2.3|Mozilla/5.0|n3|c3|2026-06-01|2026-06-01"});
  CHECK(audit_affected_total(stores.state_dir()) == 4);

  // The same day, then a day later: nothing is anonymised again, the marks
  // stay.
  auto before = stores.dump("health");
  for (std::string_view as_of : {"2026-06-15", "2026-06-16"}) {
    INFO("as of " << as_of);
    sweep.clock.set(noon_utc(as_of) + std::chrono::hours{3});
    auto again = sweep.run(*policy, as_of);
    CHECK(again.code == ExitCode::ok);
    for (const auto* rule : {"accounts", "visits"}) {
      INFO(rule);
      CHECK(entry(again.report, rule).counts.matched == 0);
      CHECK(entry(again.report, rule).counts.affected == 0);
    }
    CHECK(stores.dump("health") == before);
  }
}

// ---------------------------------------------------------------------------
// 9. The report and the audit log.

CONFORMANCE_ARCHIVE_TEST(report_and_audit,
                         "the JSON report and the audit log agree with what the sweep did",
                         "[report][audit][archive]") {
  constexpr int kBatch = 4;
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  // 1-10 past 13 years, 11-25 past 3, 26-27 of them held, 28 undated,
  // 29-30 recent. Keys no other field of the log could hold.
  auto key = [](int i) { return fmt::format("claim-{:02}", i); };
  std::vector<Record> records;
  for (int i = 1; i <= 10; ++i) records.push_back({key(i), day_after("2000-01-01", i)});
  for (int i = 11; i <= 27; ++i) records.push_back({key(i), day_after("2015-01-01", i), i > 25});
  records.push_back({key(28), std::nullopt});
  records.push_back({key(29), "2025-01-01"});
  records.push_back({key(30), "2026-06-15", true});
  stores.put("health", kClaims, records);
  stores.policy(staged_claims_rule(stores), kBatch);
  const auto policy_bytes = read_file(stores.policy_file());

  auto run = run_binary(stores, {"sweep", "--as-of", "2026-06-15", "--format", "json"});
  CHECK(run.exit_code == 0);
  auto report = parse_report(run);
  CHECK(report.at("as_of") == "2026-06-15");
  CHECK(report.at("timezone") == "Europe/Paris");
  CHECK(report.at("dry_run") == false);
  CHECK(report.at("policy_sha256") == sha256_hex(policy_bytes));
  CHECK(report.at("rules").size() == 3);
  const auto& archived = json_entry(report, "claims", 1, "health");
  CHECK(archived.at("action") == "archive");
  CHECK(archived.at("table") == stores.report_table(kClaims));
  CHECK(archived.at("cutoff") == "2023-06-15");
  CHECK(archived.at("matched") == 15);
  CHECK(archived.at("held") == 2);
  CHECK(archived.at("undated") == 1);
  CHECK(archived.at("affected") == 15);
  const auto& deleted = json_entry(report, "claims", 2, "health");
  CHECK(deleted.at("action") == "delete");
  CHECK(deleted.at("cutoff") == "2013-06-15");
  CHECK(deleted.at("matched") == 10);
  CHECK(deleted.at("held") == 0);
  CHECK(deleted.at("affected") == 10);
  CHECK(json_entry(report, "claims", 2, "archive").at("affected") == 0);
  for (const char* field : {"matched", "held", "undated", "affected", "conflicts"}) {
    INFO(field);
    std::int64_t sum = 0;
    for (const auto& e : report.at("rules")) sum += e.at(field).get<std::int64_t>();
    CHECK(report.at("totals").at(field) == sum);
  }
  // What happened in the stores.
  CHECK(stores.keys("health", kClaims) == Strings{key(26), key(27), key(28), key(29), key(30)});
  CHECK(stores.keys("archive", kClaims).size() == 15);

  // One audit line per committed batch: 15 archived in 4 batches, 10
  // deleted in 3; nothing in the archive.
  auto lines = audit_lines(stores.state_dir());
  CHECK(lines.size() == 7);
  std::int64_t seq = 0;
  for (const auto& line : lines) {
    CHECK(line.at("seq").get<std::int64_t>() > seq);
    seq = line.at("seq").get<std::int64_t>();
    CHECK(line.at("rule") == "claims");
    CHECK(line.at("store") == "health");
    CHECK(line.at("table") == stores.report_table(kClaims));
    CHECK(line.at("as_of") == "2026-06-15");
    CHECK(line.at("affected").get<int>() >= 1);
    CHECK(line.at("affected").get<int>() <= kBatch);
    CHECK(line.at("keys_sha256").get<std::string>().size() == 64);
    if (line.at("stage") == 1) {
      CHECK(line.at("action") == "archive");
      CHECK(line.at("cutoff") == "2023-06-15");
    } else {
      CHECK(line.at("action") == "delete");
      CHECK(line.at("cutoff") == "2013-06-15");
    }
  }
  CHECK(audit_total(stores.state_dir(), "claims", 1, "health") == 15);
  CHECK(audit_total(stores.state_dir(), "claims", 2, "health") == 10);
  CHECK(audit_affected_total(stores.state_dir()) == report.at("totals").at("affected"));
  // The keys are digested, never written in clear.
  CHECK_THAT(read_file(audit_log_path(stores.state_dir())), !Catch::Contains("claim-"));
  check_audit_verifies(stores);
}

// ---------------------------------------------------------------------------
// 11. A key that is not unique.

SQL_CONFORMANCE_TEST(non_unique_key,
                     "a key that is not unique never takes an unexpired or held row along",
                     "[keys]") {
  TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  stores.exec("health", R"(
    CREATE TABLE events (event_key INTEGER, tag TEXT, at DATE, held INTEGER, note TEXT);
    INSERT INTO events VALUES (1, 'expired', '2000-01-01', 0, 'n'),
      (1, 'recent', '2026-06-01', 0, 'n'), (2, 'expired-held', '2000-01-01', 1, 'n'),
      (2, 'expired-free', '2000-01-01', NULL, 'n'), (3, 'undated', NULL, 0, 'n'),
      (3, 'expired-too', '2001-01-01', 0, 'n')
  )");
  auto rule = [](std::string_view action) {
    return fmt::format(R"(
  - name: events
    store: health
    table: events
    key: event_key
    anchor: at
    hold: {{ column: held }}
    keep_for: 5 years
{})",
                       action);
  };
  auto tags = [&] { return stores.query_set("health", "SELECT tag FROM events"); };
  Sweep sweep(stores.dir());

  SECTION("delete") {
    auto policy = stores.policy(rule("    action: delete\n"));
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(entry(done.report, "events").counts.affected == 3);
    CHECK(entry(done.report, "events").counts.held == 1);
    CHECK(tags() == Strings{"recent", "expired-held", "undated"});
  }
  SECTION("anonymize") {
    auto policy =
        stores.policy(rule("    action: anonymize\n    anonymize: { note: { value: gone } }\n"));
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::ok);
    CHECK(entry(done.report, "events").counts.affected == 3);
    CHECK(stores.query_set("health", "SELECT tag || '=' || note FROM events") ==
          Strings{"expired=gone", "recent=n", "expired-held=n", "expired-free=gone", "undated=n",
                  "expired-too=gone"});
  }
  SECTION("archive is refused, and nothing changes") {
    auto policy = stores.policy(rule("    action: archive\n    to: archive\n"));
    auto before = stores.dump("health");
    auto done = sweep.run(*policy, "2026-06-15");
    CHECK(done.code == ExitCode::unavailable);
    REQUIRE(entry(done.report, "events").error.has_value());
    CHECK_THAT(*entry(done.report, "events").error, Catch::Contains("event_key"));
    CHECK(stores.dump("health") == before);
    CHECK_FALSE(stores.table_exists("archive", "events"));
  }
}

// ---------------------------------------------------------------------------
// Erasure receipts: every kind's batches give the same proofs.

CONFORMANCE_ARCHIVE_TEST(receipts,
                         "a record acted on has a receipt that verifies; a kept one has none",
                         "[receipts][audit][archive]") {
  TestStores stores(variant);
  auto rule = make_staged_claims(stores);
  // Two records a batch: the proofs have more than one leaf to cross.
  stores.policy(rule, 2);
  REQUIRE(run_binary(stores, {"sweep", "--as-of", "2026-06-15"}).exit_code == 0);

  auto find = [&](const Record& r, bool as_json) {
    std::vector<std::string> args{"audit",  "find",  "--rule",
                                  "claims", "--key", stores.key_text(kClaims, r)};
    if (as_json) args.insert(args.end(), {"--format", "json"});
    return run_binary(stores, args);
  };
  for (const auto& [record, action] : {std::pair{Record{"c1", "2001-01-01"}, "delete"},
                                       std::pair{Record{"c2", "2015-01-01"}, "archive"},
                                       std::pair{Record{"c3", "2020-01-01"}, "archive"}}) {
    INFO(record.key << " (" << stores.key_text(kClaims, record) << ")");
    auto found = find(record, true);
    INFO(found.out << found.err);
    REQUIRE(found.exit_code == 0);
    auto receipt = nlohmann::json::parse(found.out);
    REQUIRE(receipt.at("entries").size() == 1);
    CHECK(receipt.at("entries")[0].at("entry").at("action") == action);
    CHECK(receipt.at("entries")[0].at("entry").at("store") == "health");
    stores.dir().write("receipt.json", receipt.dump());
    auto checked =
        run_binary(stores, {"audit", "check-receipt", (stores.dir() / "receipt.json").string()});
    INFO(checked.out << checked.err);
    CHECK(checked.exit_code == 0);
    // The same receipt claimed for another record: refused.
    receipt["key"] = stores.key_text(kClaims, Record{"c4", "2026-01-01"});
    stores.dir().write("forged.json", receipt.dump());
    CHECK(run_binary(stores, {"audit", "check-receipt", (stores.dir() / "forged.json").string()})
              .exit_code == 65);
  }
  // Recent, undated and held records were never acted on.
  for (const auto& record :
       {Record{"c4", "2026-01-01"}, Record{"c5", std::nullopt}, Record{"c6", "2015-01-01", true}}) {
    INFO(record.key);
    auto r = find(record, false);
    CHECK(r.exit_code == 1);
    CHECK_THAT(r.out, Catch::StartsWith("no entry: "));
  }
}
