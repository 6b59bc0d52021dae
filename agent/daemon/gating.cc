#include "agent/daemon/gating.h"

#include "agent/daemon/host_checks.h"

#include <dirent.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <functional>

#include "agent/policy/subject_llm.h"
#include "agent/proc/procfs.h"

namespace agentwall::daemon {
namespace {

// Calls `fn(relative path, inode)` for every cgroup below `root`.
void walk_cgroups(const std::string& root, const std::string& rel,
                  const std::function<void(const std::string&, uint64_t)>& fn, int depth) {
  if (depth > 16) return;
  DIR* d = opendir((root + rel).c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_type != DT_DIR || e->d_name[0] == '.') continue;
    const std::string child = rel + "/" + e->d_name;
    struct stat st {};
    if (stat((root + child).c_str(), &st) == 0) fn(child, st.st_ino);
    walk_cgroups(root, child, fn, depth + 1);
  }
  closedir(d);
}

bool has_wildcard(const std::string& s) {
  return policy::has_glob_chars(s);
}

}  // namespace

Gating::Gating(const policy::GateScope& scope, capture::Capture& cap) : scope_(scope), cap_(cap) {
  for (const auto& s : scope.scopes) {
    Scope c;
    c.rule = s.rule;
    c.exes = policy::PatternSet(s.exes, false);
    c.names = policy::PatternSet(s.names, false);
    c.users = policy::PatternSet(s.users, false);
    c.uids = policy::PatternSet(s.uids, false);
    c.units = policy::PatternSet(s.units, false);
    c.containers = policy::PatternSet(s.containers, false);
    c.cgroups = policy::PatternSet(s.cgroups, false);
    c.any_process = s.any_process();
    any_process_ = any_process_ || c.any_process;
    scopes_.push_back(std::move(c));
  }
  any_host_ = scope.any_host();
  // A host pattern with wildcards cannot be looked up by hash in the kernel: gate every host.
  for (const std::string& h : scope.hosts())
    if (has_wildcard(h)) any_host_ = true;
}

bool Gating::matches(const ProcessInfo& p, const std::string& user) const {
  const std::string unit = policy::unit_from_cgroup(p.cgroup_path);
  const std::string container = policy::container_from_cgroup(p.cgroup_path);
  const std::string uid = std::to_string(p.uid);
  for (const Scope& s : scopes_) {
    if (s.any_process) return true;
    auto ok = [](const policy::PatternSet& set, const std::string& v) {
      return set.empty() || set.matches(v);
    };
    if (ok(s.exes, p.exe) && ok(s.names, p.comm) && ok(s.users, user) && ok(s.uids, uid) &&
        ok(s.units, unit) && ok(s.containers, container) && ok(s.cgroups, p.cgroup_path))
      return true;
  }
  return false;
}

void Gating::consider(uint32_t pid) {
  if (!scope_.gated || any_process_) return;
  const ProcessInfo info = proc::read_process({pid, 0}, "");
  if (!info.complete) return;  // gone already
  if (!matches(info, policy::user_name(info.uid))) return;
  if (cap_.gate_pid(pid, true)) {
    ++gated_pids_;
    pids_.push_back(pid);
    spdlog::info("enforcement gate: process {} ({}) gated", pid, info.exe);
  }
}

void Gating::gate_cgroups() {
  const std::string root = mount_point("cgroup2");
  if (root.empty()) return;
  size_t n = 0;
  walk_cgroups(
      root, "",
      [&](const std::string& rel, uint64_t ino) {
        for (const Scope& s : scopes_) {
          if (s.cgroups.empty() || !s.cgroups.matches(rel)) continue;
          // The other selectors of the scope narrow it further: they are checked per
          // process at exec; a cgroup alone gates only when it is the scope's only selector.
          if (!(s.exes.empty() && s.names.empty() && s.users.empty() && s.uids.empty() &&
                s.units.empty() && s.containers.empty()))
            continue;
          if (cap_.gate_cgroup(ino, true)) {
            ++n;
            cgroups_.push_back(ino);
          }
          break;
        }
      },
      0);
  if (n) spdlog::info("enforcement gate: {} cgroup(s) gated", n);
}

void Gating::start() {
  if (!scope_.gated) {
    cap_.set_gate(false, false, false);
    return;
  }
  if (!any_host_)
    for (const std::string& h : scope_.hosts())
      if (cap_.gate_host(h, true)) hosts_.push_back(h);
  gate_cgroups();
  if (!any_process_) {
    cap_.set_exec_hook([this](uint32_t pid) { consider(pid); });
    if (DIR* d = opendir("/proc")) {
      while (dirent* e = readdir(d)) {
        char* end = nullptr;
        const unsigned long pid = std::strtoul(e->d_name, &end, 10);
        if (end && *end == 0 && pid > 0 && pid != uint32_t(getpid())) consider(uint32_t(pid));
      }
      closedir(d);
    }
  }
  cap_.set_gate(true, any_host_, any_process_);
  spdlog::warn("enforcement on: writes of {} to {} are held for a verdict ({} rule(s) enforce)",
               any_process_ ? "every process"
                            : std::to_string(gated_pids_) + " process(es) and gated cgroups",
               any_host_ ? "any host" : "the policy's hosts", scope_.scopes.size());
}

void Gating::stop() {
  cap_.set_gate(false, false, false);
  cap_.set_exec_hook(nullptr);
}

void Gating::clear() {
  stop();
  for (uint32_t pid : pids_) cap_.gate_pid(pid, false);
  for (uint64_t ino : cgroups_) cap_.gate_cgroup(ino, false);
  for (const std::string& h : hosts_) cap_.gate_host(h, false);
  pids_.clear();
  cgroups_.clear();
  hosts_.clear();
  gated_pids_ = 0;
}

}  // namespace agentwall::daemon
