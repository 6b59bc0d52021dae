#include "agent/sinks/sinks.h"

#include <fcntl.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "agent/common/fast_json.h"
#include "agent/common/json_writer.h"
#include "agent/common/time.h"
#include "agent/sinks/spool.h"
#include "agent/sinks/transport.h"

namespace agentwall::sinks {

namespace {

// The value of the top-level string member `key` of a JSON object line, found by scanning
// (events put "type" first); empty when absent.
std::string_view leading_type(std::string_view line) {
  constexpr std::string_view kPrefix = "{\"type\":\"";
  if (!line.starts_with(kPrefix)) return {};
  const size_t end = line.find('"', kPrefix.size());
  if (end == std::string_view::npos) return {};
  return line.substr(kPrefix.size(), end - kPrefix.size());
}

// `line` with `,"seq":N` added as its last member.
std::string with_seq(std::string_view line, uint64_t seq) {
  std::string out(line);
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  if (out.size() < 2 || out.back() != '}') return out;
  out.pop_back();
  if (out.size() > 1) out += ',';
  out += "\"seq\":" + std::to_string(seq) + "}";
  return out;
}

bool type_matches(const std::vector<std::string>& types, std::string_view type) {
  if (types.empty()) return true;
  for (const auto& t : types) {
    if (!t.empty() && t.back() == '*') {
      if (type.starts_with(std::string_view(t).substr(0, t.size() - 1))) return true;
    } else if (t == type) {
      return true;
    }
  }
  return false;
}

}  // namespace

// ---- one sink -----------------------------------------------------------------------------

class Sink {
 public:
  Sink(SinkConfig c, const FormatContext& ctx) : cfg(std::move(c)), ctx_(ctx) {}
  virtual ~Sink() = default;

