// uprobe_multi links (Linux 6.6+): one link carries every offset of one BPF program in one
// file. The agent puts Go's probes (an entry and every RET of crypto/tls's functions) on them;
// tests/bench/uprobe_floor attaches its empty programs the same way.
//
// Go functions get a uprobe on every RET (15 for Write and Read in Go 1.19). As perf-event
// uprobes each is a link whose detach waits for a grace period under a global mutex (measured:
// an agent with 11 Go executables attached took 19 s to stop, against 1.7 s without them). A
// uprobe_multi link detaches all its offsets with one wait. libbpf 1.1 (Debian 12) has no API
// for it: the link is made with bpf(2) directly.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace agentwall::capture {

// BPF_TRACE_UPROBE_MULTI: the expected attach type a program must be loaded with to be
// attached by create_uprobe_multi (it can then not be attached as a perf uprobe).
constexpr uint32_t kAttachUprobeMulti = 48;

// A link running `prog_fd` at every one of `offsets` (file offsets) of `path`, in every
// process. Returns the link's fd (closing it detaches), or -errno.
int create_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets);

// Loads `return 0` as a kprobe-type program named `name` (nullptr: none), as an uprobe_multi
// program when `uprobe_multi`. Returns its fd, or -errno.
int load_empty_uprobe_program(const char* name, bool uprobe_multi);

// Whether this kernel makes uprobe_multi links (probed once per call, as libbpf does).
bool kernel_has_uprobe_multi();

}  // namespace agentwall::capture
