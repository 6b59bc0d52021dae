// The capture stage's output: what the kernel saw, as plain values.
// Pure header: the stages after capture (stream, record, output) include it without
// linking anything kernel-facing.
#pragma once

#include <arpa/inet.h>
#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace agentwall {

enum class Direction : uint8_t { kOut = 0, kIn = 1 };
// The call that moved a chunk's bytes: a TLS library's function (OpenSSL, GnuTLS, Go, NSS), or for
// the stdio of a watched process (kChunkPipe) and a plaintext connection (kChunkPlain) a system
// call.
enum class TlsFunc : uint8_t {
  kSslWrite = 0,
  kSslWriteEx = 1,
  kSslRead = 2,
  kSslReadEx = 3,
  kRead = 4,
  kReadv = 5,
  kWrite = 6,
  kWritev = 7,
  kRecvfrom = 8,
  kRecvmsg = 9,
  kSendto = 10,
  kSendmsg = 11,
  kGnutlsRecordSend = 12,
  kGnutlsRecordRecv = 13,
  kGoTlsWrite = 14,  // Go's crypto/tls.(*Conn).Write
  kGoTlsRead = 15,   // crypto/tls.(*Conn).Read
  kNssPrWrite = 16,  // NSPR's PR_Write on an NSS SSL descriptor
  kNssPrRead = 17,
  kNssPrSend = 18,
  kNssPrRecv = 19,
  kAeadSeal = 20,  // aws-lc's EVP_AEAD_CTX_seal under rustls: one TLS record's plaintext out
  kAeadOpen = 21,  // EVP_AEAD_CTX_open: one record in
};
inline constexpr uint8_t kTlsFuncMax = 21;

inline std::string_view to_string(Direction d) {
  return d == Direction::kOut ? "out" : "in";
}

inline std::string_view to_string(TlsFunc f) {
  switch (f) {
    case TlsFunc::kSslWrite:
      return "SSL_write";
    case TlsFunc::kSslWriteEx:
      return "SSL_write_ex";
    case TlsFunc::kSslRead:
      return "SSL_read";
    case TlsFunc::kSslReadEx:
      return "SSL_read_ex";
    case TlsFunc::kRead:
      return "read";
    case TlsFunc::kReadv:
      return "readv";
    case TlsFunc::kWrite:
      return "write";
    case TlsFunc::kWritev:
      return "writev";
    case TlsFunc::kRecvfrom:
      return "recvfrom";
    case TlsFunc::kRecvmsg:
      return "recvmsg";
    case TlsFunc::kSendto:
      return "sendto";
    case TlsFunc::kSendmsg:
      return "sendmsg";
    case TlsFunc::kGnutlsRecordSend:
      return "gnutls_record_send";
    case TlsFunc::kGnutlsRecordRecv:
      return "gnutls_record_recv";
    case TlsFunc::kGoTlsWrite:
      return "go_tls_write";
    case TlsFunc::kGoTlsRead:
      return "go_tls_read";
    case TlsFunc::kNssPrWrite:
      return "PR_Write";
    case TlsFunc::kNssPrRead:
      return "PR_Read";
    case TlsFunc::kNssPrSend:
      return "PR_Send";
    case TlsFunc::kNssPrRecv:
      return "PR_Recv";
    case TlsFunc::kAeadSeal:
      return "EVP_AEAD_CTX_seal";
    case TlsFunc::kAeadOpen:
      return "EVP_AEAD_CTX_open";
  }
  return "unknown";
}

struct Endpoint {
  uint16_t family = 0;  // AF_INET, AF_INET6, AF_UNIX; 0 when unknown
  uint16_t port = 0;
  std::array<uint8_t, 16> addr{};

  bool is_ip() const { return family == AF_INET || family == AF_INET6; }

  // "127.0.0.1:443", "[::1]:443"; empty when not an IP endpoint.
  std::string to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    if (!is_ip() || !inet_ntop(family, addr.data(), text, sizeof(text))) return {};
    if (family == AF_INET6) return "[" + std::string(text) + "]:" + std::to_string(port);
    return std::string(text) + ":" + std::to_string(port);
  }
  bool operator==(const Endpoint&) const = default;
};

// A process is its pid plus its start time: pids are reused, this pair is not.
struct ProcessKey {
  uint32_t pid = 0;
  uint64_t start_ns = 0;  // boot-based, as the kernel's task start_boottime
  auto operator<=>(const ProcessKey&) const = default;
};

struct ProcessKeyHash {
  size_t operator()(const ProcessKey& k) const {
    return std::hash<uint64_t>()((uint64_t(k.pid) << 40) ^ k.start_ns);
  }
};

struct ProcessInfo {
  ProcessKey key;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  uint64_t cgroup_id = 0;
  std::string comm;
  std::string exe;
  std::string cmdline;      // arguments joined by spaces, capped
  std::string cgroup_path;  // cgroup v2 path, e.g. /system.slice/foo.service
  bool complete = false;    // false when the process was gone before /proc could be read
  // MCP over stdio: for a process whose stdin and stdout are captured (kChunkPipe), the
  // process at the other end of them (the MCP client that started it), when known.
  std::shared_ptr<const ProcessInfo> stdio_client;
  // ... and whether it was already running when the agent started (found in /proc, not at
  // its exec): its session is joined mid-way, past its `initialize`.
  bool stdio_joined = false;
};

