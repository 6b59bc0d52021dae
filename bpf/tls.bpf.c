// SPDX-License-Identifier: GPL-2.0
/*
 * TLS plaintext capture: uprobes on OpenSSL's SSL_write/SSL_write_ex/SSL_read/SSL_read_ex.
 *
 * Every call is captured at its return, when the number of bytes really moved is known:
 * the entry probe remembers the arguments per thread, the return probe copies
 * exactly what was written or read. A call that fails or would block moves nothing
 * and emits nothing, so a retried write is never captured twice.
 *
 * The socket fd is learned from the read/write/send/recv syscalls the thread makes
 * while inside the TLS call; the addresses come from that socket.
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
#define S_IFMT 00170000
#define S_IFSOCK 0140000
#define SSL_CTRL_SET_TLSEXT_HOSTNAME 55
#define SIGSTOP 19

/* Settings, filled in by userspace before load. */
const volatile u32 self_tgid = 0;               /* the agent itself: never captured */
const volatile u32 targ_tgid = 0;               /* capture only this process; 0 = all */
const volatile u32 max_capture_bytes = 1 << 20; /* per call; the rest is marked truncated */

/*
 * Enforcement gate, set by userspace at run time. A write is held (copied at its entry, the
 * process stopped until userspace decides) only when the gate is on, the process is gated
 * (by pid or by cgroup) and its connection is (any host, or its SNI is in gate_hosts).
 * Nothing else is ever stopped.
 */
volatile u32 gate_enabled = 0;
volatile u32 gate_any_host = 0;
volatile u32 gate_any_process = 0;

struct call_args {
  u64 ssl;
  u64 buf;
  u64 ex_len_ptr; /* size_t* of the _ex forms */
  u64 len;        /* Go: the length of b, a bound on what a return may report */
  s32 fd;         /* learned from syscalls inside the call */
  u8 func;
  u8 dir;
  u8 held; /* copied and stopped at entry: the return only advances the stream */
  u8 reserved;
};

struct conn_key {
  u32 tgid;
  u32 reserved;
  u64 ssl;
};

struct conn_state {
  u64 conn_id;
  u64 off[2]; /* bytes seen per direction */
  s32 fd;
  u32 host_gated; /* its SNI is in gate_hosts */
  struct aw_endpoint local;
  struct aw_endpoint peer;
};

struct {
  __uint(type, BPF_MAP_TYPE_RINGBUF);
  __uint(max_entries, 16 << 20); /* resized by userspace before load */
} data_rb SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, u64); /* pid_tgid */
  __type(value, struct call_args);
} active_calls SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 65536);
  __type(key, struct conn_key);
  __type(value, struct conn_state);
} conns SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, AW_CNT_MAX);
  __type(key, u32);
  __type(value, u64);
} counters SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 4096);
  __type(key, u32); /* tgid */
  __type(value, u32);
} gate_pids SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, u64); /* cgroup v2 id */
  __type(value, u32);
} gate_cgroups SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 1024);
  __type(key, u64); /* aw_host_hash() of the SNI, lower case */
  __type(value, u32);
} gate_hosts SEC(".maps");

/* Holds issued per process: userspace resumes a process only once it has decided every
 * hold of it (two threads may be held at once, and SIGCONT resumes them all). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, u32); /* tgid */
  __type(value, u64);
} holds_issued SEC(".maps");

/* Next connection id; the CPU number is mixed in so no atomic is needed. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, u64);
} conn_seq SEC(".maps");

/* Scratch for building one chunk: too big for the BPF stack. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, u32);
  __type(value, struct aw_tls_data);
} scratch SEC(".maps");

static __always_inline void count(u32 slot, u64 n) {
  u64* v = bpf_map_lookup_elem(&counters, &slot);
  if (v) *v += n;
}

static __always_inline bool skip_process(u32 tgid) {
  if (tgid == self_tgid) return true;
  if (targ_tgid && tgid != targ_tgid) return true;
  return false;
}

static __always_inline u64 proc_start_ns(void) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  return BPF_CORE_READ(task, group_leader, start_boottime);
}

static __always_inline u64 next_conn_id(void) {
  u32 zero = 0;
  u64* seq = bpf_map_lookup_elem(&conn_seq, &zero);
  if (!seq) return 0;
  *seq += 1;
  /* low 8 bits: CPU; the rest: per-CPU sequence. Unique while the agent runs. */
  return (*seq << 8) | (bpf_get_smp_processor_id() & 0xff);
}

static __always_inline struct conn_state* conn_lookup_or_create(u32 tgid, u64 ssl) {
  struct conn_key key = {.tgid = tgid, .ssl = ssl};
  struct conn_state* st = bpf_map_lookup_elem(&conns, &key);
  if (st) return st;
  struct conn_state fresh = {.conn_id = next_conn_id(), .fd = -1};
  bpf_map_update_elem(&conns, &key, &fresh, BPF_NOEXIST);
  return bpf_map_lookup_elem(&conns, &key);
}

/* The socket behind `fd` of the current process; NULL when it is not one (a BIO on a pipe or
 * a file). */
static __always_inline struct sock* socket_of_fd(s32 fd) {
  struct task_struct* task = (struct task_struct*)bpf_get_current_task();
  struct fdtable* fdt = BPF_CORE_READ(task, files, fdt);
  if (!fdt || fd < 0) return NULL;
  if ((u32)fd >= BPF_CORE_READ(fdt, max_fds)) return NULL;
  struct file** fds = BPF_CORE_READ(fdt, fd);
  struct file* file = NULL;
  bpf_core_read(&file, sizeof(file), &fds[fd]);
  if (!file) return NULL;
  umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
  if ((mode & S_IFMT) != S_IFSOCK) return NULL;
  struct socket* sock = BPF_CORE_READ(file, private_data);
  return BPF_CORE_READ(sock, sk);
}

/* Reads the local and peer address of socket `fd` of the current process. */
static __always_inline void resolve_socket(struct conn_state* st, s32 fd) {
  struct sock* sk = socket_of_fd(fd);
  if (!sk) return;
  u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);
  st->local.family = family;
  st->peer.family = family;
  if (family == AF_INET) {
    u32 laddr = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
    u32 raddr = BPF_CORE_READ(sk, __sk_common.skc_daddr);
    __builtin_memcpy(st->local.addr, &laddr, 4);
    __builtin_memcpy(st->peer.addr, &raddr, 4);
  } else if (family == AF_INET6) {
    BPF_CORE_READ_INTO(&st->local.addr, sk, __sk_common.skc_v6_rcv_saddr);
    BPF_CORE_READ_INTO(&st->peer.addr, sk, __sk_common.skc_v6_daddr);
  }
  if (family == AF_INET || family == AF_INET6) {
    st->local.port = BPF_CORE_READ(sk, __sk_common.skc_num);
    st->peer.port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
  }
}

