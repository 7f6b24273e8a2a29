// The auditor's HTML page: self-contained, escaped, its numbers those of the
// JSON report, its forecast what the periods say; and, where Debian's
// chromium is installed, rendered headless to a page that is not blank.
#include "report/html_report.hpp"

#include <sys/stat.h>
#include <sys/wait.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "chromium.hpp"
#include "commands/commands.hpp"
#include "mgen_demo.hpp"
#include "policy/policy.hpp"
#include "report/html_command.hpp"
#include "stores/sqlite/sqlite.hpp"
#include "sweep/sweep.hpp"
#include "test_support.hpp"
#include "time/anchor.hpp"
#include "time/calendar.hpp"
#include "time/clock.hpp"
#include "util/log.hpp"

using namespace retentiond;
using retentiond::test::TempDir;
using namespace retentiond::test::browser;
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kAsOf = "2026-06-15";

Day day(std::string_view text) {
  auto d = parse_date_text(text);
  if (!d) throw std::invalid_argument("not a date: " + std::string(text));
  return *d;
}

// The MGEN demo data set and its policy, planned at kAsOf.
struct Rendered {
  TempDir dir;
  FakeClock clock{std::chrono::system_clock::time_point{day(kAsOf)} + std::chrono::hours{10}};
  std::shared_ptr<const Policy> policy;
  Report report;
  Forecast forecast;
  std::string html;

  explicit Rendered(std::string policy_text = {}) {
    if (policy_text.empty())
      policy_text = test::read_file(fs::path(RETENTIOND_SOURCE_DIR) / "policies" / "mgen.yaml");
    dir.write("policy.yaml", policy_text);
    dir.write("hmac.key", "html-test-key-0123456789abcdef-0123456789", 0600);
    demo::GenerateOptions options;
    options.seed = 7;
    options.rows = 5000;
    options.as_of = day(kAsOf);
    demo::generate(dir.path(), options);
    auto loaded = load_policy(dir / "policy.yaml");
    INFO((loaded ? "" : loaded.error().message));
    REQUIRE(loaded);
    policy = *loaded;
    std::ostringstream log_text;
    Logger log(log_text, LogLevel::info, false);
    SweepOptions o;
    o.dry_run = true;
    o.as_of = day(kAsOf);
    auto outcome = run_sweep(*policy, o, clock, log);
    REQUIRE(outcome);
    report = outcome->report;
    auto f = forecast_expiries(*policy, day(kAsOf), clock);
    REQUIRE(f);
    forecast = *f;
    std::ostringstream out;
    write_html_report(report, *policy, forecast, out, {"2026-06-15T10:00:00Z"});
    html = out.str();
  }
};

// "1 234" (narrow no-break spaces) -> 1234.
std::int64_t number(const std::string& text) {
  std::string digits;
  for (char c : text) {
    if (c >= '0' && c <= '9') digits += c;
  }
  REQUIRE_FALSE(digits.empty());
  return std::stoll(digits);
}

// The report's numbers as the page shows them: "rule/stage/store/field" -> n,
// and "total/field" -> n.
std::map<std::string, std::int64_t> numbers_on_page(const std::string& html) {
  std::map<std::string, std::int64_t> out;
  std::regex row(
      R"re(<tr[^>]*data-rule="([^"]+)" data-stage="(\d+)" data-store="([^"]+)">([\s\S]*?)</tr>)re");
  std::regex cell(R"re(data-field="(matched|held|undated|affected|conflicts)">([^<]*)<)re");
  for (std::sregex_iterator it(html.begin(), html.end(), row), end; it != end; ++it) {
    std::string prefix = (*it)[1].str() + "/" + (*it)[2].str() + "/" + (*it)[3].str() + "/";
    std::string cells = (*it)[4].str();
    for (std::sregex_iterator c(cells.begin(), cells.end(), cell); c != end; ++c) {
      out[prefix + (*c)[1].str()] = number((*c)[2].str());
    }
  }
  std::regex total(R"re(data-total="(matched|held|undated|affected)">([^<]*)<)re");
  for (std::sregex_iterator it(html.begin(), html.end(), total), end; it != end; ++it) {
    out["total/" + (*it)[1].str()] = number((*it)[2].str());
  }
  return out;
}

