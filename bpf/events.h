/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The events the kernel side hands to userspace: the only file both sides include.
 * Layouts are fixed-size little-endian structs; userspace reads them straight from
 * the ring buffers and from recordings (docs/RECORD.md), so a change here is a
 * format change: bump AW_EVENTS_VERSION.
 */
#ifndef AGENTWALL_BPF_EVENTS_H
#define AGENTWALL_BPF_EVENTS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
typedef __u8 u8;
typedef __u16 u16;
typedef __u32 u32;
typedef __s32 s32;
typedef __u64 u64;
#endif

#define AW_EVENTS_VERSION 1

#define AW_COMM_LEN 16
/* Bytes of plaintext per chunk: one TLS record's worth. */
#define AW_CHUNK_MAX 16384
#define AW_SNI_MAX 256
#define AW_PATH_MAX 256
#define AW_LIBNAME_MAX 64

enum aw_event_kind {
  AW_EV_TLS_DATA = 1,   /* struct aw_tls_data */
  AW_EV_TLS_SNI = 2,    /* struct aw_tls_sni */
  AW_EV_TLS_CLOSE = 3,  /* struct aw_tls_close */
  AW_EV_TLS_HOLD = 4,   /* struct aw_tls_hold: a gated write is stopped, waiting for a verdict */
  AW_EV_PIPE_DATA = 5,  /* struct aw_pipe_data: stdin/stdout of a watched process (stdio.bpf.c) */
  AW_EV_SOCK_DATA = 6,  /* struct aw_pipe_data: a watched plaintext loopback TCP connection */
  AW_EV_SOCK_OPEN = 7,  /* struct aw_sock_open: such a connection was made (connect) */
  AW_EV_SOCK_CLOSE = 8, /* struct aw_tls_close: it was closed; conn_id is its stream_id */
  AW_EV_EXEC = 10,      /* struct aw_proc_exec */
  AW_EV_EXIT = 11,      /* struct aw_proc_exit */
  AW_EV_LIB_MAP = 12,   /* struct aw_lib_map */
  AW_EV_TLS_HELLO = 13, /* struct aw_tls_hello: the first bytes written on a new TCP connection */
  AW_EV_AEAD_BIND = 14, /* struct aw_aead_bind: an AEAD key's records go out on this socket */
};

enum aw_dir {
  AW_DIR_OUT = 0, /* the process sends (SSL_write) */
  AW_DIR_IN = 1,  /* the process receives (SSL_read) */
};

enum aw_func {
  AW_FN_SSL_WRITE = 0,
  AW_FN_SSL_WRITE_EX = 1,
  AW_FN_SSL_READ = 2,
  AW_FN_SSL_READ_EX = 3,
  AW_FN_GNUTLS_SEND = 4,  /* gnutls_record_send: returns ssize_t, the bytes sent */
  AW_FN_GNUTLS_RECV = 5,  /* gnutls_record_recv */
  AW_FN_GO_WRITE = 6,     /* Go's crypto/tls.(*Conn).Write: captured at its RET instructions */
  AW_FN_GO_READ = 7,      /* crypto/tls.(*Conn).Read */
  AW_FN_NSS_PR_WRITE = 8, /* NSPR's PR_Write on an NSS SSL descriptor: returns PRInt32 */
  AW_FN_NSS_PR_READ = 9,  /* PR_Read */
  AW_FN_NSS_PR_SEND = 10, /* PR_Send */
  AW_FN_NSS_PR_RECV = 11, /* PR_Recv */
  AW_FN_AEAD_SEAL = 12,   /* aws-lc's EVP_AEAD_CTX_seal under rustls: one TLS record out */
  AW_FN_AEAD_OPEN = 13,   /* EVP_AEAD_CTX_open: one TLS record in */
};

enum aw_chunk_flags {
  AW_F_LAST = 1,      /* last chunk emitted for this call */
  AW_F_TRUNCATED = 2, /* the call carried more than the capture cap: the rest is not here */
  AW_F_READ_FAULT =
      4,         /* the buffer could not be read (paged out or unmapped): len bytes are zero */
  AW_F_HELD = 8, /* copied at the entry of a gated write, before it ran: the process is stopped */
  AW_F_UNBOUND =
      16, /* a sealed record whose socket is not known yet: conn_id is 0, ssl the AEAD key
           * (EVP_AEAD_CTX*), stream_off counts from the key's first record; an AW_EV_AEAD_BIND
           * for the key follows once its first record is written to a socket */
};

