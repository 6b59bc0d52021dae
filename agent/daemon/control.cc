#include "agent/daemon/control.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/daemon/event_filter.h"

namespace agentwall::daemon {
namespace {

constexpr size_t kMaxRequestBytes = 64 << 10;
constexpr auto kRequestTimeout = std::chrono::seconds(5);
constexpr size_t kTailOutputHighWater = 256 << 10;  // unsent bytes before the queue waits

std::string error_line(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump(-1, ' ', false,
                                                 nlohmann::json::error_handler_t::replace) +
         "\n";
}

bool socket_address(const std::string& path, sockaddr_un& addr) {
  addr = {};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return false;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return true;
}

// A client told no: one line, best effort, then the connection closes.
void refuse(int fd, std::string_view message) {
  const std::string line = error_line(message);
  (void)!send(fd, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
}

// Whether PATH, which exists, is the live socket of another agent; `owner` is its pid when
// the kernel says (SO_PEERCRED of a connected socket is the listener's).
bool in_use(const std::string& path, pid_t& owner) {
  sockaddr_un addr;
  if (!socket_address(path, addr)) return false;
  // Non-blocking: an agent too busy to accept (its backlog full: EAGAIN) is alive too, and
  // must not hold this one's start-up.
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  const bool live =
      connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 || errno == EAGAIN;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (live && getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) owner = cred.pid;
  close(fd);
  return live;
}

}  // namespace

struct ControlServer::Subscriber {
  EventFilter filter;
  std::deque<std::shared_ptr<const std::string>> queue;
  size_t bytes = 0;
  uint64_t dropped = 0;
};

struct ControlServer::Client {
  int fd = -1;
  std::chrono::steady_clock::time_point since = std::chrono::steady_clock::now();
  std::string in, out;
  size_t out_off = 0;
  bool read_closed = false;      // the peer shut down its side; it may still read
  bool close_when_sent = false;  // status, top and errors: one reply, then close
  std::shared_ptr<Subscriber> tail;
  ~Client() {
    if (fd >= 0) close(fd);
  }
};

std::unique_ptr<ControlServer> ControlServer::start(const ControlOptions& options,
                                                    std::string& error) {
  const std::string& path = options.path;
  sockaddr_un addr;
  if (!socket_address(path, addr)) {
    error = "control socket " + path + ": the path is too long for a Unix socket";
    return nullptr;
  }
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(path).parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::exists(dir, ec)) {
    fs::create_directories(dir, ec);
    if (ec || chmod(dir.c_str(), 0700) != 0) {
      error = "control socket " + path + ": cannot create " + dir.string() + ": " +
              (ec ? ec.message() : std::strerror(errno));
      return nullptr;
    }
  }
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      error = "control socket " + path + " exists and is not a socket: remove it";
      return nullptr;
    }
    pid_t owner = 0;
    if (in_use(path, owner)) {
      error = "control socket " + path + " is in use" +
              (owner > 0 ? " by pid " + std::to_string(owner) : std::string()) +
              " (another agent?)";
      return nullptr;
    }
    unlink(path.c_str());  // stale: left by an agent that did not exit cleanly
  }
  std::unique_ptr<ControlServer> s(new ControlServer(options));
  s->listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  s->wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  // The socket file takes the socket's inode mode at bind (less the umask): set to 0600 here,
  // no one else can connect between bind and a chmod, and the process umask stays untouched.
  if (s->listen_fd_ < 0 || s->wake_fd_ < 0 || fchmod(s->listen_fd_, 0600) != 0 ||
      bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      chmod(path.c_str(), 0600) != 0 || listen(s->listen_fd_, 16) != 0 ||
      lstat(path.c_str(), &st) != 0) {
    error = "control socket " + path + ": " + std::strerror(errno);
    return nullptr;
  }
  s->dev_ = st.st_dev;
  s->ino_ = st.st_ino;
  s->thread_ = std::thread([p = s.get()] { p->serve(); });
  return s;
}

