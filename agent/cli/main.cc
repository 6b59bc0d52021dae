// agentwall: one binary, one subcommand per job.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/cli/control_client.h"
#include "agent/common/time.h"
#include "agent/config/config.h"
#include "agent/daemon/agent.h"
#include "agent/daemon/host_checks.h"
#include "agent/detect/engine.h"
#include "agent/detect/normalize.h"
#include "agent/llm/prices.h"
#include "agent/mcp/inventory.h"
#include "agent/mcp/stdio_scope.h"
#include "agent/output/pipeline.h"
#include "agent/output/sniff_printer.h"
#include "agent/policy/policy.h"
#include "agent/policy/subject_llm.h"
#include "agent/record/filter.h"
#include "agent/record/recording.h"
#include "agent/sinks/uri.h"
#include "agent/stream/tracker.h"

namespace po = boost::program_options;
using namespace agentwall;

namespace agentwall::policy {
extern const char kBuiltinPolicyYaml[];  // policies/default.yaml (cmake/builtin_policy.cc.in)
}  // namespace agentwall::policy

namespace {

constexpr const char* kUsage = R"(usage: agentwall <command> [options]

Commands:
  run      capture TLS plaintext of every local process and run the pipeline
  sniff    print captured TLS plaintext as JSON lines (like sslsniff or ecapture)
  replay   feed a recording made with `run --record` through the pipeline, no kernel needed
  status   what the running agent sees: probes, processes, drops, budgets, sinks
  top      LLM calls, tokens, cost and alerts per process, refreshed live
  tail     follow the running agent's events, filtered by type, process or severity
  coverage which processes talk to AI endpoints, and whether their content is visible
  scan     score text from stdin with the detection engine (secrets, PII, hidden text)
  policy   check policy files, or test them on a recording (`policy check|test FILES...`)
  config   check the configuration and its policies, or show it (`config check|show`)
  mcp      the MCP servers seen, their tools and the hashes they are pinned by (`mcp inventory`)
  version  print the version

`agentwall <command> --help` describes each command's options.
)";

void setup_logging(bool verbose) {
  auto logger = spdlog::stderr_color_mt("agentwall");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("agentwall: %^%l%$: %v");
  spdlog::set_level(verbose ? spdlog::level::debug : spdlog::level::info);
}

po::options_description capture_options(capture::Options& c) {
  po::options_description d("Capture");
  d.add_options()("max-bytes", po::value(&c.max_capture_bytes)->default_value(c.max_capture_bytes),
                  "capture at most this many bytes of one SSL call; the rest is marked truncated")(
      "ringbuf-mb", po::value<uint32_t>()->default_value(c.ringbuf_bytes >> 20),
      "size of the kernel ring buffer in MiB (a power of two)")(
      "attach", po::value(&c.extra_targets)->composing(),
      "also attach to this library or executable, or to the executables of 2 MiB or more in "
      "this directory and below it (repeatable)")(
      "plaintext-port", po::value(&c.plaintext_ports)->composing(),
      "also capture plaintext HTTP on TCP connections to 127.0.0.0/8 or ::1 on this port, "
      "beside capture.plaintext_ports (default: 11434, 1234, 8000, 8080) (repeatable)");
  return d;
}

struct PipelineArgs {
  std::vector<std::string> price_files;
  size_t content_cap = llm::LlmOptions{}.content_cap;
  size_t max_body_mb = 8;
  bool no_detect = false;
  int detect_threshold = 50;
};

po::options_description pipeline_options(PipelineArgs& a) {
  po::options_description d("Pipeline");
  d.add_options()("prices", po::value(&a.price_files)->composing(),
                  "price table (YAML, like policies/prices.yaml) whose entries replace or add "
                  "to the built-in prices (repeatable)")(
      "content-cap", po::value(&a.content_cap)->default_value(a.content_cap),
      "bytes of each message, prompt and output text written into events; 0 = no content")(
      "max-body-mb", po::value(&a.max_body_mb)->default_value(a.max_body_mb),
      "MiB of each HTTP body kept for decoding; longer bodies are counted, not kept")(
      "no-detect", po::bool_switch(&a.no_detect),
      "do not run the detection engine on LLM calls (no \"detection\" in events, and "
      "secrets and personal data in event content are no longer masked)")(
      "detect-threshold", po::value(&a.detect_threshold)->default_value(a.detect_threshold),
      "detection score (0-100) from which an event's detection says \"flagged\"");
  return d;
}

// Fills `out`; the price table lives as long as the program.
int finish_pipeline_options(const PipelineArgs& a, output::PipelineOptions& out) {
  static llm::PriceTable prices = llm::PriceTable::builtin();
  for (const std::string& f : a.price_files) {
    llm::PriceTable extra;
    std::string error;
    if (!extra.load_file(f, error)) {
      std::fprintf(stderr, "agentwall: %s\n", error.c_str());
      return 2;
    }
    prices.merge(extra);
  }
  if (a.max_body_mb == 0 || a.max_body_mb > 1024) {
    std::fprintf(stderr, "agentwall: --max-body-mb %zu: must be from 1 to 1024\n", a.max_body_mb);
    return 2;
  }
  if (a.detect_threshold < 0 || a.detect_threshold > 100) {
    std::fprintf(stderr, "agentwall: --detect-threshold %d: must be from 0 to 100\n",
                 a.detect_threshold);
    return 2;
  }
  if (!a.no_detect) {
    static const llm::Inspector inspector;  // compiles the rule set once
    out.llm.inspector = &inspector;
  }
  out.llm.detect_threshold = a.detect_threshold;
  out.llm.prices = &prices;
  out.llm.content_cap = a.content_cap;
  out.http.max_body = a.max_body_mb << 20;
  return 0;
}