enum ChunkFlags : uint32_t {
  kChunkLast = 1,       // last chunk of its call
  kChunkTruncated = 2,  // the call moved more than the capture cap
  kChunkReadFault = 4,  // the buffer could not be read: data is zeros
  kChunkHeld = 8,       // copied at the entry of a gated write, before it ran (TlsHold follows)
  kChunkPipe = 16,      // not TLS: stdin (kIn) or stdout (kOut) of a watched process;
                        // conn_id names the (process, fd) stream, ssl is 0
  kChunkPlain = 32,     // not TLS: a plaintext TCP connection to loopback on a watched port
                        // (a local model or MCP server); conn_id names it, ssl is 0
};

// One piece of plaintext: at most 16 KiB of one SSL read or write call.
// `data` points into the capture buffer and lives only during the callback that
// receives the chunk: a consumer that keeps it copies it.
struct TlsChunk {
  uint64_t time_ns = 0;  // Unix time
  ProcessKey process;
  uint32_t tid = 0;
  uint32_t uid = 0;
  uint64_t cgroup_id = 0;
  std::string_view comm;
  uint64_t conn_id = 0;
  uint64_t ssl = 0;
  int32_t fd = -1;
  Direction dir = Direction::kOut;
  TlsFunc func = TlsFunc::kSslWrite;
  uint32_t flags = 0;
  uint64_t stream_off = 0;  // offset in the connection's stream for `dir`
  uint32_t call_len = 0;    // bytes the call moved
  uint32_t call_off = 0;    // offset of this chunk in the call
  Endpoint local;
  Endpoint peer;
  std::string_view data;

  bool truncated() const { return flags & kChunkTruncated; }
  bool last() const { return flags & kChunkLast; }
  // Bytes of the call that the capture cap cut off (known on the last chunk).
  uint64_t truncated_bytes() const {
    return truncated() && last() ? uint64_t(call_len) - (call_off + data.size()) : 0;
  }
};

struct TlsSni {
  uint64_t time_ns = 0;
  ProcessKey process;
  uint32_t tid = 0;
  uint64_t conn_id = 0;
  uint64_t ssl = 0;
  std::string sni;
};

struct TlsClose {
  uint64_t time_ns = 0;
  ProcessKey process;
  uint32_t tid = 0;
  uint64_t conn_id = 0;
  uint64_t ssl = 0;
  uint64_t bytes_out = 0;
  uint64_t bytes_in = 0;
};

// A TCP connection a process made (connect). `watched`: a plaintext loopback connection whose
// bytes follow as kChunkPlain chunks under `conn_id`; otherwise only the fact is known.
struct TcpConnect {
  uint64_t time_ns = 0;
  ProcessKey process;
  uint32_t tid = 0;
  int32_t fd = -1;
  uint64_t conn_id = 0;  // 0 when not watched
  Endpoint local;
  Endpoint peer;
};

// The server name in the TLS ClientHello a process wrote as the first bytes of a new TCP
// connection: it names the peer whatever TLS stack wrote it (coverage view).
struct ClientHello {
  uint64_t time_ns = 0;
  ProcessKey process;
  uint32_t tid = 0;
  int32_t fd = -1;
  Endpoint peer;
  std::string sni;
};

// A gated write, stopped before it ran: its bytes came just before as kChunkHeld chunks and
// the process is stopped (SIGSTOP) until it is resumed, blocked, redacted or killed.
struct TlsHold {
  uint64_t time_ns = 0;
  ProcessKey process;
  uint32_t tid = 0;
  uint64_t conn_id = 0;
  uint64_t ssl = 0;
  uint64_t buf = 0;         // address of the plaintext in the process
  uint64_t sp = 0;          // stack pointer at the call's entry: the return address is there
  uint64_t ip = 0;          // the probed function's address
  uint64_t stream_off = 0;  // offset of buf[0] in the connection's outgoing stream
  uint32_t len = 0;         // bytes the call is asked to write
  int32_t fd = -1;          // socket fd when known
  TlsFunc func = TlsFunc::kSslWrite;
  uint64_t seq = 0;  // this hold's number among its process's holds
};

// Which processes a view or a cut keeps: by pid, by command name, or both.
struct ProcessSelector {
  std::optional<uint32_t> pid;
  std::optional<std::string> comm;
};

// Receives the capture stream, live from the kernel or replayed from a recording.
// on_process() comes before the first chunk of each process.
class CaptureSink {
 public:
  virtual ~CaptureSink() = default;
  virtual void on_process(const ProcessInfo&) {}
  virtual void on_chunk(const TlsChunk& chunk) = 0;
  virtual void on_sni(const TlsSni&) {}
  virtual void on_close(const TlsClose&) {}
  // The process exited and every chunk it sent before has been delivered.
  virtual void on_exit(const ProcessKey&) {}
  // A gated write is stopped, waiting for a verdict (live capture only, never recorded).
  virtual void on_hold(const TlsHold&) {}
  // A TCP connection was made (live capture only, never recorded; on_process came first).
  virtual void on_connect(const TcpConnect&) {}
  // A DNS response a resolver received on a UDP socket connected to port 53 (live only).
  virtual void on_dns(const ProcessKey&, std::string_view /*message*/) {}
  // A ClientHello with a server name, from a connection's first write (live only).
  virtual void on_client_hello(const ClientHello&) {}
};

}  // namespace agentwall
