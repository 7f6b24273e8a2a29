#include "service/metrics.hpp"

#include <catch2/catch.hpp>
#include <chrono>
#include <sstream>
#include <string>

using namespace retentiond;
using Catch::Contains;

namespace {

ReportEntry entry(std::string rule, int stage, std::string action, std::string store, Counts c) {
  ReportEntry e;
  e.rule = std::move(rule);
  e.stage = stage;
  e.action = std::move(action);
  e.store = std::move(store);
  e.counts = c;
  return e;
}

SweepRecord record() {
  SweepRecord r;
  r.started = std::chrono::system_clock::time_point{std::chrono::seconds{1736478900}};
  r.duration = std::chrono::milliseconds{2500};
  r.report.entries.push_back(entry("amo-health-data", 1, "archive", "health", {120, 3, 2, 120, 0}));
  r.report.entries.push_back(
      entry("amo-health-data", 2, "delete", "health_archive", {7, 0, 0, 7, 0}));
  return r;
}

// Every line that is not a comment is "name{labels} value" or "name value".
bool well_formed(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) continue;
    auto space = line.rfind(' ');
    if (space == std::string::npos || space + 1 == line.size()) return false;
  }
  return !text.empty() && text.back() == '\n';
}

}  // namespace

TEST_CASE("metrics: start, duration and success of the last sweep", "[daemon]") {
  auto text = render_metrics(record());
  CHECK(well_formed(text));
  CHECK_THAT(text, Contains("# TYPE retentiond_last_sweep_start_timestamp_seconds gauge\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_start_timestamp_seconds 1736478900.000\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_duration_seconds 2.500\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_success 1\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_errors 0\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_dry_run 0\n"));
}

TEST_CASE("metrics: counts per rule, stage, action and store", "[daemon]") {
  auto text = render_metrics(record());
  CHECK_THAT(text, Contains("retentiond_last_sweep_matched_records{rule=\"amo-health-data\","
                            "stage=\"1\",action=\"archive\",store=\"health\"} 120\n"));
  CHECK_THAT(text, Contains("retentiond_last_sweep_held_records{rule=\"amo-health-data\","
                            "stage=\"1\",action=\"archive\",store=\"health\"} 3\n"));
  CHECK_THAT(text, Contains("retentiond_last_sweep_undated_records{rule=\"amo-health-data\","
                            "stage=\"1\",action=\"archive\",store=\"health\"} 2\n"));
  CHECK_THAT(text, Contains("retentiond_last_sweep_affected_records{rule=\"amo-health-data\","
                            "stage=\"2\",action=\"delete\",store=\"health_archive\"} 7\n"));
  CHECK_THAT(text, Contains("retentiond_last_sweep_rule_failed{rule=\"amo-health-data\","
                            "stage=\"2\",action=\"delete\",store=\"health_archive\"} 0\n"));
}

TEST_CASE("metrics: a failed rule and a sweep that could not start are errors", "[daemon]") {
  auto r = record();
  r.report.entries[1].error = "store 'health_archive': disk I/O error";
  r.code = ExitCode::unavailable;
  auto text = render_metrics(r);
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_success 0\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_errors 1\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_exit_code 69\n"));
  CHECK_THAT(text, Contains("stage=\"2\",action=\"delete\",store=\"health_archive\"} 1\n"));

  SweepRecord refused;
  refused.setup_error = "another sweep is running";
  refused.code = ExitCode::temp_fail;
  auto none = render_metrics(refused);
  CHECK(well_formed(none));
  CHECK_THAT(none, Contains("\nretentiond_last_sweep_success 0\n"));
  CHECK_THAT(none, Contains("\nretentiond_last_sweep_errors 1\n"));
}

TEST_CASE("metrics: an interrupted sweep is not a success", "[daemon]") {
  auto r = record();
  r.interrupted = true;
  auto text = render_metrics(r);
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_success 0\n"));
  CHECK_THAT(text, Contains("\nretentiond_last_sweep_interrupted 1\n"));
}

TEST_CASE("metrics: label values are escaped", "[daemon]") {
  SweepRecord r;
  r.report.entries.push_back(entry("r", 1, "delete", "a \"b\"\\c\nd", {1, 0, 0, 1, 0}));
  CHECK_THAT(render_metrics(r), Contains("store=\"a \\\"b\\\"\\\\c\\nd\"} 1\n"));
}