bool parse(int argc, char** argv, const po::options_description& desc, po::variables_map& vm,
           const char* usage_line) {
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "agentwall: %s\n%s\n", e.what(), usage_line);
    return false;
  }
  return true;
}

int finish_capture_options(const po::variables_map& vm, capture::Options& c) {
  const uint32_t mb = vm["ringbuf-mb"].as<uint32_t>();
  if (mb == 0 || (mb & (mb - 1)) != 0 || mb > 1024) {
    std::fprintf(stderr, "agentwall: --ringbuf-mb %u: must be a power of two from 1 to 1024\n", mb);
    return 2;
  }
  c.ringbuf_bytes = mb << 20;
  if (c.max_capture_bytes == 0) {
    std::fprintf(stderr, "agentwall: --max-bytes must be at least 1\n");
    return 2;
  }
  // What capture needs, checked in the effective set (root without them, e.g. under a
  // systemd CapabilityBoundingSet, fails here with the names rather than at the first EPERM).
  const std::pair<int, const char*> needed[] = {
      {39, "CAP_BPF"}, {38, "CAP_PERFMON"}, {19, "CAP_SYS_PTRACE"}, {2, "CAP_DAC_READ_SEARCH"}};
  std::string missing;
  for (const auto& [bit, name] : needed)
    if (!daemon::has_capability(bit)) missing += std::string(missing.empty() ? "" : ", ") + name;
  if (!missing.empty()) {
    std::fprintf(stderr,
                 "agentwall: capture loads BPF programs and attaches uprobes: it needs root or "
                 "CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN, CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH (and "
                 "CAP_KILL to "
                 "enforce); missing: %s. Run it with sudo, or grant them (systemd: "
                 "CapabilityBoundingSet= in the unit)\n",
                 missing.c_str());
    return 1;
  }
  if (!daemon::has_capability(21))
    std::fprintf(stderr,
                 "agentwall: warning: no CAP_SYS_ADMIN: some kernels (6.18 measured) refuse the "
                 "return probes on SSL_read/SSL_write without it, and nothing is captured\n");
  return 0;
}

// The policy `run` judges calls by: the files given, or the built-in default (alerts only).
// Errors (FILE:LINE:COL: ...) go to `errors`; nullopt when a file does not load.
std::shared_ptr<const policy::Policy> load_run_policy(const std::vector<std::string>& files,
                                                      std::vector<std::string>& errors,
                                                      std::vector<std::string>& warnings) {
  std::optional<policy::Policy> p =
      files.empty()
          ? policy::Policy::load_sources(
                {{"<built-in policies/default.yaml>", policy::kBuiltinPolicyYaml}}, errors)
          : policy::Policy::load(files, errors);
  if (!p) return nullptr;
  warnings = p->warnings();
  return std::make_shared<const policy::Policy>(std::move(*p));
}

// Where the configuration comes from, and the command-line options that win over it.
struct ConfigSource {
  std::string file = config::kDefaultFile;
  bool required = false;                     // --config given: the file must exist
  bool none = false;                         // --no-config
  std::vector<std::string> policy_override;  // --policy: these instead of `policies`
};

config::Loaded read_config(const ConfigSource& src) {
  return src.none ? config::load_strings({}) : config::load(src.file, src.required);
}

// The policy files a configuration names (or --policy), with errors for missing files.
std::vector<std::string> policy_files_of(const ConfigSource& src, const config::Config& c,
                                         std::vector<std::string>& errors) {
  if (!src.policy_override.empty()) return src.policy_override;
  return config::expand_policy_paths(c.policies, errors);
}

bool given(const po::variables_map& vm, const char* name) {
  return vm.count(name) && !vm[name].defaulted();
}