static __always_inline bool process_gated(u32 tgid) {
  if (gate_any_process) return true;
  if (bpf_map_lookup_elem(&gate_pids, &tgid)) return true;
  u64 cg = bpf_get_current_cgroup_id();
  return bpf_map_lookup_elem(&gate_cgroups, &cg) != NULL;
}

static int hold_write(struct pt_regs* ctx, struct call_args* a, u64 len);

/*
 * Waking the reader for every chunk costs the traced thread an inter-processor interrupt,
 * which under virtualisation is several microseconds: more than the copy itself. The
 * reader polls every few milliseconds instead, and is woken only when the ring fills
 * past a quarter, long before anything could be lost.
 */
static __always_inline u64 wakeup_flags(void) {
  u64 pending = bpf_ringbuf_query(&data_rb, BPF_RB_AVAIL_DATA);
  u64 size = bpf_ringbuf_query(&data_rb, BPF_RB_RING_SIZE);
  return pending > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

struct emit_ctx {
  struct aw_tls_data* ev;
  bool truncated;
  u32 flags; /* added to every chunk */
  u64 buf;
  u32 to_copy;  /* bytes to capture: min(call_len, cap) */
  u64 base_off; /* stream offset of the call's first byte */
};

static __always_inline void count_chunk(bool sent, u64 len) {
  count(sent ? AW_CNT_CHUNKS : AW_CNT_RB_DROP_CHUNKS, 1);
  count(sent ? AW_CNT_BYTES : AW_CNT_RB_DROP_BYTES, len);
}

static __always_inline u32 read_chunk(void* dst, u32 len, u64 src, u32 flags) {
  if (bpf_probe_read_user(dst, len, (void*)src) != 0) {
    /* The call succeeded, so the memory was there; it can still be paged out. */
    count(AW_CNT_READ_FAULTS, 1);
    return flags | AW_F_READ_FAULT;
  }
  return flags;
}

static long emit_chunk(u32 i, void* data) {
  struct emit_ctx* c = data;
  struct aw_tls_data* ev = c->ev;
  u64 off = (u64)i * AW_CHUNK_MAX;
  if (off >= c->to_copy) return 1; /* done */
  /* 64-bit arithmetic with an explicit bound: the verifier must see 0 <= len <= CHUNK. */
  u64 len = c->to_copy - off;
  if (len > AW_CHUNK_MAX) len = AW_CHUNK_MAX;
  asm volatile("%[len] &= 0x7fff" : [len] "+r"(len));
  if (len > AW_CHUNK_MAX) return 1;
  u32 flags = c->flags | (c->truncated ? AW_F_TRUNCATED : 0);
  if (off + len >= c->to_copy) flags |= AW_F_LAST;
  ev->call_off = off;
  ev->stream_off = c->base_off + off;
  ev->len = len;

  if (len == AW_CHUNK_MAX) {
    /* A full chunk is read straight into the ring: one copy instead of two. */
    struct aw_tls_data* out = bpf_ringbuf_reserve(&data_rb, sizeof(*out), 0);
    if (!out) {
      count_chunk(false, len);
      return 0;
    }
    __builtin_memcpy(out, ev, AW_TLS_DATA_HDR_LEN);
    out->flags = read_chunk(out->data, AW_CHUNK_MAX, c->buf + off, flags);
    bpf_ringbuf_submit(out, wakeup_flags());
    count_chunk(true, len);
    return 0;
  }
  /* A partial chunk goes through the scratch buffer, so the ring holds only its bytes. */
  ev->flags = read_chunk(ev->data, len, c->buf + off, flags);
  count_chunk(bpf_ringbuf_output(&data_rb, ev, AW_TLS_DATA_HDR_LEN + len, wakeup_flags()) == 0,
              len);
  return 0;
}

/*
 * Copies `call_len` bytes of the call's buffer to the ring (at most the cap) at the
 * connection's current offset, with `flags` on every chunk. Returns false when the scratch
 * buffer is missing.
 */
static __always_inline bool emit_call(struct call_args* a, struct conn_state* st, u64 call_len64,
                                      u32 flags) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  if (a->fd >= 0 && a->fd != st->fd) {
    st->fd = a->fd;
    resolve_socket(st, a->fd);
  }
  u32 zero = 0;
  struct aw_tls_data* ev = bpf_map_lookup_elem(&scratch, &zero);
  if (!ev) return false;
  u32 call_len = (u32)call_len64;
  u32 to_copy = call_len;
  bool truncated = false;
  if (to_copy > max_capture_bytes) {
    to_copy = max_capture_bytes;
    truncated = true;
    count(AW_CNT_TRUNC_CALLS, 1);
    count(AW_CNT_TRUNC_BYTES, call_len - to_copy);
  }
  ev->kind = AW_EV_TLS_DATA;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  ev->proc_start_ns = proc_start_ns();
  ev->cgroup_id = bpf_get_current_cgroup_id();
  ev->conn_id = st->conn_id;
  ev->ssl = a->ssl;
  ev->pid = pid_tgid >> 32;
  ev->tid = (u32)pid_tgid;
  ev->uid = (u32)bpf_get_current_uid_gid();
  ev->fd = st->fd;
  ev->call_len = call_len;
  ev->dir = a->dir;
  ev->func = a->func;
  ev->reserved = 0;
  ev->local = st->local;
  ev->peer = st->peer;
  bpf_get_current_comm(&ev->comm, sizeof(ev->comm));

  u8 d = a->dir & 1;
  struct emit_ctx c = {.ev = ev,
                       .truncated = truncated,
                       .flags = flags,
                       .buf = a->buf,
                       .to_copy = to_copy,
                       .base_off = st->off[d]};
  /* truncated and dropped bytes still advance: gaps stay visible. A held write advances
   * at its return, by what it really wrote. */
  if (!(flags & AW_F_HELD)) st->off[d] += call_len;
  u32 nr = (to_copy + AW_CHUNK_MAX - 1) / AW_CHUNK_MAX;
  bpf_loop(nr, emit_chunk, &c, 0);
  return true;
}

/*
 * A gated write: its bytes go to the ring now, before the call runs, then a hold event, then
 * the process is stopped (SIGSTOP takes effect before the thread returns to user mode, so
 * SSL_write does not run). Returns 0 when the process was stopped.
 */
