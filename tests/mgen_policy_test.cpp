// policies/mgen.yaml, the shipped MGEN schedule, run on stores with the demo
// data set's schemas: per category, rows on both sides of each period's
// boundary, held and undated rows, then the whole generated data set checked
// row by row against the periods computed here.
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "mgen_demo.hpp"
#include "policy/policy.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "sweep/sweep.hpp"
#include "test_support.hpp"
#include "time/anchor.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/digest.hpp"
#include "util/log.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
namespace fs = std::filesystem;
using sqlite::Value;

namespace {

constexpr std::string_view kKey = "mgen-test-key-0123456789abcdef-0123456789";

Day day(std::string_view text) {
  auto d = parse_date_text(text);
  if (!d) throw std::invalid_argument("not a date: " + std::string(text));
  return *d;
}

// One row of a table as read back: column name -> value.
using Row = std::map<std::string, Value>;
// Every row of a table, by key.
using Rows = std::map<std::int64_t, Row>;

Rows read_rows(const fs::path& file, std::string_view table, std::string_view key) {
  Rows rows;
  if (!fs::exists(file)) return rows;
  sqlite::Database db(file, sqlite::OpenMode::read_only);
  if (!db.table_exists(table)) return rows;
  sqlite::Statement s(db, "SELECT * FROM " + sqlite::quote(table));
  while (s.step()) {
    Row row;
    for (int i = 0; i < s.column_count(); ++i) row[s.column_name(i)] = s.column(i);
    rows[std::get<std::int64_t>(row.at(std::string(key)))] = std::move(row);
  }
  return rows;
}

std::string text_of(const Value& v) {
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  return "";
}

bool is_null(const Value& v) { return std::holds_alternative<std::monostate>(v); }

// policies/mgen.yaml copied next to empty stores with the demo schemas, a
// key for the coded identifier, and a clock on `today`.
struct MgenStores {
  TempDir dir;
  FakeClock clock{std::chrono::system_clock::time_point{day("2026-06-15")} +
                  std::chrono::hours{10}};
  std::ostringstream log_text;
  Logger log{log_text, LogLevel::debug, false};
  std::shared_ptr<const Policy> policy;

  MgenStores() {
    dir.write("policy.yaml",
              test::read_file(fs::path(RETENTIOND_SOURCE_DIR) / "policies" / "mgen.yaml"));
    dir.write("hmac.key", kKey, 0600);
    demo::create_tables(dir.path());
    demo::create_indexes(dir.path());
  }

  fs::path file(std::string_view name) const { return dir / name; }

  // Inserts one row; `values` in the order of `columns`.
  void insert(std::string_view file_name, std::string_view table,
              const std::vector<std::string>& columns, const std::vector<Value>& values) {
    sqlite::Database db(file(file_name), sqlite::OpenMode::read_write);
    std::string marks;
    std::string names;
    for (std::size_t i = 0; i < columns.size(); ++i) {
      names += (i ? ", " : "") + columns[i];
      marks += i ? ", ?" : "?";
    }
    sqlite::Statement s(
        db, "INSERT INTO " + std::string(table) + " (" + names + ") VALUES (" + marks + ")");
    for (std::size_t i = 0; i < values.size(); ++i) s.bind(static_cast<int>(i + 1), values[i]);
    s.step();
  }

  const Policy& loaded() {
    if (!policy) {
      auto p = load_policy(dir / "policy.yaml");
      INFO((p ? std::string() : p.error().message));
      REQUIRE(p);
      policy = *p;
    }
    return *policy;
  }

