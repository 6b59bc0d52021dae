// Start-up checks: what this kernel and this process offer the agent, and what is degraded
// without it. Logged at start (one line each) and shown by `agentwall status`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace agentwall::daemon {

struct HostCheck {
  std::string name;    // "kernel", "btf", "lockdown", "uprobe_pmu", "cgroup2", "bpf_lsm", ...
  std::string state;   // "ok", "degraded", "missing" (the agent cannot work), "unknown"
  std::string detail;  // what was found, and what it means for the agent
};

std::vector<HostCheck> host_checks();

// Where a file system of this type is mounted (the first), e.g. "cgroup2"; empty: nowhere.
std::string mount_point(std::string_view fstype);

// Whether this process has capability `bit` in its effective set (CAP_KILL is 5).
bool has_capability(int bit);

// Logs every check: info for ok or unknown, warn for degraded, error for missing.
void log_host_checks(const std::vector<HostCheck>& checks);

}  // namespace agentwall::daemon