static int hold_write(struct pt_regs* ctx, struct call_args* a, u64 len) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  struct conn_state* st = conn_lookup_or_create(tgid, a->ssl);
  if (!st) return -1;
  if (!gate_any_host && !st->host_gated) return -1;
  if (len > 0xffffffffULL) len = 0xffffffffULL;
  /* The ring delivers records in the order they were reserved: the data first, then the
   * hold. Without the hold event userspace could not resume the process, so without it the
   * write is not held: its return captures it again at the same offset, and the stream
   * tracker skips what it already has. */
  u64 off = st->off[AW_DIR_OUT];
  if (!emit_call(a, st, len, AW_F_HELD)) return -1;
  struct aw_tls_hold* h = bpf_ringbuf_reserve(&data_rb, sizeof(*h), 0);
  if (!h) {
    count(AW_CNT_HOLD_DROPS, 1);
    return -1;
  }
  h->kind = AW_EV_TLS_HOLD;
  h->pid = tgid;
  h->tid = (u32)pid_tgid;
  h->ts_ns = bpf_ktime_get_boot_ns();
  h->proc_start_ns = proc_start_ns();
  h->conn_id = st->conn_id;
  h->ssl = a->ssl;
  h->buf = a->buf;
  h->sp = PT_REGS_SP(ctx);
  h->ip = PT_REGS_IP(ctx);
  h->stream_off = off;
  h->len = (u32)len;
  h->fd = st->fd;
  h->func = a->func;
  h->reserved[0] = h->reserved[1] = h->reserved[2] = 0;
  h->seq = 1;
  u64* issued = bpf_map_lookup_elem(&holds_issued, &tgid);
  if (issued) {
    h->seq = __sync_fetch_and_add(issued, 1) + 1;
  } else {
    u64 one = 1;
    if (bpf_map_update_elem(&holds_issued, &tgid, &one, BPF_NOEXIST) != 0) {
      issued = bpf_map_lookup_elem(&holds_issued, &tgid);
      if (issued) h->seq = __sync_fetch_and_add(issued, 1) + 1;
    }
  }
  bpf_ringbuf_submit(h, BPF_RB_FORCE_WAKEUP);
  count(AW_CNT_HOLDS, 1);
  bpf_send_signal(SIGSTOP);
  return 0;
}

static __always_inline bool nss_func(u8 func) {
  return func >= AW_FN_NSS_PR_WRITE && func <= AW_FN_NSS_PR_RECV;
}

/* `nspr`: the return of an NSPR call, whose entry kept nothing unless the descriptor was an
 * SSL one (most PR_Read/PR_Write calls are on files): no entry is the common case there. */
static __always_inline int exit_call(struct pt_regs* ctx, bool nspr) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  struct call_args* args = bpf_map_lookup_elem(&active_calls, &pid_tgid);
  if (nspr && (!args || !nss_func(args->func))) return 0;
  if (!args) {
    count(AW_CNT_NO_ENTRY, 1); /* attached while this call was in flight */
    return 0;
  }
  struct call_args a = *args;
  bpf_map_delete_elem(&active_calls, &pid_tgid);

  /* OpenSSL's four functions return int: only the low 32 bits of the register are theirs.
   * GnuTLS's return ssize_t: the bytes moved, or a negative error code. */
  int ret = (int)PT_REGS_RC(ctx);
  u64 moved = 0;
  if (a.func == AW_FN_GNUTLS_SEND || a.func == AW_FN_GNUTLS_RECV) {
    long r = (long)PT_REGS_RC(ctx);
    if (r <= 0) return 0;
    moved = (u64)r;
  } else if (a.func == AW_FN_SSL_WRITE || a.func == AW_FN_SSL_READ || nss_func(a.func)) {
    if (ret <= 0) return 0; /* error, would-block or close: nothing moved */
    moved = (u64)ret;
  } else {
    if (ret != 1 || !a.ex_len_ptr) return 0;
    if (bpf_probe_read_user(&moved, sizeof(moved), (void*)a.ex_len_ptr) != 0) return 0;
    if (moved == 0) return 0;
  }
  if (moved > 0xffffffffULL) moved = 0xffffffffULL;

  struct conn_state* st = conn_lookup_or_create(tgid, a.ssl);
  if (!st) return 0;
  u8 d = a.dir & 1;
  count(AW_CNT_CALLS, 1);
  if (a.held) {
    /* Its bytes went out at the entry; a call that wrote less (or nothing: blocked, or
     * retried later) advances by what it wrote, and the retry's copy overlaps. */
    st->off[d] += moved;
    return 0;
  }
  emit_call(&a, st, moved, 0);
  return 0;
}

static __always_inline int enter_call(struct pt_regs* ctx, u8 func, u8 dir, u64 ex_len_ptr) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  struct call_args args = {
      .ssl = PT_REGS_PARM1(ctx),
      .buf = PT_REGS_PARM2(ctx),
      .ex_len_ptr = ex_len_ptr,
      .fd = -1,
      .func = func,
      .dir = dir,
  };
  /* SSL_write's and NSPR's lengths are ints, SSL_write_ex's a size_t. */
  u64 len = PT_REGS_PARM3(ctx);
  const bool nss_write = func == AW_FN_NSS_PR_WRITE || func == AW_FN_NSS_PR_SEND;
  if (func == AW_FN_SSL_WRITE || nss_write) len = (s32)len > 0 ? (u32)len : 0;
  /* Writes are held. The enforcer fails OpenSSL's and GnuTLS's itself (it rewrites their
   * arguments or return value); an NSS write it lets fail on a socket it shut down, so that
   * NSPR sets its error as for any broken connection. Go's have programs of their own. */
  const bool holdable = func == AW_FN_SSL_WRITE || func == AW_FN_SSL_WRITE_EX ||
                        func == AW_FN_GNUTLS_SEND || nss_write;
  if (holdable && gate_enabled && len && process_gated(tgid))
    args.held = hold_write(ctx, &args, len) == 0;
  /* Overwrites whatever a thread killed mid-call left behind. */
  bpf_map_update_elem(&active_calls, &pid_tgid, &args, BPF_ANY);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_enter) {
  return enter_call(ctx, AW_FN_SSL_WRITE, AW_DIR_OUT, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_write_ex_enter, void* ssl, const void* buf, size_t num, size_t* written) {
  return enter_call(ctx, AW_FN_SSL_WRITE_EX, AW_DIR_OUT, (u64)written);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_enter) {
  return enter_call(ctx, AW_FN_SSL_READ, AW_DIR_IN, 0);
}

SEC("uprobe")
int BPF_KPROBE(ssl_read_ex_enter, void* ssl, void* buf, size_t num, size_t* readbytes) {
  return enter_call(ctx, AW_FN_SSL_READ_EX, AW_DIR_IN, (u64)readbytes);
}

SEC("uretprobe")
int BPF_KRETPROBE(ssl_call_exit) {
  return exit_call(ctx, false);
}

/* SSL_free(ssl), gnutls_deinit(session) and Go's (*Conn).Close all end a connection. */
static __always_inline int close_conn(void* ssl) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  struct conn_key key = {.tgid = tgid, .ssl = (u64)ssl};
  struct conn_state* st = bpf_map_lookup_elem(&conns, &key);
  if (!st) return 0; /* never carried data: nothing to close */
  struct aw_tls_close* ev = bpf_ringbuf_reserve(&data_rb, sizeof(*ev), 0);
  if (ev) {
    ev->kind = AW_EV_TLS_CLOSE;
    ev->pid = tgid;
    ev->tid = (u32)pid_tgid;
    ev->reserved = 0;
    ev->ts_ns = bpf_ktime_get_boot_ns();
    ev->proc_start_ns = proc_start_ns();
    ev->conn_id = st->conn_id;
    ev->ssl = (u64)ssl;
    ev->bytes_out = st->off[AW_DIR_OUT];
    ev->bytes_in = st->off[AW_DIR_IN];
    bpf_ringbuf_submit(ev, 0);
  } else {
    count(AW_CNT_CTRL_DROPS, 1);
  }
  /* The SSL* can be reused by the next connection: it gets a new id. */
  bpf_map_delete_elem(&conns, &key);
  return 0;
}

