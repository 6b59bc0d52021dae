// SPDX-License-Identifier: GPL-2.0
/*
 * Plaintext the TLS probes cannot see, taken at the system calls that move it:
 *
 * - MCP over stdio: what a watched process reads from its stdin (fd 0) and writes to its
 *   stdout (fd 1), when they are pipes or Unix stream sockets (Node's child_process gives its
 *   children socketpairs, Python's subprocess pipes). Only processes in `stdio_pids` are looked
 *   at: userspace puts MCP server candidates there from exec events and takes them out when
 *   their first line is not a JSON-RPC `initialize`.
 *
 * - Plaintext TCP to loopback: a connection a process makes to 127.0.0.0/8 or ::1 on a port in
 *   `plain_ports` (Ollama's 11434, an MCP server over plain HTTP, ...) is watched from its
 *   connect() to its close(), and what the process sends and receives on it is copied. No
 *   other connection, and no other fd, is ever copied.
 *
 * While nothing is watched and no port is listed the program returns at its first
 * instructions.
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
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "events.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_UNIX 1
#define AF_INET 2
#define AF_INET6 10
#define SOCK_STREAM 1
#define SOCK_DGRAM 2
#define EINPROGRESS 115
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
/* Ports in plain_ports (written by userspace), and entries in sock_streams (kept by both). */
volatile u32 plain_port_count = 0;
volatile s32 sock_count = 0;
/* Coverage view: every TCP connect is reported (AW_EV_SOCK_OPEN with stream_id 0 when the
 * connection is not watched), so userspace knows who talks to which peer. */
volatile u32 connect_events = 0;

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

/* TCP ports (host order) whose loopback connections are watched. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 256);
  __type(key, u16);
  __type(value, u8);
} plain_ports SEC(".maps");

/* Watched loopback connections, by (process, fd): from connect() to close() or exit. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, struct pipe_key);
  __type(value, struct pipe_stream);
} sock_streams SEC(".maps");

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

#if defined(__TARGET_ARCH_x86)
#define NR_READ 0
#define NR_WRITE 1
#define NR_CLOSE 3
#define NR_READV 19
#define NR_WRITEV 20
#define NR_CONNECT 42
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47
#elif defined(__TARGET_ARCH_arm64)
#define NR_READ 63
#define NR_WRITE 64
#define NR_CLOSE 57
#define NR_READV 65
#define NR_WRITEV 66
#define NR_CONNECT 203
#define NR_SENDTO 206
#define NR_RECVFROM 207
#define NR_SENDMSG 211
#define NR_RECVMSG 212
#endif

/* The system calls that move a stream's bytes. */
static __always_inline bool data_call_of(long id, u8* call) {
  switch (id) {
    case NR_READ:
      *call = AW_PIPE_READ;
      return true;
    case NR_READV:
      *call = AW_PIPE_READV;
      return true;
    case NR_WRITE:
      *call = AW_PIPE_WRITE;
      return true;
    case NR_WRITEV:
      *call = AW_PIPE_WRITEV;
      return true;
    case NR_RECVFROM:
      *call = AW_PIPE_RECVFROM;
      return true;
    case NR_RECVMSG:
      *call = AW_PIPE_RECVMSG;
      return true;
    case NR_SENDTO:
      *call = AW_PIPE_SENDTO;
      return true;
    case NR_SENDMSG:
      *call = AW_PIPE_SENDMSG;
      return true;
  }
  return false;
}

static __always_inline bool is_receive(u8 call) {
  return call == AW_PIPE_READ || call == AW_PIPE_READV || call == AW_PIPE_RECVFROM ||
         call == AW_PIPE_RECVMSG;
}

static __always_inline struct file* file_of_fd(s32 fd) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || (u32)fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* file = NULL;
  bpf_core_read(&file, sizeof(file), &fds[fd]);
  return file;
}

/* A pipe, or a Unix stream socket (socketpair): what a parent hands a child for its stdio. */
static __always_inline bool is_stdio_channel(s32 fd) {
  struct file* file = file_of_fd(fd);
  if (!file) return false;
  umode_t mode = BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT;
  if (mode == S_IFIFO) return true;
  if (mode != S_IFSOCK) return false; /* a terminal or a file: not a transport */
  struct socket* sock = BPF_CORE_READ(file, private_data);
  if (!sock || BPF_CORE_READ(sock, type) != SOCK_STREAM) return false;
  return BPF_CORE_READ(sock, sk, __sk_common.skc_family) == AF_UNIX;
}

