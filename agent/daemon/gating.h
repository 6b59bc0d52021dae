// Turns a policy's gate scope (which processes and hosts its enforcing rules can act on) into
// the kernel gate's maps: gated cgroups found at start, gated processes found at start and at
// every exec, gated hosts by SNI. Nothing outside the scope is ever held.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "agent/capture/capture.h"
#include "agent/policy/glob.h"
#include "agent/policy/policy.h"

namespace agentwall::daemon {

class Gating {
 public:
  Gating(const policy::GateScope& scope, capture::Capture& cap);

  // Fills the maps and turns the gate on; logs what is gated.
  void start();
  // Gates `pid` when the process matches a scope (the exec hook).
  void consider(uint32_t pid);
  // Turns the gate off: no write is held after this returns.
  void stop();
  // stop(), and takes every process, cgroup and host this scope gated out of the kernel's
  // maps: what a reloaded policy no longer names is not held again.
  void clear();

  size_t gated_processes() const { return gated_pids_; }

 private:
  struct Scope {
    std::string rule;
    policy::PatternSet exes, names, users, uids, units, containers, cgroups;
    bool any_process = false;
  };
  bool matches(const ProcessInfo& p, const std::string& user) const;
  void gate_cgroups();

  const policy::GateScope& scope_;
  capture::Capture& cap_;
  std::vector<Scope> scopes_;
  bool any_process_ = false;
  bool any_host_ = false;
  size_t gated_pids_ = 0;
  std::vector<uint32_t> pids_;  // what start() and consider() put in the maps
  std::vector<uint64_t> cgroups_;
  std::vector<std::string> hosts_;
};

}  // namespace agentwall::daemon
