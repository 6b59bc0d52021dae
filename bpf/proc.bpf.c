// SPDX-License-Identifier: GPL-2.0
/*
 * Process discovery: exec and exit of processes, and mappings of TLS libraries.
 * Userspace uses these to attach the TLS probes to executables and libraries it has
 * not seen yet (new binaries, containers with their own root, libraries loaded late
 * with dlopen), and to forget processes that are gone.
 */
/* vmlinux.h first: the libbpf headers use its types. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "GPL";

const volatile u32 self_tgid = 0;

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 1 << 20);
} proc_rb SEC(".maps");

/* Library files userspace has already examined: their mappings are not reported again. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct aw_file_key);
  __type(value, u8);
} known_files SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, u64);
} proc_drops SEC(".maps");

static __always_inline void count_drop(void) {
  u32 zero = 0;
  u64* v = bpf_map_lookup_elem(&proc_drops, &zero);
  if (v) *v += 1;
}

static __always_inline u32 encode_dev(dev_t dev) {
  return (u32)dev;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(proc_exec, struct task_struct* task, pid_t old_pid, struct linux_binprm* bprm) {
  u32 tgid = BPF_CORE_READ(task, tgid);
  if (tgid == self_tgid) return 0;
  struct aw_proc_exec* ev = bpf_ringbuf_reserve(&proc_rb, sizeof(*ev), 0);
  if (!ev) {
    count_drop();
    return 0;
  }
  ev->kind = AW_EV_EXEC;
  ev->pid = tgid;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->cgroup_id = bpf_get_current_cgroup_id();
  struct inode* inode = BPF_CORE_READ(bprm, file, f_inode);
  ev->exe_ino = BPF_CORE_READ(inode, i_ino);
  ev->exe_dev = encode_dev(BPF_CORE_READ(inode, i_sb, s_dev));
  ev->ppid = BPF_CORE_READ(task, real_parent, tgid);
  ev->uid = (u32)bpf_get_current_uid_gid();
  ev->reserved = 0;
  bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
  const char* filename = BPF_CORE_READ(bprm, filename);
  if (bpf_probe_read_kernel_str(ev->filename, sizeof(ev->filename), filename) < 0)
    ev->filename[0] = 0;
  bpf_ringbuf_submit(ev, 0);
  return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(proc_exit, struct task_struct* task) {
  u32 tgid = BPF_CORE_READ(task, tgid);
  if (BPF_CORE_READ(task, pid) != tgid) return 0; /* a thread, not the process */
  if (tgid == self_tgid) return 0;
  struct aw_proc_exit* ev = bpf_ringbuf_reserve(&proc_rb, sizeof(*ev), 0);
  if (!ev) {
    count_drop();
    return 0;
  }
  ev->kind = AW_EV_EXIT;
  ev->pid = tgid;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  ev->proc_start_ns = BPF_CORE_READ(task, start_boottime);
  bpf_ringbuf_submit(ev, 0);
  return 0;
}

/* "libssl" in the first six bytes of a file name (NSS's libssl3 too), "libgnutl" or
 * "libnspr4" in the first eight, little-endian. */
#define LIBSSL_PREFIX 0x6c737362696cULL
#define LIBSSL_MASK 0xffffffffffffULL
#define LIBGNUTLS_PREFIX 0x6c74756e6762696cULL
#define LIBNSPR4_PREFIX 0x347270736e62696cULL

#if defined(__TARGET_ARCH_x86)
#define NR_MMAP 9
#elif defined(__TARGET_ARCH_arm64)
#define NR_MMAP 222
#endif

/*
 * Every file mapping, dlopen's included, starts with mmap(2) on an open fd. fentry and
 * kprobes are not available on every kernel (no trampolines, no kprobe PMU), the raw
 * sys_enter tracepoint is, so the file is found from the fd, before the mapping exists.
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(lib_mmap, struct pt_regs* regs, long id) {
  if (id != NR_MMAP) return 0;
  s32 fd = (s32)PT_REGS_PARM5_CORE_SYSCALL(regs);
  if (fd < 0) return 0; /* anonymous memory: the common case */
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (tgid == self_tgid) return 0;
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || (u32)fd >= BPF_CORE_READ(fdt, max_fds)) return 0;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* file = NULL;
  bpf_core_read(&file, sizeof(file), &fds[fd]);
  if (!file) return 0;
  const unsigned char* dname = BPF_CORE_READ(file, f_path.dentry, d_name.name);
  u64 prefix = 0;
  bpf_probe_read_kernel(&prefix, sizeof(prefix),
                        dname); /* reads past a short name stay in kernel memory */
  if ((prefix & LIBSSL_MASK) != LIBSSL_PREFIX && prefix != LIBGNUTLS_PREFIX &&
      prefix != LIBNSPR4_PREFIX)
    return 0; /* not a TLS library */
  struct inode* inode = BPF_CORE_READ(file, f_inode);
  struct aw_file_key key = {
      .ino = BPF_CORE_READ(inode, i_ino),
      .dev = encode_dev(BPF_CORE_READ(inode, i_sb, s_dev)),
  };
  if (bpf_map_lookup_elem(&known_files, &key)) return 0; /* attached or rejected already */
  struct aw_lib_map* ev = bpf_ringbuf_reserve(&proc_rb, sizeof(*ev), 0);
  if (!ev) {
    count_drop();
    return 0;
  }
  ev->kind = AW_EV_LIB_MAP;
  ev->pid = tgid;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->ino = key.ino;
  ev->dev = key.dev;
  ev->reserved = 0;
  if (bpf_probe_read_kernel_str(ev->name, sizeof(ev->name), dname) < 0) ev->name[0] = 0;
  bpf_ringbuf_submit(ev, 0);
  return 0;
}