/* The host name a client asked for, `len` bytes at `name` (or up to its NUL when len is 0). */
static __always_inline int emit_sni(void* ssl, const void* name, u64 len) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  /* A name is set before a connection's handshake. A handle that already carried data is
   * being reused for a new connection without the free the agent sees (OpenSSL's
   * SSL_clear; a located BoringSSL, whose SSL_free is not probed): the old one ends here,
   * so that the new one gets its own id, offsets and name. */
  struct conn_key key = {.tgid = tgid, .ssl = (u64)ssl};
  struct conn_state* old = bpf_map_lookup_elem(&conns, &key);
  if (old && (old->off[AW_DIR_OUT] || old->off[AW_DIR_IN])) close_conn(ssl);
  struct conn_state* st = conn_lookup_or_create(tgid, (u64)ssl);
  if (!st) return 0;
  struct aw_tls_sni* ev = bpf_ringbuf_reserve(&data_rb, sizeof(*ev), 0);
  if (!ev) {
    count(AW_CNT_CTRL_DROPS, 1);
    return 0;
  }
  ev->kind = AW_EV_TLS_SNI;
  ev->pid = tgid;
  ev->tid = (u32)pid_tgid;
  ev->reserved = 0;
  ev->ts_ns = bpf_ktime_get_boot_ns();
  ev->proc_start_ns = proc_start_ns();
  ev->conn_id = st->conn_id;
  ev->ssl = (u64)ssl;
  if (bpf_probe_read_user_str(ev->sni, sizeof(ev->sni), name) < 0) ev->sni[0] = 0;
  if (len && len < sizeof(ev->sni)) ev->sni[len] = 0; /* a counted name need not end in NUL */
  u64 h = AW_HOST_HASH_SEED;
  for (int i = 0; i < AW_SNI_MAX && ev->sni[i]; i++) h = aw_host_hash_step(h, ev->sni[i]);
  st->host_gated = bpf_map_lookup_elem(&gate_hosts, &h) != NULL;
  bpf_ringbuf_submit(ev, 0);
  return 0;
}

/* BPF_KPROBE works for uprobes too (libbpf 1.1 has no BPF_UPROBE).
 * SSL_set_tlsext_host_name() is a macro over SSL_ctrl(). */
SEC("uprobe")
int BPF_KPROBE(ssl_ctrl_enter, void* ssl, int cmd, long larg, void* parg) {
  if (cmd != SSL_CTRL_SET_TLSEXT_HOSTNAME || !parg) return 0;
  return emit_sni(ssl, parg, 0);
}

/* The host name a client asks for as a C string after the connection's handle: BoringSSL's
 * SSL_set_tlsext_host_name(ssl, name) (a function there, located by signature in a stripped
 * executable) and NSS's SSL_SetURL(fd, url). NULL clears the name: nothing to say. */
SEC("uprobe")
int BPF_KPROBE(sni_string_enter, void* conn, const char* name) {
  if (!name) return 0;
  return emit_sni(conn, name, 0);
}

/* GnuTLS: gnutls_record_send/recv(session, data, size) have SSL_write/SSL_read's shape. */
SEC("uprobe")
int BPF_KPROBE(gnutls_send_enter) {
  return enter_call(ctx, AW_FN_GNUTLS_SEND, AW_DIR_OUT, 0);
}

SEC("uprobe")
int BPF_KPROBE(gnutls_recv_enter) {
  return enter_call(ctx, AW_FN_GNUTLS_RECV, AW_DIR_IN, 0);
}

#define GNUTLS_NAME_DNS 1

SEC("uprobe")
int BPF_KPROBE(gnutls_sni_enter, void* session, int type, const void* name, size_t len) {
  if (type != GNUTLS_NAME_DNS || !name || !len) return 0;
  return emit_sni(session, name, len);
}

SEC("uprobe")
int BPF_KPROBE(ssl_free_enter, void* ssl) {
  return close_conn(ssl);
}

/*
 * ---- NSS ----
 * NSS applications move their plaintext with NSPR's PR_Write/PR_Read/PR_Send/PR_Recv
 * (libnspr4) on a PRFileDesc whose top layer is NSS's SSL layer; the same functions serve
 * files, pipes and plain sockets. A descriptor is taken for an SSL one when its top layer has
 * the method table and the layer identity of the SSL layer this process's SSL_ImportFD
 * (libssl3) returned: both are one per process (NSS registers its identity once, and every
 * SSL layer points at the same static method table). Read with plain user-memory reads of
 * NSPR's public structs (prio.h), whose layout NSPR 4 keeps.
 */
#define PR_DESC_LAYERED 4

struct nspr_fd { /* PRFileDesc */
  u64 methods;   /* const PRIOMethods*: its first member is PRDescType file_type */
  u64 secret;
  u64 lower;
  u64 higher;
  u64 dtor;
  s32 identity; /* PRDescIdentity */
};

struct nss_layer {
  u64 proc_start_ns; /* the process it was learned in (a reused pid is not taken for it) */
  u64 methods;
  s32 identity;
  u32 reserved;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, u32); /* tgid */
  __type(value, struct nss_layer);
} nss_layers SEC(".maps");

