// uprobe_floor: the floor for the agent's probes on TLS code it locates in an executable: an
// empty BPF program (`return 0`) attached exactly where the agent attaches its own, found by
// the agent's own code. It waits until its standard input closes, then prints what the kernel
// counted for the empty programs (run_cnt, run_time_ns; non-zero only with
// kernel.bpf_stats_enabled=1) as one JSON line.
//
//   uprobe_floor EXECUTABLE        (root) BoringSSL located by signature (agent/elf/
//       boringssl_sig.*): a uprobe and a uretprobe at SSL_write and at SSL_read.
//   uprobe_floor --go EXECUTABLE   (root) Go's crypto/tls (agent/elf/gopclntab.*): a uprobe at
//       the entry of (*Conn).Write, Read and Close and at every RET of Write and Read, one
//       program for each entry and one shared by the RETs, as uprobe_multi links where the
//       kernel has them, as the agent does (agent/capture/uprobe_multi.*).
//   uprobe_floor --go-perf EXECUTABLE   the same as perf-event uprobes, one per place (what the
//       agent does on kernels without uprobe_multi).
//   uprobe_floor --aead EXECUTABLE (root) rustls over aws-lc: aws-lc's EVP_AEAD_CTX_seal and
//       EVP_AEAD_CTX_open located by signature (agent/elf/boringssl_sig.*): a uprobe at seal,
//       a uprobe and a uretprobe at open, as the agent attaches them.
//
// It prints a first line once attached ({"ready":true,...}) and the counts at the end.
// boringssl_probe_cost.py and go_probe_cost.py run it beside `agentwall run`.

#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "agent/capture/uprobe_multi.h"
#include "agent/elf/boringssl_sig.h"
#include "agent/elf/gopclntab.h"

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

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

bpf_prog_info prog_info(int prog) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  bpf_obj_get_info_by_fd(prog, &info, &len);
  return info;
}

void wait_for_stdin_eof() {
  char buf[256];
  while (read(0, buf, sizeof(buf)) > 0) {
  }
}