  Report run(std::string_view as_of, bool dry_run) {
    SweepOptions o;
    o.dry_run = dry_run;
    o.as_of = day(as_of);
    o.state_dir = dir / "state";
    auto outcome = run_sweep(loaded(), o, clock, log);
    INFO(log_text.str());
    REQUIRE(outcome);
    CHECK(outcome->code == ExitCode::ok);
    for (const auto& e : outcome->report.entries) {
      INFO(e.rule << ": " << e.error.value_or(""));
      CHECK_FALSE(e.error);
    }
    return outcome->report;
  }
  Report plan(std::string_view as_of) { return run(as_of, true); }
  Report sweep(std::string_view as_of) { return run(as_of, false); }
};

// The counts of one rule, every stage and store added up.
Counts counts_of(const Report& r, std::string_view rule) {
  Counts c;
  for (const auto& e : r.entries) {
    if (e.rule == rule) c += e.counts;
  }
  return c;
}

const ReportEntry& entry_of(const Report& r, std::string_view rule, int stage,
                            std::string_view store) {
  for (const auto& e : r.entries) {
    if (e.rule == rule && e.stage == stage && e.store == store) return e;
  }
  FAIL("no report entry for " << rule << " stage " << stage << " on " << store);
  throw std::logic_error("unreachable");
}

// A row the test puts in and what the sweep must do with it.
struct Case {
  std::int64_t id;
  Value anchor;
  bool acted_on;  // past its period, not held: deleted, archived or anonymised
  bool held = false;
};

// Inserts the cases with `fixed` columns set alike, sweeps at as_of, and
// checks which rows remain. Returns the sweep's report.
void check_deletions(MgenStores& s, std::string_view file, std::string_view table,
                     std::string_view anchor, std::string_view rule, const std::vector<Case>& cases,
                     std::int64_t undated, const std::vector<std::string>& fixed_columns = {},
                     const std::vector<Value>& fixed = {}) {
  for (const auto& c : cases) {
    std::vector<std::string> columns{"id", std::string(anchor)};
    std::vector<Value> values{c.id, c.anchor};
    columns.insert(columns.end(), fixed_columns.begin(), fixed_columns.end());
    values.insert(values.end(), fixed.begin(), fixed.end());
    if (table == "affiliations") {
      columns.push_back("litigation_pending");
      values.push_back(std::int64_t{c.held ? 1 : 0});
    }
    s.insert(file, table, columns, values);
  }
  std::int64_t due = 0, held = 0;
  for (const auto& c : cases) {
    due += c.acted_on;
    held += c.held;
  }
  Counts planned = counts_of(s.plan("2026-06-15"), rule);
  CHECK(planned.matched == due);
  CHECK(planned.held == held);
  CHECK(planned.undated == undated);
  CHECK(planned.affected == 0);
  CHECK(read_rows(s.file(file), table, "id").size() == cases.size());  // the plan changed nothing

  Counts swept = counts_of(s.sweep("2026-06-15"), rule);
  CHECK(swept.matched == due);
  CHECK(swept.affected == due);
  Rows after = read_rows(s.file(file), table, "id");
  for (const auto& c : cases) {
    INFO(table << " row " << c.id << " anchored on '" << text_of(c.anchor) << "'");
    CHECK(after.count(c.id) == (c.acted_on ? 0u : 1u));
  }
  CHECK(counts_of(s.sweep("2026-06-15"), rule).affected == 0);  // idempotent
}

const Value kNull{};

}  // namespace