std::map<std::string, std::int64_t> numbers_in_json(const nlohmann::ordered_json& j) {
  std::map<std::string, std::int64_t> out;
  for (const auto& r : j["rules"]) {
    std::string prefix = r["rule"].get<std::string>() + "/" +
                         std::to_string(r["stage"].get<int>()) + "/" +
                         r["store"].get<std::string>() + "/";
    for (const char* f : {"matched", "held", "undated", "affected"})
      out[prefix + f] = r[f].get<std::int64_t>();
  }
  for (const char* f : {"matched", "held", "undated", "affected"})
    out[std::string("total/") + f] = j["totals"][f];
  return out;
}

void check_self_contained(const std::string& html) {
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  for (const char* banned : {"http://", "https://", "<script", "src=", "<link", "@import", "url(",
                             "<iframe", "<object", "<embed", "//fonts."}) {
    INFO("the page contains " << banned);
    CHECK(html.find(banned) == std::string::npos);
  }
}

}  // namespace

TEST_CASE("html: the page is self-contained and shows the JSON report's numbers", "[html]") {
  Rendered r;
  check_self_contained(r.html);
  CHECK(r.html.find(r.report.policy_sha256) != std::string::npos);
  CHECK(r.html.find("data-field=\"as_of\">2026-06-15 (Europe/Paris)") != std::string::npos);

  auto page = numbers_on_page(r.html);
  auto json = numbers_in_json(r.report.to_json());
  CHECK(page == json);
  CHECK(json.at("total/matched") > 0);
  CHECK(json.at("total/held") > 0);
  CHECK(json.at("total/undated") > 0);

  // Every category of the policy has its section, with its legal basis and cutoffs.
  for (const auto& rule : r.policy->rules) {
    INFO(rule.name);
    CHECK(r.html.find("data-category=\"" + html_escape(rule.category) + "\"") != std::string::npos);
    CHECK(r.html.find(html_escape(rule.basis)) != std::string::npos);
  }
  for (const auto& e : r.report.entries)
    CHECK(r.html.find(">" + e.cutoff + "<") != std::string::npos);
}

TEST_CASE("html: the forecast counts what reaches its period month by month", "[html]") {
  Rendered r;
  const Forecast& f = r.forecast;
  REQUIRE(f.months.size() == 12);
  CHECK(f.months.front().first == day("2026-06-16"));  // the rest of June first
  CHECK(f.months.front().last == day("2026-06-30"));
  CHECK(f.months.back().first == day("2027-05-01"));
  CHECK(f.months.back().last == day("2027-05-31"));
  CHECK(f.errors.empty());

  // Cookies (13 months, deleted, no hold): count each month's by hand.
  const Rule& rule = *r.policy->find_rule("audience-cookies");
  std::vector<std::int64_t> expected(12, 0);
  sqlite::Database db(r.dir / "web.db", sqlite::OpenMode::read_only);
  sqlite::Statement s(db, "SELECT set_at FROM cookies");
  while (s.step()) {
    auto anchor =
        anchor_day(sqlite::to_anchor_value(s.column(0)), AnchorFormat::unixepoch, *r.policy->zone);
    if (!anchor) continue;
    Day expires = expiry_of(*anchor, rule.stages[0].after);
    for (std::size_t m = 0; m < 12; ++m) {
      if (expires >= f.months[m].first && expires <= f.months[m].last) ++expected[m];
    }
  }
  const ForecastSeries* series = nullptr;
  for (const auto& s : f.series) {
    if (s.rule == "audience-cookies") series = &s;
  }
  REQUIRE(series != nullptr);
  CHECK(series->counts == expected);
  CHECK(std::accumulate(expected.begin(), expected.end(), std::int64_t{0}) > 0);

  // Health data: both stages forecast, archive after 3 years and destruction after 13.
  int health_series = 0;
  for (const auto& s : f.series) health_series += s.rule == "amo-health-data";
  CHECK(health_series == 2);

  // The page's forecast table shows the same totals.
  auto totals = f.month_totals();
  std::regex cell(R"re(data-month="(\d+)" data-field="total">([^<]*)<)re");
  int rows = 0;
  for (std::sregex_iterator it(r.html.begin(), r.html.end(), cell), end; it != end; ++it, ++rows) {
    auto m = static_cast<std::size_t>(std::stoi((*it)[1].str()));
    CHECK(number((*it)[2].str()) == totals.at(m - 1));
  }
  CHECK(rows == 12);
}

