#include "agent/cli/control_client.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/program_options.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "agent/daemon/control.h"

namespace po = boost::program_options;
using json = nlohmann::ordered_json;  // keeps the agent's field order in --json output

namespace agentwall::cli {
namespace {

std::atomic<bool> g_interrupted{false};

void on_interrupt(int) {
  g_interrupted = true;
}

// SIGINT and SIGTERM set a flag and interrupt blocking calls (no SA_RESTART), so that the
// commands leave the terminal as they found it.
void catch_interrupts() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// Adds --help and --socket to the command's options and parses argv into vm. Returns the
// exit status when the command is done here (a bad option: 2; --help: 0), nullopt to go on.
std::optional<int> parse_command(int argc, char** argv, po::options_description& desc,
                                 po::variables_map& vm, std::string& socket_path,
                                 const char* about) {
  desc.add_options()("help,h", "show this help")(
      "socket", po::value(&socket_path)->default_value(daemon::kDefaultControlSocket),
      "the agent's control socket (agentwall run --control)");
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "agentwall: %s\nsee: agentwall %s --help\n", e.what(), argv[0]);
    return 2;
  }
  if (!vm.count("help")) return std::nullopt;
  std::cout << about << "\n" << desc;
  return 0;
}

// A connection to the agent's control socket that reads JSON lines.
class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) close(fd_);
  }
  // Connects and sends `request`; on failure prints why, with what to do about it.
  bool open(const std::string& path, const json& request) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) {
      std::fprintf(stderr, "agentwall: %s: the path is too long for a Unix socket\n", path.c_str());
      return false;
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      const int err = errno;
      if (err == EACCES || err == EPERM)
        std::fprintf(stderr,
                     "agentwall: cannot reach the agent at %s: %s: the control socket is for "
                     "root only (try sudo)\n",
                     path.c_str(), std::strerror(err));
      else
        std::fprintf(stderr,
                     "agentwall: cannot reach the agent at %s: %s. Is it running? (systemctl "
                     "status agentwall)\n",
                     path.c_str(), std::strerror(err));
      return false;
    }
    // A refused client finds the agent's one-line answer to read even when this send fails.
    const std::string line = request.dump() + "\n";
    (void)!send(fd_, line.data(), line.size(), MSG_NOSIGNAL);
    return true;
  }

  // The next line; nullopt at the end of the connection or when interrupted.
  std::optional<std::string> next_line() {
    while (true) {
      if (const size_t nl = buf_.find('\n'); nl != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return line;
      }
      char chunk[65536];
      const ssize_t n = read(fd_, chunk, sizeof(chunk));
      if (n > 0) {
        buf_.append(chunk, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR && !g_interrupted) continue;
      return std::nullopt;
    }
  }

 private:
  int fd_ = -1;
  std::string buf_;
};

// A JSON reply; an {"error": …} reply is printed and gives nullopt.
std::optional<json> parse_reply(const std::optional<std::string>& line, const std::string& path) {
  if (!line) {
    std::fprintf(stderr, "agentwall: the agent at %s closed the connection without a reply\n",
                 path.c_str());
    return std::nullopt;
  }
  json j = json::parse(*line, nullptr, false);
  if (!j.is_object()) {
    std::fprintf(stderr, "agentwall: the agent at %s sent something that is not JSON: %.200s\n",
                 path.c_str(), line->c_str());
    return std::nullopt;
  }
  if (const auto e = j.find("error"); e != j.end() && e->is_string()) {
    std::fprintf(stderr, "agentwall: the agent at %s says: %s\n", path.c_str(),
                 e->get<std::string>().c_str());
    return std::nullopt;
  }
  return j;
}

