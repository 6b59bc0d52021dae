// Sink URIs, the sink set (event ids, filters, flood control, file rotation) and a spooled
// TCP syslog sink delivering to a receiver that is down at first, on 127.0.0.1.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "agent/sinks/sinks.h"
#include "agent/sinks/uri.h"
#include "tests/unit/temp_dir.h"

using namespace agentwall::sinks;
namespace fs = std::filesystem;

namespace {

using agentwall::test::TempDir;

std::vector<nlohmann::json> read_lines(const fs::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  std::string line;
  while (std::getline(in, line)) out.push_back(nlohmann::json::parse(line));
  return out;
}

SinkConfig parse_ok(const std::string& uri) {
  std::string error;
  auto c = parse_sink_uri(uri, error);
  INFO(uri << ": " << error);
  REQUIRE(c);
  return *c;
}

std::string parse_error(const std::string& uri) {
  std::string error;
  auto c = parse_sink_uri(uri, error);
  CHECK_FALSE(c);
  return error;
}

std::string alert(const std::string& rule, int pid, const std::string& severity = "high") {
  return R"({"type":"policy.alert","time":"2026-11-26T07:00:00Z","rule":")" + rule +
         R"(","severity":")" + severity + R"(","action":"alert","message":"m","process":{"pid":)" +
         std::to_string(pid) + R"(,"exe":"/usr/bin/python3"}})";
}

}  // namespace

TEST_CASE("sink URIs: every documented form parses") {
  SinkConfig c = parse_ok("syslog+tcp://127.0.0.1:5514");
  CHECK(c.kind == SinkKind::kSyslogTcp);
  CHECK(c.host == "127.0.0.1");
  CHECK(c.port == 5514);
  CHECK(c.spooled);
  CHECK(c.name == "syslog-tcp-127.0.0.1-5514");

  c = parse_ok(
      "syslog+tls://siem.example:6514?ca=/etc/ssl/ca.pem&cert=/c.pem&key=/k.pem&format=cef");
  CHECK(c.kind == SinkKind::kSyslogTls);
  CHECK(c.tls.enabled);
  CHECK(c.tls.ca_file == "/etc/ssl/ca.pem");
  CHECK(c.format == Format::kCef);

  c = parse_ok("syslog+udp://[::1]:514");
  CHECK(c.host == "::1");
  CHECK(c.port == 514);

  c = parse_ok("https://splunk:8088/services/collector/event?format=hec&token=abc&index=sec");
  CHECK(c.kind == SinkKind::kHttp);
  CHECK(c.api == HttpApi::kHec);
  CHECK(c.tls.enabled);
  CHECK(c.token == "abc");
  CHECK(c.index == "sec");
  CHECK(c.uri.find("abc") == std::string::npos);  // the token never shows in messages

  c = parse_ok("http://127.0.0.1:9200/_bulk?index=aw");
  CHECK(c.api == HttpApi::kBulk);
  CHECK(c.format == Format::kEcs);

  c = parse_ok("otlp+http://127.0.0.1:4318?signals=traces");
  CHECK(c.kind == SinkKind::kOtlp);
  CHECK_FALSE(c.otlp_logs);
  CHECK(c.otlp_traces);

  c = parse_ok(
      "file:///var/log/agentwall/alerts.json?format=ocsf&types=policy.*,budget.alert&"
      "min_severity=medium&max_size=10MB&max_files=3");
  CHECK(c.kind == SinkKind::kFile);
  CHECK(c.path == "/var/log/agentwall/alerts.json");
  CHECK(c.format == Format::kOcsf);
  CHECK(c.types == std::vector<std::string>{"policy.*", "budget.alert"});
  CHECK(c.min_severity == 3);
  CHECK(c.max_size == 10ull << 20);
  CHECK_FALSE(c.spooled);

  c = parse_ok("stdout");
  CHECK(c.kind == SinkKind::kStdout);
  c = parse_ok("http://h/hook?header.X-Team=sec&spool_max=1G&fsync=always&name=team-hook");
  CHECK(c.headers.size() == 1);
  CHECK(c.spool.max_bytes == 1ull << 30);
  CHECK(c.spool.sync == SpoolOptions::Sync::kAlways);
  CHECK(c.name == "team-hook");
}

