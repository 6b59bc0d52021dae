// uprobe_floor: the floor for probes on BoringSSL located by signature. It finds SSL_write and
// SSL_read in EXECUTABLE the way the agent does (agent/elf/boringssl_sig.*), attaches an empty
// BPF program (`return 0`) as a uprobe and as a uretprobe at each, as the agent attaches its
// own there, waits until its standard input closes, and prints one JSON line: where the probes
// were and what the kernel counted for the two empty programs (run_cnt, run_time_ns; non-zero
// only with kernel.bpf_stats_enabled=1).
//
//   uprobe_floor EXECUTABLE     (root)
//
// boringssl_probe_cost.py runs it beside `agentwall run` on Claude Code's native binary.

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "agent/elf/boringssl_sig.h"

namespace {

int read_int_file(const char* path, int fallback) {
  std::ifstream in(path);
  std::string s;
  if (!(in >> s)) return fallback;
  const size_t colon = s.find(':');  // "config:0" for the retprobe bit
  return std::stoi(colon == std::string::npos ? s : s.substr(colon + 1));
}

// A perf uprobe (or uretprobe) at `offset` of `path` for every process, running `prog`.
int attach(int prog, const std::string& path, uint64_t offset, bool ret) {
  perf_event_attr attr{};
  attr.size = sizeof(attr);
  attr.type = static_cast<uint32_t>(read_int_file("/sys/bus/event_source/devices/uprobe/type", -1));
  if (ret)
    attr.config |= 1ull << read_int_file("/sys/bus/event_source/devices/uprobe/format/retprobe", 0);
  attr.config1 = reinterpret_cast<uint64_t>(path.c_str());
  attr.config2 = offset;
  const int fd =
      static_cast<int>(syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC));
  if (fd < 0) return -1;
  if (ioctl(fd, PERF_EVENT_IOC_SET_BPF, prog) != 0 || ioctl(fd, PERF_EVENT_IOC_ENABLE, 0) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int load_empty(const char* name) {
  const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  return bpf_prog_load(BPF_PROG_TYPE_KPROBE, name, "GPL", insns, 2, nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: uprobe_floor EXECUTABLE\n");
    return 2;
  }
  const std::string path = argv[1];
  const auto t0 = std::chrono::steady_clock::now();
  const agentwall::elf::SslSignatureLookup sig = agentwall::elf::find_ssl_by_signature(path);
  const double locate_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  if (!sig.found()) {
    std::fprintf(stderr, "uprobe_floor: %s: not located: %s%s\n", path.c_str(), sig.detail.c_str(),
                 sig.error.c_str());
    return 1;
  }
  const int enter = load_empty("floor_enter");
  const int exit = load_empty("floor_exit");
  if (enter < 0 || exit < 0) {
    std::perror("uprobe_floor: loading the empty program");
    return 1;
  }
  std::vector<int> fds;
  for (const uint64_t off : {sig.write_offset, sig.read_offset}) {
    fds.push_back(attach(exit, path, off, true));
    fds.push_back(attach(enter, path, off, false));
  }
  for (const int fd : fds) {
    if (fd < 0) {
      std::perror("uprobe_floor: attaching");
      return 1;
    }
  }
  std::printf("{\"ready\":true,\"locate_ms\":%.1f}\n", locate_ms);
  std::fflush(stdout);
  char buf[256];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
  bpf_prog_info ie{}, ix{};
  uint32_t len = sizeof(ie);
  bpf_obj_get_info_by_fd(enter, &ie, &len);
  len = sizeof(ix);
  bpf_obj_get_info_by_fd(exit, &ix, &len);
  std::printf(
      "{\"write_offset\":%llu,\"read_offset\":%llu,\"enter_cnt\":%llu,\"enter_ns\":%llu,"
      "\"exit_cnt\":%llu,\"exit_ns\":%llu}\n",
      static_cast<unsigned long long>(sig.write_offset),
      static_cast<unsigned long long>(sig.read_offset), static_cast<unsigned long long>(ie.run_cnt),
      static_cast<unsigned long long>(ie.run_time_ns), static_cast<unsigned long long>(ix.run_cnt),
      static_cast<unsigned long long>(ix.run_time_ns));
  for (const int fd : fds) close(fd);
  return 0;
}