/* Loss and activity counters, one slot each in the per-CPU `counters` map. */
enum aw_counter {
  AW_CNT_CALLS = 0,      /* SSL read/write calls that returned data */
  AW_CNT_CHUNKS,         /* chunks handed to the ring buffer */
  AW_CNT_BYTES,          /* plaintext bytes handed to the ring buffer */
  AW_CNT_RB_DROP_CHUNKS, /* chunks lost: ring buffer full */
  AW_CNT_RB_DROP_BYTES,  /* plaintext bytes lost: ring buffer full */
  AW_CNT_TRUNC_CALLS,    /* calls cut at the capture cap */
  AW_CNT_TRUNC_BYTES,    /* bytes beyond the cap, not captured */
  AW_CNT_READ_FAULTS,    /* chunks whose user memory could not be read */
  AW_CNT_CTRL_DROPS,     /* SNI/close/process events lost: ring buffer full */
  AW_CNT_NO_ENTRY,       /* a return probe without its entry (attached mid-call) */
  AW_CNT_HOLDS,          /* gated writes stopped for a verdict */
  AW_CNT_HOLD_DROPS,     /* gated writes let through unheld: the hold event did not fit */
  AW_CNT_AEAD_NO_SOCKET, /* decrypted records with no socket read before them on the thread */
  AW_CNT_MAX,
};

/* The system call that moved the bytes of a pipe or socket chunk. */
enum aw_pipe_call {
  AW_PIPE_READ = 0,
  AW_PIPE_READV = 1,
  AW_PIPE_WRITE = 2,
  AW_PIPE_WRITEV = 3,
  AW_PIPE_RECVFROM = 4, /* sockets only, as the three below */
  AW_PIPE_RECVMSG = 5,
  AW_PIPE_SENDTO = 6,
  AW_PIPE_SENDMSG = 7,
};

/* Counters of bpf/stdio.bpf.c, one slot each in its per-CPU `stdio_counters` map. */
enum aw_stdio_counter {
  AW_STDIO_CALLS = 0,      /* reads and writes of watched processes that moved data */
  AW_STDIO_BYTES,          /* bytes handed to the ring buffer */
  AW_STDIO_RB_DROP_CHUNKS, /* chunks lost: ring buffer full */
  AW_STDIO_RB_DROP_BYTES,  /* bytes lost: ring buffer full */
  AW_STDIO_TRUNC_BYTES,    /* bytes beyond the capture cap (or the iovec limit), not captured */
  AW_STDIO_READ_FAULTS,    /* chunks whose user memory could not be read */
  AW_STDIO_SOCK_OPENS,     /* plaintext loopback connections watched (connect to a listed port) */
  AW_STDIO_SOCK_FULL,      /* such connections not watched: the sock_streams map was full */
  AW_STDIO_SOCK_CALLS,     /* their reads and writes that moved data */
  AW_STDIO_SOCK_BYTES,     /* their bytes handed to the ring buffer */
  AW_STDIO_MAX,
};

struct aw_endpoint {
  u8 addr[16]; /* IPv4 in the first 4 bytes, network order */
  u16 port;    /* host order */
  u16 family;  /* AF_INET, AF_INET6, AF_UNIX, or 0 when unknown */
};

/* Header common to every event: kind first so a reader can dispatch. */
struct aw_tls_data {
  u32 kind;
  u32 flags;         /* enum aw_chunk_flags */
  u64 ts_ns;         /* bpf_ktime_get_boot_ns() at the return of the call */
  u64 proc_start_ns; /* task start, boot-based: with pid, the process identity */
  u64 cgroup_id;
  u64 conn_id;    /* unique per connection for the life of the agent */
  u64 ssl;        /* the SSL* */
  u64 stream_off; /* offset of this chunk in the connection's byte stream for `dir` */
  u32 pid;
  u32 tid;
  u32 uid;
  s32 fd;       /* socket fd learned from the call's syscalls, -1 if unknown */
  u32 call_len; /* bytes the call really moved */
  u32 call_off; /* offset of this chunk within the call */
  u32 len;      /* bytes of data that follow */
  u8 dir;       /* enum aw_dir */
  u8 func;      /* enum aw_func */
  u16 reserved;
  struct aw_endpoint local;
  struct aw_endpoint peer;
  char comm[AW_COMM_LEN];
  u8 data[AW_CHUNK_MAX];
};

#define AW_TLS_DATA_HDR_LEN ((unsigned long)&((struct aw_tls_data*)0)->data)

/*
 * Bytes a watched process (an MCP server over stdio) read from its stdin or wrote to its
 * stdout, a pipe or a Unix stream socket. The layout of aw_tls_data's header where the two
 * mean the same; `stream_id` names the (process, fd) stream the way conn_id names a TLS
 * connection, and never collides with one (its top bit is set).
 */
struct aw_pipe_data {
  u32 kind;
  u32 flags; /* enum aw_chunk_flags: AW_F_LAST, AW_F_TRUNCATED, AW_F_READ_FAULT */
  u64 ts_ns; /* at the return of the system call */
  u64 proc_start_ns;
  u64 cgroup_id;
  u64 stream_id;
  u64 stream_off; /* offset of this chunk in the stream of `fd` for `dir` */
  u32 pid;
  u32 tid;
  u32 uid;
  s32 fd;
  u32 call_len; /* bytes the call really moved */
  u32 call_off; /* offset of this chunk within the call */
  u32 len;      /* bytes of data that follow */
  u8 dir;       /* enum aw_dir: AW_DIR_IN for reads */
  u8 call;      /* enum aw_pipe_call */
  u16 reserved;
  char comm[AW_COMM_LEN];
  u8 data[AW_CHUNK_MAX];
};

