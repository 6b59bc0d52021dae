// SPDX-License-Identifier: GPL-2.0
/*
 * MCP over stdio: what a watched process reads from its stdin (fd 0) and writes to its
 * stdout (fd 1), when they are pipes or Unix stream sockets (Node's child_process gives its
 * children socketpairs, Python's subprocess pipes).
 *
 * Only processes in `stdio_pids` are looked at: userspace puts MCP server candidates there
 * from exec events and takes them out when their first line is not a JSON-RPC `initialize`.
 * No other process, and no other fd, is ever copied. While the map is empty
 * (`watched_count` is 0) the program returns at its first instruction.
 *
 * Everything happens at sys_exit, when the call has said how many bytes it really moved: the
 * syscall's number and arguments are still in its saved registers. (Remembering them at
 * sys_enter would miss the read a server is already blocked in when it becomes watched —
 * Python servers block in read(0) as soon as they start — and would cost a second program
 * on every system call of the host.)
 */
/* vmlinux.h first: the libbpf headers use its types. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_UNIX 1
#define SOCK_STREAM 1
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define S_IFIFO 0010000
/* readv/writev: iovecs looked at per call; the bytes of later ones are counted as cut. */
#define MAX_IOV 8

/* Settings, filled in by userspace before load. */
const volatile u32 self_tgid = 0;
const volatile u32 max_capture_bytes = 1 << 20; /* per call; the rest is marked truncated */

/* Processes in stdio_pids: written by userspace through the mapped .bss. */
volatile u32 watched_count = 0;

struct pipe_key {
  u32 tgid;
  s32 fd;
};

struct pipe_stream {
  u64 stream_id;
  u64 off[2]; /* bytes seen per direction; lost ones count too, so userspace sees holes */
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 4 << 20);
} stdio_rb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, u32); /* tgid */
  __type(value, u32);
} stdio_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct pipe_key);
  __type(value, struct pipe_stream);
} pipe_streams SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, AW_STDIO_MAX);
  __type(key, u32);
  __type(value, u64);
} stdio_counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, u64);
} stream_seq SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct aw_pipe_data);
} pipe_scratch SEC(".maps");

static __always_inline void count(u32 slot, u64 n) {
  u64* v = bpf_map_lookup_elem(&stdio_counters, &slot);
  if (v) *v += n;
}

/* The syscalls an MCP stdio transport uses, and the one fd each may concern. */
static __always_inline bool pipe_call_of(long id, u8* call, s32* fd) {
  switch (id) {
#if defined(__TARGET_ARCH_x86)
    case 0:
#elif defined(__TARGET_ARCH_arm64)
    case 63:
#endif
      *call = AW_PIPE_READ;
      *fd = 0;
      return true;
#if defined(__TARGET_ARCH_x86)
    case 19:
#elif defined(__TARGET_ARCH_arm64)
    case 65:
#endif
      *call = AW_PIPE_READV;
      *fd = 0;
      return true;
#if defined(__TARGET_ARCH_x86)
    case 1:
#elif defined(__TARGET_ARCH_arm64)
    case 64:
#endif
      *call = AW_PIPE_WRITE;
      *fd = 1;
      return true;
#if defined(__TARGET_ARCH_x86)
    case 20:
#elif defined(__TARGET_ARCH_arm64)
    case 66:
#endif
      *call = AW_PIPE_WRITEV;
      *fd = 1;
      return true;
  }
  return false;
}

/* A pipe, or a Unix stream socket (socketpair): what a parent hands a child for its stdio. */
static __always_inline bool is_stdio_channel(s32 fd) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || (u32)fd >= BPF_CORE_READ(fdt, max_fds)) return false;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* file = NULL;
  bpf_core_read(&file, sizeof(file), &fds[fd]);
  if (!file) return false;
  umode_t mode = BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
  if (mode == S_IFIFO) return true;
  if (mode != S_IFSOCK) return false; /* a terminal or a file: not a transport */
  struct socket* sock = BPF_CORE_READ(file, private_data);
  if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM) return false;
  return BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_UNIX;
}

static __always_inline long syscall_nr(struct pt_regs* regs) {
#if defined(__TARGET_ARCH_x86)
  return BPF_CORE_READ(regs, orig_ax);
#elif defined(__TARGET_ARCH_arm64)
  return BPF_CORE_READ(regs, syscallno);
#endif
}

struct copy_ctx {
  struct aw_pipe_data* ev;
  u64 src;      /* user memory of this segment */
  u32 seg_len;  /* bytes of this segment to copy */
  u32 call_off; /* offset of the segment in the call */
  u32 to_copy;  /* bytes of the whole call to copy */
  u32 flags;    /* AW_F_TRUNCATED when the call is cut */
  u64 base_off; /* stream offset of the call's first byte */
};

