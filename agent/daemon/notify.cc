#include "agent/daemon/notify.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace agentwall::daemon {

Notifier Notifier::from_environment() {
  Notifier n;
  const char* socket_path = std::getenv("NOTIFY_SOCKET");
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* wpid = std::getenv("WATCHDOG_PID");
  if (usec && (!wpid || std::strtol(wpid, nullptr, 10) == getpid()))
    n.watchdog_ = std::chrono::microseconds(std::strtoull(usec, nullptr, 10));
  if (socket_path && *socket_path && (socket_path[0] == '/' || socket_path[0] == '@') &&
      std::strlen(socket_path) < sizeof(sockaddr_un{}.sun_path)) {
    n.path_ = socket_path;
    n.fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (n.fd_ < 0) spdlog::warn("systemd notification socket: {}", std::strerror(errno));
  }
  unsetenv("NOTIFY_SOCKET");
  unsetenv("WATCHDOG_USEC");
  unsetenv("WATCHDOG_PID");
  if (!n.enabled()) n.watchdog_ = std::chrono::microseconds(0);
  return n;
}

Notifier::Notifier(Notifier&& o) noexcept
    : fd_(std::exchange(o.fd_, -1)),
      path_(std::move(o.path_)),
      watchdog_(o.watchdog_),
      last_ping_(o.last_ping_) {}

Notifier::~Notifier() {
  if (fd_ >= 0) close(fd_);
}

bool Notifier::send(std::string_view state) {
  if (fd_ < 0) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path_.data(), path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract namespace
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path_.size());
  const ssize_t r = sendto(fd_, state.data(), state.size(), MSG_NOSIGNAL,
                           reinterpret_cast<const sockaddr*>(&addr), len);
  if (r < 0) {
    spdlog::debug("sd_notify {}: {}", path_, std::strerror(errno));
    return false;
  }
  return true;
}

namespace {
std::string one_line(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c == '\n') c = ' ';
  return out;
}
}  // namespace

void Notifier::ready(std::string_view status) {
  send("READY=1\nSTATUS=" + one_line(status) + "\nMAINPID=" + std::to_string(getpid()));
}

void Notifier::status(std::string_view status) {
  send("STATUS=" + one_line(status));
}

void Notifier::stopping(std::string_view status) {
  send("STOPPING=1\nSTATUS=" + one_line(status));
}

void Notifier::watchdog(std::chrono::steady_clock::time_point now) {
  if (watchdog_.count() == 0) return;
  if (now - last_ping_ < watchdog_ / 2) return;
  last_ping_ = now;
  send("WATCHDOG=1");
}

}  // namespace agentwall::daemon