#define AW_PIPE_DATA_HDR_LEN ((unsigned long)&((struct aw_pipe_data*)0)->data)
#define AW_PIPE_STREAM_BIT (1ULL << 63)

/*
 * A TCP connection the process just made (connect returned 0 or EINPROGRESS). When it goes to
 * a loopback address and a listed port (a local model server, an MCP server over plain HTTP)
 * it is watched: its AW_EV_SOCK_DATA chunks follow, with this stream_id, until an
 * AW_EV_SOCK_CLOSE (struct aw_tls_close) or the process's exit. Otherwise stream_id is 0 and
 * the event only tells the coverage view who talks to whom (`connect_events` on).
 */
struct aw_sock_open {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 cgroup_id;
  u64 stream_id;
  u32 tid;
  u32 uid;
  s32 fd;
  u32 flags; /* AW_SOCK_DNS: a UDP socket connected to port 53, its datagrams follow */
  struct aw_endpoint local;
  struct aw_endpoint peer;
  char comm[AW_COMM_LEN];
};

#define AW_SOCK_DNS 1

/* The first write on a TCP connection, when it starts like a TLS ClientHello (coverage view:
 * its server_name names the peer, whatever TLS stack wrote it). */
#define AW_HELLO_MAX 2048
struct aw_tls_hello {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 cgroup_id;
  u32 tid;
  s32 fd;
  u32 len; /* bytes in data */
  u32 reserved;
  struct aw_endpoint peer;
  u8 data[AW_HELLO_MAX];
};

struct aw_tls_sni {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 conn_id;
  u64 ssl;
  u32 tid;
  u32 reserved;
  char sni[AW_SNI_MAX];
};

struct aw_tls_close {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 conn_id;
  u64 ssl;
  u64 bytes_out;
  u64 bytes_in;
  u32 tid;
  u32 reserved;
};

/*
 * A gated write, stopped at the entry of SSL_write/SSL_write_ex: its data went out just before
 * as AW_F_HELD chunks, and the process has been sent SIGSTOP. Userspace decides, then resumes
 * it (SIGCONT), makes the call fail without running (block), masks bytes in `buf` (redact) or
 * kills it. `sp` and `ip` are the thread's registers at the probe: the return address is at sp.
 */
struct aw_tls_hold {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 conn_id;
  u64 ssl;
  u64 buf;        /* the plaintext to be written, in the process */
  u64 sp;         /* stack pointer at the entry of the call */
  u64 ip;         /* address of the probed function */
  u64 stream_off; /* offset of buf[0] in the connection's outgoing stream */
  u32 tid;
  u32 len; /* bytes the call is asked to write */
  s32 fd;  /* socket fd when known, -1 otherwise */
  u8 func; /* enum aw_func */
  u8 reserved[3];
  u64 seq; /* this hold's number among the process's holds (holds_issued after it) */
};

/*
 * rustls seals a record (EVP_AEAD_CTX_seal) before it knows the socket: it hands the records
 * to the runtime, which writes them. The first record of a key goes out as AW_F_UNBOUND chunks;
 * when the thread then writes that record's buffer to a socket, this event ties the key to
 * the connection: its chunks belong to conn_id, their stream_off are from base_off on.
 */
struct aw_aead_bind {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 key;      /* the EVP_AEAD_CTX* of the unbound chunks */
  u64 conn_id;  /* the connection they belong to */
  u64 ssl;      /* its handle in the chunks that follow bound */
  u64 base_off; /* its outgoing offset before the key's first record */
  u32 tid;
  s32 fd;
  struct aw_endpoint local;
  struct aw_endpoint peer;
};

struct aw_proc_exec {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 cgroup_id;
  u64 exe_ino;
  u32 exe_dev; /* kernel encoding: major << 20 | minor */
  u32 ppid;
  u32 uid;
  u32 reserved;
  char comm[AW_COMM_LEN];
  char filename[AW_PATH_MAX];
};

struct aw_proc_exit {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
};

struct aw_lib_map {
  u32 kind;
  u32 pid;
  u64 ts_ns;
  u64 proc_start_ns;
  u64 ino;
  u32 dev; /* kernel encoding: major << 20 | minor */
  u32 reserved;
  char name[AW_LIBNAME_MAX];
};

/* Key of the `gate_hosts` map: FNV-1a over the host name, ASCII letters lower-cased. */
#define AW_HOST_HASH_SEED 0xcbf29ce484222325ULL
static inline u64 aw_host_hash_step(u64 h, u8 c) {
  if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
  return (h ^ c) * 0x100000001b3ULL;
}

/* Key of the `known_files` map: files userspace has already looked at. */
struct aw_file_key {
  u64 ino;
  u32 dev;
  u32 reserved;
};

#endif /* AGENTWALL_BPF_EVENTS_H */
