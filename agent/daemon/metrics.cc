#include "agent/daemon/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <sstream>

#include "agent/common/fast_json.h"

namespace agentwall::daemon {
namespace {

// A label value with \, " and newline escaped.
std::string label(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"')
      out += '\\', out += c;
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

class Writer {
 public:
  void family(std::string_view name, std::string_view type, std::string_view help) {
    out_ << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  }
  template <typename T>
  void sample(std::string_view name, const std::string& labels, T value) {
    out_ << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << value << '\n';
  }
  template <typename T>
  void one(std::string_view name, std::string_view type, std::string_view help, T value) {
    family(name, type, help);
    sample(name, "", value);
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

void Metrics::observe(std::string_view line) {
  const bool exchange = line.starts_with("{\"type\":\"llm.exchange\"");
  const bool alert = line.starts_with("{\"type\":\"policy.alert\"") ||
                     line.starts_with("{\"type\":\"budget.alert\"") ||
                     line.starts_with("{\"type\":\"enforce.action\"");
  if (!exchange && !alert) return;
  const nlohmann::json j = parse_json(line);
  if (!j.is_object()) return;
  if (exchange) {
    Llm& l = llm_[{j.value("provider", ""), j.value("model", "")}];
    ++l.calls;
    if (auto u = j.find("usage"); u != j.end() && u->is_object()) {
      l.input_tokens += u->value("input_tokens", uint64_t(0));
      l.output_tokens += u->value("output_tokens", uint64_t(0));
    }
    if (auto c = j.find("cost_usd"); c != j.end() && c->is_number()) l.cost_usd += c->get<double>();
    return;
  }
  const std::string type = j.value("type", "");
  std::string rule = j.value("rule", "");
  if (type == "budget.alert") rule = j.value("budget", "");
  ++alerts_[{type, rule, j.value("action", "")}];
}

std::string Metrics::render(const HealthSnapshot& h, const std::vector<sinks::SinkStats>& sinks,
                            const sinks::FloodStats& flood) const {
  Writer w;
  const auto& c = h.capture;
  w.one("agentwall_uptime_seconds", "gauge", "Seconds since the agent started.", h.uptime_s);
  w.one("agentwall_captured_calls_total", "counter", "TLS read/write calls that moved data.",
        c.calls);
  w.one("agentwall_captured_chunks_total", "counter", "Plaintext chunks handed to userspace.",
        c.chunks);
  w.one("agentwall_captured_bytes_total", "counter", "Plaintext bytes handed to userspace.",
        c.bytes);
  w.family("agentwall_dropped_bytes_total", "counter",
           "Plaintext bytes not seen, by reason (ringbuf: ring buffer full; truncated: over the "
           "capture cap; stream_gap: holes seen by the stream stage).");
  w.sample("agentwall_dropped_bytes_total", "reason=\"ringbuf\"", c.ringbuf_drop_bytes);
  w.sample("agentwall_dropped_bytes_total", "reason=\"truncated\"", c.truncated_bytes);
  w.sample("agentwall_dropped_bytes_total", "reason=\"stream_gap\"", h.stream.gap_bytes);
  w.family("agentwall_dropped_events_total", "counter", "Kernel events lost, by reason.");
  w.sample("agentwall_dropped_events_total", "reason=\"ringbuf_chunks\"", c.ringbuf_drop_chunks);
  w.sample("agentwall_dropped_events_total", "reason=\"read_fault\"", c.read_faults);
  w.sample("agentwall_dropped_events_total", "reason=\"ctrl\"", c.ctrl_drops);
  w.sample("agentwall_dropped_events_total", "reason=\"proc_event\"", c.proc_event_drops);
  w.sample("agentwall_dropped_events_total", "reason=\"hold\"", c.hold_drops);
  w.sample("agentwall_dropped_events_total", "reason=\"bpf_recursion\"", c.bpf_recursion_misses);
  w.sample("agentwall_dropped_events_total", "reason=\"record\"", h.record_lost);
  w.one("agentwall_attached_targets", "gauge", "Libraries and executables with probes attached.",
        h.attached.size());
  w.one("agentwall_attach_failures_total", "counter", "Targets that could not be attached.",
        c.attach_failures);

  w.family("agentwall_llm_exchanges_total", "counter",
           "LLM API calls seen, by provider and model.");
  for (const auto& [k, v] : llm_)
    w.sample("agentwall_llm_exchanges_total",
             "provider=\"" + label(std::get<0>(k)) + "\",model=\"" + label(std::get<1>(k)) + "\"",
             v.calls);
  w.family("agentwall_llm_tokens_total", "counter",
           "Tokens of LLM calls, by provider, model and direction.");
  for (const auto& [k, v] : llm_) {
    const std::string l =
        "provider=\"" + label(std::get<0>(k)) + "\",model=\"" + label(std::get<1>(k)) + "\"";
    w.sample("agentwall_llm_tokens_total", l + ",direction=\"input\"", v.input_tokens);
    w.sample("agentwall_llm_tokens_total", l + ",direction=\"output\"", v.output_tokens);
  }
  w.family("agentwall_llm_cost_usd_total", "counter", "List-price cost of LLM calls in USD.");
  for (const auto& [k, v] : llm_)
    w.sample("agentwall_llm_cost_usd_total",
             "provider=\"" + label(std::get<0>(k)) + "\",model=\"" + label(std::get<1>(k)) + "\"",
             v.cost_usd);

  w.family("agentwall_alerts_total", "counter",
           "Alerts and enforcement actions, by type, rule and action.");
  for (const auto& [k, v] : alerts_)
    w.sample("agentwall_alerts_total",
             "type=\"" + label(std::get<0>(k)) + "\",rule=\"" + label(std::get<1>(k)) +
                 "\",action=\"" + label(std::get<2>(k)) + "\"",
             v);
  w.one("agentwall_alerts_suppressed_total", "counter", "Alerts held back by flood control.",
        flood.suppressed);

  w.family("agentwall_verdict_latency_seconds", "histogram",
           "From a TLS write held in the kernel to the process resumed.");
  for (size_t b = 0; b < enforce::GateStats::kBucketsUs.size(); ++b) {
    const double le = enforce::GateStats::kBucketsUs[b];
    std::ostringstream bound;
    if (b + 1 == enforce::GateStats::kBucketsUs.size())
      bound << "+Inf";
    else
      bound << le / 1e6;
    w.sample("agentwall_verdict_latency_seconds_bucket", "le=\"" + bound.str() + "\"",
             h.gate.latency_buckets[b]);
  }
  w.sample("agentwall_verdict_latency_seconds_sum", "", h.gate.latency_sum_us / 1e6);
  w.sample("agentwall_verdict_latency_seconds_count", "", h.gate.holds);

  auto per_sink = [&](std::string_view name, std::string_view type, std::string_view help,
                      auto field) {
    w.family(name, type, help);
    for (const auto& s : sinks) w.sample(name, "sink=\"" + label(s.name) + "\"", field(s));
  };
  per_sink("agentwall_sink_delivered_total", "counter", "Events a sink's receiver took.",
           [](const sinks::SinkStats& s) { return s.delivered; });
  per_sink("agentwall_sink_queue_depth", "gauge", "Events spooled, not yet delivered.",
           [](const sinks::SinkStats& s) { return s.queue_depth; });
  per_sink("agentwall_sink_spool_bytes", "gauge", "Bytes of a sink's spool on disk.",
           [](const sinks::SinkStats& s) { return s.spool_bytes; });
  per_sink("agentwall_sink_errors_total", "counter", "Failed connects, writes and requests.",
           [](const sinks::SinkStats& s) { return s.send_errors; });
  per_sink("agentwall_sink_dropped_total", "counter",
           "Events lost by a sink (spool full, file write failed).",
           [](const sinks::SinkStats& s) { return s.dropped; });
  per_sink("agentwall_sink_up", "gauge", "1 when the sink's last delivery succeeded.",
           [](const sinks::SinkStats& s) { return s.healthy ? 1 : 0; });
  w.one("agentwall_resident_memory_bytes", "gauge", "The agent's resident memory.", h.rss_bytes);
  w.one("agentwall_cpu_seconds_total", "counter", "CPU time the agent used.", h.cpu_seconds);
  return w.str();
}

std::unique_ptr<MetricsServer> MetricsServer::start(const std::string& listen, std::string& error) {
  std::string host = listen;
  uint16_t port = 9464;
  if (const size_t colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    const long p = std::strtol(listen.c_str() + colon + 1, nullptr, 10);
    if (p < 0 || p > 65535) {
      error = "--metrics " + listen + ": the port must be 0-65535";
      return nullptr;
    }
    port = static_cast<uint16_t>(p);
  }
  if (host.empty()) host = "127.0.0.1";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
    error = "--metrics " + listen + ": expected IPV4:PORT, e.g. 127.0.0.1:9464";
    return nullptr;
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(m->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(m->fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::listen(m->fd_, 16) != 0) {
    error = "--metrics " + listen + ": cannot listen: " + std::strerror(errno);
    return nullptr;
  }
  socklen_t len = sizeof(addr);
  getsockname(m->fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  m->port_ = ntohs(addr.sin_port);
  m->thread_ = std::thread([p = m.get()] { p->serve(); });
  return m;
}

MetricsServer::~MetricsServer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  if (fd_ >= 0) close(fd_);
}

void MetricsServer::set(std::string text) {
  std::lock_guard lock(mu_);
  text_ = std::move(text);
}

void MetricsServer::serve() {
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;
    const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) continue;
    timeval tv{2, 0};
    setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    std::string req;
    char buf[2048];
    while (req.find("\r\n\r\n") == std::string::npos && req.size() < 8192) {
      const ssize_t n = recv(c, buf, sizeof(buf), 0);
      if (n <= 0) break;
      req.append(buf, static_cast<size_t>(n));
    }
    std::string body, status = "200 OK", type = "text/plain; version=0.0.4; charset=utf-8";
    if (req.starts_with("GET /metrics ") || req.starts_with("GET /metrics?")) {
      std::lock_guard lock(mu_);
      body = text_;
    } else if (req.starts_with("GET / ")) {
      body = "agentwall: metrics at /metrics\n";
    } else {
      status = "404 Not Found";
      body = "not found: metrics are at /metrics\n";
    }
    const std::string head = "HTTP/1.1 " + status + "\r\nContent-Type: " + type +
                             "\r\nContent-Length: " + std::to_string(body.size()) +
                             "\r\nConnection: close\r\n\r\n";
    const std::string out = head + body;
    size_t off = 0;
    while (off < out.size()) {
      const ssize_t n = send(c, out.data() + off, out.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(c);
  }
}

}  // namespace agentwall::daemon
