// `plan --compare OLD.yaml`: the impact of a policy change on the MGEN demo
// data, checked against the calendar counted here by hand (the contract's
// month arithmetic and the anchors' local days in Europe/Paris, not the
// library's), today and at each forecast day; renames, additions and
// removals called out; the command's JSON, HTML and exit codes; and not one
// byte of any store changed.
#include "report/policy_compare.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "chromium.hpp"
#include "mgen_demo.hpp"
#include "policy/policy.hpp"
#include "store_fixture.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "sweep_support.hpp"
#include "test_support.hpp"
#include "time/anchor.hpp"
#include "util/digest.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
namespace fs = std::filesystem;

namespace {

const Day kAsOf = test::day(2026, 6, 15);

std::string mgen_text() {
  return test::read_file(fs::path(RETENTIOND_SOURCE_DIR) / "policies" / "mgen.yaml");
}

// `text` with `from` replaced once (it must be there).
std::string replaced(std::string text, const std::string& from, const std::string& to) {
  auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

// policies/mgen.yaml with the art. 10 cookies kept `months` months.
std::string with_cookie_months(int months) {
  std::string text = mgen_text();
  auto rule = text.find("- name: audience-cookies");
  REQUIRE(rule != std::string::npos);
  auto at = text.find("keep_for: 13 months", rule);
  REQUIRE(at != std::string::npos);
  return text.replace(at, 19, fmt::format("keep_for: {} months", months));
}

// The MGEN demo stores and two versions of its policy.
struct Versions {
  TempDir dir;
  std::shared_ptr<const Policy> old_policy;
  std::shared_ptr<const Policy> current;

  Versions(const std::string& old_text, const std::string& current_text) {
    dir.write("hmac.key", "compare-test-key-0123456789abcdef-0123456789", 0600);
    dir.write("policy.yaml", current_text);
    dir.write("old.yaml", old_text);
    demo::GenerateOptions options;
    options.seed = 11;
    options.rows = 6000;
    options.as_of = kAsOf;
    demo::generate(dir.path(), options);
    old_policy = load(dir / "old.yaml");
    current = load(dir / "policy.yaml");
  }

  static std::shared_ptr<const Policy> load(const fs::path& file) {
    auto loaded = load_policy(file);
    INFO((loaded ? "" : loaded.error().message));
    REQUIRE(loaded);
    return *loaded;
  }

  PolicyComparison compare(std::vector<std::string> rules = {}) const {
    return compare_policies(*old_policy, *current, {kAsOf, 12, std::move(rules)});
  }
};

// The contract's calendar, written out here: D + N months, on the last day
// of the target month where D's day does not exist there.
Day plus_months(Day d, int n) {
  date::year_month_day ymd{d};
  date::year_month ym = date::year_month{ymd.year(), ymd.month()} + date::months{n};
  date::day last = date::year_month_day_last{ym.year(), date::month_day_last{ym.month()}}.day();
  return Day{ym.year() / ym.month() / std::min(ymd.day(), last)};
}

// The local days (Europe/Paris) of the dated cookies, from their unix times.
std::vector<Day> cookie_days(const fs::path& web_db) {
  std::vector<Day> out;
  sqlite::Database db(web_db, sqlite::OpenMode::read_only);
  sqlite::Statement s(db, "SELECT set_at FROM cookies WHERE typeof(set_at) = 'integer'");
  const auto* paris = date::locate_zone("Europe/Paris");
  while (s.step()) {
    std::chrono::sys_seconds t{std::chrono::seconds{s.column_int(0)}};
    auto local = paris->to_local(t);
    out.push_back(Day{std::chrono::floor<date::days>(local).time_since_epoch()});
  }
  return out;
}

// Cookies past `months` months on `day`.
std::int64_t past(const std::vector<Day>& anchors, int months, Day day) {
  std::int64_t n = 0;
  for (Day a : anchors) n += plus_months(a, months) <= day;
  return n;
}

const RuleComparison& rule_of(const PolicyComparison& c, const std::string& name) {
  for (const auto& r : c.rules) {
    if (r.rule == name) return r;
  }
  FAIL("no rule " << name << " in the comparison");
  throw std::logic_error("unreachable");
}

// Every file of the data set, its SHA-256 and time of last change. SQLite's
// -shm index and an empty -wal aside: any reader of a WAL database may
// create them, as the contract allows.
std::set<std::string> digests(const fs::path& dir) {
  std::set<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().string().ends_with("-shm")) continue;
    if (e.path().string().ends_with("-wal") && e.file_size() == 0) continue;
    out.insert(fmt::format("{} {} {}", fs::relative(e.path(), dir).string(),
                           sha256_hex(test::read_file(e.path())),
                           e.last_write_time().time_since_epoch().count()));
  }
  return out;
}

}  // namespace