static __always_inline bool nss_ssl_fd(u32 tgid, u64 fd) {
  struct nss_layer* l = bpf_map_lookup_elem(&nss_layers, &tgid);
  if (!l || !fd) return false; /* the common case: a process that made no SSL socket */
  struct nspr_fd top;
  if (bpf_probe_read_user(&top, sizeof(top), (void*)fd) != 0) return false;
  return top.methods == l->methods && top.identity == l->identity &&
         l->proc_start_ns == proc_start_ns();
}

/* SSL_ImportFD(model, fd) pushes the SSL layer on top of fd and returns fd. */
SEC("uretprobe")
int BPF_KRETPROBE(nss_import_exit) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (skip_process(tgid)) return 0;
  u64 fd = PT_REGS_RC(ctx);
  if (!fd) return 0;
  struct nspr_fd top;
  if (bpf_probe_read_user(&top, sizeof(top), (void*)fd) != 0 || !top.methods) return 0;
  s32 file_type = 0;
  if (bpf_probe_read_user(&file_type, sizeof(file_type), (void*)top.methods) != 0) return 0;
  /* NSPR's own layer is identity 0 (PR_NSPR_IO_LAYER); the negative ones are reserved. */
  if (file_type != PR_DESC_LAYERED || top.identity <= 0) return 0;
  struct nss_layer l = {
      .proc_start_ns = proc_start_ns(), .methods = top.methods, .identity = top.identity};
  bpf_map_update_elem(&nss_layers, &tgid, &l, BPF_ANY);
  return 0;
}

static __always_inline int nss_enter(struct pt_regs* ctx, u8 func, u8 dir) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!nss_ssl_fd(tgid, PT_REGS_PARM1(ctx))) return 0;
  return enter_call(ctx, func, dir, 0);
}

/* PR_Write(fd, buf, amount), PR_Send(fd, buf, amount, flags, timeout) and their reads have
 * SSL_write/SSL_read's shape, with a PRInt32 length and result. */
SEC("uprobe")
int BPF_KPROBE(nss_write_enter) {
  return nss_enter(ctx, AW_FN_NSS_PR_WRITE, AW_DIR_OUT);
}

SEC("uprobe")
int BPF_KPROBE(nss_read_enter) {
  return nss_enter(ctx, AW_FN_NSS_PR_READ, AW_DIR_IN);
}

SEC("uprobe")
int BPF_KPROBE(nss_send_enter) {
  return nss_enter(ctx, AW_FN_NSS_PR_SEND, AW_DIR_OUT);
}

SEC("uprobe")
int BPF_KPROBE(nss_recv_enter) {
  return nss_enter(ctx, AW_FN_NSS_PR_RECV, AW_DIR_IN);
}

SEC("uretprobe")
int BPF_KRETPROBE(nss_call_exit) {
  return exit_call(ctx, true);
}

/* PR_Close(fd) of an SSL descriptor ends its connection. */
SEC("uprobe")
int BPF_KPROBE(nss_close_enter, void* fd) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (!nss_ssl_fd(tgid, (u64)fd)) return 0;
  return close_conn(fd);
}

/*
 * ---- Go's crypto/tls ----
 * (*Conn).Write(b []byte) and (*Conn).Read(b []byte) (int, error), Go 1.17 or later: the
 * register ABI passes the receiver in the first integer register, b's pointer and length in
 * the second and third, returns n in the first; the current goroutine (g) is in a register of
 * its own throughout (R14 on x86-64, R28 on arm64). Return probes break Go programs (the
 * runtime moves goroutine stacks, and the planted return address with them), so userspace
 * puts an ordinary uprobe on every RET instruction of the two functions instead. A goroutine
 * blocked in Read may resume on another thread: the call is remembered by goroutine.
 */
#if defined(__TARGET_ARCH_x86)
#define GO_ARG1(r) ((r)->ax)
#define GO_ARG2(r) ((r)->bx)
#define GO_ARG3(r) ((r)->cx)
#define GO_RET1(r) ((r)->ax)
#define GO_G(r) ((r)->r14)
#define GO_G_CORE(r) BPF_CORE_READ(r, r14)
#elif defined(__TARGET_ARCH_arm64)
#define GO_ARG1(r) ((r)->regs[0])
#define GO_ARG2(r) ((r)->regs[1])
#define GO_ARG3(r) ((r)->regs[2])
#define GO_RET1(r) ((r)->regs[0])
#define GO_G(r) ((r)->regs[28])
#define GO_G_CORE(r) BPF_CORE_READ(r, regs[28])
#endif

struct go_key {
  u32 tgid;
  u32 reserved;
  u64 g; /* the goroutine's runtime.g */
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct go_key);
  __type(value, struct call_args);
} go_calls SEC(".maps");

/* Set at the first Go call: from then on the fd learning at sys_enter also looks there. */
volatile u32 go_seen = 0;

static __always_inline int go_enter(struct pt_regs* ctx, u8 func, u8 dir) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (skip_process(tgid)) return 0;
  struct go_key key = {.tgid = tgid, .g = GO_G(ctx)};
  struct call_args args = {
      .ssl = GO_ARG1(ctx),
      .buf = GO_ARG2(ctx),
      .len = GO_ARG3(ctx),
      .fd = -1,
      .func = func,
      .dir = dir,
  };
  /* Write is held as SSL_write is. Blocked, the enforcer shuts the socket down before it
   * resumes (a Go error value cannot be made from outside), and Write fails by itself. An
   * entry seen twice (the stack grew: the prologue runs again) overwrites the first with the
   * moved b, and is not held a second time. */
  if (func == AW_FN_GO_WRITE && args.len && gate_enabled && process_gated(tgid)) {
    struct call_args* first = bpf_map_lookup_elem(&go_calls, &key);
    if (first && first->held && first->func == func && first->ssl == args.ssl &&
        first->len == args.len)
      args.held = 1;
    else
      args.held = hold_write(ctx, &args, args.len) == 0;
  }
  bpf_map_update_elem(&go_calls, &key, &args, BPF_ANY);
  if (!go_seen) go_seen = 1;
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(go_write_enter) {
  return go_enter(ctx, AW_FN_GO_WRITE, AW_DIR_OUT);
}

SEC("uprobe")
int BPF_KPROBE(go_read_enter) {
  return go_enter(ctx, AW_FN_GO_READ, AW_DIR_IN);
}