ControlServer::~ControlServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  struct stat st {};
  if (ino_ && lstat(opt_.path.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    unlink(opt_.path.c_str());
  if (listen_fd_ >= 0) close(listen_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

void ControlServer::set_status(std::string json) {
  std::lock_guard lock(mu_);
  status_ = std::move(json);
}

void ControlServer::set_top(std::string json) {
  std::lock_guard lock(mu_);
  top_ = std::move(json);
}

void ControlServer::set_coverage(std::string json) {
  std::lock_guard lock(mu_);
  coverage_ = std::move(json);
}

void ControlServer::publish(const std::string& line) {
  if (subscriber_count_.load(std::memory_order_relaxed) == 0) return;
  const auto shared = std::make_shared<const std::string>(line);
  {
    std::lock_guard lock(mu_);
    for (const auto& sub : subscribers_) {
      if (sub->queue.size() >= opt_.tail_queue_lines ||
          sub->bytes + line.size() > opt_.tail_queue_bytes) {
        ++sub->dropped;
        continue;
      }
      sub->queue.push_back(shared);
      sub->bytes += line.size();
    }
  }
  if (!wake_pending_.exchange(true)) {
    const uint64_t one = 1;
    (void)!write(wake_fd_, &one, sizeof(one));
  }
}

void ControlServer::accept_client(std::vector<std::unique_ptr<Client>>& clients) {
  const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
  if (fd < 0) return;
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
      (cred.uid != 0 && cred.uid != geteuid())) {
    refuse(fd, "permission denied: the agent's control socket serves root only");
    return;
  }
  if (clients.size() >= opt_.max_clients) {
    refuse(fd, "too many control clients (" + std::to_string(opt_.max_clients) +
                   "): try again when one has finished");
    return;
  }
  auto c = std::make_unique<Client>();
  c->fd = fd;
  clients.push_back(std::move(c));
}

void ControlServer::on_request(Client& c) {
  const size_t nl = c.in.find('\n');
  const nlohmann::json req = nlohmann::json::parse(c.in.substr(0, nl), nullptr, false);
  c.in.clear();
  c.close_when_sent = true;
  const auto cmd = req.is_object() ? req.find("cmd") : req.end();
  if (!req.is_object() || cmd == req.end() || !cmd->is_string()) {
    c.out = error_line(R"(expected one JSON line, e.g. {"cmd":"status"})");
    return;
  }
  const std::string name = cmd->get<std::string>();
  if (name == "status" || name == "top" || name == "coverage") {
    std::lock_guard lock(mu_);
    const std::string& doc = name == "status" ? status_ : name == "top" ? top_ : coverage_;
    // Before the main loop's first tick: the client may ask again.
    c.out = doc.empty() ? R"({"error":"the agent is starting","retry":true})"
                          "\n"
                        : doc + "\n";
    return;
  }
  if (name != "tail") {
    c.out = error_line("unknown command '" + name + "': expected status, top, coverage or tail");
    return;
  }
  std::string error;
  std::optional<EventFilter> filter = EventFilter::from_request(req, error);
  if (!filter) {
    c.out = error_line("tail: " + error);
    return;
  }
  c.close_when_sent = false;
  c.tail = std::make_shared<Subscriber>();
  c.tail->filter = std::move(*filter);
  // The first line says the subscription is on: every event from here on is seen.
  c.out = R"({"type":"tail.started","pid":)" + std::to_string(getpid()) + "}\n";
  std::lock_guard lock(mu_);
  subscribers_.push_back(c.tail);
  subscriber_count_ = subscribers_.size();
}

void ControlServer::fill_tail(Client& c) {
  if (c.out.size() - c.out_off > kTailOutputHighWater) return;
  std::deque<std::shared_ptr<const std::string>> lines;
  uint64_t dropped = 0;
  {
    std::lock_guard lock(mu_);
    lines.swap(c.tail->queue);
    c.tail->bytes = 0;
    dropped = std::exchange(c.tail->dropped, 0);
  }
  c.out.erase(0, c.out_off);  // what was sent goes (at most the high-water mark stays)
  c.out_off = 0;
  for (const auto& line : lines) {
    if (!c.tail->filter.matches(*line)) continue;
    c.out += *line;
    c.out += '\n';
  }
  // Lines were dropped after everything that was queued, so the notice follows those.
  if (dropped) c.out += R"({"type":"tail.dropped","dropped":)" + std::to_string(dropped) + "}\n";
}

void ControlServer::serve() {
  std::vector<std::unique_ptr<Client>> clients;
  std::vector<pollfd> fds;
  while (!stop_) {
    fds.clear();
    fds.push_back({listen_fd_, POLLIN, 0});
    fds.push_back({wake_fd_, POLLIN, 0});
    for (const auto& c : clients) {
      short events = c->read_closed ? 0 : POLLIN;
      if (c->out_off < c->out.size()) events |= POLLOUT;
      fds.push_back({c->fd, events, 0});
    }
    if (poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) break;
    if (fds[1].revents & POLLIN) {
      uint64_t n = 0;
      (void)!read(wake_fd_, &n, sizeof(n));
      wake_pending_ = false;
    }
    const auto now = std::chrono::steady_clock::now();
    for (size_t i = 0; i < clients.size(); ++i) {
      Client& c = *clients[i];
      const short revents = fds[i + 2].revents;
      bool gone = (revents & (POLLHUP | POLLERR)) && !(revents & POLLIN);
      if (revents & POLLIN) {
        char buf[4096];
        const ssize_t n = recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0 && !c.tail && !c.close_when_sent) c.in.append(buf, static_cast<size_t>(n));
        if (n == 0) c.read_closed = true;
        if (n < 0 && errno != EAGAIN && errno != EINTR) gone = true;
      }
      const bool awaiting_request = !c.tail && !c.close_when_sent;
      if (awaiting_request && c.in.find('\n') != std::string::npos) {
        on_request(c);
      } else if (awaiting_request && (c.in.size() > kMaxRequestBytes || c.read_closed ||
                                      now - c.since > kRequestTimeout)) {
        c.out = error_line(R"(expected one JSON line, e.g. {"cmd":"status"}, within 5 s)");
        c.close_when_sent = true;
      }
      if (c.tail) fill_tail(c);
      while (!gone && c.out_off < c.out.size()) {
        const ssize_t n = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
          c.out_off += static_cast<size_t>(n);
        } else {
          gone = !(n < 0 && (errno == EAGAIN || errno == EINTR));
          break;
        }
      }
      if (gone || (c.close_when_sent && c.out_off == c.out.size())) {
        if (c.tail) {
          std::lock_guard lock(mu_);
          std::erase(subscribers_, c.tail);
          subscriber_count_ = subscribers_.size();
        }
        clients[i].reset();
      }
    }
    std::erase(clients, nullptr);
    if (fds[0].revents & POLLIN) accept_client(clients);
  }
  std::lock_guard lock(mu_);
  subscribers_.clear();
  subscriber_count_ = 0;
}

}  // namespace agentwall::daemon
