#include "report/progress_line.hpp"

#include <catch2/catch.hpp>
#include <sstream>

namespace retentiond::test {
namespace {

using namespace std::chrono_literals;

SweepProgress at(SweepProgress::Phase phase, std::int64_t done, std::int64_t matched) {
  SweepProgress p{"amo-health-data", 1, "amo", 0};
  p.phase = phase;
  p.done = done;
  p.matched = matched;
  return p;
}

}  // namespace

TEST_CASE("a progress line says done / matched, the rate and the time left", "[progress]") {
  using P = SweepProgress::Phase;
  CHECK(ProgressLine::text(at(P::counting, 0, 0), 0s) ==
        "amo-health-data stage 1 on amo: counting…");
  CHECK(ProgressLine::text(at(P::acting, 412000, 1000000), 4s) ==
        "amo-health-data stage 1 on amo: 412,000 / 1,000,000 (41%)  103,000/s  6s left");
  CHECK(ProgressLine::text(at(P::acting, 0, 1000000), 0s) ==
        "amo-health-data stage 1 on amo: 0 / 1,000,000 (0%)");
  CHECK(ProgressLine::text(at(P::acting, 10, 100000), 2s) ==
        "amo-health-data stage 1 on amo: 10 / 100,000 (0%)  5/s  5h33m left");
  CHECK(ProgressLine::text(at(P::finished, 1000000, 1000000), 75s) ==
        "amo-health-data stage 1 on amo: 1,000,000 matched, 1,000,000 done in 1m15s");
}

TEST_CASE("a progress line is rewritten in place and ended once per entry", "[progress]") {
  using P = SweepProgress::Phase;
  std::ostringstream err;
  auto now = std::chrono::steady_clock::time_point{};
  {
    ProgressLine line(err, "sweep", [&] { return now; });
    line.update(at(P::counting, 0, 0));
    now += 1s;
    line.update(at(P::acting, 500, 1000));
    now += 10ms;  // too soon to redraw
    line.update(at(P::acting, 600, 1000));
    now += 1s;
    line.update(at(P::finished, 1000, 1000));
    auto other = at(P::counting, 0, 0);
    other.stage = 2;
    line.update(other);
  }  // the unfinished second entry's line is ended too
  std::string text = err.str();
  CHECK(text ==
        "\r\033[Ksweep: amo-health-data stage 1 on amo: counting…"
        "\r\033[Ksweep: amo-health-data stage 1 on amo: 500 / 1,000 (50%)  500/s  1s left"
        "\r\033[Ksweep: amo-health-data stage 1 on amo: 1,000 matched, 1,000 done in 2s\n"
        "\r\033[Ksweep: amo-health-data stage 2 on amo: counting…\n");
}

}  // namespace retentiond::test