TEST_CASE("sink URIs: mistakes are explained") {
  CHECK(parse_error("syslog://").find("needs a host") != std::string::npos);
  CHECK(parse_error("kafka://broker:9092").find("unknown scheme 'kafka'") != std::string::npos);
  CHECK(parse_error("syslog+tcp://h:99999").find("1 to 65535") != std::string::npos);
  CHECK(parse_error("syslog+tcp://h:514?formt=cef").find("did you mean 'format'") !=
        std::string::npos);
  CHECK(parse_error("syslog+tcp://h:514?ca=/ca.pem").find("need a TLS scheme") !=
        std::string::npos);
  CHECK(parse_error("https://h/services/collector/event").find("token=") != std::string::npos);
  CHECK(parse_error("file://relative/path").find("no host") != std::string::npos);
  CHECK(parse_error("http://h/x?min_severity=loud").find("info, low") != std::string::npos);
  const std::string e = parse_error("https://h/x?token=s3cret&bogus=1");
  CHECK(e.find("s3cret") == std::string::npos);
  CHECK(redact_uri("https://h/x?token=abc&index=i") == "https://h/x?token=***&index=i");
}

TEST_CASE("sink set: ids, per-sink seq, filters and severity") {
  TempDir dir;
  const fs::path all = dir.path / "all.json", alerts = dir.path / "alerts.json";
  std::vector<SinkConfig> configs{
      parse_ok("file://" + all.string()),
      parse_ok("file://" + alerts.string() + "?types=policy.*&min_severity=high")};
  std::string error;
  SinkSetOptions o;
  o.state_dir = dir.path;
  auto set = SinkSet::open(configs, o, error);
  REQUIRE_MESSAGE(set, error);
  set->publish(R"({"type":"llm.exchange","id":1,"model":"m"})");
  set->publish(alert("r1", 10, "high"));
  set->publish(alert("r1", 10, "low"));
  set->publish("not json at all");
  set->shutdown(std::chrono::milliseconds(0));

  const auto a = read_lines(all), b = read_lines(alerts);
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 1);
  std::set<std::string> ids;
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i]["seq"] == i + 1);
    const std::string id = a[i]["event_id"];
    CHECK(id.size() == 36);
    CHECK(id[14] == '7');  // UUIDv7
    ids.insert(id);
  }
  CHECK(ids.size() == 4);
  CHECK(a[0]["type"] == "llm.exchange");
  CHECK(a[0]["id"] == 1);  // the event's own fields are untouched
  CHECK(a[3]["type"] == "agent.unknown_event");
  CHECK(a[3]["raw"] == "not json at all");
  CHECK(b[0]["seq"] == 1);  // each sink numbers what it delivers
  CHECK(b[0]["event_id"] == a[1]["event_id"]);
  const auto st = set->stats();
  CHECK(st[1].filtered == 3);
  CHECK(st[0].delivered == 4);
}