// One request, one reply (status, top). An agent that has just started has no document
// yet for up to a second: asked again.
std::optional<json> ask(const std::string& path, const char* cmd) {
  for (int attempt = 0;; ++attempt) {
    Connection c;
    if (!c.open(path, {{"cmd", cmd}})) return std::nullopt;
    const std::optional<std::string> line = c.next_line();
    if (line && attempt < 20 && line->find(R"("retry":true)") != std::string::npos) {
      usleep(100'000);
      continue;
    }
    return parse_reply(line, path);
  }
}

// ---- formatting ----------------------------------------------------------------------------

std::string str(const json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  return it->is_string() ? it->get<std::string>() : it->dump();
}

double num(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0;
}

bool flag(const json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_boolean() && it->get<bool>();
}

const json& obj(const json& j, const char* key) {
  static const json kEmpty = json::object();
  const auto it = j.find(key);
  return it != j.end() && it->is_object() ? *it : kEmpty;
}

const json& arr(const json& j, const char* key) {
  static const json kEmpty = json::array();
  const auto it = j.find(key);
  return it != j.end() && it->is_array() ? *it : kEmpty;
}

// 950, 12.3k, 4.1M
std::string count(double n) {
  char b[32];
  if (n < 1000)
    std::snprintf(b, sizeof(b), "%.0f", n);
  else if (n < 1e6)
    std::snprintf(b, sizeof(b), "%.1fk", n / 1e3);
  else
    std::snprintf(b, sizeof(b), "%.1fM", n / 1e6);
  return b;
}

std::string bytes(double n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  size_t u = 0;
  while (n >= 1024 && u + 1 < std::size(units)) n /= 1024, ++u;
  char b[32];
  std::snprintf(b, sizeof(b), u ? "%.1f %s" : "%.0f %s", n, units[u]);
  return b;
}

std::string duration(double s) {
  const auto t = static_cast<uint64_t>(s);
  char b[48];
  if (t < 60)
    std::snprintf(b, sizeof(b), "%llus", static_cast<unsigned long long>(t));
  else if (t < 3600)
    std::snprintf(b, sizeof(b), "%llumin %llus", static_cast<unsigned long long>(t / 60),
                  static_cast<unsigned long long>(t % 60));
  else if (t < 86400)
    std::snprintf(b, sizeof(b), "%lluh %llumin", static_cast<unsigned long long>(t / 3600),
                  static_cast<unsigned long long>(t / 60 % 60));
  else
    std::snprintf(b, sizeof(b), "%llu days %lluh", static_cast<unsigned long long>(t / 86400),
                  static_cast<unsigned long long>(t / 3600 % 24));
  return b;
}

std::string usd(double v) {
  char b[32];
  std::snprintf(b, sizeof(b), v < 10 ? "%.4f" : "%.2f", v);
  return b;
}

// "label: text" with the labels right-aligned, as `systemctl status` does.
void section(const char* label, const std::string& text) {
  std::printf("%12s: %s\n", label, text.c_str());
}

void more(const std::string& text) {
  std::printf("%12s  %s\n", "", text.c_str());
}

void print_status(const json& s) {
  const json& agent = obj(s, "agent");
  std::printf("\u25cf agentwall %s - running (pid %s), up %s, since %s on %s\n",
              str(s, "version").c_str(), str(s, "pid").c_str(),
              duration(num(s, "uptime_s")).c_str(), str(s, "started").c_str(),
              str(s, "host").c_str());
  const json& policy = obj(s, "policy");
  if (policy.contains("mode")) {
    std::string files;
    for (const auto& f : arr(policy, "files"))
      files += (files.empty() ? "" : ", ") + f.get<std::string>();
    section("Policy", str(policy, "mode") + " mode: " + files);
  } else {
    section("Policy", "none (--no-policy)");
  }
  std::string config;
  for (const auto& f : arr(s, "configuration"))
    config += (config.empty() ? "" : ", ") + f.get<std::string>();
  section("Config", config.empty() ? "built-in defaults (no configuration file)" : config);
  const json& checks = arr(s, "checks");
  size_t ok = 0;
  for (const auto& c : checks) ok += str(c, "state") == "ok" ? 1 : 0;
  section("Checks", std::to_string(ok) + " of " + std::to_string(checks.size()) + " ok");
  for (const auto& c : checks)
    if (str(c, "state") != "ok")
      more(str(c, "name") + " (" + str(c, "state") + "): " + str(c, "detail"));
  const json& attached = arr(s, "attached");
  section("Probes", std::to_string(attached.size()) + " TLS targets attached" +
                        (num(obj(s, "counters"), "attach_failures")
                             ? ", " + count(num(obj(s, "counters"), "attach_failures")) +
                                   " could not be attached"
                             : ""));
  for (const auto& t : attached) {
    std::string fns;
    for (const auto& f : arr(t, "functions"))
      fns += (fns.empty() ? "" : " ") + f.get<std::string>();
    more(str(t, "kind") + " " + str(t, "path") + " (" + fns + ")");
  }
  const json& procs = obj(s, "processes");
  const json& streams = obj(s, "streams");
  section("Processes", count(num(procs, "monitored")) + " monitored, " +
                           count(num(procs, "gated")) + " gated; " +
                           count(num(streams, "connections_open")) + " TLS connections open");
  const json& llm = obj(s, "llm");
  const json& pol = obj(s, "policy");
  section("LLM calls", count(num(llm, "calls")) + " (" + count(num(llm, "estimated_usage")) +
                           " with estimated usage, " + count(num(llm, "unpriced")) +
                           " unpriced); " + count(num(pol, "alerts")) + " alerts, " +
                           count(num(obj(s, "flood_control"), "suppressed")) +
                           " held back by flood control");
  const json& e = obj(s, "enforce");
  section("Enforcement", count(num(e, "holds")) + " writes held: " + count(num(e, "allowed")) +
                             " allowed, " + count(num(e, "blocked")) + " blocked, " +
                             count(num(e, "redacted")) + " redacted, " + count(num(e, "killed")) +
                             " killed, " + count(num(e, "deadline_missed")) + " past the deadline");
  const json& c = obj(s, "counters");
  section("Drops", count(num(c, "ringbuf_drop_chunks")) + " chunks (" +
                       bytes(num(c, "ringbuf_drop_bytes")) + ") to a full ring buffer, " +
                       count(num(c, "truncated_calls")) + " calls cut at the capture cap, " +
                       count(num(c, "stream_gaps")) + " stream gaps (" +
                       bytes(num(c, "stream_gap_bytes")) + ")");
  const json& budgets = arr(s, "budgets");
  if (budgets.empty()) section("Budgets", "nothing counted yet");
  for (size_t i = 0; i < budgets.size(); ++i) {
    const json& b = budgets[i];
    std::string used = count(num(b, "used_tokens")) + " tokens";
    if (b.contains("limit_tokens")) used += " of " + count(num(b, "limit_tokens"));
    used += ", $" + usd(num(b, "used_usd"));
    if (b.contains("limit_usd")) used += " of $" + usd(num(b, "limit_usd"));
    char pct[16];
    std::snprintf(pct, sizeof(pct), "%.0f%%", num(b, "fraction") * 100);
    const std::string line =
        str(b, "name") + " [" + str(b, "key") + "]: " + used + " (" + pct + ") " + str(b, "state");
    if (i == 0)
      section("Budgets", line);
    else
      more(line);
  }
  const json& sinks = arr(s, "sinks");
  if (sinks.empty()) section("Sinks", "none");
  for (size_t i = 0; i < sinks.size(); ++i) {
    const json& k = sinks[i];
    const bool healthy = flag(k, "healthy");
    std::string line = str(k, "name") + " (" + str(k, "kind") +
                       "): " + (healthy ? "healthy" : "FAILING") + ", " +
                       count(num(k, "delivered")) + " delivered, " + count(num(k, "queue_depth")) +
                       " queued, " + count(num(k, "dropped")) + " dropped";
    if (!str(k, "last_error").empty()) line += "; last error: " + str(k, "last_error");
    if (i == 0)
      section("Sinks", line);
    else
      more(line);
  }
  section("Resources", bytes(num(agent, "rss_bytes")) + " resident, " +
                           duration(num(agent, "cpu_seconds")) + " CPU");
}

// ---- top -----------------------------------------------------------------------------------

enum class SortBy { kCalls, kTokens, kCost, kAlerts };

std::optional<SortBy> sort_by(const std::string& s) {
  if (s == "calls") return SortBy::kCalls;
  if (s == "tokens") return SortBy::kTokens;
  if (s == "cost") return SortBy::kCost;
  if (s == "alerts") return SortBy::kAlerts;
  return std::nullopt;
}

const char* sort_name(SortBy s) {
  switch (s) {
    case SortBy::kCalls:
      return "calls";
    case SortBy::kTokens:
      return "tokens";
    case SortBy::kCost:
      return "cost";
    case SortBy::kAlerts:
      return "alerts";
  }
  return "calls";
}

double sort_key(const json& p, SortBy s) {
  switch (s) {
    case SortBy::kCalls:
      return num(p, "calls");
    case SortBy::kTokens:
      return num(p, "input_tokens") + num(p, "output_tokens");
    case SortBy::kCost:
      return num(p, "cost_usd");
    case SortBy::kAlerts:
      return num(p, "alerts") + num(p, "blocked") + num(p, "redacted") + num(p, "killed");
  }
  return 0;
}

// The table, `width` columns wide at most.
std::string top_table(const json& top, SortBy sort, size_t width) {
  std::vector<json> rows(arr(top, "processes").begin(), arr(top, "processes").end());
  std::stable_sort(rows.begin(), rows.end(), [&](const json& a, const json& b) {
    return sort_key(a, sort) > sort_key(b, sort);
  });
  double calls = 0, tokens = 0, cost = 0, alerts = 0;
  for (const json& p : rows) {
    calls += num(p, "calls");
    tokens += num(p, "input_tokens") + num(p, "output_tokens");
    cost += num(p, "cost_usd");
    alerts += num(p, "alerts");
  }
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line),
                "agentwall top - %s - %zu processes, %s calls, %s tokens, $%s, %s alerts "
                "(sorted by %s)\n\n",
                str(top, "time").c_str(), rows.size(), count(calls).c_str(), count(tokens).c_str(),
                usd(cost).c_str(), count(alerts).c_str(), sort_name(sort));
  out += line;
  std::snprintf(line, sizeof(line), "%8s %-15s %6s %8s %8s %9s %6s %7s %8s %-20s %s\n", "PID",
                "COMM", "CALLS", "IN_TOK", "OUT_TOK", "COST_USD", "ALERTS", "BLOCKED", "CALLS/1M",
                "MODEL", "EXE");
  out += line;
  for (const json& p : rows) {
    std::snprintf(line, sizeof(line), "%8s %-15.15s %6s %8s %8s %9s %6s %7s %8s %-20.20s %s",
                  str(p, "pid").c_str(), str(p, "comm").c_str(), count(num(p, "calls")).c_str(),
                  count(num(p, "input_tokens")).c_str(), count(num(p, "output_tokens")).c_str(),
                  usd(num(p, "cost_usd")).c_str(), count(num(p, "alerts")).c_str(),
                  count(num(p, "blocked") + num(p, "redacted") + num(p, "killed")).c_str(),
                  count(num(p, "calls_1m")).c_str(), str(p, "last_model").c_str(),
                  str(p, "exe").c_str());
    std::string row = line;
    if (row.size() > width) row.resize(width);
    out += row + "\n";
  }
  if (rows.empty()) out += "  (no LLM traffic seen in the last 10 minutes)\n";
  return out;
}

