#include "agent/enforce/enforcer.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/common/time.h"
#include "agent/proc/procfs.h"

namespace agentwall::enforce {
namespace {

int sys_pidfd_open(pid_t pid) {
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
}

int sys_pidfd_send_signal(int pidfd, int sig) {
  return static_cast<int>(syscall(SYS_pidfd_send_signal, pidfd, sig, nullptr, 0));
}

int sys_pidfd_getfd(int pidfd, int fd) {
  return static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, fd, 0));
}

std::string errno_text() {
  return std::strerror(errno);
}

// True when `pid` is still the process that made the hold (pids are reused).
bool same_process(const ProcessKey& key) {
  std::ifstream in("/proc/" + std::to_string(key.pid) + "/stat");
  std::stringstream ss;
  ss << in.rdbuf();
  const auto ticks = proc::parse_stat_start_ticks(ss.str());
  return ticks && *ticks == proc::start_ns_to_ticks(key.start_ns);
}

bool read_remote(pid_t pid, uint64_t addr, void* out, size_t len) {
  iovec local{out, len};
  iovec remote{reinterpret_cast<void*>(addr), len};
  return process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// Waits for the traced thread's stop, at most `ms` milliseconds.
bool wait_traced_stop(pid_t tid, int ms) {
  for (int i = 0; i < ms * 10; ++i) {
    int status = 0;
    const pid_t r = waitpid(tid, &status, __WALL | WNOHANG);
    if (r == tid && WIFSTOPPED(status)) return true;
    if (r < 0 && errno != EINTR) return false;
    timespec ts{0, 100'000};
    nanosleep(&ts, nullptr);
  }
  return false;
}

// The original bytes at `ip` in `pid` (the uprobe's breakpoint hides the first one in the
// process's memory), read from the mapped file.
bool read_original_code(uint32_t pid, uint64_t ip, uint8_t* out, size_t len) {
  for (const proc::MapsEntry& m : proc::read_maps(pid)) {
    if (ip < m.start || ip + len > m.end) continue;
    char range[64];
    std::snprintf(range, sizeof(range), "%llx-%llx", static_cast<unsigned long long>(m.start),
                  static_cast<unsigned long long>(m.end));
    std::ifstream f("/proc/" + std::to_string(pid) + "/map_files/" + range, std::ios::binary);
    if (!f) return false;
    f.seekg(static_cast<std::streamoff>(m.offset + (ip - m.start)));
    f.read(reinterpret_cast<char*>(out), static_cast<std::streamsize>(len));
    return f.gcount() == static_cast<std::streamsize>(len);
  }
  return false;
}

// The length of a function's first instruction when it is one that leaves the argument
// registers alone (what compilers open functions with); 0 for anything else.
size_t harmless_prologue_len(const uint8_t* c) {
  if (c[0] == 0xf3 && c[1] == 0x0f && c[2] == 0x1e && c[3] == 0xfa) return 4;  // endbr64
  if (c[0] >= 0x50 && c[0] <= 0x57) return 1;                                  // push reg
  if (c[0] == 0x41 && c[1] >= 0x50 && c[1] <= 0x57) return 2;                  // push r8-r15
  if (c[0] == 0x48 && c[1] == 0x83 && c[2] == 0xec) return 4;                  // sub $i8,%rsp
  if (c[0] == 0x48 && c[1] == 0x81 && c[2] == 0xec) return 7;                  // sub $i32,%rsp
  if (c[0] == 0x48 && c[1] == 0x89 && c[2] == 0xe5) return 3;                  // mov %rsp,%rbp
  return 0;
}

}  // namespace

Enforcer::~Enforcer() {
  release_all();
}

int Enforcer::pidfd_for(const TlsHold& h, std::string& error) {
  if (auto it = held_.find(h.process.pid); it != held_.end()) return it->second.pidfd;
  const int fd = sys_pidfd_open(static_cast<pid_t>(h.process.pid));
  if (fd < 0) {
    error = "pidfd_open(" + std::to_string(h.process.pid) + "): " + errno_text();
    return -1;
  }
  // Checked after the pidfd exists: from here on the pidfd names this very process.
  if (!same_process(h.process)) {
    close(fd);
    error = "process " + std::to_string(h.process.pid) + " is gone";
    return -1;
  }
  held_[h.process.pid].pidfd = fd;
  return fd;
}

size_t Enforcer::held() const {
  return held_.size();
}

// SIGCONT resumes every thread of the process: when another thread was held after this one
// (its hold is further down the ring), the process stays stopped until that one is decided.
void Enforcer::resume(const TlsHold& h, Outcome& out) {
  out.latency_us = double(unix_now_ns() - h.time_ns) / 1000.0;
  auto it = held_.find(h.process.pid);
  if (it == held_.end()) return;  // gone before it could be looked at
  if (issued_ && h.seq && issued_(h.process.pid) > h.seq) {
    it->second.waiting_since = unix_now_ns();
    return;
  }
  if (sys_pidfd_send_signal(it->second.pidfd, SIGCONT) != 0 && errno != ESRCH) {
    out.ok = false;
    out.error += (out.error.empty() ? "" : "; ") + std::string("SIGCONT failed: ") + errno_text();
  }
  close(it->second.pidfd);
  held_.erase(it);
}

void Enforcer::tick(double max_wait_ms) {
  const uint64_t now = unix_now_ns();
  for (auto it = held_.begin(); it != held_.end();) {
    const Held& h = it->second;
    if (h.waiting_since && double(now - h.waiting_since) / 1e6 > max_wait_ms) {
      spdlog::warn("process {}: a later hold never arrived; resumed after {} ms", it->first,
                   max_wait_ms);
      sys_pidfd_send_signal(h.pidfd, SIGCONT);
      close(h.pidfd);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

Outcome Enforcer::allow(const TlsHold& h) {
  Outcome out;
  out.ok = true;
  out.done = Verdict::kAllow;
  out.how = "resumed";
  std::string error;
  pidfd_for(h, error);  // a process already gone needs no resuming
  resume(h, out);
  return out;
}

namespace {
#if defined(__x86_64__)
// Traces thread `tid` (stopped by the hold's SIGSTOP), lets `edit` change its registers, and
// lets go of it; it stays stopped until the process is resumed. `edit` returns false (with
// `error` set) to leave the registers as they are.
template <typename Edit>
bool edit_stopped_thread(pid_t tid, std::string& error, Edit edit) {
  if (ptrace(PTRACE_SEIZE, tid, nullptr, nullptr) != 0) {
    error = "ptrace(PTRACE_SEIZE, " + std::to_string(tid) + "): " + errno_text();
    return false;
  }
  bool ok = false;
  user_regs_struct regs{};
  if (!wait_traced_stop(tid, 100)) {
    error = "thread " + std::to_string(tid) + " did not stop for tracing";
  } else if (ptrace(PTRACE_GETREGS, tid, nullptr, &regs) != 0) {
    error = "ptrace(PTRACE_GETREGS): " + errno_text();
  } else if (edit(regs)) {
    if (ptrace(PTRACE_SETREGS, tid, nullptr, &regs) != 0)
      error = "ptrace(PTRACE_SETREGS): " + errno_text();
    else
      ok = true;
  }
  if (ptrace(PTRACE_DETACH, tid, nullptr, nullptr) != 0 && ok) {
    error = "ptrace(PTRACE_DETACH): " + errno_text();
    ok = false;
  }
  return ok;
}
#endif
}  // namespace

// Makes SSL_write refuse the call itself: its length argument becomes -1, which OpenSSL
// rejects before touching the connection (SSL_R_BAD_LENGTH), so the caller gets an ordinary
// SSL error (SSL_ERROR_SSL) and nothing is sent. Done only when the thread is just past the
// function's first instruction and that instruction is one that leaves the argument
// registers alone, read from the file itself.
bool Enforcer::fail_length(const TlsHold& h, std::string& error) {
#if defined(__x86_64__)
  uint8_t code[8] = {};
  if (!read_original_code(h.process.pid, h.ip, code, sizeof(code))) {
    error = "cannot read the held function's code";
    return false;
  }
  const size_t first = harmless_prologue_len(code);
  if (!first) {
    error = "the held function's first instruction is not a known prologue";
    return false;
  }
  return edit_stopped_thread(static_cast<pid_t>(h.tid), error, [&](user_regs_struct& regs) {
    if (regs.rip != h.ip + first && regs.rip != h.ip) {
      error = "thread is not at the held call: left untouched";
      return false;
    }
    regs.rdx = ~0ull;  // num = -1
    return true;
  });
#else
  (void)h;
  error = "refusing the held call is implemented for x86_64 only";
  return false;
#endif
}

namespace {

// What the held function returns when it fails, as the caller reads the register.
uint64_t failure_return_value(TlsFunc f) {
  switch (f) {
    case TlsFunc::kSslWriteEx:
      return 0;  // int: 0 is failure
    case TlsFunc::kGnutlsRecordSend:
      // ssize_t: GNUTLS_E_PUSH_ERROR (-53), "Error in the push function": the transport
      // failed. It is fatal (gnutls_error_is_fatal), so callers give the session up rather
      // than retry, and it is what they already handle for a broken socket.
      return static_cast<uint64_t>(int64_t{-53});
    default:
      return 0xffffffffull;  // SSL_write: int -1
  }
}

// Whether the held call can be made to return a failure of its own without running: its
// failure is one integer the caller checks. Go's Write returns an error value, which cannot be
// made from outside the process; NSPR's PR_Write returns -1 with an error that PR_GetError
// must then give (a stale PR_WOULD_BLOCK_ERROR there would make its caller retry).
bool returns_failure(TlsFunc f) {
  return f == TlsFunc::kSslWrite || f == TlsFunc::kSslWriteEx || f == TlsFunc::kGnutlsRecordSend;
}

// The descriptor under a Go *tls.Conn, read from the stopped process when no system call of
// the connection has shown it yet (an HTTP/1.1 request is often its first Write). tls.Conn
// starts with its net.Conn, an interface (type word, data word); for a dialled TCP connection
// the data word is a *net.TCPConn, which starts with its *netFD, which starts with a poll.FD:
// a 16-byte fdMutex, then Sysfd. The caller trusts the number only if it is a TCP socket.
int go_conn_fd(pid_t pid, uint64_t conn) {
  uint64_t tcp_conn = 0, net_fd = 0;
  int64_t sysfd = -1;
  if (!read_remote(pid, conn + 8, &tcp_conn, sizeof(tcp_conn)) || !tcp_conn ||
      !read_remote(pid, tcp_conn, &net_fd, sizeof(net_fd)) || !net_fd ||
      !read_remote(pid, net_fd + 16, &sysfd, sizeof(sysfd)))
    return -1;
  return sysfd >= 0 && sysfd < (int64_t{1} << 30) ? static_cast<int>(sysfd) : -1;
}

// The OS descriptor under an NSS SSL descriptor, read from the stopped process when no system
// call of the connection has shown it yet (a connection's first PR_Write runs the handshake).
// PRFileDesc {methods, secret, lower, higher, dtor, identity} is NSPR's public ABI: `lower`
// leads to the bottom layer (identity PR_NSPR_IO_LAYER, 0), whose `secret` is NSPR's own
// PRFilePrivate, on Unix {PRInt32 state, PRBool nonblocking, PRIntn inheritable, PRFileDesc*
// next, PRIntn lockCount, _MDFileDesc md} with md starting with the int osfd (offset 28). The
// state of an open descriptor is _PR_FILEDESC_OPEN (0xaaaaaaaa): a layout that differs does
// not pass that check. The caller trusts the number only if it is a TCP socket.
int nss_socket_fd(pid_t pid, uint64_t fd) {
  struct {
    uint64_t methods, secret, lower, higher, dtor;
    int32_t identity;
  } desc{};
  for (int depth = 0; depth < 8 && fd; ++depth, fd = desc.lower) {
    if (!read_remote(pid, fd, &desc, sizeof(desc))) return -1;
    if (desc.identity != 0) continue;
    uint32_t state = 0;
    int32_t osfd = -1;
    if (!desc.secret || !read_remote(pid, desc.secret, &state, sizeof(state)) ||
        state != 0xaaaaaaaau || !read_remote(pid, desc.secret + 28, &osfd, sizeof(osfd)))
      return -1;
    return osfd;
  }
  return -1;
}

bool is_tcp_socket(int fd) {
  int protocol = 0;
  socklen_t len = sizeof(protocol);
  return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_TCP;
}

}  // namespace

// Makes the held call return at once, as if it had failed, without running it. The thread is
// stopped at the entry of SSL_write (at most its first instruction ran: the uprobe's single
// step), so no callee-saved register has changed yet: setting the stack pointer back to the
// entry's plus the return address, the instruction pointer to the return address and the
// result register to the failure value is an ordinary return. With a return probe attached,
// the return address is the kernel's trampoline, which then runs the return probe as usual.
bool Enforcer::return_early(const TlsHold& h, std::string& error) {
#if defined(__x86_64__)
  uint64_t ret_addr = 0;
  if (!read_remote(static_cast<pid_t>(h.process.pid), h.sp, &ret_addr, sizeof(ret_addr))) {
    error = "cannot read the return address: " + errno_text();
    return false;
  }
  return edit_stopped_thread(static_cast<pid_t>(h.tid), error, [&](user_regs_struct& regs) {
    if (regs.rip < h.ip || regs.rip >= h.ip + 16 || regs.rsp > h.sp || regs.rsp + 256 < h.sp) {
      // Not where the hold left it: something ran. Touching it now could corrupt it.
      char buf[160];
      std::snprintf(buf, sizeof(buf),
                    "thread is not at the held call (rip %#llx, entry %#llx): left untouched",
                    static_cast<unsigned long long>(regs.rip),
                    static_cast<unsigned long long>(h.ip));
      error = buf;
      return false;
    }
    regs.rip = ret_addr;
    regs.rsp = h.sp + 8;
    regs.rax = failure_return_value(h.func);
    regs.orig_rax = ~0ull;  // not in a system call: nothing to restart
    return true;
  });
#else
  (void)h;
  error = "returning early from the held call is implemented for x86_64 only";
  return false;
#endif
}

bool Enforcer::shutdown_socket(const TlsHold& h, int& fd, std::string& error) {
  fd = h.fd;
  const auto pid = static_cast<pid_t>(h.process.pid);
  if (fd < 0 && h.func == TlsFunc::kGoTlsWrite) fd = go_conn_fd(pid, h.ssl);
  if (fd < 0 && (h.func == TlsFunc::kNssPrWrite || h.func == TlsFunc::kNssPrSend))
    fd = nss_socket_fd(pid, h.ssl);
  if (fd < 0) {
    error += (error.empty() ? "" : "; ") + std::string("the connection's socket is not known");
    return false;
  }
  const int pidfd = pidfd_for(h, error);
  if (pidfd < 0) return false;
  const int dup = sys_pidfd_getfd(pidfd, fd);
  if (dup < 0) {
    error += (error.empty() ? "" : "; ") + std::string("pidfd_getfd: ") + errno_text();
    return false;
  }
  if (!is_tcp_socket(dup)) {
    close(dup);
    error += std::string(error.empty() ? "" : "; ") + "descriptor " + std::to_string(fd) +
             " of the process is not a TCP socket: left alone";
    return false;
  }
  const int rc = ::shutdown(dup, SHUT_RDWR);
  const std::string why = rc != 0 ? errno_text() : "";
  close(dup);
  if (rc != 0) {
    error += (error.empty() ? "" : "; ") + std::string("shutdown: ") + why;
    return false;
  }
  return true;
}

Outcome Enforcer::block(const TlsHold& h) {
  Outcome out;
  out.done = Verdict::kBlock;
  std::string error;
  if (pidfd_for(h, error) < 0) {
    out.error = error;
    resume(h, out);
    return out;
  }
  std::string why_not;
  int fd = -1;
  if (h.func == TlsFunc::kSslWrite && fail_length(h, why_not)) {
    out.ok = true;
    out.how = "SSL_write refused the call (length -1, SSL_R_BAD_LENGTH): nothing was sent";
  } else if (returns_failure(h.func) && return_early(h, error)) {
    out.ok = true;
    out.how =
        std::string(to_string(h.func)) + " returned failure without running: nothing was sent";
  } else if (shutdown_socket(h, fd, error)) {
    out.ok = true;
    out.how = "socket " + std::to_string(fd) + " shut down before the write: nothing was sent";
  }
  out.error = out.ok ? "" : error;
  resume(h, out);
  return out;
}

Outcome Enforcer::redact(const TlsHold& h, const std::vector<Mask>& masks, char fill) {
  Outcome out;
  out.done = Verdict::kRedact;
  std::string error;
  if (pidfd_for(h, error) < 0) {
    out.error = error;
    resume(h, out);
    return out;
  }
  size_t bytes = 0;
  out.ok = true;
  for (const Mask& m : masks) {
    if (uint64_t(m.offset) + m.len > h.len) {
      out.ok = false;
      out.error = "mask outside the held buffer";
      break;
    }
    std::string fill_bytes(m.len, fill);
    iovec local{fill_bytes.data(), fill_bytes.size()};
    iovec remote{reinterpret_cast<void*>(h.buf + m.offset), m.len};
    if (process_vm_writev(static_cast<pid_t>(h.process.pid), &local, 1, &remote, 1, 0) !=
        static_cast<ssize_t>(m.len)) {
      out.ok = false;
      out.error = "process_vm_writev: " + errno_text();
      break;
    }
    bytes += m.len;
  }
  out.how = std::to_string(bytes) + " bytes in " + std::to_string(masks.size()) +
            " span(s) masked in the process's buffer before it was encrypted";
  resume(h, out);
  return out;
}

Outcome Enforcer::kill(const TlsHold& h) {
  Outcome out;
  out.done = Verdict::kKill;
  std::string error;
  const int fd = pidfd_for(h, error);
  if (fd < 0) {
    out.error = error;
    return out;
  }
  if (sys_pidfd_send_signal(fd, SIGKILL) != 0) {
    out.error = "SIGKILL: " + errno_text();
    resume(h, out);
    return out;
  }
  out.ok = true;
  out.how = "process killed (SIGKILL) before the write ran";
  close(fd);
  held_.erase(h.process.pid);
  out.latency_us = double(unix_now_ns() - h.time_ns) / 1000.0;
  return out;
}

void Enforcer::release_all() {
  for (auto& [pid, h] : held_) {
    if (sys_pidfd_send_signal(h.pidfd, SIGCONT) != 0 && errno != ESRCH)
      spdlog::error("cannot resume held process {}: {}", pid, errno_text());
    close(h.pidfd);
  }
  held_.clear();
}

}  // namespace agentwall::enforce