TEST_CASE("html: text from the policy is escaped", "[html]") {
  std::string policy = test::read_file(fs::path(RETENTIOND_SOURCE_DIR) / "policies" / "mgen.yaml");
  std::string from = "basis: \"MGEN privacy policy art. 8.2\"";
  auto at = policy.find(from);
  REQUIRE(at != std::string::npos);
  policy.replace(at, from.size(),
                 R"(basis: "<script>alert('x')</script> & <img src=x onerror=y>")");
  Rendered r(policy);
  CHECK(r.html.find("<script") == std::string::npos);
  CHECK(r.html.find("<img") == std::string::npos);
  CHECK(r.html.find(
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;img src=x onerror=y&gt;") !=
        std::string::npos);
  CHECK(html_escape(R"(<a href="x">'&'</a>)") ==
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST_CASE("html: write_html_for writes the page of a command's report", "[html]") {
  Rendered r;
  std::ostringstream out, log_text;
  Logger log(log_text, LogLevel::info, false);
  Io io{out, log, r.clock};
  CHECK(write_html_for(*r.policy, r.report, {}, io) == 0);
  check_self_contained(out.str());
  CHECK(numbers_on_page(out.str()) == numbers_in_json(r.report.to_json()));
  CHECK(out.str().find("2026-06-15T10:00:00Z") !=
        std::string::npos);  // generated at, from the clock
}

TEST_CASE("html: headless chromium renders the page with the JSON report's numbers",
          "[html][chromium]") {
  if (!fs::exists(kChromium)) {
    WARN("skipped: " << kChromium
                     << " is not installed (scripts/install-deps.sh --test installs it)");
    return;
  }
  Rendered r;
  fs::path page = r.dir / "report.html";
  r.dir.write("report.html", r.html);
  fs::path blank = r.dir.write("blank.html", "<!DOCTYPE html><html><body></body></html>");
  fs::create_directories(r.dir / "profile");
  std::string browser = chromium(r.dir / "profile");

  // The DOM chromium built from the page holds the report's numbers.
  auto dom =
      run(browser + " --dump-dom " + shell_quoted("file://" + page.string()) + " 2>/dev/null");
  REQUIRE(dom.status == 0);
  REQUIRE(dom.out.find("</html>") != std::string::npos);
  CHECK(numbers_on_page(dom.out) == numbers_in_json(r.report.to_json()));

  // A screenshot that is not blank: a PNG far larger than that of an empty page.
  auto shoot = [&](const fs::path& html, const fs::path& png) {
    auto shot = run(browser + " --window-size=1200,1600 --screenshot=" + shell_quoted(png) + " " +
                    shell_quoted("file://" + html.string()) + " 2>&1");
    INFO(shot.out);
    REQUIRE(shot.status == 0);
    REQUIRE(fs::exists(png));
    std::string bytes = test::read_file(png);
    REQUIRE(bytes.rfind("\x89PNG\r\n\x1a\n", 0) == 0);
    return bytes.size();
  };
  auto report_png = shoot(page, r.dir / "report.png");
  auto blank_png = shoot(blank, r.dir / "blank.png");
  INFO("report.png " << report_png << " bytes, blank.png " << blank_png << " bytes");
  CHECK(report_png > 10 * blank_png);
  // RETENTIOND_KEEP_REPORT=DIR keeps the page and its screenshot there, to look at.
  if (const char* keep = std::getenv("RETENTIOND_KEEP_REPORT")) {
    for (const char* name : {"report.html", "report.png"}) {
      fs::copy_file(r.dir / name, fs::path(keep) / name, fs::copy_options::overwrite_existing);
    }
  }
}
