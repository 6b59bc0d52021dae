// The document `agentwall status` shows: the agent.health event (docs/EVENTS.md) with what an
// operator asks first besides: since when, which policy, and where each budget stands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "agent/budget/ledger.h"
#include "agent/daemon/agent.h"
#include "agent/daemon/host_checks.h"

namespace agentwall::daemon {

struct StatusContext {
  uint64_t started_unix_ns = 0;
  bool policy_loaded = false;
  std::vector<std::string> policy_files;  // empty: the built-in default
  std::string policy_mode;                // monitor or enforce
  std::vector<budget::BudgetStatus> budgets;
  std::vector<std::string> config_files;  // empty: built-in defaults
  std::vector<HostCheck> checks;          // what the kernel offers (start-up checks)
};

// {"type":"agent.status", …every agent.health field…, "pid", "started", "processes",
// "policy": {…, "files", "mode"}, "budgets": [...]}: one JSON line.
std::string status_json(const HealthSnapshot& h, const StatusContext& x);

}  // namespace agentwall::daemon