int cmd_run(int argc, char** argv) {
  daemon::AgentOptions opt;
  bool verbose = false;
  ConfigSource src;
  bool no_policy = false;
  std::vector<std::string> sink_uris;
  std::string state_dir;
  PipelineArgs pargs;
  po::options_description desc("agentwall run [options]");
  desc.add_options()("help,h", "show this help")("verbose,v", po::bool_switch(&verbose),
                                                 "debug logging")(
      "config", po::value(&src.file),
      "read the configuration from FILE and the drop-ins in conf.d/ beside it (default: "
      "/etc/agentwall/agentwall.yaml when it exists; docs/CONFIG.md)")(
      "no-config", po::bool_switch(&src.none),
      "read no configuration file: built-in defaults and the options given")(
      "record", po::value(&opt.record_path),
      "write the raw capture stream to FILE (docs/RECORD.md)")(
      "events", po::value(&opt.events_path),
      "write events as JSON lines to FILE ('-' = stdout; default: the configuration's "
      "`events`, /var/log/agentwall/events.json)")(
      "health-interval", po::value(&opt.health_interval_s)->default_value(30),
      "seconds between agent.health events (0 = only at exit)")(
      "ready-file", po::value(&opt.ready_file), "create FILE once every probe is attached")(
      "policy", po::value(&src.policy_override)->composing(),
      "judge calls by this policy file (YAML, docs/POLICY.md) instead of the configured "
      "policies (repeatable: merged in order; re-read on SIGHUP)")(
      "no-policy", po::bool_switch(&no_policy), "no policy: no alerts, budgets or enforcement")(
      "sink", po::value(&sink_uris)->composing(),
      "also send events to URI (repeatable; added to the configured sinks), e.g. "
      "syslog+tcp://127.0.0.1:5514, syslog+tls://siem:6514?ca=/etc/ssl/siem.pem, "
      "https://splunk:8088/services/collector/event?token=T, otlp+http://127.0.0.1:4318, "
      "file:///var/log/agentwall/alerts.json?format=ocsf&types=policy.*; every form and "
      "option: docs/SINKS.md")("state-dir", po::value(&state_dir),
                               "where sink spools live (default /var/lib/agentwall)")(
      "metrics", po::value(&opt.metrics_listen),
      "serve Prometheus metrics on ADDR:PORT (e.g. 127.0.0.1:9464)")(
      "alert-limit", po::value(&opt.flood.per_rule_process)->default_value(20),
      "alerts per rule and process per minute; more are summarised (0 = no limit)")(
      "drain-timeout", po::value(&opt.drain_timeout_s)->default_value(5),
      "seconds at exit for spooled events to reach their sinks (the rest waits in the "
      "spool)");
  desc.add_options()("control", po::value(&opt.control_socket)->default_value(opt.control_socket),
                     "serve `agentwall status`, `top` and `tail` on this Unix socket (root "
                     "only; '' or none: no socket)");
  std::vector<std::string> coverage_endpoints;
  desc.add_options()("coverage-endpoint", po::value(&coverage_endpoints)->composing(),
                     "count this host name or IP[:PORT] as an AI endpoint in the coverage view, "
                     "beside the known LLM providers and coverage.endpoints (repeatable)");
  std::vector<std::string> stdio_exes;
  desc.add_options()("mcp-stdio-exe", po::value(&stdio_exes)->composing(),
                     "capture MCP over stdio for servers whose executable or a command-line "
                     "word matches GLOB (`*` spans /), beside the built-in guesses "
                     "(repeatable)");
  desc.add(capture_options(opt.capture));
  desc.add(pipeline_options(pargs));
  po::variables_map vm;
  if (!parse(argc, argv, desc, vm, "see: agentwall run --help")) return 2;
  if (vm.count("help")) {
    std::cout << "Captures the TLS plaintext of every local process (OpenSSL, shared and static)\n"
                 "and runs it through the pipeline: every LLM API call becomes an llm.exchange\n"
                 "event (provider, model, messages, tool calls, output, tokens, cost), judged by\n"
                 "the policies; health and losses are reported as agent.health events.\n"
                 "Settings come from /etc/agentwall/agentwall.yaml and conf.d/*.yaml (built-in\n"
                 "defaults without them); options given here win. SIGHUP reloads the\n"
                 "configuration and policies (an invalid set is refused); SIGUSR1 reopens file\n"
                 "sinks; SIGINT or SIGTERM stop.\n\n"
              << desc;
    return 0;
  }
  setup_logging(verbose);
  src.required = vm.count("config") != 0;
  if (src.none && src.required) {
    std::fprintf(stderr, "agentwall: --config and --no-config contradict each other\n");
    return 2;
  }
  const config::Loaded loaded = read_config(src);
  for (const std::string& w : loaded.warnings) spdlog::warn("{}", w);
  if (!loaded.config) {
    for (const std::string& e : loaded.errors) std::fprintf(stderr, "agentwall: %s\n", e.c_str());
    std::fprintf(stderr,
                 "agentwall: the configuration has errors; `agentwall config check` "
                 "shows them all\n");
    return 2;
  }
  const config::Config& cfg = *loaded.config;
  for (const std::string& f : cfg.files) spdlog::info("configuration: {}", f);
  opt.config_files = cfg.files;
  // The configuration, where no option was given.
  if (!vm.count("events")) opt.events_path = cfg.events;
  if (!given(vm, "health-interval")) opt.health_interval_s = cfg.health_interval;
  if (!vm.count("metrics")) opt.metrics_listen = cfg.metrics;
  if (!given(vm, "alert-limit")) opt.flood.per_rule_process = cfg.alert_limit;
  if (!given(vm, "drain-timeout")) opt.drain_timeout_s = cfg.drain_timeout;
  if (!given(vm, "control")) opt.control_socket = cfg.control_socket;
  if (opt.control_socket == "none") opt.control_socket.clear();
  if (!given(vm, "max-bytes")) opt.capture.max_capture_bytes = cfg.max_bytes;
  if (!given(vm, "ringbuf-mb")) vm.at("ringbuf-mb").value() = cfg.ringbuf_mb;
  opt.capture.extra_targets.insert(opt.capture.extra_targets.begin(), cfg.attach.begin(),
                                   cfg.attach.end());
  opt.capture.plaintext_ports.insert(opt.capture.plaintext_ports.begin(),
                                     cfg.plaintext_ports.begin(), cfg.plaintext_ports.end());
  opt.coverage_endpoints = cfg.coverage_endpoints;
  opt.coverage_endpoints.insert(opt.coverage_endpoints.end(), coverage_endpoints.begin(),
                                coverage_endpoints.end());
  {
    mcp::StdioScopeOptions scope_options;
    scope_options.exes = cfg.mcp_stdio_exes;
    scope_options.exes.insert(scope_options.exes.end(), stdio_exes.begin(), stdio_exes.end());
    auto scope = std::make_shared<const mcp::StdioScope>(scope_options);
    opt.capture.stdio_candidate = [scope](const ProcessInfo& p) { return scope->is_candidate(p); };
  }
  if (!given(vm, "content-cap")) pargs.content_cap = cfg.content_cap;
  if (!given(vm, "max-body-mb")) pargs.max_body_mb = cfg.max_body_mb;
  if (!given(vm, "detect-threshold")) pargs.detect_threshold = cfg.detect_threshold;
  if (!cfg.detect) pargs.no_detect = true;
  pargs.price_files.insert(pargs.price_files.begin(), cfg.prices.begin(), cfg.prices.end());
  if (int rc = finish_pipeline_options(pargs, opt.pipeline)) return rc;
  if (!no_policy) {
    std::vector<std::string> errors, warnings;
    opt.policy_files = policy_files_of(src, cfg, errors);
    if (errors.empty()) opt.policy = load_run_policy(opt.policy_files, errors, warnings);
    for (const std::string& e : errors) std::fprintf(stderr, "agentwall: %s\n", e.c_str());
    if (!opt.policy) return 2;
    for (const std::string& w : warnings) spdlog::warn("policy: {}", w);
    if (opt.policy_files.empty()) opt.policy_files = {"<built-in policies/default.yaml>"};
    opt.state_dir = opt.policy->settings().state_dir;  // unless the configuration says
    // SIGHUP: the same files, read again, checked before anything changes.
    opt.reload = [src, cfg]() {
      daemon::Reload r;
      const config::Loaded again = read_config(src);
      if (!again.config) {
        r.errors = again.errors;
        return r;
      }
      for (const std::string& k : config::changed_keys(cfg, *again.config))
        if (k != "policies") r.restart_needed.push_back(k);
      r.files = policy_files_of(src, *again.config, r.errors);
      if (r.errors.empty()) r.policy = load_run_policy(r.files, r.errors, r.warnings);
      if (r.files.empty()) r.files = {"<built-in policies/default.yaml>"};
      return r;
    };
  }
  if (!state_dir.empty())
    opt.state_dir = state_dir;
  else if (cfg.is_set("state_dir") || !opt.policy)
    opt.state_dir = cfg.state_dir;
  // Sinks: the configured ones, then --sink. Standard output already gets every event when
  // `events` is "-": a stdout sink would print alerts twice.
  const size_t configured = cfg.sinks.size();
  std::vector<std::string> uris = cfg.sinks;
  uris.insert(uris.end(), sink_uris.begin(), sink_uris.end());
  for (size_t i = 0; i < uris.size(); ++i) {
    std::string error;
    std::optional<sinks::SinkConfig> c = sinks::parse_sink_uri(uris[i], error);
    if (!c) {
      std::fprintf(stderr, "agentwall: %s\n", error.c_str());
      return 2;
    }
    if (i < configured && c->kind == sinks::SinkKind::kStdout && opt.events_path == "-") continue;
    opt.sinks.push_back(std::move(*c));
  }
  if (opt.events_path != "-" && !opt.events_path.empty()) {
    // The default /var/log/agentwall/ may not exist outside the package.
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::absolute(opt.events_path).parent_path(),
                                        ec);
  }
  if (int rc = finish_capture_options(vm, opt.capture)) return rc;
  return daemon::run_agent(opt);
}