TEST_CASE("compare: cookies at 13 against 25 months, exactly as the calendar says", "[compare]") {
  // The current policy keeps cookies 13 months, the old one kept them 25.
  Versions v(with_cookie_months(25), with_cookie_months(13));
  auto before = digests(v.dir.path());
  PolicyComparison c = v.compare();
  CHECK(c.code == ExitCode::ok);
  REQUIRE(c.forecast.size() == 12);
  CHECK(c.forecast.front() == test::day(2026, 6, 30));
  CHECK(c.forecast.back() == test::day(2027, 5, 31));

  const RuleComparison& cookies = rule_of(c, "audience-cookies");
  CHECK(cookies.status == RuleStatus::changed);
  CHECK(cookies.selection_changes.empty());
  REQUIRE(cookies.stages.size() == 1);
  const StageComparison& stage = cookies.stages.front();
  CHECK(stage.exact);
  CHECK(!stage.error);
  REQUIRE(stage.points.size() == 13);

  auto anchors = cookie_days(v.dir / "web.db");
  std::int64_t newly_total = 0;
  for (const auto& p : stage.points) {
    INFO("as of " << format_day(p.as_of));
    std::int64_t now13 = past(anchors, 13, p.as_of), now25 = past(anchors, 25, p.as_of);
    CHECK(p.new_count == now13);
    CHECK(p.old_count == now25);
    CHECK(p.newly_due == now13 - now25);
    CHECK(p.no_longer_due == 0);
    newly_total += *p.newly_due;
  }
  CHECK(stage.points.front().newly_due > 100);  // twelve months of cookies, not a few
  CHECK(newly_total > 0);

  // Every other rule is the same in both versions: nothing differs, nothing counted.
  for (const auto& r : c.rules) {
    if (r.rule == "audience-cookies") continue;
    INFO(r.rule);
    CHECK(r.status == RuleStatus::unchanged);
    for (const auto& s : r.stages) {
      for (const auto& p : s.points) {
        CHECK(p.newly_due == 0);
        CHECK(p.no_longer_due == 0);
      }
    }
  }

  // The reverse comparison says the reverse.
  PolicyComparison back = compare_policies(*v.current, *v.old_policy, {kAsOf, 12, {}});
  const auto& reverse = rule_of(back, "audience-cookies").stages.front();
  for (std::size_t i = 0; i < reverse.points.size(); ++i) {
    CHECK(reverse.points[i].newly_due == 0);
    CHECK(reverse.points[i].no_longer_due == stage.points[i].newly_due);
  }

  CHECK(digests(v.dir.path()) == before);
}

