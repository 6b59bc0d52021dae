// The daemon: wires the stages, owns the threads, reports health.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/capture/capture.h"
#include "agent/coverage/coverage.h"
#include "agent/daemon/control.h"
#include "agent/decide/decider.h"
#include "agent/enforce/gate.h"
#include "agent/output/pipeline.h"
#include "agent/output/sniff_printer.h"
#include "agent/sinks/sinks.h"
#include "agent/stream/tracker.h"

namespace agentwall::daemon {

// What a reload read: the new policy, or the errors that keep it out (FILE:LINE:COL: ...).
struct Reload {
  std::shared_ptr<const policy::Policy> policy;  // null: refused, the running one stays
  std::vector<std::string> files;                // the policy files read
  std::vector<std::string> errors, warnings;
  // Configuration keys that changed but only take effect at a restart (sinks, capture, ...).
  std::vector<std::string> restart_needed;
};

struct AgentOptions {
  capture::Options capture;
  std::string record_path;  // --record: write the raw capture stream here
  output::PipelineOptions pipeline;
  // Where every event goes (llm.exchange, agent.health); "-" = stdout, empty = nowhere.
  std::string events_path = "-";
  double health_interval_s = 30;  // 0 = only at exit
  std::string ready_file;         // created once every probe is attached
  // Sniff mode: print every chunk as a tls.* JSON line instead of running the pipeline.
  bool sniff = false;
  std::string sniff_output = "-";
  output::SniffFilter sniff_filter;
  // The policy every call is judged by (alerts, budgets, enforcement); null: none.
  std::shared_ptr<const policy::Policy> policy;
  std::vector<std::string> policy_files;  // where it came from, for events and status
  std::vector<std::string> config_files;  // the configuration files read (status)
  // SIGHUP: reads the configuration and policies again. Null: SIGHUP changes nothing.
  std::function<Reload()> reload;
  // More places events go (--sink), besides events_path; network sinks spool under
  // state_dir/spool/.
  std::vector<sinks::SinkConfig> sinks;
  std::string state_dir = "/var/lib/agentwall";
  sinks::FloodOptions flood;
  double drain_timeout_s = 5;  // at exit, how long spooled events may take to go out
  std::string metrics_listen;  // Prometheus endpoint, e.g. 127.0.0.1:9464; empty: none
  // Control socket (`agentwall status`, `top`, `tail`); empty: none.
  std::string control_socket = kDefaultControlSocket;
  // Coverage view (`agentwall coverage`, coverage.gap alerts): more AI endpoints.
  std::vector<std::string> coverage_endpoints;
};

// Runs until SIGINT or SIGTERM. Returns the process exit code.
int run_agent(const AgentOptions& options);

struct HealthSnapshot {
  capture::Counters capture;
  coverage::CoverageStats coverage;
  stream::TrackerStats stream;
  protocol::HttpStageStats http;
  llm::LlmStats llm;
  mcp::McpStats mcp;
  mcp::StdioStats stdio;
  decide::DecideStats decide;
  enforce::GateStats gate;
  size_t gated_processes = 0;
  std::vector<capture::AttachedTarget> attached;
  uint64_t record_lost = 0;
  std::string record_error;
  double uptime_s = 0;
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
  std::vector<sinks::SinkStats> sinks;
  sinks::FloodStats flood;
};

// The agent.health event (docs/EVENTS.md): one JSON line.
std::string health_json(const HealthSnapshot& h);

}  // namespace agentwall::daemon
