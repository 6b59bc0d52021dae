// Alerts per second through the durable spool to a TCP syslog receiver, and the spool's disk
// bytes per alert, against a baseline measured in the same run: the same alerts, formatted
// once beforehand, written straight to the same receiver (no spool, no formatting).
//
//   sink_bench [--alerts N] [--always N] [--cpu C]
//
// The agent side (publishing thread + the sink's sender thread) is pinned to one CPU (C,
// default 0); the receiver is a child process on another CPU that parses the octet-counted
// frames and reports when it has them all. No root, loopback only.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "agent/common/fast_json.h"
#include "agent/sinks/format.h"
#include "agent/sinks/sinks.h"
#include "agent/sinks/uri.h"

using namespace agentwall::sinks;
namespace fs = std::filesystem;

namespace {

void pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);
}

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::string alert(size_t i) {
  const std::string pid = std::to_string(10000 + i % 500);
  return R"J({"type":"policy.alert","time":"2026-11-26T07:01:02.123456789Z","rule":"secret-to-llm-)J" +
         std::to_string(i % 7) +
         R"J(","severity":"critical","action":"block","enforced":true,"outcome":"block","direction":"request","message":"blocked: /usr/bin/python3.11 tried to send secret.aws_access_key to openai (gpt-4o-mini)","tags":["secrets","exfiltration"],"process":{"pid":)J" +
         pid +
         R"J(,"exe":"/usr/bin/python3.11","name":"python3","user":"alice","unit":"agent.service"},"llm":{"provider":"openai","model":"gpt-4o-mini","operation":"chat","host":"api.openai.com","exchange_id":)J" +
         std::to_string(i) +
         R"J(},"findings":[{"detector":"secret.aws_access_key","category":"secret","confidence":0.95,"where":"messages[0]"}],"score":85})J";
}

// The receiver: a child process that accepts one connection at a time, counts octet-counted
// frames, and writes "done\n" to `report` once it has `want` of them.
pid_t start_receiver(uint16_t& port, int cpu, size_t want, int report) {
  const int lfd = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  listen(lfd, 8);
  socklen_t len = sizeof(a);
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  const pid_t child = fork();
  if (child != 0) {
    close(lfd);
    return child;
  }
  pin(cpu);
  size_t frames = 0;
  std::vector<char> buf(1 << 20);
  while (frames < want) {
    const int c = accept(lfd, nullptr, nullptr);
    if (c < 0) _exit(1);
    std::string pending;
    for (;;) {
      const ssize_t n = recv(c, buf.data(), buf.size(), 0);
      if (n <= 0) break;
      pending.append(buf.data(), static_cast<size_t>(n));
      size_t at = 0;
      for (;;) {
        const size_t sp = pending.find(' ', at);
        if (sp == std::string::npos) break;
        const size_t flen = std::strtoul(pending.c_str() + at, nullptr, 10);
        if (pending.size() < sp + 1 + flen) break;
        at = sp + 1 + flen;
        ++frames;
      }
      pending.erase(0, at);
      if (frames >= want) break;
    }
    close(c);
  }
  (void)!write(report, "done\n", 5);
  _exit(0);
}

void wait_report(int fd) {
  char b[8];
  (void)!read(fd, b, sizeof(b));
}

struct Result {
  double wall_s = 0, cpu_s = 0;
};