TEST_CASE("compare: a rule renamed, one added, one removed, a stage moved", "[compare]") {
  std::string current = mgen_text();
  std::string old = replaced(mgen_text(), "- name: audience-visits", "- name: raw-visit-data");
  // The old version had no rule for the public space; the current one has no
  // rule on the specific services.
  auto cut = [&](std::string text, const std::string& name) {
    auto from = text.find("  - name: " + name);
    REQUIRE(from != std::string::npos);
    auto to = text.find("  - name: ", from + 4);
    auto comment = text.rfind("\n\n", to);
    return text.erase(from,
                      (comment != std::string::npos && comment > from ? comment + 2 : to) - from);
  };
  old = cut(old, "public-space-requests");
  current = cut(current, "specific-services-contract");
  // Health data: 10 years in the archive becomes 12.
  current = replaced(current, "after: 13 years", "after: 15 years");
  Versions v(old, current);
  PolicyComparison c = v.compare();
  CHECK(c.code == ExitCode::ok);

  const auto& renamed = rule_of(c, "audience-visits");
  CHECK(renamed.status == RuleStatus::renamed);
  CHECK(renamed.old_name == "raw-visit-data");
  CHECK(renamed.stages.front().exact);
  CHECK(renamed.stages.front().points.front().newly_due == 0);
  CHECK(rule_of(c, "public-space-requests").status == RuleStatus::added);
  CHECK(rule_of(c, "specific-services-contract").status == RuleStatus::removed);
  CHECK(rule_of(c, "public-space-requests").stages.front().points.front().new_count > 0);
  CHECK(!rule_of(c, "public-space-requests").stages.front().points.front().newly_due);

  // The delete stage of health data moved: the archive stage did not.
  const auto& health = rule_of(c, "amo-health-data");
  CHECK(health.status == RuleStatus::changed);
  REQUIRE(health.stages.size() == 2);
  CHECK(health.stages[0].changes.empty());
  CHECK(health.stages[1].exact);
  const auto& today = health.stages[1].points.front();
  CHECK(today.no_longer_due > 0);
  CHECK(today.newly_due == 0);
  CHECK(*today.new_count - *today.old_count == *today.newly_due - *today.no_longer_due);
  // Counted by hand: claims paid between the two cutoffs, not held (no hold on this rule).
  sqlite::Database db(v.dir / "amo.db", sqlite::OpenMode::read_only);
  sqlite::Statement s(db,
                      "SELECT count(*) FROM claims WHERE paid_on > ? AND paid_on <= ? AND "
                      "date(paid_on) IS NOT NULL AND date(paid_on) = paid_on");
  s.bind(1, format_day(*today.new_cutoff));
  s.bind(2, format_day(*today.old_cutoff));
  REQUIRE(s.step());
  CHECK(today.no_longer_due == s.column_int(0));

  // --rule takes a name of either version.
  PolicyComparison only = v.compare({"raw-visit-data"});
  REQUIRE(only.rules.size() == 1);
  CHECK(only.rules.front().rule == "audience-visits");

  // The text names them.
  std::ostringstream text;
  write_text_comparison(c, text);
  CHECK(text.str().find("renamed   raw-visit-data \u2192 audience-visits") != std::string::npos);
  CHECK(text.str().find("added     public-space-requests") != std::string::npos);
  CHECK(text.str().find("removed   specific-services-contract") != std::string::npos);
  CHECK(text.str().find("stage 2: after: 13 years \u2192 15 years") != std::string::npos);
}

TEST_CASE("compare: a selection that differs gives both counts, no exact difference", "[compare]") {
  std::string old = mgen_text();
  std::string current = replaced(mgen_text(), "anchor: ended_on                  # NULL while",
                                 "anchor: joined_on                  # NULL while");
  Versions v(old, current);
  PolicyComparison c = v.compare({"supplementary-membership"});
  REQUIRE(c.rules.size() == 1);
  const auto& r = c.rules.front();
  CHECK(r.status == RuleStatus::changed);
  REQUIRE(r.selection_changes.size() == 1);
  CHECK(r.selection_changes.front() == "anchor: ended_on (date) \u2192 joined_on (date)");
  const auto& p = r.stages.front().points.front();
  CHECK(!r.stages.front().exact);
  CHECK(!p.newly_due);
  CHECK(!p.no_longer_due);
  CHECK(p.old_count > 0);
  CHECK(p.new_count > p.old_count);  // joined long before they ended
}