TEST_CASE("mgen: the policy encodes each article's period, action and basis", "[mgen]") {
  MgenStores s;
  const Policy& p = s.loaded();
  struct Expected {
    std::string rule, category, article;
    std::vector<std::pair<std::string, Action>> stages;
  };
  std::vector<Expected> schedule{
      {"amo-affiliation", "compulsory-health-insurance", "art. 8.1", {{"5 years", Action::erase}}},
      {"amo-health-data",
       "health-data",
       "art. 8.1",
       {{"3 years", Action::archive}, {"13 years", Action::erase}}},
      {"supplementary-membership",
       "supplementary-health-cover",
       "art. 8.2",
       {{"10 years", Action::erase}}},
      {"specific-services-contract", "specific-services", "art. 8.3", {{"5 years", Action::erase}}},
      {"personal-space-coded-id", "personal-space", "art. 8.4", {{"6 months", Action::anonymize}}},
      {"public-space-requests", "public-space", "art. 8.4", {{"1 year", Action::erase}}},
      {"rights-request-id-copy", "rights-requests", "art. 9", {{"3 years", Action::erase}}},
      {"audience-visits", "audience-measurement", "art. 10", {{"13 months", Action::anonymize}}},
      {"audience-cookies", "audience-measurement", "art. 10", {{"13 months", Action::erase}}},
  };
  REQUIRE(p.rules.size() == schedule.size());
  for (const auto& ex : schedule) {
    INFO(ex.rule);
    const Rule* r = p.find_rule(ex.rule);
    REQUIRE(r != nullptr);
    CHECK(r->category == ex.category);
    CHECK(r->basis.find(ex.article) != std::string::npos);
    REQUIRE(r->stages.size() == ex.stages.size());
    for (std::size_t i = 0; i < ex.stages.size(); ++i) {
      CHECK(to_string(r->stages[i].after) == ex.stages[i].first);
      CHECK(r->stages[i].action == ex.stages[i].second);
    }
  }
  CHECK(p.find_rule("amo-affiliation")->hold.has_value());
  CHECK(p.find_rule("amo-health-data")->archive_stage()->to == "amo_archive");
  // Art. 9: the identity-document copies are files, one folder per request.
  const Rule* id_copy = p.find_rule("rights-request-id-copy");
  CHECK(p.find_store(id_copy->store)->kind == StoreKind::files);
  REQUIRE(id_copy->files);
  CHECK(id_copy->files->pattern == "*/identity-*.pdf");
  CHECK(id_copy->files->anchor == FileAnchor::mtime);
  REQUIRE(id_copy->files->hold);
  CHECK(std::get<HoldByFile>(*id_copy->files->hold).name == ".hold");
}

// As of 2026-06-15 in Europe/Paris throughout: a record expires on anchor +
// period, and is past its period on and after that day.

TEST_CASE(
    "mgen art. 8.1: affiliations go 5 years after the rights close, unless litigation holds them",
    "[mgen]") {
  MgenStores s;
  check_deletions(s, "amo.db", "affiliations", "rights_closed_on", "amo-affiliation",
                  {
                      {1, "2021-06-15", true},         // 5 years exactly: due today
                      {2, "2021-06-16", false},        // due tomorrow
                      {3, "2009-03-01", true},         // long past
                      {4, "2009-03-01", false, true},  // long past, but litigation pending
                      {5, "2021-06-14", false, true},  // past, held
                      {6, kNull, false},               // rights still open: undated
                      {7, "", false},                  // undated
                      {8, "31/12/2019", false},        // unreadable: undated
                      {9, "2019-02-30", false},        // no such day: undated
                      {10, "2031-01-01", false},       // in the future
                      {11, "2020-02-29", true},        // leap day + 5 years = 2025-02-28
                  },
                  4, {"member_number", "beneficiary_rank"},
                  {std::string("100000001"), std::int64_t{0}});
}