TEST_CASE("sink set: flood control summarises what it holds back") {
  TempDir dir;
  const fs::path out = dir.path / "out.json";
  std::string error;
  SinkSetOptions o;
  o.state_dir = dir.path;
  o.flood.per_rule_process = 3;
  o.flood.per_process = 0;
  o.flood.window = std::chrono::seconds(60);
  // The window's end comes from this clock, not from how long the publishes take.
  auto now = std::make_shared<uint64_t>(1'700'000'000);
  o.clock_s = [now] { return *now; };
  auto set = SinkSet::open({parse_ok("file://" + out.string())}, o, error);
  REQUIRE(set);
  for (int i = 0; i < 10; ++i) set->publish(alert("noisy", 42));
  set->publish(alert("other", 42));
  set->publish(alert("noisy", 43));
  *now += 59;
  set->tick();  // the window is still open: no summary yet
  CHECK(set->flood_stats().summaries == 0);
  *now += 1;
  set->tick();
  set->publish(alert("noisy", 42));  // a new window
  set->shutdown(std::chrono::milliseconds(0));
  const auto lines = read_lines(out);
  int noisy42 = 0, summaries = 0;
  for (const auto& l : lines) {
    if (l["type"] == "policy.alert" && l["rule"] == "noisy" && l["process"]["pid"] == 42) ++noisy42;
    if (l["type"] == "alert.summary") {
      ++summaries;
      CHECK(l["suppressed"] == 7);
      CHECK(l["rule"] == "noisy");
      CHECK(l["message"].get<std::string>().find("7 more like this") != std::string::npos);
    }
  }
  CHECK(noisy42 == 4);
  CHECK(summaries == 1);
  CHECK(lines.size() == 3 + 1 + 1 + 1 + 1);
  CHECK(set->flood_stats().suppressed == 7);
}

TEST_CASE("file sink: size-based rotation and reopen") {
  TempDir dir;
  const fs::path out = dir.path / "ev.json";
  std::string error;
  SinkSetOptions o;
  o.state_dir = dir.path;
  o.flood.per_rule_process = 0;
  o.flood.per_process = 0;
  auto set =
      SinkSet::open({parse_ok("file://" + out.string() + "?max_size=2K&max_files=2")}, o, error);
  REQUIRE(set);
  for (int i = 0; i < 60; ++i) set->publish(alert("r", i));
  CHECK(fs::exists(out.string() + ".1"));
  CHECK(fs::exists(out.string() + ".2"));
  CHECK_FALSE(fs::exists(out.string() + ".3"));
  CHECK(fs::file_size(out) <= 2048);
  // logrotate moved the file away: SIGUSR1 makes the sink write a new one.
  fs::rename(out, dir.path / "moved.json");
  set->reopen();
  set->publish(alert("after", 1));
  set->shutdown(std::chrono::milliseconds(0));
  const auto lines = read_lines(out);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0]["rule"] == "after");
}

namespace {

// A TCP listener on 127.0.0.1 that collects octet-counted syslog frames.
class Collector {
 public:
  explicit Collector(uint16_t port = 0) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(listen(fd_, 4) == 0);
    socklen_t len = sizeof(a);
    getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~Collector() {
    stop_ = true;
    thread_.join();
    close(fd_);
  }
  uint16_t port() const { return port_; }
  std::vector<std::string> frames() {
    std::lock_guard lock(mu_);
    return frames_;
  }

 private:
  void run() {
    std::vector<int> conns;
    std::map<int, std::string> bufs;
    while (!stop_) {
      std::vector<pollfd> p{{fd_, POLLIN, 0}};
      for (int c : conns) p.push_back({c, POLLIN, 0});
      if (poll(p.data(), p.size(), 50) <= 0) continue;
      if (p[0].revents & POLLIN) conns.push_back(accept(fd_, nullptr, nullptr));
      for (size_t i = 1; i < p.size(); ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP))) continue;
        char buf[65536];
        const ssize_t n = recv(p[i].fd, buf, sizeof(buf), 0);
        if (n <= 0) continue;
        std::string& b = bufs[p[i].fd];
        b.append(buf, static_cast<size_t>(n));
        for (;;) {
          const size_t sp = b.find(' ');
          if (sp == std::string::npos) break;
          const size_t len = std::stoul(b.substr(0, sp));
          if (b.size() < sp + 1 + len) break;
          std::lock_guard lock(mu_);
          frames_.push_back(b.substr(sp + 1, len));
          b.erase(0, sp + 1 + len);
        }
      }
    }
    for (int c : conns) close(c);
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::string> frames_;
};

