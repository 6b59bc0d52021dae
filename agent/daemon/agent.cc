#include "agent/daemon/agent.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <thread>

#include "agent/common/time.h"
#include "agent/daemon/control.h"
#include "agent/daemon/gating.h"
#include "agent/daemon/host_checks.h"
#include "agent/daemon/metrics.h"
#include "agent/daemon/notify.h"
#include "agent/daemon/policy_runtime.h"
#include "agent/daemon/status.h"
#include "agent/daemon/top.h"
#include "agent/record/recording.h"
#include "agent/stream/tracker.h"

#ifndef AGENTWALL_VERSION
#define AGENTWALL_VERSION "0.1.0"
#endif

namespace agentwall::daemon {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_reopen{false};
std::atomic<bool> g_reload{false};

// tcmalloc keeps freed pages for reuse; after start-up (which reads large ELF files) and
// now and then, they go back to the kernel. Weak: a build without tcmalloc has no such call.
extern "C" void MallocExtension_ReleaseFreeMemory() __attribute__((weak));
extern "C" int MallocExtension_SetNumericProperty(const char*, size_t) __attribute__((weak));
extern "C" void MallocExtension_MarkThreadIdle() __attribute__((weak));

// The calling thread's cache of free objects first (up to 4 MiB after start-up; the thread
// makes a new one when it next allocates), then every free page.
void release_free_memory() {
  if (MallocExtension_MarkThreadIdle) MallocExtension_MarkThreadIdle();
  if (MallocExtension_ReleaseFreeMemory) MallocExtension_ReleaseFreeMemory();
}

// Start-up allocates and frees large blocks (kernel BTF, ELF tables): while it runs,
// tcmalloc returns free spans at once instead of keeping them, so the peak stays where
// glibc's would be. Afterwards spans are kept for reuse (measured: 8% faster decoding) and
// given back at every health interval.
void decommit_free_spans(bool on) {
  if (MallocExtension_SetNumericProperty)
    MallocExtension_SetNumericProperty("tcmalloc.aggressive_memory_decommit", on ? 1 : 0);
}

void on_signal(int) {
  g_stop.store(true);
}

void on_reopen(int) {
  g_reopen.store(true);
}

void on_reload(int) {
  g_reload.store(true);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: epoll_wait returns EINTR and the loop checks the flag
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sa.sa_handler = on_reopen;
  sigaction(SIGUSR1, &sa, nullptr);  // file sinks reopen their files (logrotate)
  sa.sa_handler = on_reload;
  sigaction(SIGHUP, &sa, nullptr);  // configuration and policies are read again
  signal(SIGPIPE, SIG_IGN);
}

// Hands every capture event to several sinks, in order.
class Fanout final : public CaptureSink {
 public:
  void add(CaptureSink* s) { sinks_.push_back(s); }
  void on_process(const ProcessInfo& p) override {
    for (auto* s : sinks_) s->on_process(p);
  }
  void on_chunk(const TlsChunk& c) override {
    for (auto* s : sinks_) s->on_chunk(c);
  }
  void on_sni(const TlsSni& x) override {
    for (auto* s : sinks_) s->on_sni(x);
  }
  void on_close(const TlsClose& x) override {
    for (auto* s : sinks_) s->on_close(x);
  }
  void on_exit(const ProcessKey& k) override {
    for (auto* s : sinks_) s->on_exit(k);
  }
  void on_hold(const TlsHold& h) override {
    for (auto* s : sinks_) s->on_hold(h);
  }
  void on_connect(const TcpConnect& c) override {
    for (auto* s : sinks_) s->on_connect(c);
  }
  void on_dns(const ProcessKey& k, std::string_view message) override {
    for (auto* s : sinks_) s->on_dns(k, message);
  }
  void on_client_hello(const ClientHello& h) override {
    for (auto* s : sinks_) s->on_client_hello(h);
  }

 private:
  std::vector<CaptureSink*> sinks_;
};

std::FILE* open_output(const std::string& path, std::string& error) {
  if (path == "-") return stdout;
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) error = "cannot open " + path + " for writing: " + std::strerror(errno);
  return f;
}