/* tp_btf hands a BTF-typed pointer: a plain (CO-RE relocated) load, no helper call. It runs
 * on every system call of the host. */
static __always_inline long syscall_nr(struct pt_regs* regs) {
#if defined(__TARGET_ARCH_x86)
  return regs->orig_ax;
#elif defined(__TARGET_ARCH_arm64)
  return regs->syscallno;
#endif
}

struct copy_ctx {
  struct aw_pipe_data* ev;
  u64 src;        /* user memory of this segment */
  u32 seg_len;    /* bytes of this segment to copy */
  u32 call_off;   /* offset of the segment in the call */
  u32 to_copy;    /* bytes of the whole call to copy */
  u32 flags;      /* AW_F_TRUNCATED when the call is cut */
  u64 base_off;   /* stream offset of the call's first byte */
  u32 bytes_slot; /* counter of bytes handed over: AW_STDIO_BYTES or AW_STDIO_SOCK_BYTES */
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
    count(c->bytes_slot, len);
  } else {
    count(AW_STDIO_RB_DROP_CHUNKS, 1);
    count(AW_STDIO_RB_DROP_BYTES, len);
  }
  return 0;
}

/* low 8 bits: CPU; top bit: not a TLS connection. Unique while the agent runs. */
static __always_inline u64 new_stream_id(void) {
  u32 zero = 0;
  u64* seq = bpf_map_lookup_elem(&stream_seq, &zero);
  if (!seq) return 0;
  *seq += 1;
  return AW_PIPE_STREAM_BIT | (*seq << 8) | (bpf_get_smp_processor_id() & 0xff);
}

/* TCP connections whose first write is still to come (coverage view, connect_events on):
 * that write is looked at for a TLS ClientHello, then the entry goes. An LRU: a process that
 * exits without closing leaves nothing behind for long. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 8192);
  __type(key, struct pipe_key);
  __type(value, u8);
} hello_socks SEC(".maps");

static __always_inline struct pipe_stream* stream_of(u32 tgid, s32 fd) {
  struct pipe_key key = {.tgid = tgid, .fd = fd};
  struct pipe_stream* st = bpf_map_lookup_elem(&pipe_streams, &key);
  if (st) return st;
  struct pipe_stream fresh = {.stream_id = new_stream_id()};
  if (!fresh.stream_id) return NULL;
  bpf_map_update_elem(&pipe_streams, &key, &fresh, BPF_NOEXIST);
  return bpf_map_lookup_elem(&pipe_streams, &key);
}

/* 127.0.0.0/8, ::1 or ::ffff:127.0.0.0/104. Addresses in network order. */
static __always_inline bool is_loopback(u16 family, const struct sock_common* skc) {
  if (family == AF_INET) return (BPF_CORE_READ(skc, skc_daddr) & 0xff) == 127;
  u32 a[4] = {};
  BPF_CORE_READ_INTO(&a, skc, skc_v6_daddr.in6_u.u6_addr32);
  if (a[0] || a[1]) return false;
  if (a[2] == 0) return a[3] == bpf_htonl(1);
  return a[2] == bpf_htonl(0xffff) && (a[3] & 0xff) == 127;
}

static __always_inline void endpoint_of(struct aw_endpoint* e, u16 family,
                                        const struct sock_common* skc, bool peer) {
  e->family = family;
  if (peer) {
    e->port = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
    if (family == AF_INET)
      BPF_CORE_READ_INTO((u32*)e->addr, skc, skc_daddr);
    else
      BPF_CORE_READ_INTO(&e->addr, skc, skc_v6_daddr.in6_u.u6_addr8);
  } else {
    e->port = BPF_CORE_READ(skc, skc_num);
    if (family == AF_INET)
      BPF_CORE_READ_INTO((u32*)e->addr, skc, skc_rcv_saddr);
    else
      BPF_CORE_READ_INTO(&e->addr, skc, skc_v6_rcv_saddr.in6_u.u6_addr8);
  }
}

/*
 * connect() returned 0 or EINPROGRESS (a non-blocking connect): the socket has its peer and
 * its local port. A TCP connection to loopback on a listed port becomes watched.
 */
