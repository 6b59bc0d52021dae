#include "agent/capture/uprobe_multi.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace agentwall::capture {

namespace {

struct LinkCreateUprobeMulti {  // union bpf_attr's link_create, uprobe_multi member
  uint32_t prog_fd = 0;
  uint32_t target_fd = 0;
  uint32_t attach_type = kAttachUprobeMulti;
  uint32_t flags = 0;
  uint64_t path = 0;
  uint64_t offsets = 0;
  uint64_t ref_ctr_offsets = 0;
  uint64_t cookies = 0;
  uint32_t cnt = 0;
  uint32_t multi_flags = 0;
  uint32_t pid = 0;
  uint32_t pad = 0;
};

}  // namespace

int create_uprobe_multi(int prog_fd, const std::string& path,
                        const std::vector<uint64_t>& offsets) {
  LinkCreateUprobeMulti attr;
  attr.prog_fd = static_cast<uint32_t>(prog_fd);
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.cnt = static_cast<uint32_t>(offsets.size());
  const long fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
  return fd < 0 ? -errno : static_cast<int>(fd);
}

int load_empty_uprobe_program(const char* name, bool uprobe_multi) {
  const bpf_insn insns[] = {{BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0},
                            {BPF_JMP | BPF_EXIT, 0, 0, 0, 0}};
  LIBBPF_OPTS(bpf_prog_load_opts, opts);
  if (uprobe_multi) opts.expected_attach_type = static_cast<bpf_attach_type>(kAttachUprobeMulti);
  return bpf_prog_load(BPF_PROG_TYPE_KPROBE, name, "GPL", insns, 2, &opts);
}

// As libbpf does: a program of that attach type loads, and a link to "/" (a directory) is
// refused with EBADF, not EINVAL.
bool kernel_has_uprobe_multi() {
  const int prog = load_empty_uprobe_program(nullptr, true);
  if (prog < 0) return false;
  const std::vector<uint64_t> offsets = {0};
  const int link = create_uprobe_multi(prog, "/", offsets);
  if (link >= 0) ::close(link);
  ::close(prog);
  return link == -EBADF;
}

}  // namespace agentwall::capture
