#include "service/notifier.hpp"

#include <systemd/sd-daemon.h>

#include <cstdint>
#include <string>

namespace retentiond {

void SystemdNotifier::notify(std::string_view state) {
  // Failures (no manager listening any more) are not the daemon's problem:
  // sd_notify's result is informational only.
  std::string text(state);
  (void)sd_notify(0, text.c_str());
}

std::optional<std::chrono::microseconds> SystemdNotifier::watchdog_timeout() const {
  std::uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return std::nullopt;
  return std::chrono::microseconds(usec);
}

}  // namespace retentiond
