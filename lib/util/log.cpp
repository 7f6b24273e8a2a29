#include "util/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ostream>

namespace retentiond {

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "debug") return LogLevel::debug;
  if (text == "info") return LogLevel::info;
  if (text == "notice") return LogLevel::notice;
  if (text == "warning") return LogLevel::warning;
  if (text == "error") return LogLevel::error;
  return std::nullopt;
}

bool Logger::stderr_is_journal() {
  // JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected; it is
  // inherited by children whose stderr may be something else, so compare.
  const char* env = std::getenv("JOURNAL_STREAM");
  if (env == nullptr) return false;
  unsigned long long dev = 0, ino = 0;
  if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2) return false;
  struct stat st {};
  if (fstat(STDERR_FILENO, &st) != 0) return false;
  return st.st_dev == dev && st.st_ino == ino;
}

void Logger::log(LogLevel level, std::string_view message) {
  if (static_cast<int>(level) > static_cast<int>(threshold_)) return;
  std::lock_guard lock(mutex_);
  if (journal_) {
    out_ << '<' << static_cast<int>(level) << '>' << message << '\n';
  } else {
    std::string_view tag = level == LogLevel::error     ? "error: "
                           : level == LogLevel::warning ? "warning: "
                                                        : "";
    out_ << "retentiond: " << tag << message << '\n';
  }
  out_.flush();
}

}  // namespace retentiond
