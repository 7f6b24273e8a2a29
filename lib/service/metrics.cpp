#include "service/metrics.hpp"

#include <fmt/format.h>

namespace retentiond {
namespace {

// Label values escape backslash, double quote and newline.
std::string label_value(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

void family(std::string& out, std::string_view name, std::string_view help) {
  out += fmt::format("# HELP {} {}\n# TYPE {} gauge\n", name, help, name);
}

}  // namespace

int SweepRecord::errors() const {
  int n = setup_error ? 1 : 0;
  for (const auto& e : report.entries) n += e.error ? 1 : 0;
  return n;
}

std::string render_metrics(const SweepRecord& record) {
  using std::chrono::duration;
  std::string out;
  double started = duration<double>(record.started.time_since_epoch()).count();
  family(out, "retentiond_last_sweep_start_timestamp_seconds",
         "When the last sweep started, in seconds since the Unix epoch.");
  out += fmt::format("retentiond_last_sweep_start_timestamp_seconds {:.3f}\n", started);
  family(out, "retentiond_last_sweep_duration_seconds", "How long the last sweep ran.");
  out += fmt::format("retentiond_last_sweep_duration_seconds {:.3f}\n", record.duration.count());
  family(out, "retentiond_last_sweep_success",
         "1 when the last sweep ended with nothing failed and nothing left undone, else 0.");
  out += fmt::format("retentiond_last_sweep_success {}\n", record.success() ? 1 : 0);
  family(out, "retentiond_last_sweep_exit_code",
         "The exit status the last sweep would have had as 'retentiond sweep' (sysexits).");
  out += fmt::format("retentiond_last_sweep_exit_code {}\n", static_cast<int>(record.code));
  family(out, "retentiond_last_sweep_errors",
         "Rule entries of the last sweep that failed, plus 1 when the sweep could not start.");
  out += fmt::format("retentiond_last_sweep_errors {}\n", record.errors());
  family(out, "retentiond_last_sweep_interrupted",
         "1 when the last sweep was stopped between batches by a shutdown.");
  out += fmt::format("retentiond_last_sweep_interrupted {}\n", record.interrupted ? 1 : 0);
  family(out, "retentiond_last_sweep_dry_run",
         "1 when the daemon only plans (run --dry-run): nothing was written to any store.");
  out += fmt::format("retentiond_last_sweep_dry_run {}\n", record.dry_run ? 1 : 0);

  struct Count {
    const char* name;
    const char* help;
    std::int64_t Counts::*member;
  };
  static constexpr Count counts[] = {
      {"matched_records", "Records past the stage's period, not held, that the stage acts on.",
       &Counts::matched},
      {"affected_records", "Records the last sweep changed (0 in a dry run).", &Counts::affected},
      {"held_records", "Records past the period but held.", &Counts::held},
      {"undated_records", "Records whose anchor is missing or unreadable, left alone.",
       &Counts::undated},
      {"conflicts",
       "Archive rows left in place: the archive holds the same key with other content.",
       &Counts::conflicts},
  };
  for (const auto& count : counts) {
    std::string name = fmt::format("retentiond_last_sweep_{}", count.name);
    family(out, name, count.help);
    for (const auto& e : record.report.entries) {
      out += fmt::format("{}{{rule=\"{}\",stage=\"{}\",action=\"{}\",store=\"{}\"}} {}\n", name,
                         label_value(e.rule), e.stage, label_value(e.action), label_value(e.store),
                         e.counts.*count.member);
    }
  }
  family(out, "retentiond_last_sweep_rule_failed",
         "1 for a rule, stage and store whose work failed in the last sweep.");
  for (const auto& e : record.report.entries) {
    out += fmt::format(
        "retentiond_last_sweep_rule_failed{{rule=\"{}\",stage=\"{}\",action=\"{}\",store=\"{}\"}} "
        "{}\n",
        label_value(e.rule), e.stage, label_value(e.action), label_value(e.store), e.error ? 1 : 0);
  }
  return out;
}

}  // namespace retentiond
