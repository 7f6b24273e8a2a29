#include "report/progress_line.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <ostream>

namespace retentiond {
namespace {

// Redrawing more often than this only costs the terminal.
constexpr std::chrono::milliseconds kRedrawEvery{100};

std::string grouped(std::int64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string duration_text(double seconds) {
  auto s = static_cast<long>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
}

}  // namespace

ProgressLine::ProgressLine(std::ostream& err, std::string verb, SteadyNow now)
    : err_(err), verb_(std::move(verb)), now_(std::move(now)) {}

ProgressLine::~ProgressLine() { finish(); }

std::string ProgressLine::text(const SweepProgress& p, std::chrono::duration<double> elapsed) {
  std::string head = fmt::format("{} stage {} on {}", p.rule, p.stage, p.store);
  switch (p.phase) {
    case SweepProgress::Phase::counting:
      return head + ": counting…";
    case SweepProgress::Phase::acting: {
      if (p.matched == SweepProgress::kUnknown) {
        // A files store counts as it walks: no total, no time left.
        std::string line = fmt::format("{}: {} done", head, grouped(p.done));
        double secs = elapsed.count();
        if (p.done > 0 && secs > 0)
          line += fmt::format("  {}/s", grouped(static_cast<std::int64_t>(p.done / secs)));
        return line;
      }
      std::string line = fmt::format("{}: {} / {}", head, grouped(p.done), grouped(p.matched));
      if (p.matched > 0) line += fmt::format(" ({}%)", p.done * 100 / p.matched);
      double secs = elapsed.count();
      if (p.done > 0 && secs > 0) {
        double rate = static_cast<double>(p.done) / secs;
        line += fmt::format("  {}/s", grouped(static_cast<std::int64_t>(rate)));
        if (p.matched > p.done) line += "  " + duration_text((p.matched - p.done) / rate) + " left";
      }
      return line;
    }
    case SweepProgress::Phase::finished:
      return fmt::format("{}: {} matched, {} done in {}", head, grouped(p.matched), grouped(p.done),
                         duration_text(elapsed.count()));
  }
  return head;
}

void ProgressLine::update(const SweepProgress& p) {
  auto now = now_();
  std::string key = fmt::format("{}/{}/{}", p.rule, p.stage, p.store);
  if (key != current_) {
    finish();
    current_ = key;
    started_ = now;
    last_drawn_ = {};
  }
  bool last = p.phase == SweepProgress::Phase::finished;
  if (!last && open_ && now - last_drawn_ < kRedrawEvery) return;
  last_drawn_ = now;
  err_ << "\r\033[K" << verb_ << ": " << text(p, now - started_);
  open_ = true;
  if (last) finish();
  err_.flush();
}

void ProgressLine::finish() {
  if (open_) err_ << '\n' << std::flush;
  open_ = false;
  current_.clear();
}

bool stderr_is_interactive() {
  // Under systemd the journal has stderr and the manager gets STATUS=.
  if (std::getenv("INVOCATION_ID") || std::getenv("JOURNAL_STREAM")) return false;
  return ::isatty(STDERR_FILENO) == 1;
}

}  // namespace retentiond
