// The control socket server on a temporary path, with this process as its client: replies,
// errors, the socket file's mode and life, and a tail client too slow to keep up.
#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/daemon/control.h"
#include "tests/unit/temp_dir.h"

using namespace agentwall::daemon;
namespace fs = std::filesystem;

namespace {

using agentwall::test::TempDir;

class Client {
 public:
  explicit Client(const std::string& path) {
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  }
  ~Client() { close(fd_); }
  void send_line(const std::string& line) {
    const std::string l = line + "\n";
    REQUIRE(send(fd_, l.data(), l.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(l.size()));
  }
  // The next line, or "" at the end of the connection or after 5 s without one.
  std::string line() {
    while (true) {
      if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, 5000) <= 0) return "";
      char chunk[1 << 16];
      const ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n <= 0) return "";
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

std::string ask(const std::string& path, const std::string& request) {
  Client c(path);
  c.send_line(request);
  return c.line();
}

}  // namespace

TEST_CASE("control: status and top replies, errors, the socket file") {
  TempDir dir;
  const std::string path = (dir.path / "run" / "control.sock").string();
  std::string error;
  auto server = ControlServer::start({.path = path}, error);
  REQUIRE_MESSAGE(server, error);
  struct stat st {};
  REQUIRE(stat(path.c_str(), &st) == 0);
  CHECK(S_ISSOCK(st.st_mode));
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(stat((dir.path / "run").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0700);

  CHECK(ask(path, R"({"cmd":"status"})") == R"({"error":"the agent is starting","retry":true})");
  server->set_status(R"({"type":"agent.status","pid":1})");
  server->set_top(R"({"type":"agent.top","processes":[]})");
  CHECK(ask(path, R"({"cmd":"status"})") == R"({"type":"agent.status","pid":1})");
  CHECK(ask(path, R"({"cmd":"top"})") == R"({"type":"agent.top","processes":[]})");
  CHECK(ask(path, R"({"cmd":"coverage"})") == R"({"error":"the agent is starting","retry":true})");
  server->set_coverage(R"({"type":"agent.coverage","processes":[]})");
  CHECK(ask(path, R"({"cmd":"coverage"})") == R"({"type":"agent.coverage","processes":[]})");
  CHECK(ask(path, R"({"cmd":"x"})") ==
        R"({"error":"unknown command 'x': expected status, top, coverage or tail"})");
  CHECK(ask(path, "status").find("expected one JSON line") != std::string::npos);
  CHECK(ask(path, R"({"cmd":"tail","types":"x"})").find("must be an array of globs") !=
        std::string::npos);

  // Another server on the same path says who has it and leaves it alone.
  auto second = ControlServer::start({.path = path}, error);
  CHECK_FALSE(second);
  CHECK(error.find("is in use by pid " + std::to_string(getpid())) != std::string::npos);
  CHECK(ask(path, R"({"cmd":"status"})") == R"({"type":"agent.status","pid":1})");

  server.reset();
  CHECK_FALSE(fs::exists(path));

  // A socket file nobody answers on is stale: replaced.
  {
    const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
    close(fd);
  }
  server = ControlServer::start({.path = path}, error);
  REQUIRE_MESSAGE(server, error);
  server->set_top(R"({"type":"agent.top"})");
  CHECK(ask(path, R"({"cmd":"top"})") == R"({"type":"agent.top"})");
}

TEST_CASE("control: tail filters, and a client too slow to keep up is told what it lost") {
  TempDir dir;
  const std::string path = (dir.path / "control.sock").string();
  std::string error;
  auto server = ControlServer::start({.path = path, .tail_queue_lines = 4}, error);
  REQUIRE_MESSAGE(server, error);
  server->publish(R"({"type":"llm.exchange","nobody":"listens"})");  // nearly free, and lost

  Client c(path);
  c.send_line(R"({"cmd":"tail","types":["llm.*"]})");
  CHECK(c.line().starts_with(R"({"type":"tail.started","pid":)"));
  server->publish(R"({"type":"agent.health"})");
  server->publish(R"({"type":"llm.exchange","n":0})");
  CHECK(c.line() == R"({"type":"llm.exchange","n":0})");

  // 200 lines of 64 KiB while the client reads nothing: the socket buffer, the server's
  // output buffer and the 4-line queue fill, and the rest is dropped. Every line is either
  // delivered or counted in a tail.dropped line.
  const std::string pad(64 << 10, 'x');
  constexpr int kLines = 200;
  for (int i = 0; i < kLines; ++i)
    server->publish(R"({"type":"llm.exchange","pad":")" + pad + "\"}");
  int delivered = 0;
  uint64_t dropped = 0;
  while (delivered + dropped < kLines) {
    const std::string l = c.line();
    REQUIRE_MESSAGE(!l.empty(), delivered, " delivered and ", dropped, " dropped so far");
    const auto j = nlohmann::json::parse(l);
    if (j["type"] == "tail.dropped")
      dropped += j["dropped"].get<uint64_t>();
    else
      ++delivered;
  }
  CHECK(delivered + dropped == kLines);
  // Caught up: nothing else was lost, and what comes next arrives.
  server->publish(R"({"type":"llm.exchange","last":true})");
  CHECK(c.line() == R"({"type":"llm.exchange","last":true})");
  CHECK(dropped > 0);
}