/* Wakes the reader only when the ring fills past a quarter (see tls.bpf.c). */
static __always_inline u64 wakeup_flags(void) {
  u64 pending = bpf_ringbuf_query(&stdio_rb, BPF_RB_AVAIL_DATA);
  u64 size = bpf_ringbuf_query(&stdio_rb, BPF_RB_RING_SIZE);
  return pending > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

static long copy_chunk(u32 i, void* data) {
  struct copy_ctx* c = data;
  struct aw_pipe_data* ev = c->ev;
  u64 off = (u64)i * AW_CHUNK_MAX;
  if (off >= c->seg_len) return 1; /* done */
  u64 len = c->seg_len - off;
  if (len > AW_CHUNK_MAX) len = AW_CHUNK_MAX;
  asm volatile("%[len] &= 0x7fff" : [len] "+r"(len));
  if (len > AW_CHUNK_MAX) return 1;
  u32 call_off = c->call_off + (u32)off;
  u32 flags = c->flags;
  if (call_off + len >= c->to_copy) flags |= AW_F_LAST;
  if (bpf_probe_read_user(ev->data, len, (void*)(c->src + off)) != 0) {
    flags |= AW_F_READ_FAULT;
    count(AW_STDIO_READ_FAULTS, 1);
  }
  ev->flags = flags;
  ev->call_off = call_off;
  ev->stream_off = c->base_off + call_off;
  ev->len = len;
  if (bpf_ringbuf_output(&stdio_rb, ev, AW_PIPE_DATA_HDR_LEN + len, wakeup_flags()) == 0) {
    count(AW_STDIO_BYTES, len);
  } else {
    count(AW_STDIO_RB_DROP_CHUNKS, 1);
    count(AW_STDIO_RB_DROP_BYTES, len);
  }
  return 0;
}

static __always_inline struct pipe_stream* stream_of(u32 tgid, s32 fd) {
  struct pipe_key key = {.tgid = tgid, .fd = fd};
  struct pipe_stream* st = bpf_map_lookup_elem(&pipe_streams, &key);
  if (st) return st;
  u32 zero = 0;
  u64* seq = bpf_map_lookup_elem(&stream_seq, &zero);
  if (!seq) return NULL;
  *seq += 1;
  /* low 8 bits: CPU; top bit: not a TLS connection. Unique while the agent runs. */
  struct pipe_stream fresh = {.stream_id = AW_PIPE_STREAM_BIT | (*seq << 8) |
                                           (bpf_get_smp_processor_id() & 0xff)};
  bpf_map_update_elem(&pipe_streams, &key, &fresh, BPF_NOEXIST);
  return bpf_map_lookup_elem(&pipe_streams, &key);
}

struct pipe_call {
  u64 buf;   /* the buffer, or the iovec array of readv/writev */
  u32 count; /* number of iovecs */
  s32 fd;
  u8 call; /* enum aw_pipe_call */
};

SEC("tp_btf/sys_exit")
int BPF_PROG(stdio_sys_exit, struct pt_regs* regs, long ret) {
  if (!watched_count) return 0; /* nothing watched: the common case */
  if (ret <= 0) return 0;       /* error, would-block or end of file: nothing moved */
  struct pipe_call a = {};
  s32 want_fd;
  if (!pipe_call_of(syscall_nr(regs), &a.call, &want_fd)) return 0;
  a.fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
  if (a.fd != want_fd) return 0; /* reads of stdin and writes to stdout only */
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (tgid == self_tgid || !bpf_map_lookup_elem(&stdio_pids, &tgid)) return 0;
  if (!is_stdio_channel(a.fd)) return 0;
  a.buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
  a.count = (u32)PT_REGS_PARM3_CORE_SYSCALL(regs);
  struct pipe_stream* st = stream_of(tgid, a.fd);
  if (!st) return 0;
  u32 zero = 0;
  struct aw_pipe_data* ev = bpf_map_lookup_elem(&pipe_scratch, &zero);
  if (!ev) return 0;
  u64 moved = (u64)ret;
  if (moved > 0xffffffffULL) moved = 0xffffffffULL;
  u8 dir = (a.call == AW_PIPE_READ || a.call == AW_PIPE_READV) ? AW_DIR_IN : AW_DIR_OUT;
  u32 to_copy = (u32)moved;
  u32 flags = 0;
  if (to_copy > max_capture_bytes) {
    to_copy = max_capture_bytes;
    flags = AW_F_TRUNCATED;
  }
  count(AW_STDIO_CALLS, 1);
  ev->kind = AW_EV_PIPE_DATA;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->cgroup_id = bpf_get_current_cgroup_id();
  ev->stream_id = st->stream_id;
  ev->pid = tgid;
  ev->tid = (u32)pid_tgid;
  ev->uid = (u32)bpf_get_current_uid_gid();
  ev->fd = a.fd;
  ev->call_len = (u32)moved;
  ev->dir = dir;
  ev->call = a.call;
  ev->reserved = 0;
  bpf_get_current_comm(&ev->comm, sizeof(ev->comm));

  u64 base_off = st->off[dir & 1];
  st->off[dir & 1] += moved; /* what is cut or lost still advances: holes stay visible */
  struct copy_ctx c = {.ev = ev, .to_copy = to_copy, .flags = flags, .base_off = base_off};
  if (a.call == AW_PIPE_READ || a.call == AW_PIPE_WRITE) {
    c.src = a.buf;
    c.seg_len = to_copy;
    bpf_loop((to_copy + AW_CHUNK_MAX - 1) / AW_CHUNK_MAX, copy_chunk, &c, 0);
    if (flags) count(AW_STDIO_TRUNC_BYTES, moved - to_copy);
    return 0;
  }
  /* readv/writev: the segments in order, up to what the call moved. */
  u32 done = 0;
  for (int i = 0; i < MAX_IOV; i++) {
    if (i >= a.count || done >= to_copy) break;
    struct iovec iov = {};
    if (bpf_probe_read_user(&iov, sizeof(iov), (void*)(a.buf + i * sizeof(iov))) != 0) break;
    u64 seg = iov.iov_len;
    if (seg > to_copy - done) seg = to_copy - done;
    c.src = (u64)iov.iov_base;
    c.seg_len = (u32)seg;
    c.call_off = done;
    if (seg) bpf_loop((seg + AW_CHUNK_MAX - 1) / AW_CHUNK_MAX, copy_chunk, &c, 0);
    done += (u32)seg;
  }
  /* More iovecs than looked at, or the cap: the rest is counted, the stream shows a hole. */
  if (done < moved) count(AW_STDIO_TRUNC_BYTES, moved - done);
  return 0;
}
