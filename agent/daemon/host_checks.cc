#include "agent/daemon/host_checks.h"

#include <spdlog/spdlog.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace agentwall::daemon {
namespace {

std::string read_all(const char* path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  std::string out = s.str();
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

}  // namespace

std::string mount_point(std::string_view fstype) {
  std::ifstream mounts("/proc/self/mounts");
  std::string dev, dir, type, rest;
  while (mounts >> dev >> dir >> type) {
    std::getline(mounts, rest);
    if (type == fstype) return dir;
  }
  return {};
}

std::vector<HostCheck> host_checks() {
  std::vector<HostCheck> out;
  utsname u{};
  uname(&u);
  int major = 0, minor = 0;
  std::sscanf(u.release, "%d.%d", &major, &minor);
  const bool new_enough = major > 5 || (major == 5 && minor >= 17);
  out.push_back(
      {"kernel", new_enough ? "ok" : "missing",
       std::string("Linux ") + u.release + " " + u.machine +
           (new_enough ? "" : ": the agent needs 5.17 or later (BPF ring buffer, bpf_loop)")});

  if (access("/sys/kernel/btf/vmlinux", R_OK) == 0)
    out.push_back({"btf", "ok", "/sys/kernel/btf/vmlinux"});
  else
    out.push_back({"btf", "missing",
                   "no /sys/kernel/btf/vmlinux: the CO-RE programs cannot load; use a kernel "
                   "built with CONFIG_DEBUG_INFO_BTF=y"});

  const std::string lockdown = read_all("/sys/kernel/security/lockdown");
  if (lockdown.empty()) {
    out.push_back({"lockdown", "unknown",
                   "securityfs is not mounted at /sys/kernel/security: the lockdown mode cannot "
                   "be read (capture works in none and integrity, not in confidentiality)"});
  } else if (lockdown.find("[confidentiality]") != std::string::npos) {
    out.push_back({"lockdown", "missing",
                   lockdown + ": confidentiality mode forbids BPF programs to read user memory; "
                              "nothing can be captured"});
  } else {
    out.push_back({"lockdown", "ok",
                   lockdown + " (capture reads user memory: allowed in none and integrity)"});
  }

  if (access("/sys/bus/event_source/devices/uprobe/type", R_OK) == 0) {
    out.push_back({"uprobe_pmu", "ok", "uprobes attach through perf events"});
  } else {
    const std::string tracefs = mount_point("tracefs");
    const bool has_tracefs = !tracefs.empty();
    out.push_back({"uprobe_pmu", has_tracefs ? "degraded" : "missing",
                   has_tracefs ? "no uprobe PMU: libbpf attaches through tracefs at " + tracefs
                               : "no uprobe PMU and no tracefs mounted: uprobes cannot attach "
                                 "(mount -t tracefs nodev /sys/kernel/tracing)"});
  }

  if (const std::string cg2 = mount_point("cgroup2"); !cg2.empty())
    out.push_back({"cgroup2", "ok", "at " + cg2 + " (policies can select and gate cgroups)"});
  else
    out.push_back({"cgroup2", "degraded",
                   "no cgroup v2 hierarchy: systemd units and containers are not attributed, "
                   "and policies cannot gate by cgroup"});

  const std::string lsms = read_all("/sys/kernel/security/lsm");
  if (lsms.empty())
    out.push_back({"bpf_lsm", "unknown",
                   "the active LSMs cannot be read (securityfs not mounted); agentwall does not "
                   "need the bpf LSM: enforcement holds writes with uprobes and signals"});
  else if (("," + lsms + ",").find(",bpf,") != std::string::npos)
    out.push_back({"bpf_lsm", "ok", "active (" + lsms + "); not needed by agentwall today"});
  else
    out.push_back({"bpf_lsm", "ok",
                   "not active (" + lsms +
                       "); nothing is degraded: enforcement holds writes with uprobes and "
                       "signals, not LSM hooks"});

  const std::string unpriv = read_all("/proc/sys/kernel/unprivileged_bpf_disabled");
  out.push_back({"bpf_permissions", "ok",
                 "unprivileged_bpf_disabled=" + (unpriv.empty() ? "?" : unpriv) +
                     "; the agent loads BPF with CAP_BPF and CAP_PERFMON (checked at start)"});
  return out;
}

bool has_capability(int bit) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.starts_with("CapEff:"))
      return (std::strtoull(line.c_str() + 7, nullptr, 16) >> bit) & 1;
  return false;
}

void log_host_checks(const std::vector<HostCheck>& checks) {
  for (const HostCheck& c : checks) {
    if (c.state == "ok" || c.state == "unknown")
      spdlog::info("check {}: {}", c.name, c.detail);
    else if (c.state == "missing")
      spdlog::error("check {}: {}", c.name, c.detail);
    else
      spdlog::warn("check {} ({}): {}", c.name, c.state, c.detail);
  }
}

}  // namespace agentwall::daemon