size_t terminal_width() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 1000;
}

// The terminal as `top` needs it (keys without Enter, no echo, the alternate screen) while
// the object lives; as it was afterwards.
class TerminalMode {
 public:
  TerminalMode() {
    if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_) == 0) {
      termios raw = saved_;
      raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
      raw.c_cc[VMIN] = 0;
      raw.c_cc[VTIME] = 0;
      keys_ = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
    }
    std::fputs("\x1b[?1049h\x1b[?25l", stdout);  // alternate screen, no cursor
  }
  ~TerminalMode() {
    std::fputs("\x1b[?25h\x1b[?1049l", stdout);
    std::fflush(stdout);
    if (keys_) tcsetattr(STDIN_FILENO, TCSANOW, &saved_);
  }
  bool keys() const { return keys_; }

 private:
  termios saved_{};
  bool keys_ = false;
};

// Waits up to `ms` for a key; 0 when none came.
char wait_key(int ms, bool keys) {
  pollfd p{STDIN_FILENO, POLLIN, 0};
  if (poll(&p, keys ? 1 : 0, ms) <= 0) return 0;
  char c = 0;
  return read(STDIN_FILENO, &c, 1) == 1 ? c : 0;
}

// ---- tail ----------------------------------------------------------------------------------

// One line per event: time, type, process, and what matters for the type.
std::string pretty(const json& e) {
  const std::string type = str(e, "type");
  const json& p = obj(e, "process");
  std::string what;
  if (type == "llm.exchange") {
    const json& u = obj(e, "usage");
    what = str(e, "provider") + " " + str(e, "model") + " " + str(e, "status") + ", " +
           count(num(u, "input_tokens")) + " in / " + count(num(u, "output_tokens")) +
           " out tokens, $" + usd(num(e, "cost_usd"));
  } else if (type == "policy.alert") {
    what = str(e, "severity") + " " + str(e, "rule") + " (" + str(e, "outcome") +
           "): " + str(e, "message");
  } else if (type == "budget.alert") {
    what = str(e, "budget") + " [" + str(e, "key") + "] " + str(e, "state") + " at " +
           str(e, "fraction");
  } else if (type == "enforce.action") {
    what = str(e, "action") + (flag(e, "ok") ? "" : " FAILED") + " (" + str(e, "rule") + ")";
  } else if (type == "tail.dropped") {
    return "-- " + str(e, "dropped") + " events dropped: this client did not keep up --";
  } else if (type == "agent.health") {
    what = count(num(obj(e, "llm"), "calls")) + " LLM calls, up " + duration(num(e, "uptime_s"));
  } else {
    what = str(e, "message");
  }
  const std::string pid = str(p, "pid").empty() ? str(e, "pid") : str(p, "pid");
  const std::string exe = str(p, "exe").empty() ? str(e, "exe") : str(p, "exe");
  char head[256];
  std::snprintf(head, sizeof(head), "%-30s %-15s %7s %-24s ", str(e, "time").c_str(), type.c_str(),
                pid.c_str(), exe.c_str());
  return head + what;
}

}  // namespace

