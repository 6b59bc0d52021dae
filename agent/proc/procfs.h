// Reading /proc: mappings and process identity. Works without root for the caller's
// own processes; the agent reads every process as root.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/capture/chunk.h"

namespace agentwall::proc {

struct MapsEntry {
  uint64_t start = 0;
  uint64_t end = 0;
  uint64_t offset = 0;
  std::string perms;  // "r-xp"
  uint32_t dev_major = 0;
  uint32_t dev_minor = 0;
  uint64_t inode = 0;
  std::string path;  // may be empty, "[heap]", or end in " (deleted)"
};

// One line of /proc/PID/maps; nullopt when it is not one.
std::optional<MapsEntry> parse_maps_line(std::string_view line);
// Every mapping of `pid`; empty when the process is gone.
std::vector<MapsEntry> read_maps(uint32_t pid, const std::string& proc_root = "/proc");

// The process start time in clock ticks since boot (field 22 of /proc/PID/stat).
std::optional<uint64_t> parse_stat_start_ticks(std::string_view stat);
// Joins NUL-separated arguments with spaces, at most `cap` bytes.
std::string cmdline_from_raw(std::string_view raw, size_t cap = 4096);
// The cgroup v2 path from /proc/PID/cgroup ("0::/path"), or the first line's path.
std::string cgroup_path_from(std::string_view cgroup_file);

// Reads what /proc knows of `key.pid`. complete=false when the process is gone or the
// pid now belongs to another process (start time differs).
ProcessInfo read_process(const ProcessKey& key, std::string_view comm,
                         const std::string& proc_root = "/proc");

// Kernel boot-based start time (ns) to /proc clock ticks.
uint64_t start_ns_to_ticks(uint64_t start_ns);

}  // namespace agentwall::proc