static __always_inline void on_connect(struct pt_regs* regs, long ret, u32 tgid, u64 pid_tgid) {
  if (ret != 0 && ret != -EINPROGRESS) return;
  s32 fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
  struct file* file = file_of_fd(fd);
  if (!file || (BPF_CORE_READ(file, f_inode, i_mode) & S_IFMT) != S_IFSOCK) return;
  struct socket* sock = BPF_CORE_READ(file, private_data);
  if (!sock) return;
  short type = BPF_CORE_READ(sock, type);
  if (type != SOCK_STREAM && type != SOCK_DGRAM) return;
  struct sock* sk = BPF_CORE_READ(sock, sk);
  if (!sk) return;
  const struct sock_common* skc = &sk->__sk_common;
  u16 family = BPF_CORE_READ(skc, skc_family);
  if (family != AF_INET && family != AF_INET6) return;
  u16 port = bpf_ntohs(BPF_CORE_READ(skc, skc_dport));
  /* A UDP socket connected to port 53 is a resolver's (glibc, Go): its answers name the
   * addresses processes connect to next (coverage view). No other UDP socket is looked at. */
  bool dns = type == SOCK_DGRAM;
  if (dns && (port != 53 || !connect_events)) return;
  bool watch = dns || (plain_port_count && bpf_map_lookup_elem(&plain_ports, &port) &&
                       is_loopback(family, skc));
  if (!watch && !connect_events) return;
  if (!watch && type == SOCK_STREAM) {
    struct pipe_key hk = {.tgid = tgid, .fd = fd};
    u8 one = 1;
    bpf_map_update_elem(&hello_socks, &hk, &one, BPF_ANY);
  }

  struct pipe_stream fresh = {};
  if (watch) {
    struct pipe_key key = {.tgid = tgid, .fd = fd};
    fresh.stream_id = new_stream_id();
    if (!fresh.stream_id) return;
    bool existed = bpf_map_lookup_elem(&sock_streams, &key) != NULL; /* a close we missed */
    if (bpf_map_update_elem(&sock_streams, &key, &fresh, BPF_ANY) != 0) {
      count(AW_STDIO_SOCK_FULL, 1);
      fresh.stream_id = 0;
    } else {
      if (!existed) __sync_fetch_and_add(&sock_count, 1);
      count(AW_STDIO_SOCK_OPENS, 1);
    }
  }

  struct aw_sock_open* ev = bpf_ringbuf_reserve(&stdio_rb, sizeof(*ev), 0);
  if (!ev) {
    count(AW_STDIO_RB_DROP_CHUNKS, 1);
    return;
  }
  __builtin_memset(ev, 0, sizeof(*ev));
  ev->kind = AW_EV_SOCK_OPEN;
  ev->pid = tgid;
  ev->tid = (u32)pid_tgid;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->cgroup_id = bpf_get_current_cgroup_id();
  ev->stream_id = fresh.stream_id;
  ev->uid = (u32)bpf_get_current_uid_gid();
  ev->fd = fd;
  ev->flags = dns ? AW_SOCK_DNS : 0;
  endpoint_of(&ev->local, family, skc, false);
  endpoint_of(&ev->peer, family, skc, true);
  bpf_get_current_comm(&ev->comm, sizeof(ev->comm));
  bpf_ringbuf_submit(ev, 0);
}

/* close() of a watched connection: it is forgotten, and userspace told. */
static __always_inline void on_close(struct pt_regs* regs, long ret, u32 tgid, u64 pid_tgid) {
  if (ret != 0) return;
  struct pipe_key key = {.tgid = tgid, .fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs)};
  if (connect_events) bpf_map_delete_elem(&hello_socks, &key); /* closed before writing */
  struct pipe_stream* st = bpf_map_lookup_elem(&sock_streams, &key);
  if (!st) return;
  struct aw_tls_close* ev = bpf_ringbuf_reserve(&stdio_rb, sizeof(*ev), 0);
  if (ev) {
    ev->kind = AW_EV_SOCK_CLOSE;
    ev->pid = tgid;
    ev->tid = (u32)pid_tgid;
    ev->reserved = 0;
    ev->ts_ns = bpf_ktime_get_boot_ns();
    struct task_struct* task = (struct task_struct*)bpf_get_current_task();
    ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
    ev->conn_id = st->stream_id;
    ev->ssl = 0;
    ev->bytes_out = st->off[AW_DIR_OUT];
    ev->bytes_in = st->off[AW_DIR_IN];
    bpf_ringbuf_submit(ev, 0);
  } else {
    count(AW_STDIO_RB_DROP_CHUNKS, 1);
  }
  if (bpf_map_delete_elem(&sock_streams, &key) == 0) __sync_fetch_and_add(&sock_count, -1);
}

