// systemd's notification protocol (sd_notify(3)), spoken directly: one datagram per state
// change to $NOTIFY_SOCKET. READY=1 once every probe is attached, STATUS= lines, WATCHDOG=1
// pings while the threads that matter are alive, STOPPING=1 at shutdown. Without
// $NOTIFY_SOCKET (not run by systemd) every call does nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace agentwall::daemon {

class Notifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID, and unsets them so that nothing the
  // agent starts inherits them.
  static Notifier from_environment();

  bool enabled() const { return fd_ >= 0; }
  // The interval systemd expects pings at (WatchdogSec); zero when the watchdog is off.
  std::chrono::microseconds watchdog_interval() const { return watchdog_; }

  bool send(std::string_view state);
  void ready(std::string_view status);
  void status(std::string_view status);
  void stopping(std::string_view status);
  // Pings at most every watchdog_interval/2.
  void watchdog(std::chrono::steady_clock::time_point now);

  Notifier(Notifier&& o) noexcept;
  Notifier& operator=(Notifier&&) = delete;
  ~Notifier();

 private:
  Notifier() = default;
  int fd_ = -1;
  std::string path_;
  std::chrono::microseconds watchdog_{0};
  std::chrono::steady_clock::time_point last_ping_{};
};

}  // namespace agentwall::daemon