uint16_t free_port() {
  Collector c;
  return c.port();
}

}  // namespace

TEST_CASE("spooled syslog sink: events wait in the spool while the receiver is down") {
  TempDir dir;
  const uint16_t port = free_port();
  SinkConfig c = parse_ok("syslog+tcp://127.0.0.1:" + std::to_string(port) +
                          "?flush_ms=10&backoff_max_ms=200");
  c.backoff_min = std::chrono::milliseconds(20);
  std::string error;
  SinkSetOptions o;
  o.state_dir = dir.path;
  o.flood.per_rule_process = 0;
  o.flood.per_process = 0;
  {
    auto set = SinkSet::open({c}, o, error);
    REQUIRE_MESSAGE(set, error);
    for (int i = 0; i < 50; ++i) set->publish(alert("r", i));
    // Wait for the sender's first failed connect (a loaded machine may take a while).
    for (int i = 0; i < 200 && set->stats()[0].send_errors == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    const auto st = set->stats();
    CHECK(st[0].queue_depth == 50);
    CHECK_FALSE(st[0].healthy);
    CHECK(st[0].send_errors >= 1);
    set->shutdown(std::chrono::milliseconds(0));
  }
  // A new agent (same state dir) with the receiver up delivers what the first one spooled.
  Collector rx(port);
  auto set = SinkSet::open({c}, o, error);
  REQUIRE(set);
  for (int i = 50; i < 60; ++i) set->publish(alert("r", i));
  for (int i = 0; i < 100 && rx.frames().size() < 60; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  set->shutdown(std::chrono::milliseconds(2000));
  const auto frames = rx.frames();
  REQUIRE(frames.size() == 60);
  std::set<int> pids;
  for (const auto& f : frames) {
    CHECK(f.starts_with("<"));
    CHECK(f.find("1 2026-11-26T07:00:00") != std::string::npos);
    const size_t bom = f.find("\xEF\xBB\xBF");
    REQUIRE(bom != std::string::npos);
    const auto ev = nlohmann::json::parse(f.substr(bom + 3));
    pids.insert(ev["process"]["pid"].get<int>());
  }
  CHECK(pids.size() == 60);
  CHECK(set->stats()[0].queue_depth == 0);
}

TEST_CASE("spooled sink: a full spool drops the oldest events and says so") {
  TempDir dir;
  const fs::path out = dir.path / "out.json";
  // Nothing listens on port 1: every event stays in the 16 KiB spool until it is full.
  SinkConfig net = parse_ok("syslog+tcp://127.0.0.1:1?spool_max=16K&backoff_max_ms=60000");
  std::string error;
  SinkSetOptions o;
  o.state_dir = dir.path;
  o.flood.per_rule_process = 0;
  o.flood.per_process = 0;
  auto set = SinkSet::open({parse_ok("file://" + out.string()), net}, o, error);
  REQUIRE_MESSAGE(set, error);
  for (int i = 0; i < 200; ++i) set->publish(alert("r", i));
  set->tick();
  const auto st = set->stats();
  CHECK(st[1].dropped > 0);
  CHECK(st[1].spool_bytes <= 16 * 1024);
  // the 200 alerts and the sink.dropped event, which goes to every sink
  CHECK(st[1].queue_depth + st[1].dropped == 201);
  set->shutdown(std::chrono::milliseconds(0));
  const auto lines = read_lines(out);
  const auto dropped = std::find_if(lines.begin(), lines.end(),
                                    [](const auto& l) { return l["type"] == "sink.dropped"; });
  REQUIRE(dropped != lines.end());
  CHECK((*dropped)["sink"] == "syslog-tcp-127.0.0.1-1");
  CHECK((*dropped)["dropped"] == st[1].dropped);
  CHECK((*dropped)["severity"] == "high");
}