void self_usage(uint64_t& rss_bytes, double& cpu_seconds) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) rss_bytes = std::strtoull(line.c_str() + 6, nullptr, 10) * 1024;
  }
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  cpu_seconds = double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}

}  // namespace

std::string health_json(const HealthSnapshot& h) {
  using json = nlohmann::ordered_json;
  char host[256] = {};
  gethostname(host, sizeof(host) - 1);
  json j;
  j["type"] = "agent.health";
  j["time"] = format_rfc3339(unix_now_ns());
  j["host"] = host;
  j["version"] = AGENTWALL_VERSION;
  j["uptime_s"] = h.uptime_s;
  const auto& c = h.capture;
  j["counters"] = {
      {"calls", c.calls},
      {"chunks", c.chunks},
      {"bytes", c.bytes},
      {"ringbuf_drop_chunks", c.ringbuf_drop_chunks},
      {"ringbuf_drop_bytes", c.ringbuf_drop_bytes},
      {"truncated_calls", c.truncated_calls},
      {"truncated_bytes", c.truncated_bytes},
      {"read_faults", c.read_faults},
      {"ctrl_drops", c.ctrl_drops},
      {"no_entry", c.no_entry},
      {"proc_event_drops", c.proc_event_drops},
      {"bpf_recursion_misses", c.bpf_recursion_misses},
      {"attach_failures", c.attach_failures},
      {"stream_gaps", h.stream.gaps},
      {"stream_gap_bytes", h.stream.gap_bytes},
      {"record_lost", h.record_lost},
  };
  j["attach"] = {{"targets", c.attach_count},
                 {"latency_last_ms", c.attach_latency_last_ms},
                 {"latency_max_ms", c.attach_latency_max_ms}};
  j["streams"] = {{"processes", h.stream.processes},
                  {"connections_open", h.stream.connections_open},
                  {"connections_total", h.stream.connections_total}};
  j["http"] = {{"connections_http1", h.http.connections_http1},
               {"connections_http2", h.http.connections_http2},
               {"connections_other", h.http.connections_other},
               {"exchanges", h.http.exchanges},
               {"open_exchanges", h.http.open_exchanges},
               {"buffered_bytes", h.http.buffered_bytes},
               {"malformed", h.http.malformed},
               {"body_capped", h.http.body_capped},
               {"bomb_limited", h.http.bomb_limited},
               {"decode_errors", h.http.decode_errors},
               {"hpack_lost", h.http.hpack_lost}};
  j["policy"] = {{"requests", h.decide.requests},
                 {"alerts", h.decide.alerts},
                 {"verdicts", h.decide.verdicts},
                 {"budget_refusals", h.decide.budget_refusals},
                 {"ledger_errors", h.decide.ledger_errors}};
  j["enforce"] = {{"gated_processes", h.gated_processes},
                  {"holds", h.gate.holds},
                  {"holds_lost", c.hold_drops},
                  {"allowed", h.gate.allowed},
                  {"blocked", h.gate.blocked},
                  {"redacted", h.gate.redacted},
                  {"killed", h.gate.killed},
                  {"deadline_missed", h.gate.deadline_missed},
                  {"failures", h.gate.failures},
                  {"verdict_latency_us",
                   {{"p50", h.gate.latency_p50_us},
                    {"p99", h.gate.latency_p99_us},
                    {"max", h.gate.latency_max_us}}}};
  j["mcp"] = {{"exchanges", h.mcp.exchanges}, {"messages", h.mcp.messages},
              {"events", h.mcp.events},       {"unanswered", h.mcp.unanswered},
              {"unmatched", h.mcp.unmatched}, {"bad_json", h.mcp.bad_json}};
  j["mcp"]["stdio"] = {{"watched", c.stdio_watched},
                       {"sessions", h.stdio.sessions},
                       {"joined", h.stdio.joined},
                       {"sessions_open", h.stdio.sessions_open},
                       {"rejected", h.stdio.rejected},
                       {"lines", h.stdio.lines},
                       {"oversized_lines", h.stdio.oversized_lines},
                       {"gaps", h.stdio.gaps},
                       {"dropped_bytes", h.stdio.dropped_bytes},
                       {"calls", c.stdio_calls},
                       {"bytes", c.stdio_bytes},
                       {"ringbuf_drop_chunks", c.stdio_drop_chunks},
                       {"ringbuf_drop_bytes", c.stdio_drop_bytes},
                       {"truncated_bytes", c.stdio_truncated_bytes}};
  j["coverage"] = {{"processes", h.coverage.processes},
                   {"visible", h.coverage.visible},
                   {"invisible", h.coverage.invisible},
                   {"gaps", h.coverage.gaps}};
  j["plaintext"] = {{"connections", c.plain_connections},
                    {"open", c.plain_open},
                    {"map_full", c.plain_map_full},
                    {"calls", c.plain_calls},
                    {"bytes", c.plain_bytes}};
  j["llm"] = {{"calls", h.llm.calls},
              {"estimated_usage", h.llm.estimated},
              {"unpriced", h.llm.unpriced},
              {"bad_json", h.llm.bad_json}};
  json targets = json::array();
  for (const auto& t : h.attached) {
    targets.push_back({{"path", t.path},
                       {"kind", std::string(capture::to_string(t.kind))},
                       {"functions", t.functions}});
  }
  j["attached"] = targets;
  json sinks = json::array();
  for (const auto& s : h.sinks) {
    json o = {{"name", s.name},
              {"kind", s.kind},
              {"format", s.format},
              {"accepted", s.accepted},
              {"delivered", s.delivered},
              {"queue_depth", s.queue_depth},
              {"spool_bytes", s.spool_bytes},
              {"send_errors", s.send_errors},
              {"dropped", s.dropped},
              {"healthy", s.healthy}};
    if (!s.last_error.empty()) o["last_error"] = s.last_error;
    sinks.push_back(std::move(o));
  }
  j["sinks"] = sinks;
  j["flood_control"] = {{"suppressed", h.flood.suppressed}, {"summaries", h.flood.summaries}};
  if (!h.record_error.empty()) j["record_error"] = h.record_error;
  j["agent"] = {{"pid", getpid()}, {"rss_bytes", h.rss_bytes}, {"cpu_seconds", h.cpu_seconds}};
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

// One line for `systemctl status`: what the agent sees and whether its sinks deliver.
std::string status_line(const capture::Counters& c, const llm::LlmStats& llm, uint64_t alerts,
                        const sinks::SinkSet* sinks) {
  std::string s =
      fmt::format("{} targets, {} LLM calls, {} alerts", c.attach_count, llm.calls, alerts);
  if (c.ringbuf_drop_chunks) s += fmt::format(", {} chunks lost", c.ringbuf_drop_chunks);
  if (sinks) {
    size_t down = 0;
    uint64_t queued = 0;
    for (const auto& st : sinks->stats()) {
      down += st.healthy ? 0 : 1;
      queued += st.queue_depth;
    }
    if (down) s += fmt::format(", {} sinks failing ({} events spooled)", down, queued);
  }
  return s;
}

std::string reload_event(std::string_view type, const std::vector<std::string>& files,
                         const nlohmann::ordered_json& extra) {
  nlohmann::ordered_json j;
  j["type"] = std::string(type);
  j["time"] = format_rfc3339(unix_now_ns());
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  j["policy_files"] = files;
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

// SIGHUP: the configuration and policies are read and checked again; a set that does not
// load (or whose ledger does not open) is refused and the running one stays, with an alert.
void reload(const AgentOptions& opt, PolicyRuntime* policy, std::vector<std::string>& files,
            const std::function<void(const std::string&)>& emit) {
  if (!opt.reload || opt.sniff) {
    spdlog::info("SIGHUP: nothing to reload");
    return;
  }
  spdlog::info("SIGHUP: reading the configuration and policies again");
  Reload r = opt.reload();
  for (const std::string& w : r.warnings) spdlog::warn("policy: {}", w);
  std::string error;
  if (r.policy && !policy) {
    r.errors.push_back("the agent started without a policy (--no-policy): restart it to use one");
  } else if (r.policy && !policy->install(r.policy, error)) {
    r.errors.push_back(error);
  }
  if (!r.errors.empty()) {
    for (const std::string& e : r.errors) spdlog::error("reload refused: {}", e);
    spdlog::error("reload refused: {} error(s); the running configuration and policies stay",
                  r.errors.size());
    emit(reload_event(
        "agent.alert", r.files,
        {{"rule", "agentwall.reload_failed"},
         {"severity", "high"},
         {"message", fmt::format("configuration reload refused ({} error(s)): {}; the running "
                                 "policy stays in force",
                                 r.errors.size(), r.errors.front())},
         {"errors", r.errors}}));
    return;
  }
  files = r.files;
  for (const std::string& k : r.restart_needed)
    spdlog::warn("reload: {} changed; it takes effect at the next restart", k);
  const policy::Summary sum = r.policy->summary();
  const bool enforce = r.policy->settings().mode == policy::Mode::kEnforce;
  spdlog::info("reloaded: {} rules ({} enabled), mode {}, from {} file(s)", sum.rules,
               sum.enabled_rules, enforce ? "enforce" : "monitor", r.files.size());
  emit(reload_event("agent.reload", files,
                    {{"severity", "info"},
                     {"generation", policy->generation()},
                     {"rules", sum.rules},
                     {"enabled_rules", sum.enabled_rules},
                     {"mode", enforce ? "enforce" : "monitor"},
                     {"restart_needed", r.restart_needed},
                     {"message", fmt::format("policies reloaded: {} rules", sum.rules)}}));
}

}  // namespace

int run_agent(const AgentOptions& opt) {
  Notifier notifier = Notifier::from_environment();
  decommit_free_spans(true);
  install_signal_handlers();
  {
    utsname u{};
    uname(&u);
    spdlog::info("agentwall {} on Linux {} ({})", AGENTWALL_VERSION, u.release, u.machine);
  }
  // What this kernel offers and what is degraded without it, before loading anything.
  const std::vector<HostCheck> checks = host_checks();
  log_host_checks(checks);
  const auto started = std::chrono::steady_clock::now();

  std::string error;
  // Every event goes to the sinks: --events (stdout or a JSON-lines file) and each --sink.
  std::vector<sinks::SinkConfig> sink_configs;
  if (!opt.events_path.empty()) {
    sinks::SinkConfig c;
    c.uri = opt.events_path;
    c.name = "events";
    c.max_size = 0;  // --events FILE is not rotated; use --sink file://…?max_size= for that
    if (opt.events_path == "-") {
      c.kind = sinks::SinkKind::kStdout;
    } else {
      c.kind = sinks::SinkKind::kFile;
      c.path = std::filesystem::absolute(opt.events_path).string();
    }
    sink_configs.push_back(std::move(c));
  }
  for (const auto& c : opt.sinks) sink_configs.push_back(c);
  std::unique_ptr<sinks::SinkSet> sinks;
  if (!sink_configs.empty()) {
    sinks::SinkSetOptions so;
    so.state_dir = opt.state_dir;
    so.flood = opt.flood;
    char host[256] = {};
    gethostname(host, sizeof(host) - 1);
    so.context.hostname = host;
    so.context.version = AGENTWALL_VERSION;
    so.context.pid = static_cast<uint32_t>(getpid());
    sinks = sinks::SinkSet::open(std::move(sink_configs), so, error);
    if (!sinks) {
      spdlog::error("{}", error);
      return 2;
    }
  }
  const bool events = sinks != nullptr;
  Metrics metrics;
  std::unique_ptr<MetricsServer> metrics_server;
  if (!opt.metrics_listen.empty()) {
    metrics_server = MetricsServer::start(opt.metrics_listen, error);
    if (!metrics_server) {
      spdlog::error("{}", error);
      return 2;
    }
    spdlog::info("metrics: http://{}/metrics", opt.metrics_listen);
  }
  // ---- control socket (agentwall status, top, tail) ----
  const uint64_t started_unix_ns = unix_now_ns();
  ProcessTop top;
  std::unique_ptr<ControlServer> control;
  if (!opt.control_socket.empty() && !opt.sniff) {
    control = ControlServer::start(ControlOptions{.path = opt.control_socket}, error);
    if (control)
      spdlog::info("control socket: {}", opt.control_socket);
    else
      spdlog::warn("{}: running without a control socket (agentwall status, top, tail)", error);
  }
  // ---- end control socket ----
  std::FILE* sniff_out = nullptr;
  if (opt.sniff) {
    sniff_out = open_output(opt.sniff_output, error);
    if (!sniff_out) {
      spdlog::error("{}", error);
      return 2;
    }
  }
  std::unique_ptr<record::Writer> recorder;
  if (!opt.record_path.empty()) {
    recorder = std::make_unique<record::Writer>(opt.record_path);
    if (!recorder->ok()) {
      spdlog::error("{}", recorder->error());
      return 2;
    }
  }

  capture::Options capture_options = opt.capture;
  capture_options.connect_events = !opt.sniff;  // the coverage view: who talks to whom
  std::unique_ptr<capture::Capture> cap = capture::Capture::open(capture_options, error);
  if (!cap) {
    spdlog::error("{}", error);
    return 1;
  }
  cap->attach_existing();
  release_free_memory();
  decommit_free_spans(false);

  output::SniffPrinter printer(sniff_out ? sniff_out : stdout, opt.sniff_filter);
  stream::Tracker sniff_tracker(printer);
  coverage::Coverage* coverage_view = nullptr;  // set below, once it exists
  auto emit_event = [&](const std::string& line) {
    if (coverage_view) coverage_view->observe_event(line);  // AI endpoints it learns from
    if (metrics_server) metrics.observe(line);
    if (sinks) sinks->publish(line);
    if (control) {  // control socket
      top.observe(line, static_cast<int64_t>(unix_now_ns()));
      control->publish(line);
    }
  };

  // Policy: budgets in the ledger, the decide stage, and the kernel gate for what it enforces;
  // replaced as a whole on SIGHUP.
  enforce::Enforcer enforcer([&cap](uint32_t pid) { return cap->holds_issued(pid); });
  std::unique_ptr<enforce::Gate> gate;
  std::unique_ptr<PolicyRuntime> policy;
  output::PipelineOptions pipeline_options = opt.pipeline;
  // What MCP servers offer, pinned across restarts in the state directory.
  std::unique_ptr<mcp::Inventory> inventory;
  if (!opt.sniff) {
    mcp::InventoryOptions io;
    io.path = opt.state_dir + "/mcp/inventory.json";
    io.engine = opt.pipeline.llm.inspector ? &opt.pipeline.llm.inspector->engine() : nullptr;
    io.threshold = opt.pipeline.llm.detect_threshold;
    inventory = std::make_unique<mcp::Inventory>(io);
    if (!inventory->load(error)) spdlog::warn("{}", error);
    pipeline_options.mcp.inventory = inventory.get();
  }
  std::string inventory_error;  // the last save error, logged once
  auto save_inventory = [&] {
    std::string e;
    if (inventory && !inventory->save(e) && e != inventory_error) spdlog::warn("{}", e);
    if (inventory) inventory_error = e;
  };
  if (opt.policy && !opt.sniff) {
    gate = std::make_unique<enforce::Gate>(enforcer, emit_event);
    policy = std::make_unique<PolicyRuntime>(*cap, *gate, emit_event, opt.pipeline.llm.inspector,
                                             opt.pipeline.llm.prices);
    if (!policy->install(opt.policy, error)) {
      spdlog::error("{}", error);
      return 2;
    }
    pipeline_options.observer = policy.get();
    pipeline_options.mcp_observer = policy.get();
  }
  std::vector<std::string> policy_files = opt.policy_files;
  // A watched process whose first line is not an MCP `initialize` is let go at once.
  pipeline_options.stdio.reject = [&cap](uint32_t pid) { cap->unwatch_stdio(pid); };
  output::Pipeline pipeline(emit_event, pipeline_options);
  Fanout fanout;
  if (recorder) fanout.add(recorder.get());
  // The gate sees held bytes before the pipeline judges them, and the hold after.
  if (gate) fanout.add(gate.get());
  fanout.add(opt.sniff ? static_cast<CaptureSink*>(&sniff_tracker) : &pipeline.input());
  // Which processes talk to AI endpoints, and whether their content is seen.
  coverage::CoverageOptions coverage_options;
  coverage_options.endpoints = opt.coverage_endpoints;
  // It reads whole executables (a third of a second for a 300 MB one): not on this loop.
  coverage_options.identify_in_background = !opt.sniff;
  coverage::Coverage coverage(emit_event, coverage_options);
  if (!opt.sniff) {
    fanout.add(&coverage);
    coverage_view = &coverage;
  }
  // Unset before the view goes: the pipeline, destroyed after it, may still emit events.
  const std::unique_ptr<coverage::Coverage*, void (*)(coverage::Coverage**)> unset_view(
      &coverage_view, [](coverage::Coverage** view) { *view = nullptr; });

  // The watchdog is pinged from the main loop only while the discovery thread shows signs of
  // life too: a hung thread gets the agent restarted by systemd.
  auto steady_ns = [] {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  };
  std::atomic<int64_t> discovery_beat{steady_ns()};
  std::thread discovery([&] {
    while (!g_stop.load()) {
      discovery_beat.store(steady_ns());
      const int n = cap->poll_discovery(100);
      if (n < 0 && n != -EINTR) {
        spdlog::error("process discovery stopped: {}", std::strerror(-n));
        break;
      }
    }
  });

  const auto targets = cap->attached();
  spdlog::info("ready: {} TLS targets attached{}", targets.size(), opt.sniff ? ", sniffing" : "");
  if (targets.empty())
    spdlog::warn(
        "no OpenSSL library or executable found yet; new ones are attached as they appear");
  notifier.ready(
      fmt::format("{} TLS targets attached, {} sinks", targets.size(), sinks ? sinks->size() : 0));
  if (!opt.ready_file.empty()) {
    std::ofstream(opt.ready_file) << getpid() << "\n";
  }

  auto snapshot = [&] {
    HealthSnapshot h;
    h.capture = cap->counters();
    h.coverage = coverage.stats();
    h.stream = opt.sniff ? sniff_tracker.stats() : pipeline.stream_stats();
    h.http = pipeline.http_stats();
    h.llm = pipeline.llm_stats();
    h.mcp = pipeline.mcp_stats();
    h.stdio = pipeline.stdio_stats();
    if (policy) {
      h.decide = policy->stats();
      h.gated_processes = policy->gated_processes();
    }
    if (gate) h.gate = gate->stats();
    h.attached = cap->attached();
    if (recorder) {
      h.record_lost = recorder->records_lost();
      h.record_error = recorder->error();
    }
    h.uptime_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    self_usage(h.rss_bytes, h.cpu_seconds);
    if (sinks) {
      h.sinks = sinks->stats();
      h.flood = sinks->flood_stats();
    }
    return h;
  };

  auto next_health = std::chrono::steady_clock::now() +
                     std::chrono::milliseconds(static_cast<int64_t>(opt.health_interval_s * 1000));
  auto next_tick = std::chrono::steady_clock::now();
  int rc = 0;
  while (!g_stop.load()) {
    const int n = cap->poll_data(100, fanout);
    enforcer.tick();
    if (n < 0 && n != -EINTR) {
      spdlog::error("reading the capture ring buffer failed: {}", std::strerror(-n));
      rc = 1;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (g_reopen.exchange(false) && sinks) {
      spdlog::info("SIGUSR1: reopening file sinks");
      sinks->reopen();
    }
    if (g_reload.exchange(false)) {
      notifier.send("RELOADING=1");
      reload(opt, policy.get(), policy_files, emit_event);
      notifier.send("READY=1");
    }
    if (std::chrono::nanoseconds(steady_ns() - discovery_beat.load()) < std::chrono::seconds(5))
      notifier.watchdog(now);
    if (now >= next_tick) {
      next_tick = now + std::chrono::seconds(1);
      if (notifier.enabled())
        notifier.status(status_line(cap->counters(), pipeline.llm_stats(),
                                    policy ? policy->stats().alerts : 0, sinks.get()));
      if (policy) policy->tick(now);
      if (!opt.sniff) coverage.tick(unix_now_ns());
      save_inventory();
      if (sinks) sinks->tick();
      if (metrics_server) {
        const HealthSnapshot h = snapshot();
        metrics_server->set(metrics.render(h, h.sinks, h.flood));
      }
      if (control) {  // control socket: what status and top answer for the next second
        StatusContext sc{started_unix_ns, policy != nullptr, policy_files, "", {}, opt.config_files,
                         checks};
        if (const policy::Policy* p = policy ? policy->policy() : nullptr)
          sc.policy_mode = p->settings().mode == policy::Mode::kEnforce ? "enforce" : "monitor";
        if (policy) sc.budgets = policy->budget_states();
        control->set_status(status_json(snapshot(), sc));
        control->set_top(top.json(static_cast<int64_t>(unix_now_ns())));
        control->set_coverage(coverage.json(unix_now_ns()));
      }
    }
    if (events && opt.health_interval_s > 0 && now >= next_health) {
      emit_event(health_json(snapshot()));
      if (recorder) recorder->flush();
      release_free_memory();
      next_health += std::chrono::milliseconds(static_cast<int64_t>(opt.health_interval_s * 1000));
    }
  }
  g_stop.store(true);
  notifier.stopping("stopping: resuming held processes, detaching probes, draining sinks");
  // No write is held from here on; those already held are decided as the ring drains, and
  // anything still stopped is resumed before the probes go.
  if (policy) policy->stop();
  discovery.join();
  // Whatever the kernel handed over before the stop is still delivered.
  cap->poll_data(0, fanout);
  enforcer.release_all();
  pipeline.flush();  // exchanges still open come out, marked cut
  save_inventory();
  if (recorder) recorder->flush();
  const HealthSnapshot final_health = snapshot();
  if (events) emit_event(health_json(final_health));
  // Control socket: clients are disconnected, the socket file goes.
  control.reset();
  cap.reset();  // detaches every probe
  if (sinks) {
    // What the receivers do not take in time stays in the spools for the next start.
    sinks->shutdown(std::chrono::milliseconds(static_cast<int64_t>(opt.drain_timeout_s * 1000)));
    for (const auto& st : sinks->stats())
      if (st.queue_depth)
        spdlog::warn("sink {}: {} events still spooled (delivered after the next start): {}",
                     st.name, st.queue_depth,
                     st.last_error.empty() ? "time ran out" : st.last_error);
  }
  if (recorder && !recorder->error().empty()) {
    spdlog::error("{}", recorder->error());
    rc = rc ? rc : 1;
  }
  if (opt.sniff && printer.write_failed()) spdlog::warn("some sniff output could not be written");
  if (sinks)
    for (const auto& st : sinks->stats())
      if (st.dropped)
        spdlog::warn("sink {}: {} events lost: {}", st.name, st.dropped, st.last_error);
  if (final_health.capture.ringbuf_drop_chunks || final_health.stream.gap_bytes) {
    spdlog::warn("lost {} chunks ({} bytes) to a full ring buffer; {} stream bytes missing",
                 final_health.capture.ringbuf_drop_chunks, final_health.capture.ringbuf_drop_bytes,
                 final_health.stream.gap_bytes);
  }
  if (sniff_out && sniff_out != stdout) std::fclose(sniff_out);
  return rc;
}

}  // namespace agentwall::daemon
