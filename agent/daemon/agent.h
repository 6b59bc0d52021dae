// The daemon: wires the stages, owns the threads, reports health.
#pragma once

#include <string>

#include "agent/capture/capture.h"
#include "agent/decide/decider.h"
#include "agent/enforce/gate.h"
#include "agent/output/pipeline.h"
#include "agent/output/sniff_printer.h"
#include "agent/stream/tracker.h"

namespace agentwall::daemon {

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
  const policy::Policy* policy = nullptr;
};

// Runs until SIGINT or SIGTERM. Returns the process exit code.
int run_agent(const AgentOptions& options);

struct HealthSnapshot {
  capture::Counters capture;
  stream::TrackerStats stream;
  protocol::HttpStageStats http;
  llm::LlmStats llm;
  decide::DecideStats decide;
  enforce::GateStats gate;
  size_t gated_processes = 0;
  std::vector<capture::AttachedTarget> attached;
  uint64_t record_lost = 0;
  std::string record_error;
  double uptime_s = 0;
  uint64_t rss_bytes = 0;
  double cpu_seconds = 0;
};

// The agent.health event (docs/EVENTS.md): one JSON line.
std::string health_json(const HealthSnapshot& h);

}  // namespace agentwall::daemon