  bool wants(std::string_view type, int severity) {
    if (!type_matches(cfg.types, type) || severity < cfg.min_severity) {
      filtered_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    accepted_.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  virtual void accept(std::string_view line) = 0;
  virtual void reopen() {}
  virtual void shutdown(std::chrono::steady_clock::time_point) {}
  virtual uint64_t take_dropped() { return 0; }
  virtual SinkStats stats() const {
    SinkStats s;
    s.name = cfg.name;
    s.kind = std::string(to_string(cfg.kind));
    s.format = std::string(to_string(cfg.format));
    s.accepted = accepted_.load();
    s.filtered = filtered_.load();
    return s;
  }

  SinkConfig cfg;

 protected:
  // One event, formatted for this sink (JSON lines get their seq without a re-parse).
  std::string format_line(std::string_view line, uint64_t seq) {
    if (cfg.format == Format::kJson) return with_seq(line, seq);
    json ev = parse_json(line);
    if (ev.is_discarded() || !ev.is_object()) return with_seq(line, seq);
    ev["seq"] = seq;
    return format_event(cfg.format, ev, ctx_);
  }
  // The same for an event already parsed (with its seq): `raw` is its spooled line.
  std::string format_parsed(const json& ev, std::string_view raw, uint64_t seq) {
    return cfg.format == Format::kJson ? with_seq(raw, seq) : format_event(cfg.format, ev, ctx_);
  }

  FormatContext ctx_;
  std::atomic<uint64_t> accepted_{0}, filtered_{0};
};

namespace {

// stdout and JSON-lines files: written directly, one write(2) per event, so a line that was
// written is in the file even if the agent is killed.
class DirectSink final : public Sink {
 public:
  using Sink::Sink;
  ~DirectSink() override {
    if (fd_ > 1) close(fd_);
  }

  bool open(std::string& error) {
    if (cfg.kind == SinkKind::kStdout) {
      fd_ = 1;
      return true;
    }
    fd_ = ::open(cfg.path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd_ < 0) {
      error = "cannot open " + cfg.path + " for writing: " + std::strerror(errno) +
              " (create its directory, or choose another path)";
      return false;
    }
    struct stat st {};
    fstat(fd_, &st);
    size_ = static_cast<uint64_t>(st.st_size);
    return true;
  }

  void accept(std::string_view line) override {
    std::lock_guard lock(mu_);
    std::string out = format_line(line, ++seq_);
    out += '\n';
    if (cfg.kind == SinkKind::kFile && cfg.max_size && size_ > 0 &&
        size_ + out.size() > cfg.max_size)
      rotate();
    if (fd_ < 0) {
      ++dropped_;
      return;
    }
    std::string_view rest = out;
    while (!rest.empty()) {
      const ssize_t n = ::write(fd_, rest.data(), rest.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ++dropped_;
        ++errors_;
        if (last_error_.empty() || errors_ % 1000 == 1) {
          last_error_ = "cannot write to " + (cfg.kind == SinkKind::kStdout ? "stdout" : cfg.path) +
                        ": " + std::strerror(errno);
          spdlog::warn("sink {}: {}", cfg.name, last_error_);
        }
        return;
      }
      rest.remove_prefix(static_cast<size_t>(n));
    }
    size_ += out.size();
    ++delivered_;
    last_error_.clear();
  }

  void reopen() override {
    if (cfg.kind != SinkKind::kFile) return;
    std::lock_guard lock(mu_);
    if (fd_ >= 0) close(fd_);
    std::string error;
    if (!open(error)) {
      fd_ = -1;
      last_error_ = error;
      spdlog::error("sink {}: {}", cfg.name, error);
    }
  }

  SinkStats stats() const override {
    SinkStats s = Sink::stats();
    std::lock_guard lock(mu_);
    s.delivered = delivered_;
    s.dropped = dropped_;
    s.send_errors = errors_;
    s.healthy = last_error_.empty();
    s.last_error = last_error_;
    return s;
  }

 private:
  void rotate() {
    namespace fs = std::filesystem;
    close(fd_);
    fd_ = -1;
    std::error_code ec;
    if (cfg.max_files <= 0) {
      fs::remove(cfg.path, ec);
    } else {
      fs::remove(cfg.path + "." + std::to_string(cfg.max_files), ec);
      for (int i = cfg.max_files - 1; i >= 1; --i)
        fs::rename(cfg.path + "." + std::to_string(i), cfg.path + "." + std::to_string(i + 1), ec);
      fs::rename(cfg.path, cfg.path + ".1", ec);
    }
    std::string error;
    if (!open(error)) {
      fd_ = -1;
      last_error_ = error;
      spdlog::error("sink {}: {}", cfg.name, error);
    }
  }

  mutable std::mutex mu_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t seq_ = 0;
  uint64_t delivered_ = 0, dropped_ = 0, errors_ = 0;
  std::string last_error_;
};

// Network sinks: the event goes into the spool at once; a sender thread delivers batches and
// acknowledges them in the spool only once the receiver has them.
class SpooledSink final : public Sink {
 public:
  SpooledSink(SinkConfig c, const FormatContext& ctx) : Sink(std::move(c), ctx) {}
  ~SpooledSink() override { stop(); }

  bool open(std::string& error) {
    spool_ = Spool::open(cfg.spool, error);
    if (!spool_) return false;
    if (cfg.tls.enabled) {
      tls_ = TlsContext::create(cfg.tls, error);
      if (!tls_) return false;
    }
    const SpoolStats st = spool_->stats();
    if (st.depth)
      spdlog::info("sink {}: {} events from before the restart are still to deliver", cfg.name,
                   st.depth);
    thread_ = std::thread([this] { run(); });
    return true;
  }

  void accept(std::string_view line) override {
    if (spool_->append(line) == 0) {
      std::lock_guard lock(mu_);
      ++lost_;
      last_error_ = "spool: " + spool_->last_error();
    }
  }

  uint64_t take_dropped() override { return spool_->take_dropped(); }

  void shutdown(std::chrono::steady_clock::time_point deadline) override {
    {
      std::lock_guard lock(mu_);
      drain_deadline_ = deadline;
      draining_ = true;
    }
    cv_.notify_all();
    stop();
    spool_->sync();
  }

  SinkStats stats() const override {
    SinkStats s = Sink::stats();
    const SpoolStats sp = spool_->stats();
    s.queue_depth = sp.depth;
    s.spool_bytes = sp.bytes;
    std::lock_guard lock(mu_);
    s.delivered = delivered_;
    s.send_errors = errors_;
    s.dropped = sp.dropped + lost_;
    s.healthy = healthy_;
    s.last_error = last_error_;
    return s;
  }

 private:
  void stop() {
    if (!thread_.joinable()) return;
    {
      std::lock_guard lock(mu_);
      draining_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  bool draining() {
    std::lock_guard lock(mu_);
    return draining_;
  }

  bool past_drain_deadline() {
    std::lock_guard lock(mu_);
    return draining_ && std::chrono::steady_clock::now() >= drain_deadline_;
  }

  void failed(const std::string& error) {
    std::lock_guard lock(mu_);
    ++errors_;
    if (healthy_ || error != last_error_)
      spdlog::warn("sink {}: {}; retrying in {} ms (events wait in the spool)", cfg.name, error,
                   backoff_.count());
    healthy_ = false;
    last_error_ = error;
  }

  void succeeded(size_t n) {
    std::lock_guard lock(mu_);
    if (!healthy_) spdlog::info("sink {}: delivering again", cfg.name);
    healthy_ = true;
    last_error_.clear();
    delivered_ += n;
  }

  // Sleeps `d` unless a drain deadline passes first. False when the thread should end.
  bool pause(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    const auto until = std::chrono::steady_clock::now() + d;
    cv_.wait_until(lock, draining_ ? std::min(until, drain_deadline_) : until, [&] {
      return draining_ && std::chrono::steady_clock::now() >= drain_deadline_;
    });
    return !(draining_ && std::chrono::steady_clock::now() >= drain_deadline_);
  }

  void run() {
    std::mt19937_64 rng(std::random_device{}());
    backoff_ = cfg.backoff_min;
    bool waited = false;  // this partial batch already waited flush_interval
    for (;;) {
      if (draining() && (spool_->stats().depth == 0 || past_drain_deadline())) break;
      if (!spool_->wait(std::chrono::milliseconds(100))) {
        if (stream_ && !stream_->alive()) stream_.reset();
        continue;
      }
      // A partial batch waits for more, up to flush_interval (unless draining).
      if (!draining() && spool_->stats().depth < cfg.batch_max && !waited) {
        waited = true;
        if (!pause(cfg.flush_interval)) break;
        continue;
      }
      waited = false;
      std::vector<SpoolRecord> batch = spool_->peek(cfg.batch_max, 4u << 20);
      if (batch.empty()) continue;
      std::string error;
      if (send(batch, error)) {
        spool_->ack(batch.back().seq);
        succeeded(batch.size());
        backoff_ = cfg.backoff_min;
        continue;
      }
      stream_.reset();
      failed(error);
      // Equal jitter: sleep between half and all of the current backoff, which doubles.
      std::uniform_int_distribution<int64_t> jitter(backoff_.count() / 2, backoff_.count());
      if (!pause(std::chrono::milliseconds(jitter(rng)))) break;
      backoff_ = std::min(cfg.backoff_max, backoff_ * 2);
    }
    stream_.reset();
  }

  std::vector<json> parse_batch(const std::vector<SpoolRecord>& batch) {
    std::vector<json> out;
    out.reserve(batch.size());
    for (const auto& r : batch) {
      json ev = parse_json(r.payload);
      if (ev.is_discarded() || !ev.is_object())
        ev = json{{"type", "sink.unreadable"}, {"raw", r.payload}};
      ev["seq"] = r.seq;
      out.push_back(std::move(ev));
    }
    return out;
  }

  bool connect(std::string& error) {
    if (stream_ && stream_->alive()) return true;
    stream_ = Stream::connect(cfg.host, cfg.port, tls_, cfg.timeout, error);
    return stream_ != nullptr;
  }

  bool send(const std::vector<SpoolRecord>& batch, std::string& error) {
    switch (cfg.kind) {
      case SinkKind::kSyslogUdp:
        return send_udp(batch, error);
      case SinkKind::kSyslogTcp:
      case SinkKind::kSyslogTls:
        return send_syslog_stream(batch, error);
      case SinkKind::kHttp:
        return send_http(batch, error);
      case SinkKind::kOtlp:
        return send_otlp(batch, error);
      default:
        error = "not a network sink";
        return false;
    }
  }

  std::string syslog_message(const json& ev, std::string_view raw, uint64_t seq) {
    return to_rfc5424(ev, format_parsed(ev, raw, seq), ctx_, cfg.facility);
  }

  bool send_udp(const std::vector<SpoolRecord>& batch, std::string& error) {
    if (!datagram_) {
      datagram_ = Datagram::open(cfg.host, cfg.port, error);
      if (!datagram_) return false;
    }
    const std::vector<json> evs = parse_batch(batch);
    for (size_t i = 0; i < batch.size(); ++i) {
      std::string m = syslog_message(evs[i], batch[i].payload, batch[i].seq);
      // RFC 5426: a receiver must take 480 (IPv4) and should take 2048 bytes; loopback and
      // most receivers take up to the UDP maximum.
      if (m.size() > 65000) m.resize(65000);
      if (!datagram_->send(m, error)) {
        datagram_.reset();
        return false;
      }
    }
    return true;
  }

  // RFC 6587 octet counting, over TCP or TLS (RFC 5425). Syslog has no application-level
  // acknowledgement: a batch counts as delivered when the receiver's kernel has
  // acknowledged every byte and the connection is still open a moment later.
  bool send_syslog_stream(const std::vector<SpoolRecord>& batch, std::string& error) {
    if (!connect(error)) return false;
    const std::vector<json> evs = parse_batch(batch);
    std::string out;
    for (size_t i = 0; i < batch.size(); ++i) {
      const std::string m = syslog_message(evs[i], batch[i].payload, batch[i].seq);
      out += std::to_string(m.size());
      out += ' ';
      out += m;
    }
    if (!stream_->write_all(out, error)) return false;
    return confirm(error);
  }

  bool confirm(std::string& error) {
    const auto deadline = std::chrono::steady_clock::now() + cfg.timeout;
    const int fd = stream_->fd();
    for (;;) {
      tcp_info info{};
      socklen_t len = sizeof(info);
      if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) break;
      if (info.tcpi_unacked == 0 && info.tcpi_notsent_bytes == 0) break;
      if (std::chrono::steady_clock::now() >= deadline) {
        error = "the receiver did not acknowledge the data within " +
                std::to_string(cfg.timeout.count()) + " ms";
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(kConfirmWindow);
    if (!stream_->alive()) {
      error = "the receiver closed the connection";
      return false;
    }
    return true;
  }

  std::vector<std::pair<std::string, std::string>> http_headers(std::string_view type) {
    std::vector<std::pair<std::string, std::string>> h;
    h.emplace_back("Content-Type", std::string(type));
    if (cfg.gzip) h.emplace_back("Content-Encoding", "gzip");
    if (!cfg.token.empty())
      h.emplace_back("Authorization",
                     (cfg.api == HttpApi::kHec ? "Splunk " : "Bearer ") + cfg.token);
    for (const auto& kv : cfg.headers) h.push_back(kv);
    return h;
  }

  bool post(const std::string& path, std::string_view content_type, std::string body,
            std::string& response_body, std::string& error) {
    if (!connect(error)) return false;
    if (cfg.gzip) body = gzip_compress(body);
    HttpResponse r;
    const std::string host_header =
        cfg.host.find(':') != std::string::npos ? "[" + cfg.host + "]" : cfg.host;
    if (!http_post(*stream_, host_header + ":" + std::to_string(cfg.port), path,
                   http_headers(content_type), body, r, error))
      return false;
    if (!r.keep_alive) stream_.reset();
    response_body = std::move(r.body);
    if (r.status < 200 || r.status >= 300) {
      std::string snippet = response_body.substr(0, 200);
      for (auto& ch : snippet)
        if (ch == '\n' || ch == '\r') ch = ' ';
      error = cfg.http_path + " answered HTTP " + std::to_string(r.status) +
              (snippet.empty() ? "" : ": " + snippet);
      return false;
    }
    return true;
  }

  bool send_http(const std::vector<SpoolRecord>& batch, std::string& error) {
    const std::vector<json> evs = parse_batch(batch);
    std::string body;
    std::string content_type = "application/json";
    switch (cfg.api) {
      case HttpApi::kHec:
        for (size_t i = 0; i < evs.size(); ++i) {
          body += to_hec(evs[i], format_parsed(evs[i], batch[i].payload, batch[i].seq), ctx_,
                         cfg.index, cfg.sourcetype);
          body += '\n';
        }
        break;
      case HttpApi::kBulk:
        content_type = "application/x-ndjson";
        for (const auto& ev : evs) body += to_es_bulk(ev, cfg.index, ctx_);
        break;
      case HttpApi::kWebhook:
        if (cfg.format == Format::kCef) {
          content_type = "text/plain";
          for (const auto& ev : evs) body += format_event(cfg.format, ev, ctx_) + "\n";
        } else {
          body = "[";
          for (size_t i = 0; i < evs.size(); ++i) {
            if (i) body += ',';
            body += format_parsed(evs[i], batch[i].payload, batch[i].seq);
          }
          body += "]";
        }
        break;
    }
    std::string response;
    if (!post(cfg.http_path, content_type, std::move(body), response, error)) return false;
    if (cfg.api == HttpApi::kBulk) {
      // _bulk answers 200 even when items failed; `create` of an id already there (409,
      // a re-delivery) is success.
      json r = parse_json(response);
      if (r.is_object() && r.value("errors", false)) {
        for (const auto& item : r.value("items", json::array())) {
          for (const auto& [_, res] : item.items()) {
            const int status = res.value("status", 0);
            if (status >= 300 && status != 409) {
              error = "_bulk item failed with status " + std::to_string(status) + ": " +
                      res.value("error", json::object()).dump().substr(0, 200);
              return false;
            }
          }
        }
      }
    }
    return true;
  }

  bool send_otlp(const std::vector<SpoolRecord>& batch, std::string& error) {
    const std::vector<json> evs = parse_batch(batch);
    const std::string base = cfg.http_path == "/" ? "" : cfg.http_path;
    std::string response;
    if (cfg.otlp_logs &&
        !post(base + "/v1/logs", "application/json", to_otlp_logs(evs, ctx_), response, error))
      return false;
    if (cfg.otlp_traces) {
      std::string traces = to_otlp_traces(evs, ctx_);
      if (!traces.empty() &&
          !post(base + "/v1/traces", "application/json", std::move(traces), response, error))
        return false;
    }
    return true;
  }

  static constexpr std::chrono::milliseconds kConfirmWindow{20};

  std::unique_ptr<Spool> spool_;
  std::shared_ptr<TlsContext> tls_;
  std::unique_ptr<Stream> stream_;
  std::unique_ptr<Datagram> datagram_;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool draining_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::chrono::milliseconds backoff_{200};
  uint64_t delivered_ = 0, errors_ = 0, lost_ = 0;
  bool healthy_ = true;
  std::string last_error_;
};

}  // namespace

// ---- the set ------------------------------------------------------------------------------

std::unique_ptr<SinkSet> SinkSet::open(std::vector<SinkConfig> configs, SinkSetOptions options,
                                       std::string& error) {
  std::unique_ptr<SinkSet> set(new SinkSet());
  set->options_ = std::move(options);
  std::random_device rd;
  set->id_random_ = (uint64_t(rd()) << 32) ^ rd();
  for (auto& c : configs) {
    for (const auto& other : set->sinks_) {
      if (other->cfg.name == c.name) {
        error = "two sinks are named '" + c.name + "' (" + other->cfg.uri + ", " + c.uri +
                "): give one of them name=…";
        return nullptr;
      }
    }
    if (c.spooled) {
      c.spool.dir = set->options_.state_dir + "/spool/" + c.name;
      auto s = std::make_unique<SpooledSink>(c, set->options_.context);
      if (!s->open(error)) {
        error = "sink " + c.uri + ": " + error;
        return nullptr;
      }
      set->sinks_.push_back(std::move(s));
    } else {
      auto s = std::make_unique<DirectSink>(c, set->options_.context);
      if (!s->open(error)) {
        error = "sink " + c.uri + ": " + error;
        return nullptr;
      }
      set->sinks_.push_back(std::move(s));
    }
  }
  return set;
}

SinkSet::~SinkSet() {
  shutdown(std::chrono::milliseconds(0));
}

std::string SinkSet::next_event_id() {
  // UUIDv7: 48 bits of Unix milliseconds, version 7, then 74 bits that are this process's
  // random part plus a counter, so ids are unique and sort by time.
  const uint64_t ms = unix_now_ns() / 1000000;
  const uint64_t n = ++id_counter_;
  const uint64_t hi = (ms << 16) | 0x7000 | ((id_random_ >> 52) & 0x0fff);
  const uint64_t lo = (0x8000000000000000ull | ((id_random_ & 0x3fffffffull) << 32)) + n;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", uint32_t(hi >> 32),
                uint32_t((hi >> 16) & 0xffff), uint32_t(hi & 0xffff), uint32_t(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffull));
  return buf;
}

uint64_t SinkSet::now_s() const {
  return options_.clock_s ? options_.clock_s() : unix_now_ns() / 1000000000ull;
}

bool SinkSet::admit(std::string_view type, const json& ev, uint64_t now) {
  const FloodOptions& f = options_.flood;
  if (!is_alert(type) || type == "alert.summary" || type == "sink.dropped") return true;
  const json* proc = ev.contains("process") && ev["process"].is_object() ? &ev["process"] : nullptr;
  const uint32_t pid = proc ? proc->value("pid", 0u) : 0u;
  std::string rule = ev.value("rule", "");
  if (rule.empty()) rule = ev.value("budget", std::string(type));
  bool ok = true;
  auto check = [&](const std::string& key, uint32_t limit, const std::string& r) {
    if (!limit) return;
    Window& w = flood_[key];
    if (w.start_s == 0 || now >= w.start_s + uint64_t(f.window.count())) {
      w = Window{};
      w.start_s = now;
      w.rule = r;
      w.pid = pid;
      w.exe = proc ? proc->value("exe", "") : "";
    }
    if (++w.count > limit) {
      if (ok) ++w.suppressed;  // counted once, under the first limit that held it back
      ok = false;
    }
  };
  check("r\x1f" + rule + "\x1f" + std::to_string(pid), f.per_rule_process, rule);
  check("p\x1f" + std::to_string(pid), f.per_process, "");
  if (!ok) ++flood_stats_.suppressed;
  return ok;
}

void SinkSet::publish(std::string_view line) {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  std::string_view type = leading_type(line);
  if (type.empty()) {
    // Not one of ours: wrap it rather than lose it.
    JsonWriter w;
    w.begin_object().field("type", "agent.unknown_event").field("raw", line).end_object();
    deliver(w.take(), "agent.unknown_event", nullptr);
    return;
  }
  const FloodOptions& f = options_.flood;
  bool need_parse = is_alert(type) && (f.per_rule_process || f.per_process);
  for (const auto& s : sinks_) need_parse = need_parse || s->cfg.min_severity > 0;
  json parsed;
  if (need_parse) {
    parsed = parse_json(line);
    if (!parsed.is_object()) parsed = json::object();
    if (!admit(type, parsed, now_s())) return;
  }
  deliver(line, type, need_parse ? &parsed : nullptr);
}

void SinkSet::deliver(std::string_view line, std::string_view type, const json* parsed) {
  // `"event_id":"…"` goes right after the type.
  const size_t after_type = 9 + type.size() + 1;  // {"type":" + type + "
  std::string out;
  out.reserve(line.size() + 64);
  out.append(line.substr(0, after_type));
  out += ",\"event_id\":\"";
  out += next_event_id();
  out += '"';
  out.append(line.substr(after_type));
  // Severity only matters to sinks with a minimum (publish parsed the event for them).
  const int severity = parsed ? severity_id(*parsed) : 0;
  for (auto& s : sinks_)
    if (s->wants(type, severity)) s->accept(out);
}

void SinkSet::tick() {
  std::vector<std::string> events;
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    const uint64_t now = now_s();
    for (auto it = flood_.begin(); it != flood_.end();) {
      Window& w = it->second;
      if (now < w.start_s + uint64_t(options_.flood.window.count())) {
        ++it;
        continue;
      }
      if (w.suppressed) {
        // 'r' windows are per rule and process, 'p' windows per process (any rule).
        const bool per_rule = it->first[0] == 'r';
        const std::string message =
            std::to_string(w.suppressed) +
            (per_rule ? " more like this: rule " + w.rule + " for pid " : " more alerts for pid ") +
            std::to_string(w.pid) + (w.exe.empty() ? "" : " (" + w.exe + ")") + " rate-limited";
        JsonWriter j;
        j.begin_object()
            .field("type", "alert.summary")
            .field("time", format_rfc3339(unix_now_ns()))
            .field("rule", per_rule ? w.rule : std::string("*"))
            .field("severity", "low")
            .field("suppressed", w.suppressed)
            .field("window_s", uint64_t(options_.flood.window.count()))
            .field("message", message)
            .key("process")
            .begin_object()
            .field("pid", w.pid)
            .field("exe", w.exe)
            .end_object()
            .end_object();
        events.push_back(j.take());
        ++flood_stats_.summaries;
      }
      it = flood_.erase(it);
    }
    for (auto& s : sinks_) {
      const uint64_t dropped = s->take_dropped();
      if (!dropped) continue;
      JsonWriter j;
      j.begin_object()
          .field("type", "sink.dropped")
          .field("time", format_rfc3339(unix_now_ns()))
          .field("severity", "high")
          .field("sink", s->cfg.name)
          .field("dropped", dropped)
          .field("message", std::to_string(dropped) + " events for sink " + s->cfg.name +
                                " were dropped: its spool was full (raise spool_max, or "
                                "bring the receiver back)")
          .end_object();
      events.push_back(j.take());
      spdlog::error("sink {}: spool full, {} oldest undelivered events dropped", s->cfg.name,
                    dropped);
    }
  }
  for (const auto& e : events) publish(e);
}

void SinkSet::reopen() {
  for (auto& s : sinks_) s->reopen();
}

void SinkSet::shutdown(std::chrono::milliseconds timeout) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
  }
  tick();  // summaries still pending go out with the rest
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::vector<std::thread> stoppers;
  for (auto& s : sinks_) stoppers.emplace_back([&s, deadline] { s->shutdown(deadline); });
  for (auto& t : stoppers) t.join();
}

std::vector<SinkStats> SinkSet::stats() const {
  std::vector<SinkStats> out;
  for (const auto& s : sinks_) out.push_back(s->stats());
  return out;
}

FloodStats SinkSet::flood_stats() const {
  std::lock_guard lock(mu_);
  return flood_stats_;
}

}  // namespace agentwall::sinks