TEST_CASE("compare: the command's JSON, HTML and exit codes", "[compare][cli]") {
  Versions v(with_cookie_months(25), with_cookie_months(13));
  TempDir scratch;
  auto before = digests(v.dir.path());
  std::vector<std::string> base{"-c",          (v.dir / "policy.yaml").string(),
                                "--state-dir", (scratch / "state").string(),
                                "plan",        "--as-of",
                                "2026-06-15"};
  auto run = [&](std::vector<std::string> more) {
    auto args = base;
    args.insert(args.end(), more.begin(), more.end());
    return test::run_retentiond(scratch, args);
  };

  auto json = run({"--compare", (v.dir / "old.yaml").string(), "--format", "json"});
  INFO(json.err);
  REQUIRE(json.exit_code == 0);
  auto doc = nlohmann::json::parse(json.out);  // one document, nothing else on stdout
  CHECK(doc["old_policy"]["sha256"] == v.old_policy->sha256);
  CHECK(doc["summary"]["changed"] == nlohmann::json::array({"audience-cookies"}));
  std::int64_t newly = -1;
  for (const auto& r : doc["rules"]) {
    if (r["rule"] == "audience-cookies") newly = r["stages"][0]["points"][0]["newly_due"];
  }
  auto anchors = cookie_days(v.dir / "web.db");
  CHECK(newly == past(anchors, 13, kAsOf) - past(anchors, 25, kAsOf));
  CHECK(doc["rules"][0]["stages"][0]["points"].size() == 13);

  auto text = run({"--compare", (v.dir / "old.yaml").string()});
  CHECK(text.exit_code == 0);
  CHECK(text.out.find("audience-cookies, stage 1 (delete), web.cookies: after 25 months \u2192 "
                      "13 months") != std::string::npos);
  CHECK(text.out.find(fmt::format("2026-06-15  2024-05-15  2025-05-15  {:>12}  {:>12}  {:>10}",
                                  past(anchors, 25, kAsOf), past(anchors, 13, kAsOf), newly)) !=
        std::string::npos);

  auto html = run({"--compare", (v.dir / "old.yaml").string(), "--format", "html"});
  CHECK(html.exit_code == 0);
  CHECK(html.out.rfind("<!DOCTYPE html>", 0) == 0);
  for (const char* banned : {"http://", "https://", "<script", "src=", "<link", "url("})
    CHECK(html.out.find(banned) == std::string::npos);
  std::regex row(
      R"re(data-rule="audience-cookies" data-stage="1" data-as-of="2026-06-15"[^>]*>[\s\S]*?data-field="newly_due">([^<]*)<)re");
  std::smatch m;
  REQUIRE(std::regex_search(html.out, m, row));
  std::string digits;
  for (char ch : m[1].str())
    if (ch >= '0' && ch <= '9') digits += ch;
  CHECK(std::stoll(digits) == newly);

  // OLD missing: 66; invalid: 78 naming OLD's line and column.
  auto missing = run({"--compare", (v.dir / "nowhere.yaml").string()});
  CHECK(missing.exit_code == 66);
  CHECK(missing.err.find("nowhere.yaml") != std::string::npos);
  CHECK(missing.out.empty());
  scratch.write("bad.yaml",
                replaced(mgen_text(), "    keep_for: 10 years", "    keep_fro: 10 years"));
  auto invalid = run({"--compare", (scratch / "bad.yaml").string()});
  CHECK(invalid.exit_code == 78);
  CHECK(std::regex_search(invalid.err, std::regex(R"(bad\.yaml:\d+:\d+: )")));
  CHECK(invalid.out.empty());
  auto unknown_rule = run({"--compare", (v.dir / "old.yaml").string(), "--rule", "nope"});
  CHECK(unknown_rule.exit_code == 64);

  // A store that cannot be opened: 69, the comparison still printed.
  fs::rename(v.dir / "web.db", v.dir / "web.db.away");
  auto unavailable = run({"--compare", (v.dir / "old.yaml").string(), "--format", "json"});
  CHECK(unavailable.exit_code == 69);
  CHECK(nlohmann::json::parse(unavailable.out)["rules"].is_array());
  CHECK(unavailable.err.find("web") != std::string::npos);
  fs::rename(v.dir / "web.db.away", v.dir / "web.db");

  CHECK(digests(v.dir.path()) == before);
  CHECK(!fs::exists(scratch / "state"));  // a dry run: no state directory either
}