int boringssl(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  const agentwall::elf::SslSignatureLookup sig = agentwall::elf::find_ssl_by_signature(path);
  const double locate_ms = ms_since(t0);
  if (!sig.found()) {
    std::fprintf(stderr, "uprobe_floor: %s: not located: %s%s\n", path.c_str(), sig.detail.c_str(),
                 sig.error.c_str());
    return 1;
  }
  const int enter = agentwall::capture::load_empty_uprobe_program("floor_enter", false);
  const int exit = agentwall::capture::load_empty_uprobe_program("floor_exit", false);
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
  wait_for_stdin_eof();
  const bpf_prog_info ie = prog_info(enter), ix = prog_info(exit);
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

// One empty program and the file offsets it runs at.
struct Floor {
  const char* name;
  std::vector<uint64_t> offsets;
  int prog = -1;
};

// After the ready line: waits for standard input to close, prints what the kernel counted for
// each program as {"programs":{NAME:{"cnt":N,"ns":N},...}} and lets go of the attachments.
int wait_and_report(const std::vector<Floor>& floors, const std::vector<int>& fds) {
  std::fflush(stdout);
  wait_for_stdin_eof();
  std::string out = "{\"programs\":{";
  for (const Floor& f : floors) {
    const bpf_prog_info info = prog_info(f.prog);
    if (out.back() != '{') out += ',';
    out += "\"" + std::string(f.name) + "\":{\"cnt\":" + std::to_string(info.run_cnt) +
           ",\"ns\":" + std::to_string(info.run_time_ns) + "}";
  }
  std::printf("%s}}\n", out.c_str());
  for (const int fd : fds) close(fd);
  return 0;
}

int go_tls(const std::string& path, bool allow_multi) {
  namespace elf = agentwall::elf;
  const auto t0 = std::chrono::steady_clock::now();
  const elf::GoLookup go =
      elf::find_go_functions(path, {elf::kGoConnWrite, elf::kGoConnRead, elf::kGoConnClose});
  const double locate_ms = ms_since(t0);
  if (!go.ok() || !go.functions.count(elf::kGoConnWrite) || !go.functions.count(elf::kGoConnRead)) {
    std::fprintf(stderr, "uprobe_floor: %s: crypto/tls not found%s%s\n", path.c_str(),
                 go.is_go ? ": " : " (not a Go executable)", go.error.c_str());
    return 1;
  }
  const elf::GoFunction& wr = go.functions.at(elf::kGoConnWrite);
  const elf::GoFunction& rd = go.functions.at(elf::kGoConnRead);
  // The RETs first, as the agent attaches them: an entry without its return is never seen.
  std::vector<Floor> floors = {{"floor_go_ret", wr.returns},
                               {"floor_go_write", {wr.offset}},
                               {"floor_go_read", {rd.offset}}};
  floors[0].offsets.insert(floors[0].offsets.end(), rd.returns.begin(), rd.returns.end());
  if (const auto close = go.functions.find(elf::kGoConnClose); close != go.functions.end())
    floors.push_back({"floor_go_close", {close->second.offset}});
  const bool multi = allow_multi && agentwall::capture::kernel_has_uprobe_multi();
  std::vector<int> fds;
  for (Floor& f : floors) {
    f.prog = agentwall::capture::load_empty_uprobe_program(f.name, multi);
    if (f.prog < 0) {
      std::fprintf(stderr, "uprobe_floor: loading %s: %s\n", f.name, std::strerror(-f.prog));
      return 1;
    }
    if (multi) {
      const int link = agentwall::capture::create_uprobe_multi(f.prog, path, f.offsets);
      if (link < 0) {
        std::fprintf(stderr, "uprobe_floor: attaching %s (uprobe_multi): %s\n", f.name,
                     std::strerror(-link));
        return 1;
      }
      fds.push_back(link);
      continue;
    }
    for (const uint64_t off : f.offsets) {
      const int fd = attach(f.prog, path, off, false);
      if (fd < 0) {
        std::fprintf(stderr, "uprobe_floor: attaching %s at %#llx: %s\n", f.name,
                     static_cast<unsigned long long>(off), std::strerror(errno));
        return 1;
      }
      fds.push_back(fd);
    }
  }
  std::printf(
      "{\"ready\":true,\"locate_ms\":%.1f,\"uprobe_multi\":%s,\"write_returns\":%zu,"
      "\"read_returns\":%zu,\"from_pclntab\":%s}\n",
      locate_ms, multi ? "true" : "false", wr.returns.size(), rd.returns.size(),
      rd.from_pclntab ? "true" : "false");
  return wait_and_report(floors, fds);
}

int aead(const std::string& path) {
  const auto t0 = std::chrono::steady_clock::now();
  const agentwall::elf::AeadSignatureLookup sig = agentwall::elf::find_aead_by_signature(path);
  const double locate_ms = ms_since(t0);
  if (!sig.found()) {
    std::fprintf(stderr, "uprobe_floor: %s: not located: %s%s\n", path.c_str(), sig.detail.c_str(),
                 sig.error.c_str());
    return 1;
  }
  std::vector<Floor> floors = {{"floor_seal", {sig.seal_offset}},
                               {"floor_open_exit", {sig.open_offset}},
                               {"floor_open", {sig.open_offset}}};
  std::vector<int> fds;
  for (Floor& f : floors) {
    f.prog = agentwall::capture::load_empty_uprobe_program(f.name, false);
    if (f.prog < 0) {
      std::fprintf(stderr, "uprobe_floor: loading %s: %s\n", f.name, std::strerror(-f.prog));
      return 1;
    }
    const bool ret = std::strcmp(f.name, "floor_open_exit") == 0;
    const int fd = attach(f.prog, path, f.offsets[0], ret);
    if (fd < 0) {
      std::fprintf(stderr, "uprobe_floor: attaching %s: %s\n", f.name, std::strerror(errno));
      return 1;
    }
    fds.push_back(fd);
  }
  std::printf("{\"ready\":true,\"locate_ms\":%.1f}\n", locate_ms);
  return wait_and_report(floors, fds);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && argv[1][0] != '-') return boringssl(argv[1]);
  if (argc == 3 && std::strcmp(argv[1], "--go") == 0) return go_tls(argv[2], true);
  if (argc == 3 && std::strcmp(argv[1], "--go-perf") == 0) return go_tls(argv[2], false);
  if (argc == 3 && std::strcmp(argv[1], "--aead") == 0) return aead(argv[2]);
  std::fprintf(stderr,
               "usage: uprobe_floor EXECUTABLE | uprobe_floor --go[-perf] EXECUTABLE | "
               "uprobe_floor --aead EXECUTABLE\n");
  return 2;
}
