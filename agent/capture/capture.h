// The capture stage: loads the BPF programs, attaches them to every TLS library and
// executable it can find (now and later), and turns ring buffer events into
// TlsChunk values for a CaptureSink.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/capture/chunk.h"

namespace agentwall::capture {

struct Options {
  uint32_t max_capture_bytes = 1 << 20;  // per call; the rest is marked truncated
  uint32_t ringbuf_bytes = 16 << 20;     // power of two, multiple of the page size
  std::optional<uint32_t> only_pid;      // capture this process only (filtered in the kernel)
  // Extra library or executable paths to attach to, beside those found on the host.
  std::vector<std::string> extra_targets;
  // MCP over stdio (bpf/stdio.bpf.c): asked at every exec, with what /proc says of the new
  // process, whether its stdin and stdout are to be captured; and by attach_existing() of
  // each process already running whose stdin and stdout are a pipe or socket (its session
  // is then joined mid-way: ProcessInfo::stdio_joined). A child of a watched process that
  // shares its stdin (a wrapper's: npx, sh -c, uvx) is watched without asking. Null: no
  // process is ever watched (the stdio program is loaded, never attached).
  std::function<bool(const ProcessInfo&)> stdio_candidate;
  // Plaintext HTTP on loopback (bpf/stdio.bpf.c): TCP connections that a process makes to
  // 127.0.0.0/8 or ::1 on one of these ports are captured from connect() to close(), at the
  // read/write/send/recv system calls. Empty: none is.
  std::vector<uint16_t> plaintext_ports;
  // Coverage view: every TCP connection a process makes is reported (CaptureSink::on_connect).
  bool connect_events = false;
};

enum class TargetKind { kLibrary, kExecutable };

struct AttachedTarget {
  std::string path;  // as the agent found it (host path, or /proc/PID/... for others)
  TargetKind kind = TargetKind::kLibrary;
  uint32_t dev = 0;  // kernel encoding
  uint64_t ino = 0;
  std::vector<std::string> functions;
  uint64_t attached_unix_ns = 0;
};

// What was seen and what was lost, since start.
struct Counters {
  uint64_t calls = 0;
  uint64_t chunks = 0;
  uint64_t bytes = 0;
  uint64_t ringbuf_drop_chunks = 0;
  uint64_t ringbuf_drop_bytes = 0;
  uint64_t truncated_calls = 0;
  uint64_t truncated_bytes = 0;
  uint64_t read_faults = 0;
  uint64_t ctrl_drops = 0;
  uint64_t no_entry = 0;
  uint64_t proc_event_drops = 0;
  uint64_t bpf_recursion_misses = 0;  // probe runs the kernel skipped (nested BPF)
  uint64_t attach_failures = 0;
  uint64_t attach_count = 0;
  double attach_latency_last_ms = 0;  // from exec/mmap in the kernel to probes attached
  double attach_latency_max_ms = 0;
  uint64_t holds = 0;       // gated writes stopped for a verdict
  uint64_t hold_drops = 0;  // gated writes let through unheld (ring buffer full)
  // MCP over stdio: processes watched now, and what their stdin/stdout carried and lost.
  uint64_t stdio_watched = 0;
  uint64_t stdio_calls = 0;
  uint64_t stdio_bytes = 0;
  uint64_t stdio_drop_chunks = 0;
  uint64_t stdio_drop_bytes = 0;
  uint64_t stdio_truncated_bytes = 0;
  uint64_t stdio_read_faults = 0;
  // Plaintext loopback connections: watched (ever, and now), refused for a full map, and
  // what they carried.
  uint64_t plain_connections = 0;
  uint64_t plain_open = 0;
  uint64_t plain_map_full = 0;
  uint64_t plain_calls = 0;
  uint64_t plain_bytes = 0;
};

class Capture {
 public:
  // Loads the BPF programs. Returns null and sets `error` to what is missing and how to
  // fix it (no BTF, no permission, ...).
  static std::unique_ptr<Capture> open(const Options& options, std::string& error);
  virtual ~Capture() = default;

  // Attaches to every TLS library on the host and in running processes (their own
  // roots included), and to executables with OpenSSL linked in.
  virtual void attach_existing() = 0;
  // Hands data ring events to `sink`; returns events handled or a negative errno.
  virtual int poll_data(int timeout_ms, CaptureSink& sink) = 0;
  // Handles process events (exec, exit, library mappings): attaches to what is new.
  virtual int poll_discovery(int timeout_ms) = 0;

  virtual Counters counters() const = 0;

  // The enforcement gate (bpf/tls.bpf.c): which writes are held for a verdict. Off until
  // set; nothing outside the gated processes is ever stopped. Return false (and log) on a
  // map update failure.
  virtual void set_gate(bool enabled, bool any_host, bool any_process) = 0;
  virtual bool gate_pid(uint32_t pid, bool on) = 0;
  virtual bool gate_cgroup(uint64_t cgroup_id, bool on) = 0;
  virtual bool gate_host(std::string_view host, bool on) = 0;
  // Holds the kernel has issued for `pid` since it was first held (0 when none).
  virtual uint64_t holds_issued(uint32_t pid) const = 0;
  // Called (on the discovery thread) for every process that starts, with its pid, before
  // its executable is attached: where a policy gates processes by what they are.
  virtual void set_exec_hook(std::function<void(uint32_t pid)> hook) = 0;
  // Stops capturing the stdio of `pid` (its first line was not an MCP `initialize`).
  virtual void unwatch_stdio(uint32_t pid) = 0;
  virtual std::vector<AttachedTarget> attached() const = 0;
};

std::string_view to_string(TargetKind k);

}  // namespace agentwall::capture