/* At each RET of Write or Read: n is in the first result register. */
SEC("uprobe")
int BPF_KPROBE(go_tls_ret) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (skip_process(tgid)) return 0;
  struct go_key key = {.tgid = tgid, .g = GO_G(ctx)};
  struct call_args* args = bpf_map_lookup_elem(&go_calls, &key);
  if (!args) {
    count(AW_CNT_NO_ENTRY, 1);
    return 0;
  }
  struct call_args a = *args;
  bpf_map_delete_elem(&go_calls, &key);
  long n = (long)GO_RET1(ctx);
  if (n <= 0) return 0;
  u64 moved = (u64)n;
  if (moved > a.len) moved = a.len; /* never more than b holds */
  if (moved > 0xffffffffULL) moved = 0xffffffffULL;
  struct conn_state* st = conn_lookup_or_create(tgid, a.ssl);
  if (!st) return 0;
  count(AW_CNT_CALLS, 1);
  if (a.held) {
    st->off[a.dir & 1] += moved; /* sent at the entry, as exit_call's */
    return 0;
  }
  emit_call(&a, st, moved, 0);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(go_close_enter) {
  return close_conn((void*)GO_ARG1(ctx));
}

/* Go's SNI. (*Conn).makeClientHello(c) calls hostnameInSNI(config.ServerName) on the same
 * goroutine and uses what it returns as the name it sends (an IP literal gives ""). The entry
 * of the first keeps c by goroutine; the entry of the second, with the name in its first two
 * registers (a string's pointer and length), emits it for c. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, struct go_key);
  __type(value, u64);
} go_hellos SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(go_hello_enter) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (skip_process(tgid)) return 0;
  struct go_key key = {.tgid = tgid, .g = GO_G(ctx)};
  u64 conn = GO_ARG1(ctx);
  bpf_map_update_elem(&go_hellos, &key, &conn, BPF_ANY);
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(go_sni_enter) {
  u32 tgid = bpf_get_current_pid_tgid() >> 32;
  if (skip_process(tgid)) return 0;
  struct go_key key = {.tgid = tgid, .g = GO_G(ctx)};
  u64* conn = bpf_map_lookup_elem(&go_hellos, &key);
  if (!conn) return 0; /* called from elsewhere */
  u64 c = *conn;
  u64 len = GO_ARG2(ctx);
  /* Not deleted here: the prologue runs again when the goroutine's stack grows. */
  if (!c || !len) return 0;
  return emit_sni((void*)c, (const void*)GO_ARG1(ctx), len);
}

/*
 * ---- rustls over aws-lc (aws-lc-rs), in a stripped Rust executable ----
 * rustls is sans-I/O: it encrypts a record with EVP_AEAD_CTX_seal(ctx, out, out_len,
 * max_out_len, nonce, nonce_len, in, in_len, ad, ad_len) in place, and decrypts one with
 * EVP_AEAD_CTX_open (same arguments) in place; the runtime (tokio-rustls) moves the records
 * through the socket. Arguments 7-10 are on the stack (System V: at sp+8 at the entry). The
 * associated data says the record: 5 bytes for TLS 1.3 (the record header; the real content
 * type is the plaintext's last non-zero byte), 13 for TLS 1.2 (the type is its 9th byte). Only
 * application data (23) is captured: handshake messages and alerts are not the program's.
 *
 * Which connection: a record is decrypted right after the thread read it from its socket
 * (tokio-rustls reads into rustls's buffer and processes it in the same poll), so an opened
 * record belongs to the socket the thread last read. A sealed record goes out later: the
 * thread writes the record buffers (5 bytes of header, 8 more of explicit nonce in TLS 1.2
 * GCM, before `in`) with writev. The first records of a key go to userspace unbound; the
 * write that carries one of their buffers ties the key to that socket (AW_EV_AEAD_BIND), and
 * from then on its records carry the connection directly. Connections are (process, fd),
 * ended by the fd's close.
 */
#define AEAD_CONN_TAG 0xaead000000000000ULL
#define TLS_APPLICATION_DATA 23
#define AEAD_MAX_RECORD (1 << 15) /* 16 KiB of plaintext plus expansion, with room */
#define AEAD_PENDING_MAX 4

struct aead_key {
  u32 tgid;
  u32 reserved;
  u64 ctx; /* EVP_AEAD_CTX* */
};

struct aead_binding {
  u64 conn_id; /* the connection it was tied to; 0 while unbound */
  u64 pending; /* bytes sealed while unbound */
  s32 fd;      /* -1 while unbound */
  u32 reserved;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, struct aead_key);
  __type(value, struct aead_binding);
} aead_keys SEC(".maps");

/* Per thread: the unbound key it sealed for last, and the first of those records. */
struct aead_pending {
  u64 ctx;
  u64 rec[AEAD_PENDING_MAX]; /* each record's `in` */
  u32 n;
  u32 reserved;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, u64); /* pid_tgid */
  __type(value, struct aead_pending);
} aead_pending SEC(".maps");

/* Per thread of an AEAD process: the fd of its last read-family system call. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, u64); /* pid_tgid */
  __type(value, s32);
} aead_last_read SEC(".maps");

/* Processes whose AEAD probes fired: their reads and closes are followed. */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 4096);
  __type(key, u32);   /* tgid */
  __type(value, u64); /* proc_start_ns */
} aead_procs SEC(".maps");

struct aead_open_args {
  u64 out;
  u64 out_len_ptr;
  u64 ad;
  u64 ad_len;
};

struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, 16384);
  __type(key, u64); /* pid_tgid */
  __type(value, struct aead_open_args);
} aead_opens SEC(".maps");

/* Set at the first AEAD probe: from then on sys_enter follows AEAD processes. */
volatile u32 aead_seen = 0;

struct aead_stack_args {
  u64 in;
  u64 in_len;
  u64 ad;
  u64 ad_len;
};

static __always_inline void aead_mark_process(u32 tgid) {
  if (!aead_seen) aead_seen = 1;
  u64 start = proc_start_ns();
  u64* known = bpf_map_lookup_elem(&aead_procs, &tgid);
  if (known && *known == start) return;
  bpf_map_update_elem(&aead_procs, &tgid, &start, BPF_ANY);
}

static __always_inline bool aead_process(u32 tgid) {
  u64* start = bpf_map_lookup_elem(&aead_procs, &tgid);
  return start && *start == proc_start_ns();
}