Result run_baseline(const std::vector<std::string>& lines, int cpu_rx) {
  FormatContext ctx{"bench-host", "0.1.0"};
  // Formatted once, outside the timing: what a forwarder that does no work per event costs.
  std::string frames;
  for (size_t i = 0; i < lines.size(); ++i) {
    json ev = agentwall::parse_json(lines[i]);
    ev["event_id"] = "00000000-0000-7000-8000-000000000000";
    ev["seq"] = i + 1;
    const std::string m = to_rfc5424(ev, to_json(ev), ctx);
    frames += std::to_string(m.size()) + " " + m;
  }
  int pipefd[2];
  (void)!pipe(pipefd);
  uint16_t port = 0;
  const pid_t rx = start_receiver(port, cpu_rx, lines.size(), pipefd[1]);
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  size_t off = 0;
  while (off < frames.size()) {
    const ssize_t n =
        send(fd, frames.data() + off, std::min<size_t>(frames.size() - off, 1 << 20), 0);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  wait_report(pipefd[0]);
  Result r{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
           cpu_seconds() - c0};
  close(fd);
  waitpid(rx, nullptr, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  return r;
}

Result run_agentwall(const std::vector<std::string>& lines, int cpu_rx, const std::string& fsync,
                     const std::string& state, uint64_t& spool_bytes_peak) {
  int pipefd[2];
  (void)!pipe(pipefd);
  uint16_t port = 0;
  const pid_t rx = start_receiver(port, cpu_rx, lines.size(), pipefd[1]);
  std::string error;
  auto cfg = parse_sink_uri("syslog+tcp://127.0.0.1:" + std::to_string(port) + "?fsync=" + fsync +
                                "&batch=2000&flush_ms=5",
                            error);
  if (!cfg) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(2);
  }
  SinkSetOptions o;
  o.state_dir = state;
  o.context = {"bench-host", "0.1.0"};
  o.flood.per_rule_process = 0;
  o.flood.per_process = 0;
  fs::remove_all(state);
  auto set = SinkSet::open({*cfg}, o, error);
  if (!set) {
    std::fprintf(stderr, "%s\n", error.c_str());
    std::exit(2);
  }
  const auto t0 = std::chrono::steady_clock::now();
  const double c0 = cpu_seconds();
  for (const auto& l : lines) set->publish(l);
  spool_bytes_peak = set->stats()[0].spool_bytes;
  wait_report(pipefd[0]);
  Result r{std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
           cpu_seconds() - c0};
  set->shutdown(std::chrono::milliseconds(1000));
  waitpid(rx, nullptr, 0);
  close(pipefd[0]);
  close(pipefd[1]);
  return r;
}

// Spool bytes per alert: the receiver is down, so every alert stays on disk.
double spool_bytes_per_alert(const std::vector<std::string>& lines, const std::string& state) {
  std::string error;
  auto cfg = parse_sink_uri("syslog+tcp://127.0.0.1:1?backoff_max_ms=60000", error);
  SinkSetOptions o;
  o.state_dir = state;
  o.flood.per_rule_process = 0;
  o.flood.per_process = 0;
  fs::remove_all(state);
  auto set = SinkSet::open({*cfg}, o, error);
  for (const auto& l : lines) set->publish(l);
  const SinkStats st = set->stats()[0];
  set->shutdown(std::chrono::milliseconds(0));
  return double(st.spool_bytes) / double(lines.size());
}

}  // namespace

int main(int argc, char** argv) {
  size_t n = 200000, n_always = 20000;
  int cpu = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--alerts"))
      n = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--always"))
      n_always = std::strtoul(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--cpu"))
      cpu = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: sink_bench [--alerts N] [--always N] [--cpu C]\n");
      return 2;
    }
  }
  const int ncpu = static_cast<int>(std::thread::hardware_concurrency());
  const int cpu_rx = ncpu > 1 ? (cpu + 1) % ncpu : cpu;
  pin(cpu);
  std::vector<std::string> lines;
  for (size_t i = 0; i < n; ++i) lines.push_back(alert(i));
  const std::vector<std::string> few(lines.begin(), lines.begin() + std::min(n, n_always));
  char tmpl[] = "/tmp/aw-sink-bench-XXXXXX";
  const std::string state = mkdtemp(tmpl);

  const Result base = run_baseline(lines, cpu_rx);
  uint64_t peak = 0, peak_always = 0;
  const Result aw = run_agentwall(lines, cpu_rx, "interval", state, peak);
  const Result always = run_agentwall(few, cpu_rx, "always", state, peak_always);
  const double bpa = spool_bytes_per_alert(few, state);
  fs::remove_all(state);

  const double base_rate = double(n) / base.wall_s;
  const double aw_rate = double(n) / aw.wall_s;
  const double always_rate = double(few.size()) / always.wall_s;
  std::printf("| path | alerts | alerts/s | CPU s | vs baseline |\n|---|---|---|---|---|\n");
  std::printf("| baseline: pre-formatted frames straight to TCP | %zu | %.0f | %.2f | 1.00 |\n", n,
              base_rate, base.cpu_s);
  std::printf(
      "| agentwall: publish → spool (fsync=interval) → RFC 5424 → TCP | %zu | %.0f | %.2f | %.2f "
      "|\n",
      n, aw_rate, aw.cpu_s, base_rate / aw_rate);
  std::printf("| agentwall: fsync=always (every alert) | %zu | %.0f | %.2f | %.2f |\n", few.size(),
              always_rate, always.cpu_s, base_rate / always_rate);
  std::printf("\nspool bytes per alert: %.1f (alert JSON %zu bytes)\n", bpa, lines[0].size());
  std::printf(
      "{\"baseline_alerts_per_s\":%.0f,\"alerts_per_s\":%.0f,\"alerts_per_s_fsync_always\":%.0f,"
      "\"cpu_s\":%.3f,\"spool_bytes_per_alert\":%.1f,\"alert_bytes\":%zu}\n",
      base_rate, aw_rate, always_rate, aw.cpu_s, bpa, lines[0].size());
  return 0;
}