TEST_CASE(
    "mgen art. 8.1: health data are archived after 3 years and destroyed after 13, archive "
    "included",
    "[mgen]") {
  MgenStores s;
  struct Claim {
    std::int64_t id;
    Value paid_on;
    enum { live, archived, destroyed } fate;
  };
  std::vector<Claim> claims{
      {1, "2023-06-15", Claim::archived},   // 3 years today
      {2, "2023-06-16", Claim::live},       // 3 years tomorrow
      {3, "2013-06-15", Claim::destroyed},  // 13 years today: deleted, never archived
      {4, "2013-06-16", Claim::archived},   // 13 years tomorrow
      {5, "2001-01-01", Claim::destroyed},
      {6, "2026-06-01", Claim::live},
      {7, kNull, Claim::live},      // not paid yet: undated
      {8, "unknown", Claim::live},  // undated
  };
  for (const auto& c : claims) {
    s.insert("amo.db", "claims", {"claim_id", "member_number", "amount_cents", "paid_on"},
             {c.id, std::string("100000002"), std::int64_t{2500}, c.paid_on});
  }
  Rows before = read_rows(s.file("amo.db"), "claims", "claim_id");

  Report plan = s.plan("2026-06-15");
  CHECK(entry_of(plan, "amo-health-data", 1, "amo").counts.matched == 2);
  CHECK(entry_of(plan, "amo-health-data", 2, "amo").counts.matched == 2);
  CHECK(counts_of(plan, "amo-health-data").undated == 2);
  CHECK_FALSE(fs::exists(s.file("amo-archive.db")));  // a plan creates nothing

  Report swept = s.sweep("2026-06-15");
  CHECK(entry_of(swept, "amo-health-data", 1, "amo").counts.affected == 2);
  CHECK(entry_of(swept, "amo-health-data", 2, "amo").counts.affected == 2);
  Rows live = read_rows(s.file("amo.db"), "claims", "claim_id");
  Rows archive = read_rows(s.file("amo-archive.db"), "claims", "claim_id");
  for (const auto& c : claims) {
    INFO("claim " << c.id << " paid on '" << text_of(c.paid_on) << "'");
    CHECK(live.count(c.id) == (c.fate == Claim::live ? 1u : 0u));
    CHECK(archive.count(c.id) == (c.fate == Claim::archived ? 1u : 0u));
    if (c.fate == Claim::archived) CHECK(archive.at(c.id) == before.at(c.id));  // moved whole
  }

  // A day later, claim 4 reaches 13 years in the archive: deleted there.
  s.clock.advance(std::chrono::hours{24});
  Report next = s.sweep("2026-06-16");
  CHECK(entry_of(next, "amo-health-data", 2, "amo_archive").counts.affected == 1);
  archive = read_rows(s.file("amo-archive.db"), "claims", "claim_id");
  CHECK(archive.count(4) == 0);
  CHECK(archive.count(1) == 1);
  live = read_rows(s.file("amo.db"), "claims", "claim_id");
  CHECK(live.count(2) == 0);  // 3 years on 2026-06-16: archived now
  CHECK(read_rows(s.file("amo-archive.db"), "claims", "claim_id").count(2) == 1);
}

TEST_CASE("mgen art. 8.2: supplementary memberships go 10 years after they end", "[mgen]") {
  MgenStores s;
  check_deletions(s, "mutual.db", "memberships", "ended_on", "supplementary-membership",
                  {
                      {1, "2016-06-15", true},
                      {2, "2016-06-16", false},
                      {3, "1999-12-31", true},
                      {4, kNull, false},         // still a member
                      {5, "0000-00-00", false},  // undated
                      {6, "2020-01-01", false},
                  },
                  2, {"member_number", "plan"},
                  {std::string("100000003"), std::string("MGEN Référence")});
}

TEST_CASE("mgen art. 8.3: housing and retirement contracts go 5 years after they end", "[mgen]") {
  MgenStores s;
  for (std::string service : {"housing", "retirement"}) {
    DYNAMIC_SECTION(service) {
      check_deletions(s, "services.db", "service_contracts", "ended_on",
                      "specific-services-contract",
                      {
                          {1, "2021-06-15", true},
                          {2, "2021-06-16", false},
                          {3, "2012-01-31", true},
                          {4, "2027-03-31", false},  // ends next year
                          {5, kNull, false},         // running
                      },
                      1, {"member_number", "service"}, {std::string("100000004"), service});
    }
  }
}

