#include "agent/proc/procfs.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>

#include "agent/common/redact.h"

namespace agentwall::proc {
namespace {

std::string read_small_file(const std::string& path, size_t cap = 1 << 16) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::string data(cap, '\0');
  in.read(data.data(), static_cast<std::streamsize>(cap));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}

template <typename T>
bool parse_number(std::string_view s, T& out, int base = 10) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out, base);
  return ec == std::errc() && p == s.data() + s.size();
}

// Splits off the next space-delimited field; skips runs of spaces.
std::string_view next_field(std::string_view& rest) {
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  const size_t end = rest.find(' ');
  std::string_view field = rest.substr(0, end);
  rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
  return field;
}

}  // namespace

std::optional<MapsEntry> parse_maps_line(std::string_view line) {
  if (!line.empty() && line.back() == '\n') line.remove_suffix(1);
  MapsEntry e;
  std::string_view rest = line;
  const std::string_view range = next_field(rest);
  const size_t dash = range.find('-');
  if (dash == std::string_view::npos || !parse_number(range.substr(0, dash), e.start, 16) ||
      !parse_number(range.substr(dash + 1), e.end, 16))
    return std::nullopt;
  e.perms = std::string(next_field(rest));
  if (e.perms.size() != 4) return std::nullopt;
  if (!parse_number(next_field(rest), e.offset, 16)) return std::nullopt;
  const std::string_view dev = next_field(rest);
  const size_t colon = dev.find(':');
  if (colon == std::string_view::npos || !parse_number(dev.substr(0, colon), e.dev_major, 16) ||
      !parse_number(dev.substr(colon + 1), e.dev_minor, 16))
    return std::nullopt;
  if (!parse_number(next_field(rest), e.inode)) return std::nullopt;
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  e.path = std::string(rest);
  return e;
}

std::vector<MapsEntry> read_maps(uint32_t pid, const std::string& proc_root) {
  std::vector<MapsEntry> out;
  std::ifstream in(proc_root + "/" + std::to_string(pid) + "/maps");
  std::string line;
  while (std::getline(in, line)) {
    if (auto e = parse_maps_line(line)) out.push_back(std::move(*e));
  }
  return out;
}

std::optional<uint64_t> parse_stat_start_ticks(std::string_view stat) {
  // comm (field 2) is in parentheses and may hold spaces and ')': fields resume after
  // the last ')'.
  const size_t close = stat.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  std::string_view rest = stat.substr(close + 1);
  // rest starts at field 3 (state); start time is field 22.
  for (int field = 3; field < 22; ++field) {
    if (next_field(rest).empty()) return std::nullopt;
  }
  uint64_t ticks = 0;
  std::string_view f = next_field(rest);
  if (!f.empty() && f.back() == '\n') f.remove_suffix(1);
  if (!parse_number(f, ticks)) return std::nullopt;
  return ticks;
}

std::string cmdline_from_raw(std::string_view raw, size_t cap) {
  while (!raw.empty() && raw.back() == '\0') raw.remove_suffix(1);
  std::string out(raw.substr(0, cap));
  for (char& c : out) {
    if (c == '\0') c = ' ';
  }
  return out;
}

std::string cgroup_path_from(std::string_view cgroup_file) {
  std::string_view first;
  while (!cgroup_file.empty()) {
    const size_t nl = cgroup_file.find('\n');
    std::string_view line = cgroup_file.substr(0, nl);
    cgroup_file.remove_prefix(nl == std::string_view::npos ? cgroup_file.size() : nl + 1);
    if (line.starts_with("0::")) return std::string(line.substr(3));
    if (first.empty()) first = line;
  }
  const size_t second_colon = first.find(':', first.find(':') + 1);
  return second_colon == std::string_view::npos ? std::string()
                                                : std::string(first.substr(second_colon + 1));
}

uint64_t start_ns_to_ticks(uint64_t start_ns) {
  static const uint64_t ticks_per_sec = static_cast<uint64_t>(sysconf(_SC_CLK_TCK));
  return start_ns / (1000000000ull / ticks_per_sec);
}

ProcessInfo read_process(const ProcessKey& key, std::string_view comm,
                         const std::string& proc_root) {
  ProcessInfo info;
  info.key = key;
  info.comm = std::string(comm);
  const std::string dir = proc_root + "/" + std::to_string(key.pid);
  const auto ticks = parse_stat_start_ticks(read_small_file(dir + "/stat", 4096));
  // A different start time: the pid now names another process; report nothing of it.
  if (!ticks || (key.start_ns && *ticks != start_ns_to_ticks(key.start_ns))) return info;

  char exe[4096];
  const ssize_t n = readlink((dir + "/exe").c_str(), exe, sizeof(exe) - 1);
  if (n > 0) info.exe.assign(exe, static_cast<size_t>(n));
  info.cmdline = cmdline_from_raw(read_small_file(dir + "/cmdline", 8192));
  // Keys passed on command lines (curl -H "Authorization: Bearer …") never leave the agent.
  redact_credentials(info.cmdline);
  info.cgroup_path = cgroup_path_from(read_small_file(dir + "/cgroup", 8192));
  std::istringstream status(read_small_file(dir + "/status", 8192));
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("PPid:")) {
      info.ppid = static_cast<uint32_t>(std::strtoul(line.c_str() + 5, nullptr, 10));
    } else if (line.starts_with("Uid:")) {
      info.uid = static_cast<uint32_t>(std::strtoul(line.c_str() + 4, nullptr, 10));
    } else if (line.starts_with("Name:") && info.comm.empty()) {
      info.comm = line.substr(line.find_first_not_of(" \t", 5));
    }
  }
  // Re-check: the process may have exited and the pid been reused while reading.
  const auto again = parse_stat_start_ticks(read_small_file(dir + "/stat", 4096));
  info.complete = again && again == ticks;
  if (!info.complete) {
    const std::string kernel_comm = info.comm;
    info = ProcessInfo{.key = key, .comm = kernel_comm};
  }
  return info;
}

}  // namespace agentwall::proc