int policy_check(const std::vector<std::string>& files);

// `agentwall config check|show`: what `run` would read, checked or printed.
int cmd_config(int argc, char** argv) {
  constexpr const char* kConfigUsage =
      "usage: agentwall config check [--config FILE] [--policy FILE]...\n"
      "       agentwall config show  [--config FILE]\n";
  const std::string sub = argc > 1 ? argv[1] : "";
  if (sub != "check" && sub != "show") {
    const bool help = sub == "--help" || sub == "-h" || sub == "help";
    std::fputs(kConfigUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  ConfigSource src;
  po::options_description desc("agentwall config " + sub + " [options]");
  desc.add_options()("help,h", "show this help")(
      "config", po::value(&src.file),
      "the configuration file (default /etc/agentwall/agentwall.yaml; its conf.d/ too)")(
      "policy", po::value(&src.policy_override)->composing(),
      "check these policy files instead of the configured ones");
  po::variables_map vm;
  if (!parse(argc - 1, argv + 1, desc, vm, kConfigUsage)) return 2;
  if (vm.count("help")) {
    std::cout << (sub == "check"
                      ? "Reads the configuration file, its drop-ins and the policies they name,\n"
                        "as `agentwall run` and a reload (SIGHUP) would, and prints every error\n"
                        "with FILE:LINE:COL, or what would be used and OK. Exit status 1 on "
                        "errors.\n\n"
                      : "Prints the configuration in effect after merging the file and its\n"
                        "drop-ins, every key with `# set` or `# default`.\n\n")
              << desc;
    return 0;
  }
  src.required = vm.count("config") != 0;
  const config::Loaded loaded = read_config(src);
  for (const std::string& e : loaded.errors) std::printf("%s\n", e.c_str());
  for (const std::string& w : loaded.warnings) std::printf("%s\n", w.c_str());
  if (!loaded.config) {
    std::printf("%zu error%s\n", loaded.errors.size(), loaded.errors.size() == 1 ? "" : "s");
    return 1;
  }
  const config::Config& cfg = *loaded.config;
  if (sub == "show") {
    std::printf("# from: %s\n%s",
                cfg.files.empty() ? "built-in defaults"
                                  : fmt::format("{}", fmt::join(cfg.files, ", ")).c_str(),
                config::to_yaml(cfg).c_str());
    return 0;
  }
  std::printf("configuration: %s\n", cfg.files.empty()
                                         ? "built-in defaults (no file)"
                                         : fmt::format("{}", fmt::join(cfg.files, ", ")).c_str());
  for (const std::string& u : cfg.sinks) std::printf("sink: %s\n", sinks::redact_uri(u).c_str());
  std::vector<std::string> errors;
  const std::vector<std::string> files = policy_files_of(src, cfg, errors);
  if (!errors.empty()) {
    for (const std::string& e : errors) std::printf("%s\n", e.c_str());
    std::printf("%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
    return 1;
  }
  if (files.empty()) {
    std::printf("policies: none found in %s: the built-in default applies (alerts only)\n",
                fmt::format("{}", fmt::join(cfg.policies, ", ")).c_str());
    return 0;
  }
  std::printf("policies: %s\n", fmt::format("{}", fmt::join(files, ", ")).c_str());
  return policy_check(files);
}

// `agentwall mcp inventory`: the MCP servers the agent has seen, from its state directory.
int cmd_mcp(int argc, char** argv) {
  constexpr const char* kMcpUsage = "usage: agentwall mcp inventory [--state-dir DIR] [--json]\n";
  const std::string sub = argc > 1 ? argv[1] : "";
  if (sub != "inventory") {
    const bool help = sub == "--help" || sub == "-h" || sub == "help";
    std::fputs(kMcpUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  std::string state_dir = "/var/lib/agentwall";
  bool as_json = false;
  po::options_description desc("agentwall mcp inventory [options]");
  desc.add_options()("help,h", "show this help")(
      "state-dir", po::value(&state_dir)->default_value(state_dir),
      "the agent's state directory (the inventory is mcp/inventory.json in it)")(
      "json", po::bool_switch(&as_json), "print the inventory file as it is (JSON)");
  po::variables_map vm;
  if (!parse(argc - 1, argv + 1, desc, vm, kMcpUsage)) return 2;
  if (vm.count("help")) {
    std::cout << "Prints what the agent knows of the MCP servers local programs talk to: each\n"
                 "server (name, version, URL), when it was first and last seen, which programs\n"
                 "use it, and its tools with the SHA-256 each is pinned by (name, description\n"
                 "and input schema), how often it changed, its prompts and resources.\n\n"
              << desc;
    return 0;
  }
  mcp::InventoryOptions io;
  io.path = state_dir + "/mcp/inventory.json";
  mcp::Inventory inv(io);
  std::string error;
  if (!inv.load(error)) {
    std::fprintf(stderr, "agentwall: %s\n", error.c_str());
    return 1;
  }
  const nlohmann::json j = inv.to_json();
  if (as_json) {
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  if (j["servers"].empty()) {
    std::printf("no MCP server seen yet (%s does not exist or is empty)\n", io.path.c_str());
    return 0;
  }
  for (const auto& s : j["servers"]) {
    std::string clients;
    for (const auto& c : s["clients"])
      clients += (clients.empty() ? "" : ", ") + c.get<std::string>();
    std::printf("%s %s  %s\n  first seen %s, last seen %s; used by %s\n",
                s["name"].get<std::string>().c_str(), s["version"].get<std::string>().c_str(),
                s["url"].get<std::string>().c_str(), s["first_seen"].get<std::string>().c_str(),
                s["last_seen"].get<std::string>().c_str(), clients.empty() ? "?" : clients.c_str());
    for (const auto& t : s["tools"])
      std::printf("  tool %-28s sha256:%.16s  changed %u time(s)\n",
                  t["name"].get<std::string>().c_str(), t["sha256"].get<std::string>().c_str(),
                  t["changes"].get<unsigned>());
    for (const char* kind : {"prompts", "resources"})
      for (const auto& n : s[kind])
        std::printf("  %s %s\n", std::string(kind).substr(0, std::strlen(kind) - 1).c_str(),
                    n.get<std::string>().c_str());
  }
  return 0;
}

int cmd_sniff(int argc, char** argv) {
  daemon::AgentOptions opt;
  opt.sniff = true;
  opt.events_path.clear();
  opt.health_interval_s = 0;
  bool verbose = false;
  uint32_t pid = 0;
  std::string comm;
  po::options_description desc("agentwall sniff [options]");
  desc.add_options()("help,h", "show this help")("verbose,v", po::bool_switch(&verbose),
                                                 "debug logging")(
      "pid,p", po::value(&pid), "only this process (filtered in the kernel)")(
      "comm,c", po::value(&comm), "only processes with this command name")(
      "output,o", po::value(&opt.sniff_output)->default_value("-"),
      "write JSON lines to FILE ('-' = stdout)")("events", po::value(&opt.events_path),
                                                 "also write agent.health events to FILE")(
      "ready-file", po::value(&opt.ready_file), "create FILE once every probe is attached");
  desc.add(capture_options(opt.capture));
  po::variables_map vm;
  if (!parse(argc, argv, desc, vm, "see: agentwall sniff --help")) return 2;
  if (vm.count("help")) {
    std::cout << "Prints the TLS plaintext that local processes send and receive, one JSON\n"
                 "object per chunk (type tls.data, with data_b64), plus tls.gap for bytes that\n"
                 "were lost or cut and tls.close when a connection ends. Stops on SIGINT.\n\n"
              << desc;
    return 0;
  }
  setup_logging(verbose);
  if (int rc = finish_capture_options(vm, opt.capture)) return rc;
  opt.capture.plaintext_ports.insert(opt.capture.plaintext_ports.begin(),
                                     config::kDefaultPlaintextPorts.begin(),
                                     config::kDefaultPlaintextPorts.end());
  if (vm.count("pid")) {
    opt.capture.only_pid = pid;
    opt.sniff_filter.pid = pid;
  }
  if (vm.count("comm")) opt.sniff_filter.comm = comm;
  return daemon::run_agent(opt);
}

int cmd_replay(int argc, char** argv) {
  std::string file;
  std::string record_path;
  uint32_t pid = 0;
  std::string comm;
  bool tls_view = false;
  po::options_description desc("agentwall replay FILE [options]");
  desc.add_options()("help,h", "show this help")("pid,p", po::value(&pid), "only this process")(
      "comm,c", po::value(&comm), "only processes with this command name")(
      "tls", po::bool_switch(&tls_view),
      "print the captured chunks (tls.data, tls.gap, tls.close, as `agentwall sniff`) "
      "instead of the pipeline's events")(
      "record", po::value(&record_path),
      "write what passes the filters to a new recording instead of printing it")(
      "file", po::value(&file), "recording made with `agentwall run --record FILE`");
  PipelineArgs pargs;
  desc.add(pipeline_options(pargs));
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "agentwall: %s\nsee: agentwall replay --help\n", e.what());
    return 2;
  }
  if (vm.count("help")) {
    std::cout << "Feeds a recording through the pipeline without a kernel and prints the events\n"
                 "it yields (llm.exchange, …) as JSON lines, exactly as `agentwall run` would\n"
                 "have; with --tls, prints the captured chunks instead.\n\n"
              << desc;
    return 0;
  }
  setup_logging(false);
  if (file.empty()) {
    std::fprintf(stderr, "agentwall: replay needs a FILE: agentwall replay FILE\n");
    return 2;
  }
  output::PipelineOptions popt;
  if (int rc = finish_pipeline_options(pargs, popt)) return rc;
  output::SniffFilter filter;
  if (vm.count("pid")) filter.pid = pid;
  if (vm.count("comm")) filter.comm = comm;
  output::SniffPrinter printer(stdout, filter);
  stream::Tracker tracker(printer);
  bool write_failed = false;
  output::Pipeline pipeline(
      [&](const std::string& line) {
        if (std::fputs(line.c_str(), stdout) < 0 || std::fputc('\n', stdout) < 0)
          write_failed = true;
      },
      popt);
  std::unique_ptr<record::Writer> writer;
  if (!record_path.empty()) {
    writer = std::make_unique<record::Writer>(record_path);
    if (!writer->ok()) {
      spdlog::error("{}", writer->error());
      return 2;
    }
  }
  CaptureSink& sink = writer     ? static_cast<CaptureSink&>(*writer)
                      : tls_view ? static_cast<CaptureSink&>(tracker)
                                 : pipeline.input();
  record::ProcessFilter filtered(sink, filter);
  const record::ReadResult r = record::replay_file(file, filtered);
  pipeline.flush();
  if (std::fflush(stdout) != 0) write_failed = true;
  if (writer) {
    writer->flush();
    if (!writer->ok()) {
      spdlog::error("{}", writer->error());
      return 1;
    }
  }
  if (!r.ok()) {
    spdlog::error("{}", r.error);
    return 1;
  }
  if (write_failed || printer.write_failed()) {
    spdlog::error("could not write all output");
    return 1;
  }
  spdlog::info("replayed {} records", r.records);
  return 0;
}

// The roles `scan` takes (detect::source_from_role also knows some aliases: human,
// developer, tool_result, function, model, tool_call).
constexpr const char* kRoles = "user, system, tool, tool_description, assistant or tool_arguments";

int cmd_scan(int argc, char** argv) {
  bool lines = false;
  bool timing = false;
  bool normalized = false;
  int threshold = 50;
  std::string role;
  po::options_description desc("agentwall scan [options] < input");
  desc.add_options()("help,h", "show this help")(
      "lines", po::bool_switch(&lines),
      "read plain text, one message per line, instead of JSON lines")(
      "role", po::value(&role),
      "where the text comes from, for lines that do not say (all lines with --lines): user, "
      "system, tool (a tool's result sent back to the model), tool_description, assistant, "
      "tool_arguments. The same words weigh more in a tool result than in a user's prompt")(
      "threshold", po::value(&threshold)->default_value(threshold),
      "score (0-100) from which a result is flagged")(
      "timing", po::bool_switch(&timing),
      "add \"elapsed_us\": microseconds the engine took on the line (steady clock, "
      "scan only: not parsing or output; after one warm-up scan) to each result")(
      "normalized", po::bool_switch(&normalized),
      "add \"normalized\": the text as the detectors read it (NFKC, look-alike letters "
      "folded, diacritics and invisible characters removed), to see why a pattern did or "
      "did not match");
  po::variables_map vm;
  if (!parse(argc, argv, desc, vm, "see: agentwall scan --help")) return 2;
  if (vm.count("help")) {
    std::cout
        << "Reads JSON lines {\"text\": ..., \"role\": ...} (role: user, system, tool,\n"
           "assistant, tool_arguments, ...) or, with --lines, plain lines, and prints one\n"
           "JSON result per input line, in order: {\"score\": N, \"flagged\": bool,\n"
           "\"findings\": [{detector, category, confidence, spans, explanation}], \"reasons\"}.\n\n"
        << desc;
    return 0;
  }
  if (threshold < 0 || threshold > 100) {
    std::fprintf(stderr, "agentwall: --threshold %d: must be from 0 to 100\n", threshold);
    return 2;
  }
  const detect::Source default_source =
      role.empty() ? detect::Source::kUnknown : detect::source_from_role(role);
  if (!role.empty() && default_source == detect::Source::kUnknown) {
    std::fprintf(stderr, "agentwall: --role %s: unknown; use %s\n", role.c_str(), kRoles);
    return 2;
  }
  const detect::Engine engine;
  // With --timing, one scan first, so that one-time set-up (lazily built tables, first
  // touches of the detectors' data) is not charged to the first line.
  if (timing)
    (void)engine.scan("warm up: Ignore previous instructions, key sk-\u200B0",
                      detect::Source::kUser);
  // std::cin, synchronised with C stdio, reads a character at a time: a third of the time
  // `scan` took on 4 KiB lines. The output goes through C stdio only.
  std::ios::sync_with_stdio(false);
  std::string line;
  uint64_t n = 0, bad = 0;
  while (std::getline(std::cin, line)) {
    ++n;
    std::string text = line;
    detect::Source source = default_source;
    if (!lines) {
      const auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string()) {
        ++bad;
        // One output line per input line, always: the error says which line and why.
        std::printf(
            "{\"error\":\"line %llu: expected a JSON object with a string \\\"text\\\" "
            "(or use --lines for plain text)\"}\n",
            static_cast<unsigned long long>(n));
        continue;
      }
      text = j["text"].get<std::string>();
      // A role the engine does not know would be scanned as no role at all, and weigh
      // orders as a user's own prompt: refused, as --role refuses it. null means none given.
      if (const auto r = j.find("role"); r != j.end() && !r->is_null()) {
        source = r->is_string() ? detect::source_from_role(r->get<std::string>())
                                : detect::Source::kUnknown;
        if (source == detect::Source::kUnknown) {
          ++bad;
          constexpr auto kReplace = nlohmann::json::error_handler_t::replace;
          const nlohmann::json error = {{"error", "line " + std::to_string(n) + ": role " +
                                                      r->dump(-1, ' ', false, kReplace) +
                                                      " is unknown; use " + kRoles}};
          std::printf("%s\n", error.dump(-1, ' ', false, kReplace).c_str());
          continue;
        }
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    const detect::ScanResult result = engine.scan(text, source);
    const auto t1 = std::chrono::steady_clock::now();
    std::string out = detect::scan_result_json(result, threshold);
    if (timing && !out.empty() && out.back() == '}') {
      char field[48];
      const double us = std::chrono::duration<double, std::micro>(t1 - t0).count();
      std::snprintf(field, sizeof(field), ",\"elapsed_us\":%.3f", us);
      out.insert(out.size() - 1, field);
    }
    if (normalized && !out.empty() && out.back() == '}') {
      const detect::Normalized norm = detect::normalize(text);
      const std::string seen = nlohmann::json(std::string(detect::view(norm, text)))
                                   .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      out.insert(out.size() - 1, ",\"normalized\":" + seen);
    }
    std::fwrite(out.data(), 1, out.size(), stdout);
    std::fputc('\n', stdout);
  }
  std::fflush(stdout);
  if (bad) {
    std::fprintf(stderr,
                 "agentwall: %llu of %llu lines were not scanned: not JSON objects with "
                 "\"text\", or of an unknown role (each has an \"error\" line)\n",
                 static_cast<unsigned long long>(bad), static_cast<unsigned long long>(n));
    return 1;
  }
  return 0;
}

// `agentwall policy test`: every call of a recording judged by the policy, as the daemon
// would, printed instead of enforced.
class PolicyTestReport final : public llm::LlmSink, public mcp::McpObserver {
 public:
  PolicyTestReport(const policy::Policy& p, bool json, const detect::Engine* engine)
      : policy_(p), json_(json), engine_(engine) {}

  void on_llm_call(const llm::LlmRecord& r) override {
    ++calls_;
    bool fired = false;
    for (const char* direction : {"request", "response"})
      if (direction == std::string_view("request") ? r.has_request : r.has_response)
        fired = report(policy::subject_from_llm(r, direction), r.time_ns, r.exchange_id) || fired;
    if (fired) ++calls_with_decisions_;
  }
  void on_mcp_call(const mcp::McpCall& c) override {
    ++calls_;
    bool fired = report(policy::subject_from_mcp(c, "request", engine_), c.time_ns, 0);
    if (c.answered)
      fired = report(policy::subject_from_mcp(c, "response", engine_), c.time_ns, 0) || fired;
    if (fired) ++calls_with_decisions_;
  }
  uint64_t calls() const { return calls_; }
  uint64_t calls_with_decisions() const { return calls_with_decisions_; }
  const std::map<std::string, uint64_t>& by_rule() const { return by_rule_; }

 private:
  bool report(const policy::Subject& s, uint64_t time_ns, uint64_t id) {
    const std::string& direction = s.direction;
    // What was called: the model, or the MCP server and tool.
    const std::string what = s.kind == "mcp" ? "mcp:" + s.mcp_server + "/" +
                                                   (s.mcp_tool.empty() ? s.mcp_method : s.mcp_tool)
                                             : s.model;
    const std::vector<policy::Decision> decisions = policy_.evaluate(s);
    for (const policy::Decision& d : decisions) {
      ++by_rule_[d.rule];
      // "would block": the action the rule names, not taken (monitor mode). Alerts are
      // raised in either mode.
      const bool only_reported = !d.enforce && d.action != policy::Action::kAlert;
      const std::string action =
          (only_reported ? "would " : "") + std::string(policy::to_string(d.action));
      if (json_) {
        nlohmann::json j = {{"time", format_rfc3339(time_ns)},
                            {"id", id},
                            {"kind", s.kind},
                            {"direction", direction},
                            {"pid", s.pid},
                            {"exe", s.exe},
                            {"user", s.user},
                            {"provider", s.provider},
                            {"model", s.model},
                            {"mcp_server", s.mcp_server},
                            {"mcp_tool", s.mcp_tool},
                            {"rule", d.rule},
                            {"action", policy::to_string(d.action)},
                            {"enforce", d.enforce},
                            {"severity", d.severity},
                            {"tags", d.tags},
                            {"message", d.message}};
        nlohmann::json detectors = nlohmann::json::array();
        for (size_t i : d.findings) detectors.push_back(s.findings[i].detector);
        j["detectors"] = std::move(detectors);
        std::printf("%s\n",
                    j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      } else {
        std::printf("%s  %-8s  %s  %s  %s  %s  %s  %s\n", format_rfc3339(time_ns).c_str(),
                    direction.c_str(), s.exe.empty() ? "?" : s.exe.c_str(),
                    what.empty() ? "?" : what.c_str(), d.rule.c_str(), action.c_str(),
                    d.severity.c_str(), d.message.c_str());
      }
    }
    return !decisions.empty();
  }

  const policy::Policy& policy_;
  const bool json_;
  const detect::Engine* engine_;
  uint64_t calls_ = 0, calls_with_decisions_ = 0;
  std::map<std::string, uint64_t> by_rule_;
};

int policy_check(const std::vector<std::string>& files) {
  std::vector<std::string> errors;
  const std::optional<policy::Policy> p = policy::Policy::load(files, errors);
  for (const std::string& e : errors) std::printf("%s\n", e.c_str());
  if (!p) {
    std::printf("%zu error%s\n", errors.size(), errors.size() == 1 ? "" : "s");
    return 1;
  }
  for (const std::string& w : p->warnings()) std::printf("%s\n", w.c_str());
  const policy::Summary s = p->summary();
  const policy::GateScope& gate = p->gate_scope();
  auto count = [](size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  std::printf("%s (%zu enabled), %s, %s, %s, %s; mode %s; %s: OK\n", count(s.rules, "rule").c_str(),
              s.enabled_rules, count(s.lists, "list").c_str(), count(s.macros, "macro").c_str(),
              count(s.budgets, "budget").c_str(), count(s.rate_limits, "rate limit").c_str(),
              p->settings().mode == policy::Mode::kEnforce ? "enforce" : "monitor",
              gate.gated ? (gate.any_process() ? "gates calls of every process"
                                               : "gates calls of the selected processes")
                         : "pauses nothing");
  return 0;
}

int policy_test(const std::vector<std::string>& files, const std::string& recording, bool json,
                const PipelineArgs& pargs) {
  std::vector<std::string> errors;
  const std::optional<policy::Policy> p = policy::Policy::load(files, errors);
  for (const std::string& e : errors) std::fprintf(stderr, "%s\n", e.c_str());
  if (!p) return 1;
  output::PipelineOptions popt;
  if (int rc = finish_pipeline_options(pargs, popt)) return rc;
  if (!popt.llm.inspector) {
    std::fprintf(stderr, "agentwall: policy test needs detection: drop --no-detect\n");
    return 2;
  }
  PolicyTestReport report(*p, json, &popt.llm.inspector->engine());
  popt.observer = &report;
  popt.mcp_observer = &report;
  if (!json) {
    std::printf(
        "# policy test of %s: budgets and rate limits are not counted here (their "
        "conditions never hold); \"would\" marks actions a monitor-mode rule only reports\n"
        "# time  direction  exe  model (or mcp:SERVER/TOOL)  rule  action  severity  message\n",
        recording.c_str());
  }
  output::Pipeline pipeline([](const std::string&) {}, popt);
  const record::ReadResult r = record::replay_file(recording, pipeline.input());
  pipeline.flush();
  if (!r.ok()) {
    spdlog::error("{}", r.error);
    return 1;
  }
  std::fflush(stdout);
  std::string rules;
  for (const auto& [rule, n] : report.by_rule()) rules += fmt::format(", {} {}", rule, n);
  spdlog::info("{} calls, {} with decisions{}", report.calls(), report.calls_with_decisions(),
               rules);
  return 0;
}

int cmd_policy(int argc, char** argv) {
  constexpr const char* kPolicyUsage =
      "usage: agentwall policy check FILES...\n"
      "       agentwall policy test FILES... --replay RECORDING [--json]\n";
  const std::string sub = argc > 1 ? argv[1] : "";
  if (sub != "check" && sub != "test") {
    const bool help = sub == "--help" || sub == "-h" || sub == "help";
    std::fputs(kPolicyUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  std::vector<std::string> files;
  std::string recording;
  bool json = false;
  PipelineArgs pargs;
  po::options_description desc("agentwall policy " + sub + " FILES... [options]");
  desc.add_options()("help,h", "show this help")("file", po::value(&files)->composing(),
                                                 "policy files (YAML), merged in order");
  if (sub == "test") {
    desc.add_options()("replay", po::value(&recording),
                       "recording made with `agentwall run --record FILE`")(
        "json", po::bool_switch(&json), "one JSON object per decision");
    desc.add(pipeline_options(pargs));
  }
  po::positional_options_description pos;
  pos.add("file", -1);
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc - 1, argv + 1).options(desc).positional(pos).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::fprintf(stderr, "agentwall: %s\n%s", e.what(), kPolicyUsage);
    return 2;
  }
  if (vm.count("help")) {
    std::cout << (sub == "check"
                      ? "Loads the policy files as the agent would (merged in order) and prints\n"
                        "every error with FILE:LINE:COL, or a summary and OK. Exit status 1 on "
                        "errors.\n\n"
                      : "Runs a recording through the pipeline and prints, for every call, the\n"
                        "rules that would have fired: time, direction, process, model, rule,\n"
                        "action, severity and message. Nothing is enforced.\n\n")
              << desc;
    return 0;
  }
  setup_logging(false);
  if (files.empty()) {
    std::fprintf(stderr, "agentwall: policy %s needs at least one FILE\n%s", sub.c_str(),
                 kPolicyUsage);
    return 2;
  }
  if (sub == "check") return policy_check(files);
  if (recording.empty()) {
    std::fprintf(stderr, "agentwall: policy test needs --replay RECORDING\n%s", kPolicyUsage);
    return 2;
  }
  return policy_test(files, recording, json, pargs);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  // Each command parses its own arguments, with itself as argv[0].
  if (cmd == "run") return cmd_run(argc - 1, argv + 1);
  if (cmd == "sniff") return cmd_sniff(argc - 1, argv + 1);
  if (cmd == "replay") return cmd_replay(argc - 1, argv + 1);
  if (cmd == "scan") return cmd_scan(argc - 1, argv + 1);
  if (cmd == "status") return cli::cmd_status(argc - 1, argv + 1);
  if (cmd == "top") return cli::cmd_top(argc - 1, argv + 1);
  if (cmd == "tail") return cli::cmd_tail(argc - 1, argv + 1);
  if (cmd == "coverage") return cli::cmd_coverage(argc - 1, argv + 1);
  if (cmd == "policy") return cmd_policy(argc - 1, argv + 1);
  if (cmd == "config") return cmd_config(argc - 1, argv + 1);
  if (cmd == "mcp") return cmd_mcp(argc - 1, argv + 1);
  if (cmd == "version" || cmd == "--version") {
    std::printf("agentwall %s\n", AGENTWALL_VERSION);
    return 0;
  }
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  std::fprintf(stderr, "agentwall: unknown command '%s'\n%s", cmd.c_str(), kUsage);
  return 2;
}