int cmd_status(int argc, char** argv) {
  std::string path;
  bool as_json = false;
  po::options_description desc("agentwall status [options]");
  desc.add_options()("json", po::bool_switch(&as_json),
                     "print the agent's status document as JSON");
  po::variables_map vm;
  if (std::optional<int> done = parse_command(
          argc, argv, desc, vm, path,
          "Shows what the running agent sees: version, uptime, the TLS libraries and\n"
          "executables it has probes on, the processes it follows, what it lost (ring\n"
          "buffer, capture cap, stream gaps), LLM calls, alerts, enforcement, budgets\n"
          "and the health of every sink. Needs root (the control socket is root-only).\n"))
    return *done;
  const std::optional<json> s = ask(path, "status");
  if (!s) return 1;
  if (as_json)
    std::printf("%s\n", s->dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  else
    print_status(*s);
  return 0;
}

namespace {

void print_coverage(const json& doc) {
  const auto procs = doc.find("processes");
  if (procs == doc.end() || !procs->is_array() || procs->empty()) {
    std::printf("no process has talked to a known AI endpoint since the agent started\n");
    return;
  }
  std::printf("%7s  %-16s %-8s %-32s %s\n", "PID", "COMMAND", "CONTENT", "ENDPOINTS", "TLS STACK");
  for (const json& p : *procs) {
    const json& proc = p.value("process", json::object());
    std::string endpoints;
    for (const json& e : p.value("endpoints", json::array())) {
      if (!endpoints.empty()) endpoints += ",";
      endpoints += e.contains("host") ? str(e, "host") : str(e, "peer");
    }
    for (const json& h : p.value("tls_hosts", json::array())) {
      const std::string host = h.is_string() ? h.get<std::string>() : "";
      if (endpoints.find(host) == std::string::npos) {
        if (!endpoints.empty()) endpoints += ",";
        endpoints += host;
      }
    }
    const bool visible = p.value("visible", false);
    std::string content = visible ? "visible" : "HIDDEN";
    if (!p.value("alive", true)) content += "*";
    std::string comm = str(proc, "comm");
    std::printf("%7s  %-16s %-8s %-32s %s\n", str(proc, "pid").c_str(), comm.c_str(),
                content.c_str(), endpoints.c_str(),
                visible ? "" : (str(p, "tls_stack") + ": " + str(p, "reason")).c_str());
  }
  std::printf("(* exited)\n");
}

}  // namespace

int cmd_coverage(int argc, char** argv) {
  std::string path;
  bool as_json = false;
  po::options_description desc("agentwall coverage [options]");
  desc.add_options()("json", po::bool_switch(&as_json), "print the coverage document as JSON");
  po::variables_map vm;
  if (std::optional<int> done = parse_command(
          argc, argv, desc, vm, path,
          "Lists the processes that talk to a known AI endpoint (an LLM provider's host, by\n"
          "the SNI of connections the agent sees, or an endpoint in coverage.endpoints) and\n"
          "whether the agent sees what they say; for those it does not, the TLS stack they\n"
          "carry and why it is not captured. Each such blind spot is also a coverage.gap\n"
          "alert. Needs root (the control socket is root-only).\n"))
    return *done;
  const std::optional<json> doc = ask(path, "coverage");
  if (!doc) return 1;
  if (as_json)
    std::printf("%s\n", doc->dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  else
    print_coverage(*doc);
  return 0;
}

int cmd_top(int argc, char** argv) {
  std::string path, sort_arg = "calls";
  bool once = false;
  double interval = 2;
  po::options_description desc("agentwall top [options]");
  desc.add_options()("once", po::bool_switch(&once), "print the table once and exit")(
      "interval", po::value(&interval)->default_value(interval), "seconds between refreshes")(
      "sort", po::value(&sort_arg)->default_value(sort_arg),
      "order rows by calls, tokens, cost or alerts");
  po::variables_map vm;
  if (std::optional<int> done = parse_command(
          argc, argv, desc, vm, path,
          "LLM calls, tokens, cost, alerts and enforcement per process, over the last 10\n"
          "minutes of traffic, redrawn every interval. Keys: q quits; c, t, $ and a sort\n"
          "by calls, tokens, cost and alerts. Needs root.\n"))
    return *done;
  std::optional<SortBy> sort = sort_by(sort_arg);
  if (!sort) {
    std::fprintf(stderr, "agentwall: --sort %s: expected calls, tokens, cost or alerts\n",
                 sort_arg.c_str());
    return 2;
  }
  if (!(interval >= 0.1 && interval <= 3600)) {
    std::fprintf(stderr, "agentwall: --interval %g: expected 0.1 to 3600 seconds\n", interval);
    return 2;
  }
  if (once) {
    const std::optional<json> t = ask(path, "top");
    if (!t) return 1;
    std::fputs(top_table(*t, *sort, 1000).c_str(), stdout);
    return 0;
  }
  catch_interrupts();
  const bool tty = isatty(STDOUT_FILENO);
  std::optional<TerminalMode> term;
  if (tty) term.emplace();
  const int wait_ms = static_cast<int>(interval * 1000);
  while (!g_interrupted) {
    const std::optional<json> t = ask(path, "top");
    if (!t) {
      term.reset();  // the error goes to the normal screen
      std::fprintf(stderr, "agentwall: top stopped: the agent is no longer reachable\n");
      return 1;
    }
    std::string frame = top_table(*t, *sort, tty ? terminal_width() : 1000);
    std::fputs(tty ? ("\x1b[H\x1b[2J" + frame).c_str() : (frame + "\n").c_str(), stdout);
    std::fflush(stdout);
    const char key = wait_key(wait_ms, term && term->keys());
    if (key == 'q' || key == 'Q') break;
    if (key == 'c') sort = SortBy::kCalls;
    if (key == 't') sort = SortBy::kTokens;
    if (key == '$') sort = SortBy::kCost;
    if (key == 'a') sort = SortBy::kAlerts;
  }
  return 0;
}

int cmd_tail(int argc, char** argv) {
  std::string path, exe, min_severity;
  std::vector<std::string> types;
  uint32_t pid = 0;
  bool show_pretty = false;
  po::options_description desc("agentwall tail [options]");
  desc.add_options()("type", po::value(&types)->composing(),
                     "only events whose type matches this glob, e.g. llm.exchange or 'policy.*' "
                     "(repeatable)")("pid", po::value(&pid), "only events of this process")(
      "exe", po::value(&exe), "only events of processes whose executable matches this glob")(
      "min-severity", po::value(&min_severity),
      "only events with a severity at least this: info, low, medium, high, critical")(
      "pretty", po::bool_switch(&show_pretty), "one human line per event instead of JSON");
  po::variables_map vm;
  if (std::optional<int> done = parse_command(
          argc, argv, desc, vm, path,
          "Follows the running agent's events as they happen, as JSON lines (exactly\n"
          "what its sinks get; docs/EVENTS.md), until Ctrl-C. A client that reads too\n"
          "slowly loses events, and a {\"type\":\"tail.dropped\",\"dropped\":N} line says\n"
          "how many. Needs root.\n"))
    return *done;
  json request = {{"cmd", "tail"}};
  if (!types.empty()) request["types"] = types;
  if (vm.count("pid")) request["pid"] = pid;
  if (!exe.empty()) request["exe"] = exe;
  if (!min_severity.empty()) request["min_severity"] = min_severity;
  catch_interrupts();
  Connection c;
  if (!c.open(path, request)) return 1;
  const std::optional<json> started = parse_reply(c.next_line(), path);
  if (!started) return g_interrupted ? 0 : 1;
  std::fprintf(stderr, "agentwall: following the events of the agent (pid %s) at %s\n",
               str(*started, "pid").c_str(), path.c_str());
  while (const std::optional<std::string> line = c.next_line()) {
    if (show_pretty) {
      const json e = json::parse(*line, nullptr, false);
      std::printf("%s\n", e.is_object() ? pretty(e).c_str() : line->c_str());
    } else {
      std::printf("%s\n", line->c_str());
    }
    std::fflush(stdout);
  }
  if (g_interrupted) return 0;
  std::fprintf(stderr, "agentwall: the agent at %s closed the connection (it stopped)\n",
               path.c_str());
  return 1;
}

}  // namespace agentwall::cli