TEST_CASE(
    "mgen art. 8.4: personal-space accounts keep only the coded identifier 6 months after the "
    "contract",
    "[mgen]") {
  MgenStores s;
  struct Account {
    std::int64_t id;
    Value ended;
    bool coded;
    Value coded_at = Value{};
  };
  std::vector<Account> accounts{
      {1, "2025-12-15", true},   // 6 months today
      {2, "2025-12-16", false},  // 6 months tomorrow
      {3, "2023-02-28", true},
      {4, "2022-01-01", false, std::string("2022-07-02T03:15:00Z")},  // coded already: not again
      {5, kNull, false},                                              // contract running
      {6, "garbage", false},
  };
  for (const auto& a : accounts) {
    s.insert(
        "web.db", "accounts",
        {"id", "member_number", "email", "display_name", "created_at", "contract_ended_on",
         "coded_at"},
        {a.id, "10000000" + std::to_string(a.id), "someone" + std::to_string(a.id) + "@example.org",
         std::string("Camille M."), std::string("2015-04-01 09:00:00"), a.ended, a.coded_at});
  }
  Rows before = read_rows(s.file("web.db"), "accounts", "id");
  CHECK(counts_of(s.plan("2026-06-15"), "personal-space-coded-id").matched == 2);
  CHECK(counts_of(s.sweep("2026-06-15"), "personal-space-coded-id").affected == 2);
  Rows after = read_rows(s.file("web.db"), "accounts", "id");
  for (const auto& a : accounts) {
    INFO("account " << a.id);
    const Row& was = before.at(a.id);
    const Row& now = after.at(a.id);
    if (a.coded) {
      CHECK(text_of(now.at("member_number")) ==
            hmac_sha256_hex(kKey, text_of(was.at("member_number"))));
      CHECK(is_null(now.at("email")));
      CHECK(is_null(now.at("display_name")));
      CHECK_FALSE(is_null(now.at("coded_at")));
      CHECK(now.at("contract_ended_on") == was.at("contract_ended_on"));
      CHECK(now.at("created_at") == was.at("created_at"));
    } else {
      CHECK(now == was);
    }
  }
  CHECK(counts_of(s.sweep("2026-06-15"), "personal-space-coded-id").affected ==
        0);  // never coded twice
  CHECK(read_rows(s.file("web.db"), "accounts", "id") == after);
}

TEST_CASE("mgen art. 8.4: public-space contact requests go after 1 year, by their day in Paris",
          "[mgen]") {
  MgenStores s;
  check_deletions(s, "web.db", "contact_requests", "received_at", "public-space-requests",
                  {
                      {1, "2025-06-15 10:00:00", true},
                      {2, "2025-06-14 22:30:00", true},   // 00:30 on 15 June in Paris
                      {3, "2025-06-15 22:30:00", false},  // 00:30 on 16 June in Paris
                      {4, "2025-06-15T23:59:59+02:00", true},
                      {5, "2025-06-16T01:00:00+02:00", false},
                      {6, "2025-06-15T21:59:59Z", true},
                      {7, "", false},
                      {8, "yesterday", false},
                      {9, "2024-01-01 08:00:00", true},
                  },
                  2, {"email", "subject"},
                  {std::string("a@example.org"), std::string("Attestation")});
}

TEST_CASE("mgen art. 10: raw visit data lose the visitor identifier and the IP after 13 months",
          "[mgen]") {
  MgenStores s;
  struct Visit {
    std::int64_t id;
    Value visited_at;
    Value visitor;
    bool anonymised;
  };
  std::vector<Visit> visits{
      {1, "2025-05-15 12:00:00", "a1b2c3", true},   // 13 months today
      {2, "2025-05-15 22:30:00", "a1b2c3", false},  // 16 May in Paris
      {3, "2024-01-01 00:00:00", "d4e5f6", true},
      {4, "2024-02-01T10:00:00Z", kNull, true},  // no consent: the IP still goes
      {5, "2026-06-14 09:00:00", "a1b2c3", false},
      {6, "2024-13-01 10:00:00", "d4e5f6", false},  // undated
  };
  for (const auto& v : visits) {
    s.insert("web.db", "visits", {"id", "visitor_id", "ip", "user_agent", "page", "visited_at"},
             {v.id, v.visitor, std::string("192.0.2.7"), std::string("Mozilla/5.0"),
              std::string("/contact"), v.visited_at});
  }
  Rows before = read_rows(s.file("web.db"), "visits", "id");
  Counts planned = counts_of(s.plan("2026-06-15"), "audience-visits");
  CHECK(planned.matched == 3);
  CHECK(planned.undated == 1);
  CHECK(counts_of(s.sweep("2026-06-15"), "audience-visits").affected == 3);
  Rows after = read_rows(s.file("web.db"), "visits", "id");
  for (const auto& v : visits) {
    INFO("visit " << v.id);
    Row was = before.at(v.id);
    const Row& now = after.at(v.id);
    if (v.anonymised) {
      CHECK(is_null(now.at("visitor_id")));
      CHECK(is_null(now.at("ip")));
      CHECK_FALSE(is_null(now.at("anonymized_at")));
      // The visit itself stays for statistics.
      for (const char* kept : {"page", "user_agent", "visited_at"})
        CHECK(now.at(kept) == was.at(kept));
    } else {
      CHECK(now == was);
    }
  }
  CHECK(counts_of(s.sweep("2026-06-15"), "audience-visits").affected == 0);
}