/* One record to seal: `sa` are seal's stack arguments (in, in_len, ad, ad_len). */
static __always_inline int aead_seal(u64 key_ptr, struct aead_stack_args sa) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  if (!sa.in || !sa.in_len || sa.in_len > AEAD_MAX_RECORD) return 0;
  u8 type = 0;
  u64 len = sa.in_len;
  if (sa.ad_len == 5) {
    /* rustls does not pad: the content type is the last byte. */
    if (bpf_probe_read_user(&type, 1, (void*)(sa.in + sa.in_len - 1)) != 0) return 0;
    len -= 1;
  } else if (sa.ad_len == 13) {
    if (bpf_probe_read_user(&type, 1, (void*)(sa.ad + 8)) != 0) return 0;
  } else {
    return 0; /* not a TLS record */
  }
  if (type != TLS_APPLICATION_DATA || !len) return 0;
  aead_mark_process(tgid);
  struct aead_key k = {.tgid = tgid, .ctx = key_ptr};
  struct call_args a = {.buf = sa.in, .fd = -1, .func = AW_FN_AEAD_SEAL, .dir = AW_DIR_OUT};
  struct aead_binding* b = bpf_map_lookup_elem(&aead_keys, &k);
  if (b && b->fd >= 0) {
    struct conn_key ck = {.tgid = tgid, .ssl = AEAD_CONN_TAG | (u32)b->fd};
    struct conn_state* st = bpf_map_lookup_elem(&conns, &ck);
    /* The same connection still: not closed since (a new one on the same fd has a new id). */
    if (st && st->conn_id == b->conn_id) {
      a.ssl = ck.ssl;
      a.fd = b->fd;
      count(AW_CNT_CALLS, 1);
      emit_call(&a, st, len, 0);
      return 0;
    }
  }
  if (!b || b->fd >= 0) {
    struct aead_binding fresh = {.fd = -1};
    bpf_map_update_elem(&aead_keys, &k, &fresh, BPF_ANY);
    b = bpf_map_lookup_elem(&aead_keys, &k);
    if (!b) return 0;
  }
  struct conn_state unbound = {.fd = -1};
  unbound.off[AW_DIR_OUT] = b->pending;
  a.ssl = key_ptr;
  count(AW_CNT_CALLS, 1);
  emit_call(&a, &unbound, len, AW_F_UNBOUND);
  b->pending += len;
  struct aead_pending* p = bpf_map_lookup_elem(&aead_pending, &pid_tgid);
  if (!p || p->ctx != key_ptr) {
    struct aead_pending fresh = {.ctx = key_ptr};
    bpf_map_update_elem(&aead_pending, &pid_tgid, &fresh, BPF_ANY);
    p = bpf_map_lookup_elem(&aead_pending, &pid_tgid);
    if (!p) return 0;
  }
  if (p->n < AEAD_PENDING_MAX) {
    p->rec[p->n & (AEAD_PENDING_MAX - 1)] = sa.in;
    p->n++;
  }
  return 0;
}

SEC("uprobe")
int BPF_KPROBE(aead_seal_enter) {
  struct aead_stack_args sa;
  if (bpf_probe_read_user(&sa, sizeof(sa), (void*)(PT_REGS_SP(ctx) + 8)) != 0) return 0;
  return aead_seal(PT_REGS_PARM1(ctx), sa);
}

/* EVP_AEAD_CTX_seal_scatter(ctx, out, out_tag, out_tag_len, max_out_tag_len, nonce, nonce_len,
 * in, in_len, extra_in, extra_in_len, ad, ad_len): rustls's TLS 1.2 records (aws-lc-rs's
 * TlsRecordSealingKey). Arguments 7-13 on the stack. */
SEC("uprobe")
int BPF_KPROBE(aead_seal_scatter_enter) {
  u64 st[7]; /* nonce_len, in, in_len, extra_in, extra_in_len, ad, ad_len */
  if (bpf_probe_read_user(st, sizeof(st), (void*)(PT_REGS_SP(ctx) + 8)) != 0) return 0;
  if (st[4]) return 0; /* extra input: not a record rustls seals */
  struct aead_stack_args sa = {.in = st[1], .in_len = st[2], .ad = st[5], .ad_len = st[6]};
  return aead_seal(PT_REGS_PARM1(ctx), sa);
}

SEC("uprobe")
int BPF_KPROBE(aead_open_enter) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  struct aead_stack_args sa;
  if (bpf_probe_read_user(&sa, sizeof(sa), (void*)(PT_REGS_SP(ctx) + 8)) != 0) return 0;
  if (sa.ad_len != 5 && sa.ad_len != 13) return 0;
  /* Handshake records are opened first: the process's reads are followed from then on. */
  aead_mark_process(tgid);
  struct aead_open_args o = {.out = PT_REGS_PARM2(ctx),
                             .out_len_ptr = PT_REGS_PARM3(ctx),
                             .ad = sa.ad,
                             .ad_len = sa.ad_len};
  bpf_map_update_elem(&aead_opens, &pid_tgid, &o, BPF_ANY);
  return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(aead_open_exit) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  if (skip_process(tgid)) return 0;
  struct aead_open_args* args = bpf_map_lookup_elem(&aead_opens, &pid_tgid);
  if (!args) return 0;
  struct aead_open_args o = *args;
  bpf_map_delete_elem(&aead_opens, &pid_tgid);
  if ((int)PT_REGS_RC(ctx) != 1) return 0; /* did not authenticate */
  u64 out_len = 0;
  if (bpf_probe_read_user(&out_len, sizeof(out_len), (void*)o.out_len_ptr) != 0) return 0;
  if (!out_len || out_len > AEAD_MAX_RECORD) return 0;
  u8 type = 0;
  u64 len = out_len;
  if (o.ad_len == 5) {
    /* TLS 1.3: content, type, then zero padding. The type is the last non-zero byte among
     * the last 16; more padding than that is not read (counted as not application data). */
    u8 tail[16] = {};
    u64 n = out_len < 16 ? out_len : 16;
    if (n == 0 || n > 16) return 0;
    if (bpf_probe_read_user(tail, n, (void*)(o.out + out_len - n)) != 0) return 0;
    u64 pad = 0;
    bool found = false;
    for (int i = 15; i >= 0; i--) {
      if ((u64)i >= n || found) continue;
      if (tail[i]) {
        type = tail[i];
        found = true;
      } else {
        pad++;
      }
    }
    if (!found) return 0;
    len = out_len - pad - 1;
  } else {
    if (bpf_probe_read_user(&type, 1, (void*)(o.ad + 8)) != 0) return 0;
  }
  if (type != TLS_APPLICATION_DATA || !len) return 0;
  s32* last = bpf_map_lookup_elem(&aead_last_read, &pid_tgid);
  if (!last || !socket_of_fd(*last)) {
    count(AW_CNT_AEAD_NO_SOCKET, 1);
    return 0;
  }
  s32 fd = *last;
  struct call_args a = {.ssl = AEAD_CONN_TAG | (u32)fd,
                        .buf = o.out,
                        .fd = fd,
                        .func = AW_FN_AEAD_OPEN,
                        .dir = AW_DIR_IN};
  struct conn_state* st = conn_lookup_or_create(tgid, a.ssl);
  if (!st) return 0;
  count(AW_CNT_CALLS, 1);
  emit_call(&a, st, len, 0);
  return 0;
}