/* The first bytes a process writes on a new TCP connection, if they start like a TLS
 * ClientHello: up to AW_HELLO_MAX of them (of the first segment of a writev/sendmsg). */
static __always_inline void client_hello(struct pt_regs* regs, u8 call, long moved, u32 tgid,
                                         u64 pid_tgid, s32 fd) {
  u64 src = PT_REGS_PARM2_CORE_SYSCALL(regs);
  if (call == AW_PIPE_WRITEV || call == AW_PIPE_SENDMSG) {
    if (call == AW_PIPE_SENDMSG) {
      struct user_msghdr msg = {};
      if (bpf_probe_read_user(&msg, sizeof(msg), (void*)src) != 0) return;
      src = (u64)msg.msg_iov;
    }
    struct iovec iov = {};
    if (bpf_probe_read_user(&iov, sizeof(iov), (void*)src) != 0) return;
    src = (u64)iov.iov_base;
    if ((u64)moved > iov.iov_len) moved = (long)iov.iov_len;
  }
  u8 head[6];
  if (moved < (long)sizeof(head) || bpf_probe_read_user(head, sizeof(head), (void*)src) != 0)
    return;
  /* A handshake record (22), TLS major version 3, a ClientHello (handshake type 1). */
  if (head[0] != 22 || head[1] != 3 || head[5] != 1) return;
  struct aw_tls_hello* ev = bpf_ringbuf_reserve(&stdio_rb, sizeof(*ev), 0);
  if (!ev) {
    count(AW_STDIO_RB_DROP_CHUNKS, 1);
    return;
  }
  u64 len = (u64)moved;
  if (len > AW_HELLO_MAX) len = AW_HELLO_MAX;
  asm volatile("%[len] &= 0xfff" : [len] "+r"(len));
  if (len > AW_HELLO_MAX || bpf_probe_read_user(ev->data, len, (void*)src) != 0) len = 0;
  ev->kind = AW_EV_TLS_HELLO;
  ev->pid = tgid;
  ev->tid = (u32)pid_tgid;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->cgroup_id = bpf_get_current_cgroup_id();
  ev->fd = fd;
  ev->len = (u32)len;
  ev->reserved = 0;
  __builtin_memset(&ev->peer, 0, sizeof(ev->peer));
  struct file* file = file_of_fd(fd);
  struct socket* sock = file ? BPF_CORE_READ(file, private_data) : NULL;
  struct sock* sk = sock ? BPF_CORE_READ(sock, sk) : NULL;
  if (sk) {
    const struct sock_common* skc = &sk->__sk_common;
    u16 family = BPF_CORE_READ(skc, skc_family);
    if (family == AF_INET || family == AF_INET6) endpoint_of(&ev->peer, family, skc, true);
  }
  bpf_ringbuf_submit(ev, 0);
}