TEST_CASE("mgen art. 10: audience cookie records are deleted after 13 months", "[mgen]") {
  MgenStores s;
  using std::chrono::sys_seconds;
  auto epoch = [](std::string_view utc_day, int hours, int minutes, int seconds) -> Value {
    auto t = sys_seconds{day(utc_day)} + std::chrono::hours{hours} + std::chrono::minutes{minutes} +
             std::chrono::seconds{seconds};
    return static_cast<std::int64_t>(t.time_since_epoch().count());
  };
  check_deletions(s, "web.db", "cookies", "set_at", "audience-cookies",
                  {
                      {1, epoch("2025-05-15", 21, 59, 59), true},  // 23:59:59 on 15 May in Paris
                      {2, epoch("2025-05-15", 22, 0, 0), false},   // midnight of 16 May in Paris
                      {3, epoch("2024-11-01", 8, 0, 0), true},
                      {4, epoch("2026-06-01", 8, 0, 0), false},
                      {5, kNull, false},
                      {6, std::string("n/a"), false},
                  },
                  2, {"visitor_id", "name"}, {std::string("a1b2c3"), std::string("_pk_id")});
}

namespace {

// Writes a file under the store's root with a modification time.
void put_file(const fs::path& file, std::string_view text, std::chrono::sys_seconds mtime) {
  fs::create_directories(file.parent_path());
  std::ofstream(file, std::ios::binary) << text;
  struct timespec times[2];
  times[0].tv_sec = times[1].tv_sec = mtime.time_since_epoch().count();
  times[0].tv_nsec = times[1].tv_nsec = 0;
  REQUIRE(::utimensat(AT_FDCWD, file.c_str(), times, 0) == 0);
}

std::chrono::sys_seconds utc_at(std::string_view day_text, int hour) {
  return std::chrono::sys_seconds{day(day_text)} + std::chrono::hours{hour};
}

}  // namespace

TEST_CASE(
    "mgen art. 9: identity-document copies go 3 years after they were received, unless the "
    "request is held",
    "[mgen]") {
  MgenStores s;
  fs::path root = s.file("rights-requests");
  // Received on the boundary days, read in Paris: 3 years before 2026-06-15.
  put_file(root / "r1/identity-card.pdf", "due", utc_at("2023-06-15", 21));   // 23:00 in Paris
  put_file(root / "r2/identity-card.pdf", "kept", utc_at("2023-06-15", 22));  // the 16th in Paris
  put_file(root / "r3/identity-recto.pdf", "held", utc_at("2019-01-10", 9));
  put_file(root / "r3/.hold", "", utc_at("2019-01-10", 9));
  put_file(root / "r4/request.txt", "not a copy", utc_at("2019-01-10", 9));
  put_file(root / "r5/scans/identity-card.pdf", "one folder too deep", utc_at("2019-01-10", 9));
  put_file(root / "identity-loose.pdf", "not in a request folder", utc_at("2019-01-10", 9));
  Counts planned = counts_of(s.plan("2026-06-15"), "rights-request-id-copy");
  CHECK(planned.matched == 1);
  CHECK(planned.held == 1);
  CHECK(planned.undated == 0);
  Counts swept = counts_of(s.sweep("2026-06-15"), "rights-request-id-copy");
  CHECK(swept.affected == 1);
  CHECK_FALSE(fs::exists(root / "r1/identity-card.pdf"));
  for (const char* kept : {"r2/identity-card.pdf", "r3/identity-recto.pdf", "r3/.hold",
                           "r4/request.txt", "r5/scans/identity-card.pdf", "identity-loose.pdf"})
    CHECK(fs::exists(root / kept));
  CHECK(counts_of(s.sweep("2026-06-15"), "rights-request-id-copy").affected == 0);  // idempotent
  CHECK(counts_of(s.plan("2026-06-16"), "rights-request-id-copy").matched == 1);    // r2, a day on
}