struct user_iovec {
  u64 base;
  u64 len;
};

/* A write-family system call of a thread with unbound sealed records: when it writes one of
 * their buffers, the key is this socket's. */
static __always_inline void aead_try_bind(struct pt_regs* regs, long id, u64 pid_tgid) {
  struct aead_pending* p = bpf_map_lookup_elem(&aead_pending, &pid_tgid);
  if (!p) return;
  s32 fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
  u64 arg2 = PT_REGS_PARM2_CORE_SYSCALL(regs);
  struct user_iovec iov[AEAD_PENDING_MAX] = {};
  u64 iov_ptr = 0, iov_cnt = 0;
  bool vector = false;
#if defined(__TARGET_ARCH_x86)
  vector = id == 20 || id == 46;
  if (id == 20) iov_ptr = arg2, iov_cnt = PT_REGS_PARM3_CORE_SYSCALL(regs);
  if (id == 46) {
#else
  vector = id == 66 || id == 211;
  if (id == 66) iov_ptr = arg2, iov_cnt = PT_REGS_PARM3_CORE_SYSCALL(regs);
  if (id == 211) {
#endif
    struct user_msghdr mh;
    if (bpf_probe_read_user(&mh, sizeof(mh), (void*)arg2) != 0) return;
    iov_ptr = (u64)mh.msg_iov;
    iov_cnt = mh.msg_iovlen;
  }
  if (vector) {
    if (iov_cnt > AEAD_PENDING_MAX) iov_cnt = AEAD_PENDING_MAX;
    if (!iov_ptr || !iov_cnt) return;
    if (bpf_probe_read_user(iov, iov_cnt * sizeof(iov[0]), (void*)iov_ptr) != 0) return;
  } else {
    iov[0].base = arg2;
  }
  bool matched = false;
  for (int i = 0; i < AEAD_PENDING_MAX; i++) {
    for (int j = 0; j < AEAD_PENDING_MAX; j++) {
      u64 rec = p->rec[j];
      if (!rec || !iov[i].base) continue;
      if (iov[i].base == rec - 5 || iov[i].base == rec - 13) matched = true;
    }
  }
  if (!matched) return;
  u32 tgid = pid_tgid >> 32;
  struct aead_key k = {.tgid = tgid, .ctx = p->ctx};
  bpf_map_delete_elem(&aead_pending, &pid_tgid);
  struct aead_binding* b = bpf_map_lookup_elem(&aead_keys, &k);
  if (!b || b->fd >= 0) return;
  struct conn_state* st = conn_lookup_or_create(tgid, AEAD_CONN_TAG | (u32)fd);
  if (!st) return;
  if (st->fd != fd) {
    st->fd = fd;
    resolve_socket(st, fd);
  }
  struct aw_aead_bind* ev = bpf_ringbuf_reserve(&data_rb, sizeof(*ev), 0);
  if (ev) {
    ev->kind = AW_EV_AEAD_BIND;
    ev->pid = tgid;
    ev->tid = (u32)pid_tgid;
    ev->ts_ns = bpf_ktime_get_boot_ns();
    ev->proc_start_ns = proc_start_ns();
    ev->key = k.ctx;
    ev->conn_id = st->conn_id;
    ev->ssl = AEAD_CONN_TAG | (u32)fd;
    ev->base_off = st->off[AW_DIR_OUT];
    ev->fd = fd;
    ev->local = st->local;
    ev->peer = st->peer;
    bpf_ringbuf_submit(ev, 0);
  } else {
    count(AW_CNT_CTRL_DROPS, 1);
  }
  st->off[AW_DIR_OUT] += b->pending;
  b->fd = fd;
  b->conn_id = st->conn_id;
}

static __always_inline void aead_sys_enter(struct pt_regs* regs, long id) {
  u64 pid_tgid = bpf_get_current_pid_tgid();
  u32 tgid = pid_tgid >> 32;
  switch (id) {
#if defined(__TARGET_ARCH_x86)
    case 1:  /* write */
    case 20: /* writev */
    case 44: /* sendto */
    case 46: /* sendmsg */
#else
    case 64:
    case 66:
    case 206:
    case 211:
#endif
      aead_try_bind(regs, id, pid_tgid);
      return;
#if defined(__TARGET_ARCH_x86)
    case 0:  /* read */
    case 19: /* readv */
    case 45: /* recvfrom */
    case 47: /* recvmsg */
#else
    case 63:
    case 65:
    case 207:
    case 212:
#endif
    {
      if (!aead_process(tgid)) return;
      s32 fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
      bpf_map_update_elem(&aead_last_read, &pid_tgid, &fd, BPF_ANY);
      return;
    }
#if defined(__TARGET_ARCH_x86)
    case 3: /* close */
#else
    case 57:
#endif
    {
      if (!aead_process(tgid)) return;
      s32 fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
      close_conn((void*)(AEAD_CONN_TAG | (u32)fd));
      return;
    }
  }
}

/* The syscalls a TLS call makes on its socket; the first argument is the fd. */
static __always_inline bool is_socket_io(long id) {
  switch (id) {
#if defined(__TARGET_ARCH_x86)
    case 0:  /* read */
    case 1:  /* write */
    case 19: /* readv */
    case 20: /* writev */
    case 44: /* sendto */
    case 45: /* recvfrom */
    case 46: /* sendmsg */
    case 47: /* recvmsg */
#elif defined(__TARGET_ARCH_arm64)
    case 63:  /* read */
    case 64:  /* write */
    case 65:  /* readv */
    case 66:  /* writev */
    case 206: /* sendto */
    case 207: /* recvfrom */
    case 211: /* sendmsg */
    case 212: /* recvmsg */
#endif
      return true;
  }
  return false;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(tls_sys_enter, struct pt_regs* regs, long id) {
  if (aead_seen) aead_sys_enter(regs, id);
  if (!is_socket_io(id)) return 0;
  u64 pid_tgid = bpf_get_current_pid_tgid();
  struct call_args* args = bpf_map_lookup_elem(&active_calls, &pid_tgid);
  if (!args && go_seen) {
    /* A Go call is the goroutine's, whichever thread runs it; g stays in its register down to
     * the system call. */
    struct go_key key = {.tgid = pid_tgid >> 32, .g = GO_G_CORE(regs)};
    args = bpf_map_lookup_elem(&go_calls, &key);
  }
  if (!args) return 0; /* not inside a TLS call: the common case */
  if (args->fd >= 0) return 0;
  args->fd = (s32)PT_REGS_PARM1_CORE_SYSCALL(regs);
  return 0;
}