// The page as a browser shows it: the DOM headless chromium builds holds,
// row by row, the comparison's numbers.
TEST_CASE("compare: headless chromium renders the page with the comparison's numbers",
          "[compare][chromium]") {
  namespace browser = test::browser;
  if (!fs::exists(browser::kChromium)) {
    WARN("skipped: " << browser::kChromium
                     << " is not installed (scripts/install-deps.sh --test installs it)");
    return;
  }
  Versions v(with_cookie_months(25), with_cookie_months(13));
  PolicyComparison c = v.compare();
  std::ostringstream html;
  write_html_comparison(c, html, "2026-06-15T10:00:00Z");
  TempDir scratch;
  fs::path page = scratch.write("compare.html", html.str());
  fs::create_directories(scratch / "profile");
  auto dom = browser::run(browser::chromium(scratch / "profile") + " --dump-dom " +
                          browser::shell_quoted("file://" + page.string()) + " 2>/dev/null");
  REQUIRE(dom.status == 0);
  REQUIRE(dom.out.find("</html>") != std::string::npos);
  std::map<std::string, std::int64_t> shown;
  std::regex row(
      R"re(<tr data-rule="audience-cookies" data-stage="1" data-as-of="([0-9-]+)"[^>]*>[\s\S]*?data-field="newly_due">([^<]*)<)re");
  for (std::sregex_iterator it(dom.out.begin(), dom.out.end(), row), end; it != end; ++it) {
    std::string digits;
    for (char ch : (*it)[2].str())
      if (ch >= '0' && ch <= '9') digits += ch;
    shown[(*it)[1].str()] = std::stoll(digits);
  }
  std::map<std::string, std::int64_t> expected;
  for (const auto& p : rule_of(c, "audience-cookies").stages.front().points)
    expected[format_day(p.as_of)] = *p.newly_due;
  CHECK(shown == expected);
  CHECK(expected.size() == 13);
}

// The exact difference is a store's own count: the same on every kind,
// across the live store and the archive a stage's records are in.
CONFORMANCE_ARCHIVE_TEST(compare_exact,
                         "compare: the records between two cutoffs, live and archived, not held",
                         "[compare]") {
  using test::Role;
  test::TestStores stores(variant);
  stores.add("health");
  stores.add("archive", Role::archive);
  const test::RecordSet claims{"claims", std::nullopt};
  stores.put("health", claims,
             {{"c1", "2013-06-15"},
              {"c2", "2014-01-01"},
              {"c3", "2015-06-15"},
              {"c4", "2015-06-16"},
              {"c5", "2015-06-30"},
              {"c6", "2015-07-01"},
              {"c7", "2024-01-01"},
              {"c8", std::nullopt},
              {"h1", "2014-06-01", true}});
  auto rule = [&](std::string_view delete_after) {
    return fmt::format(R"(
  - name: claims
{}    stages:
      - {{ after: 3 years, action: archive, to: archive }}
      - {{ after: {}, action: delete }}
)",
                       stores.rule_yaml("health", claims), delete_after);
  };
  auto old_policy = stores.policy(rule("13 years"));
  // A sweep under the old policy: c1 deleted, c2..c6 archived, h1 held live.
  test::Sweep sweep(stores.dir());
  REQUIRE(sweep.run(*old_policy, "2026-06-15").code == ExitCode::ok);
  REQUIRE(stores.keys("archive", claims) == std::set<std::string>{"c2", "c3", "c4", "c5", "c6"});
  auto current = stores.policy(rule("11 years"));
  const std::string live_before = stores.dump("health"), archive_before = stores.dump("archive");

  PolicyComparison c = compare_policies(*old_policy, *current, {kAsOf, 12, {}});
  CHECK(c.code == ExitCode::ok);
  REQUIRE(c.rules.size() == 1);
  const auto& stages = c.rules.front().stages;
  REQUIRE(stages.size() == 2);
  CHECK(stages[0].changes.empty());
  CHECK(stages[1].exact);
  // On 2026-06-15: anchors in (2013-06-15, 2015-06-15]: c2 and c3 (h1 held).
  const auto& today = stages[1].points[0];
  CHECK(today.old_cutoff == test::day(2013, 6, 15));
  CHECK(today.new_cutoff == test::day(2015, 6, 15));
  CHECK(today.newly_due == 2);
  CHECK(today.no_longer_due == 0);
  CHECK(today.old_count == 0);
  CHECK(today.new_count == 2);
  // On 2026-06-30: (2013-06-30, 2015-06-30]: c2 to c5.
  const auto& june = stages[1].points[1];
  CHECK(june.as_of == test::day(2026, 6, 30));
  CHECK(june.newly_due == 4);
  CHECK(stages[1].points[2].newly_due == 5);  // 2026-07-31: c6 too

  CHECK(stores.dump("health") == live_before);
  CHECK(stores.dump("archive") == archive_before);
}