TEST_CASE("mgen: every row of the generated data set meets its article's period, and only those",
          "[mgen]") {
  FakeClock clock{std::chrono::system_clock::time_point{day("2026-06-15")} +
                  std::chrono::hours{10}};
  TempDir data;
  data.write("policy.yaml",
             test::read_file(fs::path(RETENTIOND_SOURCE_DIR) / "policies" / "mgen.yaml"));
  data.write("hmac.key", kKey, 0600);
  Day as_of = day("2026-06-15");
  demo::GenerateOptions options;
  options.seed = 20260615;
  options.rows = 12000;
  options.as_of = as_of;
  options.rows_per_transaction = 700;  // several transactions per table
  demo::generate(data.path(), options);
  auto loaded = load_policy(data / "policy.yaml");
  REQUIRE(loaded);
  const Policy& policy = **loaded;

  // What each rule must do, computed here from its period and anchor.
  struct Expect {
    std::map<std::int64_t, int> stage;  // key -> the latest stage reached (0: none)
    std::int64_t held = 0, undated = 0;
  };
  std::map<std::string, Rows> before;
  std::map<std::string, Expect> expect;
  // Art. 9's files: each identity copy, whether it is past 3 years in Paris
  // and whether its request folder is held.
  const Rule& id_copy = *policy.find_rule("rights-request-id-copy");
  fs::path requests = policy.find_store(id_copy.store)->root;
  std::map<std::string, bool> copy_goes;  // relative path -> deleted by the sweep
  std::int64_t copies_held = 0;
  std::set<std::string> other_files;
  for (const auto& e : fs::recursive_directory_iterator(requests)) {
    if (!e.is_regular_file()) continue;
    std::string rel = fs::relative(e.path(), requests).string();
    if (!e.path().filename().string().starts_with("identity-")) {
      other_files.insert(rel);
      continue;
    }
    struct stat st {};
    REQUIRE(::stat(e.path().c_str(), &st) == 0);
    Day received =
        local_day(std::chrono::sys_seconds{std::chrono::seconds{st.st_mtime}}, *policy.zone);
    bool past = expiry_of(received, id_copy.stages[0].after) <= as_of;
    bool held = fs::exists(e.path().parent_path() / ".hold");
    copies_held += past && held;
    copy_goes[rel] = past && !held;
  }
  CHECK(copies_held > 0);
  CHECK(std::count_if(copy_goes.begin(), copy_goes.end(), [](auto& c) { return c.second; }) > 0);
  CHECK(std::count_if(copy_goes.begin(), copy_goes.end(), [](auto& c) { return !c.second; }) >
        copies_held);
  for (const auto& rule : policy.rules) {
    if (rule.files) continue;  // art. 9, above
    const StoreSpec& store = *policy.find_store(rule.store);
    Rows rows = read_rows(store.path, rule.table, rule.key);
    REQUIRE(rows.size() > 10);
    Expect& ex = expect[rule.name];
    for (const auto& [key, row] : rows) {
      auto anchor = anchor_day(sqlite::to_anchor_value(row.at(rule.anchor)), rule.anchor_format,
                               *policy.zone);
      if (!anchor) {
        ++ex.undated;
        continue;
      }
      int reached = 0;
      for (const auto& stage : rule.stages) {
        if (expiry_of(*anchor, stage.after) <= as_of) reached = stage.number;
      }
      bool held = rule.hold && text_of(row.at(std::get<HoldByColumn>(*rule.hold).column)) == "1";
      if (reached > 0 && held) ++ex.held;
      ex.stage[key] = held ? 0 : reached;
    }
    before[rule.name] = std::move(rows);
  }
  // The data set is meant to exercise every case: check that it does.
  CHECK(expect["amo-affiliation"].held > 0);
  for (const auto& rule : policy.rules) {
    if (rule.files) continue;
    INFO(rule.name);
    CHECK(expect[rule.name].undated > 0);
    std::int64_t due = 0, kept = 0;
    for (const auto& [key, stage] : expect[rule.name].stage) (stage > 0 ? due : kept) += 1;
    CHECK(due > 0);
    CHECK(kept > 0);
  }

  SweepOptions o;
  o.dry_run = false;
  o.as_of = as_of;
  o.state_dir = data / "state";
  std::ostringstream log_text;
  Logger log(log_text, LogLevel::info, false);
  auto outcome = run_sweep(policy, o, clock, log);
  INFO(log_text.str());
  REQUIRE(outcome);
  REQUIRE(outcome->code == ExitCode::ok);

  {
    Counts c = counts_of(outcome->report, id_copy.name);
    CHECK(c.affected ==
          std::count_if(copy_goes.begin(), copy_goes.end(), [](auto& g) { return g.second; }));
    CHECK(c.held == copies_held);
    CHECK(c.undated == 0);
    for (const auto& [rel, goes] : copy_goes) {
      INFO(rel);
      CHECK(fs::exists(requests / rel) == !goes);
    }
    for (const auto& rel : other_files) CHECK(fs::exists(requests / rel));
  }
  for (const auto& rule : policy.rules) {
    if (rule.files) continue;
    INFO("rule " << rule.name);
    const Expect& ex = expect[rule.name];
    Counts c = counts_of(outcome->report, rule.name);
    std::int64_t due = 0;
    for (const auto& [key, stage] : ex.stage) due += stage > 0;
    CHECK(c.affected == due);
    CHECK(c.held == ex.held);
    CHECK(c.undated == ex.undated);

    const StoreSpec& store = *policy.find_store(rule.store);
    Rows after = read_rows(store.path, rule.table, rule.key);
    Rows archive;
    if (const Stage* a = rule.archive_stage())
      archive = read_rows(policy.find_store(a->to)->path, rule.table, rule.key);
    for (const auto& [key, was] : before[rule.name]) {
      INFO("key " << key << ", anchor '" << text_of(was.at(rule.anchor)) << "'");
      auto it = ex.stage.find(key);
      int stage = it == ex.stage.end() ? 0 : it->second;
      if (stage == 0) {
        REQUIRE(after.count(key) == 1);
        CHECK(after.at(key) == was);
        CHECK(archive.count(key) == 0);
        continue;
      }
      switch (rule.stages[static_cast<std::size_t>(stage - 1)].action) {
        case Action::erase:
          CHECK(after.count(key) == 0);
          CHECK(archive.count(key) == 0);
          break;
        case Action::archive:
          CHECK(after.count(key) == 0);
          REQUIRE(archive.count(key) == 1);
          CHECK(archive.at(key) == was);
          break;
        case Action::anonymize: {
          REQUIRE(after.count(key) == 1);
          const Row& now = after.at(key);
          for (const auto& [column, value] : was) {
            INFO("column " << column);
            bool nulled = false, coded = false;
            for (const auto& c : rule.anonymize->columns) {
              if (c.column == column) {
                nulled = c.method.kind == AnonymizeMethod::Kind::null;
                coded = c.method.kind == AnonymizeMethod::Kind::hmac;
              }
            }
            if (column == rule.anonymize->mark)
              CHECK_FALSE(is_null(now.at(column)));
            else if (nulled)
              CHECK(is_null(now.at(column)));
            else if (coded)
              CHECK(text_of(now.at(column)) == hmac_sha256_hex(kKey, text_of(value)));
            else
              CHECK(now.at(column) == value);
          }
          break;
        }
      }
    }
  }
}