SEC("tp_btf/sys_exit")
int BPF_PROG(stdio_sys_exit, struct pt_regs* regs, long ret) {
  if (!watched_count && !plain_port_count && !connect_events)
    return 0; /* nothing watched: the common case */
  long nr = syscall_nr(regs);
  u8 call;
  if (!data_call_of(nr, &call)) {
    if ((nr == NR_CONNECT && (plain_port_count || connect_events)) ||
        (nr == NR_CLOSE && (sock_count > 0 || connect_events))) {
      u64 pid_tgid = bpf_get_current_pid_tgid();
      u32 tgid = pid_tgid >> 32;
      if (tgid == self_tgid) return 0;
      if (nr == NR_CONNECT)
        on_connect(regs, ret, tgid, pid_tgid);
      else
        on_close(regs, ret, tgid, pid_tgid);
    }
    return 0;
  }
  if (ret <= 0) return 0; /* error, would-block or end of file: nothing moved */
  s32 fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
  bool receive = is_receive(call);
  if (connect_events) {
    u64 pid_tgid = bpf_get_current_pid_tgid();
    struct pipe_key hk = {.tgid = pid_tgid >> 32, .fd = fd};
    if (bpf_map_lookup_elem(&hello_socks, &hk)) {
      /* The connection's first data call: the only one looked at (a server that speaks
       * first is not TLS). Watched connections never get here (not in hello_socks). */
      bpf_map_delete_elem(&hello_socks, &hk);
      if (!receive) client_hello(regs, call, ret, pid_tgid >> 32, pid_tgid, fd);
      return 0;
    }
  }
  /* stdio: reads of stdin and writes to stdout, by read/readv/write/writev. */
  bool stdio_call = call <= AW_PIPE_WRITEV && fd == (receive ? 0 : 1) && watched_count;
  if (!stdio_call && sock_count <= 0) return 0;
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (tgid == self_tgid) return 0;

  struct pipe_stream* st = NULL;
  u32 kind = AW_EV_PIPE_DATA;
  if (stdio_call && bpf_map_lookup_elem(&stdio_pids, &tgid) && is_stdio_channel(fd)) {
    st = stream_of(tgid, fd);
  } else if (sock_count > 0) {
    struct pipe_key key = {.tgid = tgid, .fd = fd};
    st = bpf_map_lookup_elem(&sock_streams, &key);
    kind = AW_EV_SOCK_DATA;
  }
  if (!st) return 0;

  u32 zero = 0;
  struct aw_pipe_data* ev = bpf_map_lookup_elem(&pipe_scratch, &zero);
  if (!ev) return 0;
  u64 moved = (u64)ret;
  if (moved > 0xffffffffULL) moved = 0xffffffffULL;
  u8 dir = receive ? AW_DIR_IN : AW_DIR_OUT;
  u32 to_copy = (u32)moved;
  u32 flags = 0;
  if (to_copy > max_capture_bytes) {
    to_copy = max_capture_bytes;
    flags = AW_F_TRUNCATED;
  }
  count(kind == AW_EV_SOCK_DATA ? AW_STDIO_SOCK_CALLS : AW_STDIO_CALLS, 1);
  ev->kind = kind;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  ev->proc_start_ns = BPF_CORE_READ(task, group_leader, start_boottime);
  ev->cgroup_id = bpf_get_current_cgroup_id();
  ev->stream_id = st->stream_id;
  ev->pid = tgid;
  ev->tid = (u32)pid_tgid;
  ev->uid = (u32)bpf_get_current_uid_gid();
  ev->fd = fd;
  ev->call_len = (u32)moved;
  ev->dir = dir;
  ev->call = call;
  ev->reserved = 0;
  bpf_get_current_comm(&ev->comm, sizeof(ev->comm));

  u64 base_off = st->off[dir & 1];
  st->off[dir & 1] += moved; /* what is cut or lost still advances: holes stay visible */
  struct copy_ctx c = {
      .ev = ev,
      .to_copy = to_copy,
      .flags = flags,
      .base_off = base_off,
      .bytes_slot = kind == AW_EV_SOCK_DATA ? AW_STDIO_SOCK_BYTES : AW_STDIO_BYTES};
  u64 buf = PT_REGS_PARM2_CORE_SYSCALL(regs);
  if (call == AW_PIPE_READ || call == AW_PIPE_WRITE || call == AW_PIPE_RECVFROM ||
      call == AW_PIPE_SENDTO) {
    c.src = buf;
    c.seg_len = to_copy;
    bpf_loop((to_copy + AW_CHUNK_MAX - 1) / AW_CHUNK_MAX, copy_chunk, &c, 0);
    if (flags) count(AW_STDIO_TRUNC_BYTES, moved - to_copy);
    return 0;
  }
  /* readv/writev (iovec array, count), sendmsg/recvmsg (the msghdr's). */
  u64 iov_base = buf;
  u64 iov_count = PT_REGS_PARM3_CORE_SYSCALL(regs);
  if (call == AW_PIPE_SENDMSG || call == AW_PIPE_RECVMSG) {
    struct user_msghdr msg = {};
    if (bpf_probe_read_user(&msg, sizeof(msg), (void*)buf) != 0) {
      count(AW_STDIO_READ_FAULTS, 1);
      count(AW_STDIO_TRUNC_BYTES, moved);
      return 0;
    }
    iov_base = (u64)msg.msg_iov;
    iov_count = msg.msg_iovlen;
  }
  /* The segments in order, up to what the call moved. */
  u32 done = 0;
  for (int i = 0; i < MAX_IOV; i++) {
    if (i >= iov_count || done >= to_copy) break;
    struct iovec iov = {};
    if (bpf_probe_read_user(&iov, sizeof(iov), (void*)(iov_base + i * sizeof(iov))) != 0) break;
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
