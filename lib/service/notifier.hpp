// The daemon's messages to its service manager (sd_notify): READY=1,
// STATUS=..., RELOADING=1, STOPPING=1, WATCHDOG=1. Behind an interface so that
// tests can record them.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace retentiond {

class Notifier {
 public:
  virtual ~Notifier() = default;
  // One datagram of newline-separated "KEY=VALUE" assignments.
  virtual void notify(std::string_view state) = 0;
  // How often the service manager wants WATCHDOG=1 at the latest
  // (WatchdogSec=), or nullopt when it does not watch us.
  virtual std::optional<std::chrono::microseconds> watchdog_timeout() const = 0;
};

// libsystemd's sd_notify: to $NOTIFY_SOCKET, nothing when it is unset.
// WATCHDOG_USEC (and WATCHDOG_PID, when set, must name this process) says
// the watchdog is on.
class SystemdNotifier final : public Notifier {
 public:
  void notify(std::string_view state) override;
  std::optional<std::chrono::microseconds> watchdog_timeout() const override;
};

// A notifier that says nothing: a test or a run outside systemd.
class NullNotifier final : public Notifier {
 public:
  void notify(std::string_view) override {}
  std::optional<std::chrono::microseconds> watchdog_timeout() const override {
    return std::nullopt;
  }
};

}  // namespace retentiond
