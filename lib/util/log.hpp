// Logging to stderr. Under systemd (JOURNAL_STREAM names our stderr) each line
// carries a "<N>" syslog priority prefix that journald turns into the entry's
// priority; elsewhere lines are plain.
#pragma once

#include <fmt/format.h>

#include <iosfwd>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace retentiond {

enum class LogLevel { debug = 7, info = 6, notice = 5, warning = 4, error = 3 };

std::optional<LogLevel> parse_log_level(std::string_view text);

class Logger {
 public:
  Logger(std::ostream& out, LogLevel threshold, bool journal_prefixes)
      : out_(out), threshold_(threshold), journal_(journal_prefixes) {}

  // True when stderr is the journal stream named by $JOURNAL_STREAM.
  static bool stderr_is_journal();

  void log(LogLevel level, std::string_view message);
  template <class... Args>
  void debug(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::debug, fmt::format(f, std::forward<Args>(a)...));
  }
  template <class... Args>
  void info(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::info, fmt::format(f, std::forward<Args>(a)...));
  }
  template <class... Args>
  void warning(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::warning, fmt::format(f, std::forward<Args>(a)...));
  }
  template <class... Args>
  void error(fmt::format_string<Args...> f, Args&&... a) {
    log(LogLevel::error, fmt::format(f, std::forward<Args>(a)...));
  }

 private:
  std::ostream& out_;
  LogLevel threshold_;
  bool journal_;
  std::mutex mutex_;  // the sweep thread and the loop thread both log
};

}  // namespace retentiond
