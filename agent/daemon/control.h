// The local control socket behind `agentwall status`, `top` and `tail`: a Unix stream
// socket (mode 0600 in a 0700 directory; peers must be root or the agent's own user) served
// by its own thread. A client sends one JSON line, {"cmd":"status"|"top"|"coverage"|"tail",…};
// status, top and coverage get one JSON line back, tail gets every matching event line until
// it hangs up.
//
// The server never reads daemon state: the main loop hands it ready-made status, top and
// coverage documents (once a second) and every event line (publish). A slow tail client loses
// lines, counted and reported to it, and never holds up the main loop.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace agentwall::daemon {

inline constexpr const char* kDefaultControlSocket = "/run/agentwall/control.sock";

struct ControlOptions {
  std::string path = kDefaultControlSocket;
  size_t max_clients = 16;
  size_t tail_queue_lines = 4096;  // per tail client, then lines are dropped
  size_t tail_queue_bytes = 8u << 20;
};

class ControlServer {
 public:
  // Null when there is no socket to serve, with `error` saying why (the path is in use by
  // another agent, or cannot be bound); the agent runs on without one.
  static std::unique_ptr<ControlServer> start(const ControlOptions& options, std::string& error);
  ~ControlServer();  // disconnects every client and removes the socket

  void set_status(std::string json);
  void set_top(std::string json);
  void set_coverage(std::string json);
  // Every event line the sinks get; nearly free while nobody tails.
  void publish(const std::string& line);

  const std::string& path() const { return opt_.path; }

 private:
  struct Subscriber;
  struct Client;
  explicit ControlServer(ControlOptions options) : opt_(std::move(options)) {}
  void serve();
  void accept_client(std::vector<std::unique_ptr<Client>>& clients);
  void on_request(Client& c);
  void fill_tail(Client& c);

  ControlOptions opt_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;  // eventfd: publish() has lines for the server thread
  dev_t dev_ = 0;     // the socket file this server made, removed at exit if still there
  ino_t ino_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> wake_pending_{false};
  std::atomic<size_t> subscriber_count_{0};
  std::thread thread_;
  std::mutex mu_;  // guards what follows
  std::string status_, top_, coverage_;
  std::vector<std::shared_ptr<Subscriber>> subscribers_;
};

}  // namespace agentwall::daemon
