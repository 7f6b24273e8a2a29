#include "time/timetable.hpp"

#include <date/date.h>
#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "util/files.hpp"

namespace retentiond {

namespace fs = std::filesystem;
using std::chrono::sys_seconds;

NextSweep next_sweep(const Schedule& schedule, const date::time_zone& zone,
                     std::optional<sys_seconds> last_start, sys_seconds now,
                     std::chrono::seconds delay) {
  NextSweep next;
  if (last_start && *last_start < now) {
    sys_seconds due = next_run_after(schedule, *last_start, zone);
    if (due <= now) {
      next.at = now + delay;
      next.catch_up = true;
      next.due = due;
      return next;
    }
  }
  next.at = next_run_after(schedule, now, zone);
  next.due = next.at;
  return next;
}

fs::path last_sweep_path(const fs::path& state_dir, bool dry_run) {
  return state_dir / (dry_run ? "last-plan" : "last-sweep");
}

Result<std::optional<sys_seconds>> read_last_sweep(const fs::path& file) {
  std::error_code ec;
  if (!fs::exists(file, ec) && !ec) return std::nullopt;
  std::ifstream in(file);
  if (!in) {
    return fail(ExitCode::no_input,
                fmt::format("cannot read {}: {}", file.string(), std::strerror(errno)));
  }
  std::string line;
  std::getline(in, line);
  std::istringstream text(line);
  sys_seconds start;
  text >> date::parse("%Y-%m-%dT%H:%M:%SZ", start);
  if (!text || text.peek() != std::char_traits<char>::eof()) {
    return fail(
        ExitCode::data_error,
        fmt::format("{}: '{}' is not a time; expected YYYY-MM-DDTHH:MM:SSZ", file.string(), line));
  }
  return start;
}

Result<void> write_last_sweep(const fs::path& file, sys_seconds start) {
  return write_file_atomically(file, format_utc(start) + "\n", 0600);
}

std::string format_utc(sys_seconds t) { return date::format("%Y-%m-%dT%H:%M:%SZ", t); }

std::string format_local(sys_seconds t, const date::time_zone& zone) {
  return date::format("%Y-%m-%d %H:%M:%S %Z", date::make_zoned(&zone, t));
}

}  // namespace retentiond
