#include "agent/capture/capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <glob.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <dirent.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "agent/capture/ring_reader.h"
#include "agent/capture/uprobe_multi.h"
#include "agent/common/time.h"
#include "agent/coverage/client_hello.h"
#include "agent/elf/boringssl_sig.h"
#include "agent/elf/gopclntab.h"
#include "agent/elf/symbols.h"
#include "agent/proc/procfs.h"
#include "events.h"
#include "proc.skel.h"
#include "stdio.skel.h"
#include "tls.skel.h"

namespace agentwall::capture {

std::string_view to_string(TargetKind k) {
  return k == TargetKind::kLibrary ? "library" : "executable";
}

namespace {

// Where TLS libraries live on Debian, Fedora, Alpine and friends. Processes mapping a
// library elsewhere (venvs, containers, /opt) are found through /proc and mmap events.
constexpr const char* kLibraryGlobs[] = {
    "/lib/libssl.so*",
    "/lib64/libssl.so*",
    "/usr/lib/libssl.so*",
    "/usr/lib64/libssl.so*",
    "/usr/local/lib/libssl.so*",
    "/usr/local/lib64/libssl.so*",
    "/lib/*-linux-gnu*/libssl.so*",
    "/usr/lib/*-linux-gnu*/libssl.so*",
    "/lib/*-linux-gnu*/libgnutls.so*",
    "/usr/lib/*-linux-gnu*/libgnutls.so*",
    "/usr/lib/libgnutls.so*",
    "/usr/lib64/libgnutls.so*",
    // NSS: NSPR's I/O functions carry the plaintext, NSS's libssl3 the SNI and its SSL layer.
    "/lib/*-linux-gnu*/libnspr4.so*",
    "/usr/lib/*-linux-gnu*/libnspr4.so*",
    "/usr/lib/libnspr4.so*",
    "/usr/lib64/libnspr4.so*",
    "/lib/*-linux-gnu*/libssl3.so*",
    "/usr/lib/*-linux-gnu*/libssl3.so*",
    "/usr/lib/libssl3.so*",
    "/usr/lib64/libssl3.so*",
};

// Where executables that may link OpenSSL statically are looked for at start, and how deep
// below each: the bin directories themselves, /opt's packages, and the global npm trees, where
// agents' native binaries sit (`npm i -g @openai/codex`:
// node_modules/@openai/codex/node_modules/@openai/codex-linux-x64/vendor/<triple>/bin/codex).
struct ExecutableDir {
  const char* path;
  int depth;
};
constexpr ExecutableDir kExecutableDirs[] = {{"/usr/bin", 0},
                                             {"/usr/local/bin", 0},
                                             {"/usr/sbin", 0},
                                             {"/usr/local/sbin", 0},
                                             {"/opt", 3},
                                             {"/usr/lib/node_modules", 9},
                                             {"/usr/local/lib/node_modules", 9}};
// A directory given to --attach is looked through as deep as a global npm tree.
constexpr int kAttachDirDepth = 9;
// How long captured chunks may wait in the ring before the reader looks.
constexpr int kDataPollMs = 5;
// Smaller files cannot hold a linked-in OpenSSL: they are not opened at all.
constexpr off_t kMinStaticTlsExecutable = 2 << 20;

struct FileId {
  uint32_t dev = 0;  // kernel encoding: major << 20 | minor
  uint64_t ino = 0;
  bool operator==(const FileId&) const = default;
};
struct FileIdHash {
  size_t operator()(const FileId& f) const {
    return std::hash<uint64_t>()(f.ino ^ (uint64_t(f.dev) << 44));
  }
};

uint32_t kernel_dev(uint32_t major, uint32_t minor) {
  return (major << 20) | minor;
}

std::optional<FileId> file_id(const std::string& path) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) return std::nullopt;
  if (!S_ISREG(st.st_mode)) return std::nullopt;
  return FileId{kernel_dev(major(st.st_dev), minor(st.st_dev)), st.st_ino};
}

uint64_t boot_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_BOOTTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

int libbpf_log(enum libbpf_print_level level, const char* fmt, va_list args) {
  char* text = nullptr;
  if (vasprintf(&text, fmt, args) < 0) return 0;
  std::unique_ptr<char, decltype(&free)> owned(text, &free);
  std::string_view msg(text);
  while (!msg.empty() && msg.back() == '\n') msg.remove_suffix(1);
  if (level == LIBBPF_WARN)
    spdlog::warn("libbpf: {}", msg);
  else
    spdlog::debug("libbpf: {}", msg);
  return 0;
}

std::string explain_load_failure(int err) {
  std::string why = std::strerror(err);
  if ((err == EPERM || err == EACCES) && geteuid() == 0) {
    return why +
           ": the kernel refused the programs although agentwall runs as root: the "
           "verifier rejected them (run with -v for its log) or a security module or "
           "lockdown policy forbids BPF tracing";
  }
  if (err == EPERM || err == EACCES) {
    return why +
           ": loading BPF programs needs root, or CAP_BPF, CAP_PERFMON and "
           "CAP_SYS_RESOURCE; also check kernel.unprivileged_bpf_disabled and that no "
           "LSM policy denies bpf()";
  }
  if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
    return why +
           ": this kernel has no BTF (/sys/kernel/btf/vmlinux); agentwall's CO-RE "
           "programs need a kernel built with CONFIG_DEBUG_INFO_BTF=y";
  }
  if (err == ENOENT || err == EINVAL || err == ESRCH) {
    return why +
           ": the kernel lacks a feature the programs use (uprobes through the perf "
           "uprobe PMU, BPF ring buffers, bpf_loop, tp_btf raw tracepoints: Linux 5.17 or "
           "newer); run with -v for the verifier's log";
  }
  return why;
}

// Detaching a uprobe waits for an SRCU grace period (tens of ms to seconds under load);
// one after the other, an agent with a hundred probes took half a minute to stop. Threads
// detaching at once share the grace periods. `fds` are links made by hand (uprobe_multi):
// closing one detaches it.
void destroy_links_in_parallel(std::vector<bpf_link*>& links, std::vector<int>& fds) {
  const size_t total = links.size() + fds.size();
  const size_t workers = std::min<size_t>(total, 32);
  std::vector<std::thread> threads;
  std::atomic<size_t> next{0};
  for (size_t w = 0; w < workers; ++w) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < total; i = next++) {
        if (i < links.size())
          bpf_link__destroy(links[i]);
        else
          ::close(fds[i - links.size()]);
      }
    });
  }
  for (auto& t : threads) t.join();
  links.clear();
  fds.clear();
}

class BpfCapture final : public Capture {
 public:
  BpfCapture(const Options& opt) : opt_(opt), boot_offset_(boot_to_unix_offset_ns()) {}

  ~BpfCapture() override {
    data_rb_.reset();
    proc_rb_.reset();
    destroy_links_in_parallel(links_, multi_links_);
    if (sys_enter_link_) bpf_link__destroy(sys_enter_link_);
    if (stdio_link_) bpf_link__destroy(stdio_link_);
    if (stdio_) stdio_bpf__destroy(stdio_);
    if (tls_) tls_bpf__destroy(tls_);
    if (proc_) proc_bpf__destroy(proc_);
  }

  bool load(std::string& error);

  void attach_existing() override;
  int poll_data(int timeout_ms, CaptureSink& sink) override;
  int poll_discovery(int timeout_ms) override;
  Counters counters() const override;
  void set_gate(bool enabled, bool any_host, bool any_process) override;
  void set_exec_hook(std::function<void(uint32_t pid)> hook) override {
    std::lock_guard lock(mu_);
    exec_hook_ = std::move(hook);
  }
  bool gate_pid(uint32_t pid, bool on) override;
  bool gate_cgroup(uint64_t cgroup_id, bool on) override;
  bool gate_host(std::string_view host, bool on) override;
  void unwatch_stdio(uint32_t pid) override {
    std::lock_guard lock(mu_);
    forget_stdio(pid);
  }
  uint64_t holds_issued(uint32_t pid) const override {
    uint64_t n = 0;
    bpf_map__lookup_elem(tls_->maps.holds_issued, &pid, sizeof(pid), &n, sizeof(n), 0);
    return n;
  }
  std::vector<AttachedTarget> attached() const override {
    std::lock_guard lock(mu_);
    return attached_;
  }

 private:
  static int on_data_event(void* ctx, void* data, size_t size);
  static int on_proc_event(void* ctx, void* data, size_t size);
  void handle_data(const void* data, size_t size);
  void handle_proc(const void* data, size_t size);

  // Looks at one file; attaches when it has OpenSSL's functions. `open_path` is how the
  // agent reaches it (it may be in another mount namespace), `shown` how it is reported.
  bool consider_file(const FileId& id, const std::string& open_path, const std::string& shown,
                     TargetKind kind);
  void remember_file(const FileId& id);
  void scan_process(uint32_t pid);
  // The executables in `dir` and, `depth` levels down, in its subdirectories.
  void scan_executables(const std::string& dir, int depth);
  void scan_foreign_root(uint32_t pid, uint64_t event_ns);
  void retry_pending_maps();
  // ---- MCP over stdio: which processes are watched ----
  struct StdioWatch;
  void consider_stdio(const aw_proc_exec& ev);
  void consider_running_stdio(uint32_t pid);
  void watch_stdio(uint32_t pid, uint32_t ppid, std::string_view what, StdioWatch w);
  void forget_stdio(uint32_t pid, bool exited = false);
  // ---- end MCP over stdio ----

  // A library mapping announced by the kernel, not yet visible in /proc/PID/maps.
  struct PendingMap {
    uint32_t pid;
    FileId id;
    uint64_t event_ns;
    std::string name;
    int attempts;
  };
  static constexpr int kMaxMapAttempts = 200;  // about 200 ms of polling
  void note_latency(uint64_t event_boot_ns);
  void announce_process(const ProcessKey& key, uint64_t cgroup_id, std::string_view comm);
  void apply_due_exits();

  Options opt_;
  uint64_t boot_offset_;
  uint64_t self_mnt_ns_ = 0;  // inode of the agent's own mount namespace
  tls_bpf* tls_ = nullptr;
  std::function<void(uint32_t pid)> exec_hook_;  // under mu_
  proc_bpf* proc_ = nullptr;
  stdio_bpf* stdio_ = nullptr;
  std::unique_ptr<RingReader> data_rb_;  // the TLS and stdio rings (one thread)
  std::unique_ptr<RingReader> proc_rb_;  // process discovery (another thread)
  bpf_link* sys_enter_link_ = nullptr;
  // Attached when the first process is watched: until an MCP server runs, the host's system
  // calls do not pay for it.
  bpf_link* stdio_link_ = nullptr;

  // Discovery state: touched by the discovery thread and by attach_existing().
  mutable std::mutex mu_;
  std::vector<bpf_link*> links_;
  std::vector<int> multi_links_;  // Go's probes, uprobe_multi link fds
  bool uprobe_multi_ = false;     // the kernel has uprobe_multi links: Go's probes use them
  std::vector<AttachedTarget> attached_;
  std::unordered_set<FileId, FileIdHash> seen_files_;
  // pid -> (start, exec path), for short lives: kept until the exit is applied.
  std::unordered_map<uint32_t, std::pair<uint64_t, std::string>> exec_filenames_;
  std::vector<std::pair<ProcessKey, uint64_t>> pending_exits_;  // process, due (boot ns)
  std::vector<PendingMap> pending_maps_;
  // MCP over stdio: watched processes (in the kernel's stdio_pids too) and their clients.
  struct StdioWatch {
    std::string stdin_channel;  // readlink of /proc/PID/fd/0: "socket:[N]" or "pipe:[N]"
    std::shared_ptr<const ProcessInfo> client;
    bool joined = false;  // running before the agent: found in /proc, not at its exec
    // The server as /proc showed it at its exec: a server that exits before its first
    // chunk is announced (a short session, a busy agent) keeps its command line and parent.
    std::shared_ptr<const ProcessInfo> self;
  };
  std::unordered_map<uint32_t, StdioWatch> stdio_watched_;
  std::unordered_map<uint32_t, StdioWatch> stdio_exited_;  // exited, exit not yet applied
  std::atomic<uint64_t> attach_failures_{0};
  std::atomic<uint64_t> attach_count_{0};
  std::atomic<uint64_t> latency_last_us_{0};
  std::atomic<uint64_t> latency_max_us_{0};

  // Data path state: the data thread only.
  CaptureSink* sink_ = nullptr;
  std::unordered_set<ProcessKey, ProcessKeyHash> announced_;
  // Plaintext loopback connections being watched, by stream id (from their AW_EV_SOCK_OPEN).
  struct PlainConn {
    uint32_t pid = 0;
    int32_t fd = -1;
    Endpoint local;
    Endpoint peer;
    bool dns = false;  // a resolver's UDP socket (port 53): its answers go to on_dns
  };
  std::unordered_map<uint64_t, PlainConn> plain_conns_;
  void forget_plain(uint32_t pid);
  // rustls records sealed before their socket was known (AW_F_UNBOUND), by (pid, AEAD key),
  // until the AW_EV_AEAD_BIND that names their connection. Bounded: a key whose bind never
  // comes (its process died, or the event was lost) is dropped, oldest first.
  struct UnboundKey {
    uint32_t pid = 0;
    uint64_t key = 0;
    bool operator==(const UnboundKey&) const = default;
  };
  struct UnboundKeyHash {
    size_t operator()(const UnboundKey& k) const {
      return std::hash<uint64_t>()(k.key ^ (uint64_t(k.pid) << 48));
    }
  };
  struct Unbound {
    std::vector<std::string> events;  // whole aw_tls_data records, in order
    size_t bytes = 0;
    uint64_t seq = 0;  // order of first arrival, for eviction
  };
  std::unordered_map<UnboundKey, Unbound, UnboundKeyHash> unbound_;
  uint64_t unbound_seq_ = 0;
  uint64_t unbound_dropped_ = 0;  // records dropped unbound (reported in the log)
  void hold_unbound(const aw_tls_data* ev, size_t size);
  void bind_unbound(const aw_aead_bind& ev);
  bool watch_plaintext_ports(std::string& error);
};

bool BpfCapture::load(std::string& error) {
  libbpf_set_print(libbpf_log);
  struct stat ns {};
  if (stat("/proc/self/ns/mnt", &ns) == 0) self_mnt_ns_ = ns.st_ino;
  tls_ = tls_bpf__open();
  proc_ = proc_bpf__open();
  stdio_ = stdio_bpf__open();
  if (!tls_ || !proc_ || !stdio_) {
    error = "cannot open the BPF programs: " + explain_load_failure(errno);
    return false;
  }
  const uint32_t self = static_cast<uint32_t>(getpid());
  tls_->rodata->self_tgid = self;
  tls_->rodata->targ_tgid = opt_.only_pid.value_or(0);
  tls_->rodata->max_capture_bytes = opt_.max_capture_bytes;
  proc_->rodata->self_tgid = self;
  stdio_->rodata->self_tgid = self;
  stdio_->rodata->max_capture_bytes = opt_.max_capture_bytes;
  if (int err = bpf_map__set_max_entries(tls_->maps.data_rb, opt_.ringbuf_bytes); err) {
    error = "invalid ring buffer size " + std::to_string(opt_.ringbuf_bytes) +
            ": it must be a power of two and a multiple of the page size";
    return false;
  }
  // Go's programs become uprobe_multi programs where the kernel has those (they then cannot
  // be attached otherwise).
  uprobe_multi_ = kernel_has_uprobe_multi();
  if (uprobe_multi_) {
    for (bpf_program* prog :
         {tls_->progs.go_write_enter, tls_->progs.go_read_enter, tls_->progs.go_tls_ret,
          tls_->progs.go_close_enter, tls_->progs.go_hello_enter, tls_->progs.go_sni_enter})
      bpf_program__set_expected_attach_type(prog, static_cast<bpf_attach_type>(kAttachUprobeMulti));
  }
  if (int err = tls_bpf__load(tls_); err) {
    error = "cannot load the TLS capture programs: " + explain_load_failure(-err);
    return false;
  }
  if (int err = proc_bpf__load(proc_); err) {
    error = "cannot load the process discovery programs: " + explain_load_failure(-err);
    return false;
  }
  if (int err = stdio_bpf__load(stdio_); err) {
    error = "cannot load the stdio capture program: " + explain_load_failure(-err);
    return false;
  }
  if (!watch_plaintext_ports(error)) return false;
  sys_enter_link_ = bpf_program__attach(tls_->progs.tls_sys_enter);
  if (!sys_enter_link_) {
    error = "cannot attach to the sys_enter tracepoint (tp_btf): " + explain_load_failure(errno);
    return false;
  }
  if (int err = proc_bpf__attach(proc_); err) {
    error =
        "cannot attach the process discovery programs (tp_btf sched_process_exec/exit "
        "and sys_enter): " +
        explain_load_failure(-err);
    return false;
  }
  data_rb_ = std::make_unique<RingReader>();
  proc_rb_ = std::make_unique<RingReader>();
  if (!data_rb_->add(bpf_map__fd(tls_->maps.data_rb), on_data_event, this, error) ||
      !data_rb_->add(bpf_map__fd(stdio_->maps.stdio_rb), on_data_event, this, error) ||
      !proc_rb_->add(bpf_map__fd(proc_->maps.proc_rb), on_proc_event, this, error)) {
    error = "cannot map the ring buffers: " + error;
    return false;
  }
  return true;
}

void BpfCapture::remember_file(const FileId& id) {
  seen_files_.insert(id);
  aw_file_key key{};
  key.ino = id.ino;
  key.dev = id.dev;
  const uint8_t one = 1;
  bpf_map__update_elem(proc_->maps.known_files, &key, sizeof(key), &one, sizeof(one), BPF_ANY);
}

namespace {
// Lets go of a held mutex for a scope, and takes it again.
struct Unlocked {
  std::mutex& mu;
  explicit Unlocked(std::mutex& m) : mu(m) { mu.unlock(); }
  ~Unlocked() { mu.lock(); }
  Unlocked(const Unlocked&) = delete;
  Unlocked& operator=(const Unlocked&) = delete;
};
}  // namespace

bool BpfCapture::consider_file(const FileId& id, const std::string& open_path,
                               const std::string& shown, TargetKind kind) {
  // Caller holds mu_; the signature scan below lets go of it meanwhile (its arguments must not
  // live in what mu_ guards).
  if (seen_files_.count(id)) return false;
  static const std::vector<std::string> kFunctions = {"SSL_write",
                                                      "SSL_write_ex",
                                                      "SSL_read",
                                                      "SSL_read_ex",
                                                      "SSL_ctrl",
                                                      "SSL_free",
                                                      "gnutls_record_send",
                                                      "gnutls_record_recv",
                                                      "gnutls_server_name_set",
                                                      "gnutls_deinit",
                                                      "PR_Write",
                                                      "PR_Read",
                                                      "PR_Send",
                                                      "PR_Recv",
                                                      "PR_Close",
                                                      "SSL_ImportFD",
                                                      "SSL_SetURL"};
  // Hold the file open while working on it: a /proc/PID/... path can vanish at any moment
  // (the process exits, the loader remaps), the open file cannot.
  const int fd = ::open(open_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    // A process that exits right after exec or mmap is the common case, not a fault.
    const auto level =
        errno == ENOENT || errno == ESRCH ? spdlog::level::debug : spdlog::level::warn;
    spdlog::log(level, "cannot open {} ({}): {}", shown, open_path, std::strerror(errno));
    return false;  // not remembered: the next process that maps it gets another try
  }
  struct FdCloser {
    int fd;
    ~FdCloser() { ::close(fd); }
  } closer{fd};
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  const elf::LookupResult syms = elf::find_functions(path, kFunctions);
  if (!syms.ok()) {
    // An odd or unreadable file: say so once, keep going with everything else.
    spdlog::warn("skipping {}: {}", shown, syms.error);
    remember_file(id);
    return false;
  }
  const bool openssl = syms.offsets.count("SSL_write") && syms.offsets.count("SSL_read");
  const bool gnutls =
      syms.offsets.count("gnutls_record_send") && syms.offsets.count("gnutls_record_recv");
  // NSS: NSPR's libnspr4 (the I/O calls) and NSS's libssl3 (its SSL layer, the SNI).
  const bool nspr = syms.offsets.count("PR_Write") && syms.offsets.count("PR_Read");
  const bool nss_ssl = syms.offsets.count("SSL_ImportFD") > 0;
  // ---- Go's crypto/tls: by symbol, else by .gopclntab (stripped), with every RET ----
  elf::GoLookup go;
  if (kind == TargetKind::kExecutable) {
    go = elf::find_go_functions(path, {elf::kGoConnWrite, elf::kGoConnRead, elf::kGoConnClose,
                                       elf::kGoMakeClientHello, elf::kGoHostnameInSni});
    if (!go.ok()) spdlog::warn("not probing Go's crypto/tls in {}: {}", shown, go.error);
  }
  const bool go_tls = go.functions.count(elf::kGoConnWrite) && go.functions.count(elf::kGoConnRead);
  if (!go_tls && !go.without_returns.empty()) {
    std::string names;
    for (const std::string& n : go.without_returns) names += (names.empty() ? "" : ", ") + n;
    spdlog::warn(
        "not probing Go's crypto/tls in {}: no RET instruction found in {} (its "
        "results cannot be read without return probes, which break Go programs)",
        shown, names);
  }
  // ---- end Go ----
  std::unordered_map<std::string, uint64_t> offsets = syms.offsets;
  // ---- rustls over aws-lc in a stripped Rust executable: its AEAD, by signature ----
  // First: such a file may carry a vendored OpenSSL too (Codex's, for native-tls), whose own
  // search costs more than this one; with rustls located it is not looked for.
  elf::AeadSignatureLookup aead;
  if (kind == TargetKind::kExecutable && !go_tls) {
    const auto started = std::chrono::steady_clock::now();
    {
      const Unlocked unlocked(mu_);  // as for the search below
      aead = elf::find_aead_by_signature(path);
    }
    if (seen_files_.count(id)) return false;
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    if (aead.found()) {
      offsets["EVP_AEAD_CTX_seal"] = aead.seal_offset;
      offsets["EVP_AEAD_CTX_open"] = aead.open_offset;
      if (aead.seal_scatter_offset) offsets["EVP_AEAD_CTX_seal_scatter"] = aead.seal_scatter_offset;
      struct stat st {};
      if (fstat(fd, &st) == 0) elf::remember_located(st.st_dev, st.st_ino);
      spdlog::info("rustls (aws-lc) in {} located by signature in {:.0f} ms: {}", shown, ms,
                   aead.detail);
    } else if (aead.rustls_aws_lc) {
      spdlog::warn("rustls (aws-lc) in {} not located by signature ({:.0f} ms): {}", shown, ms,
                   aead.detail);
    }
  }
  const bool aead_sig = aead.found();
  // ---- end rustls ----
  // ---- BoringSSL (Bun) or OpenSSL linked into a stripped executable: by signature ----
  elf::SslSignatureLookup sig;
  if (kind == TargetKind::kExecutable && !openssl && !gnutls && !go_tls && !nspr && !nss_ssl &&
      !aead_sig) {
    const auto started = std::chrono::steady_clock::now();
    {
      // Up to half a second on a 400 MB binary: not under mu_, which the data thread takes to
      // announce a process. The file stays open (fd), and is looked up again afterwards.
      const Unlocked unlocked(mu_);
      sig = elf::find_ssl_by_signature(path);
    }
    if (seen_files_.count(id)) return false;  // examined by another caller meanwhile
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started)
            .count();
    if (sig.found()) {
      offsets["SSL_write"] = sig.write_offset;
      offsets["SSL_read"] = sig.read_offset;
      if (sig.host_name_offset) offsets["SSL_set_tlsext_host_name"] = sig.host_name_offset;
      struct stat st {};
      if (fstat(fd, &st) == 0) elf::remember_located(st.st_dev, st.st_ino);
      spdlog::info("{} in {} located by signature in {:.0f} ms: {}",
                   sig.boringssl ? "BoringSSL" : "OpenSSL", shown, ms, sig.detail);
    } else if (sig.boringssl || sig.openssl) {
      spdlog::warn("{} in {} not located by signature ({:.0f} ms): {}",
                   sig.boringssl ? "BoringSSL" : "OpenSSL", shown, ms, sig.detail);
    }
  }
  const bool boringssl_sig = sig.found();
  // ---- end signature ----
  if (!openssl && !gnutls && !go_tls && !boringssl_sig && !aead_sig && !nspr && !nss_ssl) {
    remember_file(id);  // no TLS library the agent knows (a binary without TLS)
    return false;
  }
  struct Probe {
    const char* function;
    bpf_program* prog;
    bool retprobe;
  };
  const Probe probes[] = {
      {"SSL_write", tls_->progs.ssl_write_enter, false},
      {"SSL_write", tls_->progs.ssl_call_exit, true},
      {"SSL_write_ex", tls_->progs.ssl_write_ex_enter, false},
      {"SSL_write_ex", tls_->progs.ssl_call_exit, true},
      {"SSL_read", tls_->progs.ssl_read_enter, false},
      {"SSL_read", tls_->progs.ssl_call_exit, true},
      {"SSL_read_ex", tls_->progs.ssl_read_ex_enter, false},
      {"SSL_read_ex", tls_->progs.ssl_call_exit, true},
      {"SSL_ctrl", tls_->progs.ssl_ctrl_enter, false},
      {"SSL_free", tls_->progs.ssl_free_enter, false},
      {"gnutls_record_send", tls_->progs.gnutls_send_enter, false},
      {"gnutls_record_send", tls_->progs.ssl_call_exit, true},
      {"gnutls_record_recv", tls_->progs.gnutls_recv_enter, false},
      {"gnutls_record_recv", tls_->progs.ssl_call_exit, true},
      {"gnutls_server_name_set", tls_->progs.gnutls_sni_enter, false},
      {"gnutls_deinit", tls_->progs.ssl_free_enter, false},
      {"PR_Write", tls_->progs.nss_write_enter, false},
      {"PR_Write", tls_->progs.nss_call_exit, true},
      {"PR_Read", tls_->progs.nss_read_enter, false},
      {"PR_Read", tls_->progs.nss_call_exit, true},
      {"PR_Send", tls_->progs.nss_send_enter, false},
      {"PR_Send", tls_->progs.nss_call_exit, true},
      {"PR_Recv", tls_->progs.nss_recv_enter, false},
      {"PR_Recv", tls_->progs.nss_call_exit, true},
      {"PR_Close", tls_->progs.nss_close_enter, false},
      {"SSL_ImportFD", tls_->progs.nss_import_exit, true},
      {"SSL_SetURL", tls_->progs.sni_string_enter, false},
      {"SSL_set_tlsext_host_name", tls_->progs.sni_string_enter, false},
      {"EVP_AEAD_CTX_seal", tls_->progs.aead_seal_enter, false},
      {"EVP_AEAD_CTX_seal_scatter", tls_->progs.aead_seal_scatter_enter, false},
      {"EVP_AEAD_CTX_open", tls_->progs.aead_open_exit, true},
      {"EVP_AEAD_CTX_open", tls_->progs.aead_open_enter, false},
  };
  // Where each probe goes. Return probes (and Go's RET probes) first: an entry without its
  // return would leave a call pending.
  struct Attachment {
    std::string_view function;
    bpf_program* prog;
    uint64_t offset;
    bool retprobe;  // a uretprobe
    bool early;     // a return or RET probe: attached before the entries
  };
  std::vector<Attachment> plan;
  for (const Probe& p : probes) {
    if (const auto it = offsets.find(p.function); it != offsets.end())
      plan.push_back({p.function, p.prog, it->second, p.retprobe, p.retprobe});
  }
  std::set<std::string> functions;
  size_t go_returns = 0;
  if (go_tls) {
    const struct {
      const std::string& function;
      bpf_program* enter;
      bpf_program* ret;  // at each RET instruction; null: none
    } go_probes[] = {{elf::kGoConnWrite, tls_->progs.go_write_enter, tls_->progs.go_tls_ret},
                     {elf::kGoConnRead, tls_->progs.go_read_enter, tls_->progs.go_tls_ret},
                     {elf::kGoConnClose, tls_->progs.go_close_enter, nullptr},
                     {elf::kGoMakeClientHello, tls_->progs.go_hello_enter, nullptr},
                     {elf::kGoHostnameInSni, tls_->progs.go_sni_enter, nullptr}};
    for (const auto& p : go_probes) {
      const auto it = go.functions.find(p.function);
      if (it == go.functions.end()) continue;
      plan.push_back({p.function, p.enter, it->second.offset, false, false});
      if (!p.ret) continue;
      for (const uint64_t ret : it->second.returns)
        plan.push_back({p.function, p.ret, ret, false, true});
      go_returns += it->second.returns.size();
    }
  }
  // With uprobe_multi, each Go program gets one link for all its offsets in this file.
  std::vector<int> new_multi;
  const auto close_multi = [&new_multi] {
    for (const int fd : new_multi) ::close(fd);
  };
  if (uprobe_multi_ && go_tls) {
    std::vector<bpf_program*> order;  // RET probes first, as below
    std::unordered_map<bpf_program*, std::vector<uint64_t>> offsets;
    std::stable_partition(plan.begin(), plan.end(), [](const Attachment& a) { return a.early; });
    for (const Attachment& a : plan) {
      const bool go_prog =
          a.prog == tls_->progs.go_write_enter || a.prog == tls_->progs.go_read_enter ||
          a.prog == tls_->progs.go_tls_ret || a.prog == tls_->progs.go_close_enter ||
          a.prog == tls_->progs.go_hello_enter || a.prog == tls_->progs.go_sni_enter;
      if (!go_prog) continue;
      if (!offsets.count(a.prog)) order.push_back(a.prog);
      offsets[a.prog].push_back(a.offset);
    }
    for (bpf_program* prog : order) {
      const int fd = create_uprobe_multi(bpf_program__fd(prog), path, offsets[prog]);
      if (fd < 0) {
        spdlog::warn("cannot attach {} to Go's crypto/tls in {} ({} offsets, uprobe_multi): {}",
                     bpf_program__name(prog), shown, offsets[prog].size(), std::strerror(-fd));
        close_multi();
        remember_file(id);
        attach_failures_.fetch_add(1);
        return false;
      }
      new_multi.push_back(fd);
    }
    std::erase_if(plan, [&](const Attachment& a) { return offsets.count(a.prog) > 0; });
    for (const std::string* f : {&elf::kGoConnWrite, &elf::kGoConnRead, &elf::kGoConnClose,
                                 &elf::kGoMakeClientHello, &elf::kGoHostnameInSni})
      if (go.functions.count(*f)) functions.insert(*f);
  }
  std::stable_partition(plan.begin(), plan.end(), [](const Attachment& a) { return a.early; });
  std::vector<bpf_link*> new_links;
  bool failed = false;
  for (const Attachment& a : plan) {
    LIBBPF_OPTS(bpf_uprobe_opts, uopts, .retprobe = a.retprobe);
    bpf_link* link = bpf_program__attach_uprobe_opts(a.prog, -1, path.c_str(), a.offset, &uopts);
    if (!link) {
      spdlog::warn("cannot attach {} probe to {} at {:#x} in {}: {}",
                   a.retprobe ? "return" : "entry", a.function, a.offset, shown,
                   std::strerror(errno));
      failed = true;
      break;
    }
    new_links.push_back(link);
    functions.insert(std::string(a.function));
  }
  remember_file(id);
  if (failed) {
    for (bpf_link* l : new_links) bpf_link__destroy(l);
    close_multi();
    attach_failures_.fetch_add(1);
    return false;
  }
  links_.insert(links_.end(), new_links.begin(), new_links.end());
  multi_links_.insert(multi_links_.end(), new_multi.begin(), new_multi.end());
  attached_.push_back(
      {shown, kind, id.dev, id.ino, {functions.begin(), functions.end()}, unix_now_ns()});
  attach_count_.fetch_add(1);
  std::string how;
  if (go_tls)
    how = fmt::format(
        " [Go: {} RET probes{}, {}]", go_returns, uprobe_multi_ ? " (uprobe_multi)" : "",
        go.functions.at(elf::kGoConnRead).from_pclntab ? "found in .gopclntab" : "found by symbol");
  else if (boringssl_sig)
    how = sig.boringssl ? " [BoringSSL, stripped: located by signature]"
                        : " [OpenSSL, stripped: located by signature]";
  if (aead_sig) how += " [rustls over aws-lc, stripped: its AEAD located by signature]";
  spdlog::info("attached to {} {} ({}){}", to_string(kind), shown,
               fmt::join(functions.begin(), functions.end(), ", "), how);
  return true;
}

void BpfCapture::scan_process(uint32_t pid) {
  // Caller holds mu_.
  const std::string proc_dir = "/proc/" + std::to_string(pid);
  for (const proc::MapsEntry& m : proc::read_maps(pid)) {
    if (m.inode == 0 || m.path.empty() || m.path.front() != '/') continue;
    const FileId id{kernel_dev(m.dev_major, m.dev_minor), m.inode};
    if (seen_files_.count(id)) continue;
    const std::string_view base = std::string_view(m.path).substr(m.path.rfind('/') + 1);
    if (!base.starts_with("libssl") && !base.starts_with("libgnutls.so") &&
        !base.starts_with("libnspr4.so"))
      continue;
    char range[64];
    snprintf(range, sizeof(range), "%llx-%llx", static_cast<unsigned long long>(m.start),
             static_cast<unsigned long long>(m.end));
    consider_file(id, proc_dir + "/map_files/" + range,
                  m.path + " (pid " + std::to_string(pid) + ")", TargetKind::kLibrary);
  }
  struct stat st {};
  const std::string exe = proc_dir + "/exe";
  if (stat(exe.c_str(), &st) == 0) {
    const FileId id{kernel_dev(major(st.st_dev), minor(st.st_dev)), st.st_ino};
    if (!seen_files_.count(id)) {
      char target[4096];
      const ssize_t n = readlink(exe.c_str(), target, sizeof(target) - 1);
      const std::string shown = n > 0 ? std::string(target, static_cast<size_t>(n)) : exe;
      consider_file(id, exe, shown, TargetKind::kExecutable);
    }
  }
}

void BpfCapture::scan_executables(const std::string& dir, int depth) {
  // Caller holds mu_.
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  while (dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    const std::string path = dir + "/" + e->d_name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) {
      // Not through a link to a directory (npm link, loops): its target is elsewhere.
      struct stat own {};
      if (depth > 0 && lstat(path.c_str(), &own) == 0 && S_ISDIR(own.st_mode))
        scan_executables(path, depth - 1);
      continue;
    }
    if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111) || st.st_size < kMinStaticTlsExecutable)
      continue;
    const FileId id{kernel_dev(major(st.st_dev), minor(st.st_dev)), st.st_ino};
    if (seen_files_.count(id)) continue;
    char magic[4] = {};
    if (FILE* f = std::fopen(path.c_str(), "rb")) {
      const size_t n = std::fread(magic, 1, sizeof(magic), f);
      std::fclose(f);
      if (n != sizeof(magic) || std::memcmp(magic,
                                            "\x7f"
                                            "ELF",
                                            4) != 0)
        continue;
    }
    char real[PATH_MAX];
    consider_file(id, path, realpath(path.c_str(), real) ? real : path, TargetKind::kExecutable);
  }
  closedir(d);
}

void BpfCapture::scan_foreign_root(uint32_t pid, uint64_t event_ns) {
  // Caller holds mu_. A process in another mount namespace (a container, a private mount)
  // may see a libssl the host does not have. Looking for it at exec, before the dynamic
  // loader maps it, attaches in time for the process's first TLS call; waiting for the
  // mmap leaves a window of a few milliseconds in which its first calls are missed.
  const std::string root = "/proc/" + std::to_string(pid) + "/root";
  struct stat ns {};
  if (stat(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), &ns) != 0) return;
  if (ns.st_ino == self_mnt_ns_) return;  // the host's files: attached at start
  for (const char* pattern : kLibraryGlobs) {
    glob_t g{};
    if (glob((root + pattern).c_str(), 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        const std::string path = g.gl_pathv[i];
        const auto id = file_id(path);
        if (!id || seen_files_.count(*id)) continue;
        if (consider_file(
                *id, path,
                path.substr(root.size()) + " (mount namespace of pid " + std::to_string(pid) + ")",
                TargetKind::kLibrary))
          note_latency(event_ns);
      }
    }
    globfree(&g);
  }
}

void BpfCapture::attach_existing() {
  std::lock_guard lock(mu_);
  for (const char* pattern : kLibraryGlobs) {
    glob_t g{};
    if (glob(pattern, 0, nullptr, &g) == 0) {
      for (size_t i = 0; i < g.gl_pathc; ++i) {
        const std::string path = g.gl_pathv[i];
        char real[PATH_MAX];
        const std::string shown = realpath(path.c_str(), real) ? real : path;
        if (auto id = file_id(path)) consider_file(*id, path, shown, TargetKind::kLibrary);
      }
    }
    globfree(&g);
  }
  // Executables with OpenSSL linked in (Node.js) are attached once per file too, so the
  // processes they start later are covered from their first instruction, not from the
  // moment their exec event is handled (tens of ms for a 100 MiB binary).
  for (const ExecutableDir& dir : kExecutableDirs) scan_executables(dir.path, dir.depth);
  for (const std::string& path : opt_.extra_targets) {
    struct stat st {};
    if (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      scan_executables(path, kAttachDirDepth);
      continue;
    }
    auto id = file_id(path);
    if (!id) {
      spdlog::warn("cannot attach to {}: {}", path,
                   errno == 0 ? "not a regular file" : std::strerror(errno));
      continue;
    }
    const bool library = path.find(".so") != std::string::npos;
    consider_file(*id, path, path, library ? TargetKind::kLibrary : TargetKind::kExecutable);
  }
  DIR* d = opendir("/proc");
  if (!d) return;
  const uint32_t self = static_cast<uint32_t>(getpid());
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    const unsigned long pid = std::strtoul(e->d_name, &end, 10);
    if (*end != '\0' || pid == 0 || pid == self) continue;
    scan_process(static_cast<uint32_t>(pid));
    if (opt_.stdio_candidate) consider_running_stdio(static_cast<uint32_t>(pid));
  }
  closedir(d);
}

void BpfCapture::note_latency(uint64_t event_boot_ns) {
  const uint64_t now = boot_now_ns();
  const uint64_t us = now > event_boot_ns ? (now - event_boot_ns) / 1000 : 0;
  latency_last_us_.store(us);
  uint64_t prev = latency_max_us_.load();
  while (us > prev && !latency_max_us_.compare_exchange_weak(prev, us)) {
  }
  spdlog::info("attach latency {:.3f} ms (from the kernel's exec or mmap event)",
               double(us) / 1000.0);
}

int BpfCapture::on_proc_event(void* ctx, void* data, size_t size) {
  static_cast<BpfCapture*>(ctx)->handle_proc(data, size);
  return 0;
}

void BpfCapture::handle_proc(const void* data, size_t size) {
  if (size < sizeof(uint32_t)) return;
  uint32_t kind;
  std::memcpy(&kind, data, sizeof(kind));
  std::lock_guard lock(mu_);
  if (kind == AW_EV_EXEC && size >= sizeof(aw_proc_exec)) {
    const auto* ev = static_cast<const aw_proc_exec*>(data);
    if (exec_hook_) exec_hook_(ev->pid);
    if (opt_.stdio_candidate) consider_stdio(*ev);
    exec_filenames_[ev->pid].first = ev->proc_start_ns;
    exec_filenames_[ev->pid].second =
        std::string(ev->filename, strnlen(ev->filename, sizeof(ev->filename)));
    const FileId id{ev->exe_dev, ev->exe_ino};
    if (seen_files_.count(id)) {
      scan_foreign_root(ev->pid, ev->ts_ns);
      return;
    }
    // A copy: consider_file may let go of mu_ for a while, and the entry with it.
    const std::string filename = exec_filenames_[ev->pid].second;
    std::string exe = "/proc/" + std::to_string(ev->pid) + "/exe";
    // A process that already exited leaves no /proc/PID/exe; the same file on the host's
    // path still serves for the processes that exec it next.
    if (access(exe.c_str(), F_OK) != 0) {
      const auto host = file_id(filename);
      if (!host || !(*host == id)) return;  // gone, and its root with it
      exe = filename;
    }
    if (consider_file(id, exe, filename, TargetKind::kExecutable)) note_latency(ev->ts_ns);
    scan_foreign_root(ev->pid, ev->ts_ns);
  } else if (kind == AW_EV_EXIT && size >= sizeof(aw_proc_exit)) {
    const auto* ev = static_cast<const aw_proc_exit*>(data);
    // Its exec path stays until the delayed exit: a short-lived process's first chunk or
    // connect may be announced after it is gone from /proc.
    forget_stdio(ev->pid, true);
    // Its last chunks may still be in the data ring: forget it a little later.
    pending_exits_.push_back({{ev->pid, ev->proc_start_ns}, boot_now_ns() + 2'000'000'000ull});
  } else if (kind == AW_EV_LIB_MAP && size >= sizeof(aw_lib_map)) {
    const auto* ev = static_cast<const aw_lib_map*>(data);
    const FileId id{ev->dev, ev->ino};
    if (seen_files_.count(id)) return;
    // The event comes before the mapping exists: it is looked for in /proc/PID/maps now
    // and on the next rounds, without holding up the events behind it.
    pending_maps_.push_back(
        {ev->pid, id, ev->ts_ns, std::string(ev->name, strnlen(ev->name, sizeof(ev->name))), 0});
    retry_pending_maps();
  }
}

void BpfCapture::retry_pending_maps() {
  // Caller holds mu_.
  std::erase_if(pending_maps_, [&](PendingMap& p) {
    if (seen_files_.count(p.id)) return true;
    for (const proc::MapsEntry& m : proc::read_maps(p.pid)) {
      if (m.inode != p.id.ino || kernel_dev(m.dev_major, m.dev_minor) != p.id.dev) continue;
      char range[64];
      snprintf(range, sizeof(range), "%llx-%llx", static_cast<unsigned long long>(m.start),
               static_cast<unsigned long long>(m.end));
      const std::string open_path = "/proc/" + std::to_string(p.pid) + "/map_files/" + range;
      if (consider_file(p.id, open_path, m.path + " (pid " + std::to_string(p.pid) + ")",
                        TargetKind::kLibrary))
        note_latency(p.event_ns);
      return true;
    }
    if (access(("/proc/" + std::to_string(p.pid)).c_str(), F_OK) != 0) return true;  // gone
    if (++p.attempts < kMaxMapAttempts) return false;
    spdlog::warn("pid {} mapped {} but it never appeared in /proc/{}/maps; not attached", p.pid,
                 p.name, p.pid);
    attach_failures_.fetch_add(1);
    return true;
  });
}

int BpfCapture::poll_discovery(int timeout_ms) {
  bool pending;
  {
    std::lock_guard lock(mu_);
    pending = !pending_maps_.empty();
  }
  // While a mapping is awaited, come back every millisecond.
  const int n = proc_rb_->poll(pending ? 1 : timeout_ms);
  if (pending) {
    std::lock_guard lock(mu_);
    retry_pending_maps();
  }
  return n;
}

void BpfCapture::announce_process(const ProcessKey& key, uint64_t cgroup_id,
                                  std::string_view comm) {
  announced_.insert(key);
  ProcessInfo info = proc::read_process(key, comm);
  {
    std::lock_guard lock(mu_);
    const StdioWatch* w = nullptr;
    if (auto it = stdio_watched_.find(key.pid); it != stdio_watched_.end()) {
      w = &it->second;
    } else if (auto gone = stdio_exited_.find(key.pid); gone != stdio_exited_.end()) {
      w = &gone->second;
    }
    // A watched server gone before this: as /proc showed it at its exec.
    if (!info.complete && w && w->self && w->self->key.start_ns == key.start_ns) info = *w->self;
    // Gone (or a zombie, whose exe link no longer reads): the path its exec gave.
    if (!info.complete || info.exe.empty()) {
      if (auto it = exec_filenames_.find(key.pid);
          it != exec_filenames_.end() && it->second.first == key.start_ns)
        info.exe = it->second.second;
    }
    if (w) {
      info.stdio_client = w->client;
      info.stdio_joined = w->joined;
    }
  }
  info.cgroup_id = cgroup_id;
  sink_->on_process(info);
}

// ---- MCP over stdio: which processes are watched ----

namespace {

// What fd `fd` of `pid` is: "pipe:[N]", "socket:[N]", "/dev/null", ...
std::string fd_channel(uint32_t pid, int fd) {
  char target[128];
  const std::string link = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

// Only a pipe or a socket can carry a stdio transport; a terminal or /dev/null cannot.
bool can_carry_stdio(const std::string& channel) {
  return channel.starts_with("pipe:") || channel.starts_with("socket:");
}

uint32_t parent_pid(uint32_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const size_t paren = text.rfind(')');  // the command name may hold spaces and parentheses
  if (paren == std::string::npos) return 0;
  char state = 0;
  unsigned ppid = 0;
  return std::sscanf(text.c_str() + paren + 1, " %c %u", &state, &ppid) == 2 ? ppid : 0;
}

// The process at the other end of a server's stdin: its nearest ancestor whose own stdin is
// another channel (a shell or launcher in between shares the server's).
uint32_t stdio_client_pid(uint32_t ppid, const std::string& channel) {
  uint32_t pid = ppid;
  for (int depth = 0; depth < 8 && pid > 1 && fd_channel(pid, 0) == channel; ++depth)
    pid = parent_pid(pid);
  return pid > 1 ? pid : ppid;
}

std::shared_ptr<const ProcessInfo> stdio_client(uint32_t ppid, const std::string& channel) {
  auto client =
      std::make_shared<ProcessInfo>(proc::read_process({stdio_client_pid(ppid, channel), 0}, ""));
  return client->complete ? client : nullptr;
}

}  // namespace

void BpfCapture::consider_stdio(const aw_proc_exec& ev) {
  // Caller holds mu_. A process that execs again (sh -c "exec node server.js") stays watched.
  if (stdio_watched_.count(ev.pid)) return;
  const std::string channel = fd_channel(ev.pid, 0);
  if (!can_carry_stdio(channel)) return;
  StdioWatch w{channel, nullptr};
  const ProcessInfo info = proc::read_process(
      {ev.pid, ev.proc_start_ns}, std::string_view(ev.comm, strnlen(ev.comm, sizeof(ev.comm))));
  // A wrapper (npx, uvx, sh -c) that is watched hands its stdin to the real server.
  const auto parent = stdio_watched_.find(ev.ppid);
  if (parent != stdio_watched_.end() && parent->second.stdin_channel == channel) {
    w.client = parent->second.client;
  } else {
    if (!info.complete || !opt_.stdio_candidate(info)) return;
    w.client = stdio_client(ev.ppid, channel);
  }
  if (info.complete) w.self = std::make_shared<const ProcessInfo>(info);
  watch_stdio(ev.pid, ev.ppid,
              std::string_view(ev.filename, strnlen(ev.filename, sizeof(ev.filename))),
              std::move(w));
}

// A process already running at the agent's start (attach_existing walks /proc in pid order,
// parents mostly first): the same test as at its exec, with stdout a pipe or socket too. Its
// session is joined mid-way.
void BpfCapture::consider_running_stdio(uint32_t pid) {
  // Caller holds mu_.
  if (stdio_watched_.count(pid)) return;
  const std::string channel = fd_channel(pid, 0);
  if (!can_carry_stdio(channel) || !can_carry_stdio(fd_channel(pid, 1))) return;
  const ProcessInfo info = proc::read_process({pid, 0}, "");
  if (!info.complete) return;
  StdioWatch w{channel, nullptr, /*joined=*/true};
  const auto parent = stdio_watched_.find(info.ppid);
  if (parent != stdio_watched_.end() && parent->second.stdin_channel == channel) {
    w.client = parent->second.client;
  } else {
    if (!opt_.stdio_candidate(info)) return;
    w.client = stdio_client(info.ppid, channel);
  }
  watch_stdio(pid, info.ppid, info.exe, std::move(w));
}

void BpfCapture::watch_stdio(uint32_t pid, uint32_t ppid, std::string_view what, StdioWatch w) {
  // Caller holds mu_.
  if (!stdio_link_) {
    stdio_link_ = bpf_program__attach(stdio_->progs.stdio_sys_exit);
    if (!stdio_link_) {
      spdlog::warn("cannot attach the stdio capture program (tp_btf sys_exit): {}",
                   explain_load_failure(errno));
      return;
    }
  }
  const uint32_t one = 1;
  if (const int rc = bpf_map__update_elem(stdio_->maps.stdio_pids, &pid, sizeof(pid), &one,
                                          sizeof(one), BPF_ANY);
      rc != 0) {
    spdlog::warn("cannot watch the stdio of pid {}: {}", pid, std::strerror(-rc));
    return;
  }
  spdlog::info(
      "watching the stdio of pid {} ({}), an MCP server candidate {} by pid {}", pid, what,
      w.joined ? "running before the agent (its session joined mid-way), started" : "started",
      w.client ? w.client->key.pid : ppid);
  stdio_watched_[pid] = std::move(w);
  stdio_->bss->watched_count = static_cast<uint32_t>(stdio_watched_.size());
}

void BpfCapture::forget_stdio(uint32_t pid, bool exited) {
  // Caller holds mu_.
  const auto it = stdio_watched_.find(pid);
  if (it == stdio_watched_.end()) return;
  // A server that exits before its first chunk is read still has its client when the data
  // thread announces it: kept until its delayed exit is applied.
  if (exited) stdio_exited_[pid] = std::move(it->second);
  stdio_watched_.erase(it);
  bpf_map__delete_elem(stdio_->maps.stdio_pids, &pid, sizeof(pid), 0);
  for (const int32_t fd : {0, 1}) {
    const struct {
      uint32_t tgid;
      int32_t fd;
    } key{pid, fd};
    bpf_map__delete_elem(stdio_->maps.pipe_streams, &key, sizeof(key), 0);
  }
  stdio_->bss->watched_count = static_cast<uint32_t>(stdio_watched_.size());
}

// ---- end MCP over stdio ----

void BpfCapture::apply_due_exits() {
  std::vector<ProcessKey> due;
  {
    std::lock_guard lock(mu_);
    if (pending_exits_.empty()) return;
    const uint64_t now = boot_now_ns();
    std::erase_if(pending_exits_, [&](const auto& p) {
      if (p.second > now) return false;
      due.push_back(p.first);
      stdio_exited_.erase(p.first.pid);
      // Unless the pid was reused: then the path is the new process's.
      if (const auto it = exec_filenames_.find(p.first.pid);
          it != exec_filenames_.end() && it->second.first == p.first.start_ns)
        exec_filenames_.erase(it);
      return true;
    });
  }
  for (const ProcessKey& key : due) {
    forget_plain(key.pid);
    if (announced_.erase(key)) sink_->on_exit(key);
  }
}

bool BpfCapture::watch_plaintext_ports(std::string& error) {
  const uint8_t one = 1;
  for (const uint16_t port : opt_.plaintext_ports) {
    if (const int rc = bpf_map__update_elem(stdio_->maps.plain_ports, &port, sizeof(port), &one,
                                            sizeof(one), BPF_ANY);
        rc != 0) {
      error = "cannot watch plaintext port " + std::to_string(port) + ": " + std::strerror(-rc);
      return false;
    }
  }
  if (opt_.plaintext_ports.empty() && !opt_.connect_events) return true;
  stdio_link_ = bpf_program__attach(stdio_->progs.stdio_sys_exit);
  if (!stdio_link_) {
    error = "cannot attach the plaintext capture program (tp_btf sys_exit): " +
            explain_load_failure(errno);
    return false;
  }
  stdio_->bss->plain_port_count = static_cast<uint32_t>(opt_.plaintext_ports.size());
  stdio_->bss->connect_events = opt_.connect_events ? 1 : 0;
  return true;
}

// A process that exited closes its connections without close(): they leave the kernel's map.
void BpfCapture::forget_plain(uint32_t pid) {
  for (auto it = plain_conns_.begin(); it != plain_conns_.end();) {
    if (it->second.pid != pid) {
      ++it;
      continue;
    }
    const struct {
      uint32_t tgid;
      int32_t fd;
    } key{pid, it->second.fd};
    if (bpf_map__delete_elem(stdio_->maps.sock_streams, &key, sizeof(key), 0) == 0)
      __atomic_fetch_sub(&stdio_->bss->sock_count, 1, __ATOMIC_RELAXED);
    it = plain_conns_.erase(it);
  }
}

int BpfCapture::on_data_event(void* ctx, void* data, size_t size) {
  static_cast<BpfCapture*>(ctx)->handle_data(data, size);
  return 0;
}

namespace {

TlsFunc tls_func_of(uint8_t func) {
  switch (func) {
    case AW_FN_GNUTLS_SEND:
      return TlsFunc::kGnutlsRecordSend;
    case AW_FN_GNUTLS_RECV:
      return TlsFunc::kGnutlsRecordRecv;
    case AW_FN_GO_WRITE:
      return TlsFunc::kGoTlsWrite;
    case AW_FN_GO_READ:
      return TlsFunc::kGoTlsRead;
    case AW_FN_NSS_PR_WRITE:
      return TlsFunc::kNssPrWrite;
    case AW_FN_NSS_PR_READ:
      return TlsFunc::kNssPrRead;
    case AW_FN_NSS_PR_SEND:
      return TlsFunc::kNssPrSend;
    case AW_FN_NSS_PR_RECV:
      return TlsFunc::kNssPrRecv;
    case AW_FN_AEAD_SEAL:
      return TlsFunc::kAeadSeal;
    case AW_FN_AEAD_OPEN:
      return TlsFunc::kAeadOpen;
    default:
      return static_cast<TlsFunc>(func & 3);
  }
}

Endpoint endpoint_of(const aw_endpoint& e) {
  Endpoint out;
  out.family = e.family;
  out.port = e.port;
  std::memcpy(out.addr.data(), e.addr, sizeof(e.addr));
  return out;
}

// What TLS and pipe chunk events say alike; `data` is the event's, `len` already checked.
template <typename Event>
TlsChunk chunk_of(const Event* ev, size_t len, uint64_t boot_offset) {
  TlsChunk c;
  c.time_ns = ev->ts_ns + boot_offset;
  c.process = {ev->pid, ev->proc_start_ns};
  c.tid = ev->tid;
  c.uid = ev->uid;
  c.cgroup_id = ev->cgroup_id;
  c.comm = std::string_view(ev->comm, strnlen(ev->comm, sizeof(ev->comm)));
  c.fd = ev->fd;
  c.dir = ev->dir == AW_DIR_IN ? Direction::kIn : Direction::kOut;
  c.flags = ev->flags;
  c.stream_off = ev->stream_off;
  c.call_len = ev->call_len;
  c.call_off = ev->call_off;
  c.data = std::string_view(reinterpret_cast<const char*>(ev->data), len);
  return c;
}

}  // namespace

void BpfCapture::handle_data(const void* data, size_t size) {
  if (size < sizeof(uint32_t)) return;
  uint32_t kind;
  std::memcpy(&kind, data, sizeof(kind));
  if (kind == AW_EV_TLS_DATA && size >= AW_TLS_DATA_HDR_LEN &&
      (static_cast<const aw_tls_data*>(data)->flags & AW_F_UNBOUND)) {
    hold_unbound(static_cast<const aw_tls_data*>(data), size);
  } else if (kind == AW_EV_AEAD_BIND && size >= sizeof(aw_aead_bind)) {
    bind_unbound(*static_cast<const aw_aead_bind*>(data));
  } else if (kind == AW_EV_TLS_DATA && size >= AW_TLS_DATA_HDR_LEN) {
    const auto* ev = static_cast<const aw_tls_data*>(data);
    TlsChunk c = chunk_of(ev, std::min<size_t>(ev->len, size - AW_TLS_DATA_HDR_LEN), boot_offset_);
    c.conn_id = ev->conn_id;
    c.ssl = ev->ssl;
    c.func = tls_func_of(ev->func);
    c.local = endpoint_of(ev->local);
    c.peer = endpoint_of(ev->peer);
    if (!announced_.count(c.process)) announce_process(c.process, c.cgroup_id, c.comm);
    sink_->on_chunk(c);
  } else if ((kind == AW_EV_PIPE_DATA || kind == AW_EV_SOCK_DATA) && size >= AW_PIPE_DATA_HDR_LEN) {
    const auto* ev = static_cast<const aw_pipe_data*>(data);
    TlsChunk c = chunk_of(ev, std::min<size_t>(ev->len, size - AW_PIPE_DATA_HDR_LEN), boot_offset_);
    c.conn_id = ev->stream_id;
    c.func = static_cast<TlsFunc>(static_cast<uint8_t>(TlsFunc::kRead) + (ev->call & 7));
    if (kind == AW_EV_PIPE_DATA) {
      c.flags |= kChunkPipe;
    } else {
      c.flags |= kChunkPlain;
      if (const auto it = plain_conns_.find(ev->stream_id); it != plain_conns_.end()) {
        if (it->second.dns) {  // a resolver's datagram: its answers only, never the pipeline
          if (c.dir == Direction::kIn && !c.truncated()) sink_->on_dns(c.process, c.data);
          return;
        }
        c.local = it->second.local;
        c.peer = it->second.peer;
      }
    }
    if (!announced_.count(c.process)) announce_process(c.process, c.cgroup_id, c.comm);
    sink_->on_chunk(c);
  } else if (kind == AW_EV_SOCK_OPEN && size >= sizeof(aw_sock_open)) {
    const auto* ev = static_cast<const aw_sock_open*>(data);
    TcpConnect tc;
    tc.time_ns = ev->ts_ns + boot_offset_;
    tc.process = {ev->pid, ev->proc_start_ns};
    tc.tid = ev->tid;
    tc.fd = ev->fd;
    tc.conn_id = ev->stream_id;
    tc.local = endpoint_of(ev->local);
    tc.peer = endpoint_of(ev->peer);
    if (ev->flags & AW_SOCK_DNS) {
      if (ev->stream_id) plain_conns_[ev->stream_id] = {ev->pid, ev->fd, tc.local, tc.peer, true};
      return;
    }
    if (ev->stream_id) {
      plain_conns_[ev->stream_id] = {ev->pid, ev->fd, tc.local, tc.peer, false};
      spdlog::debug("watching plaintext connection {} of pid {} ({} -> {})", ev->stream_id, ev->pid,
                    tc.local.to_string(), tc.peer.to_string());
    }
    if (!announced_.count(tc.process)) {
      announce_process(tc.process, ev->cgroup_id,
                       std::string_view(ev->comm, strnlen(ev->comm, sizeof(ev->comm))));
    }
    sink_->on_connect(tc);
  } else if (kind == AW_EV_TLS_HELLO && size >= offsetof(aw_tls_hello, data)) {
    const auto* ev = static_cast<const aw_tls_hello*>(data);
    const size_t len = std::min<size_t>(ev->len, size - offsetof(aw_tls_hello, data));
    ClientHello h;
    h.sni =
        coverage::client_hello_sni(std::string_view(reinterpret_cast<const char*>(ev->data), len));
    if (h.sni.empty()) return;  // no name (an IP literal), or not read whole enough
    h.time_ns = ev->ts_ns + boot_offset_;
    h.process = {ev->pid, ev->proc_start_ns};
    h.tid = ev->tid;
    h.fd = ev->fd;
    h.peer = endpoint_of(ev->peer);
    sink_->on_client_hello(h);
  } else if (kind == AW_EV_SOCK_CLOSE && size >= sizeof(aw_tls_close)) {
    const auto* ev = static_cast<const aw_tls_close*>(data);
    const auto it = plain_conns_.find(ev->conn_id);
    const bool dns = it != plain_conns_.end() && it->second.dns;
    if (it != plain_conns_.end()) plain_conns_.erase(it);
    if (dns) return;
    sink_->on_close({ev->ts_ns + boot_offset_,
                     {ev->pid, ev->proc_start_ns},
                     ev->tid,
                     ev->conn_id,
                     0,
                     ev->bytes_out,
                     ev->bytes_in});
  } else if (kind == AW_EV_TLS_HOLD && size >= sizeof(aw_tls_hold)) {
    const auto* ev = static_cast<const aw_tls_hold*>(data);
    TlsHold h;
    h.time_ns = ev->ts_ns + boot_offset_;
    h.process = {ev->pid, ev->proc_start_ns};
    h.tid = ev->tid;
    h.conn_id = ev->conn_id;
    h.ssl = ev->ssl;
    h.buf = ev->buf;
    h.sp = ev->sp;
    h.ip = ev->ip;
    h.stream_off = ev->stream_off;
    h.len = ev->len;
    h.fd = ev->fd;
    h.func = tls_func_of(ev->func);
    h.seq = ev->seq;
    sink_->on_hold(h);
  } else if (kind == AW_EV_TLS_SNI && size >= sizeof(aw_tls_sni)) {
    const auto* ev = static_cast<const aw_tls_sni*>(data);
    sink_->on_sni({ev->ts_ns + boot_offset_,
                   {ev->pid, ev->proc_start_ns},
                   ev->tid,
                   ev->conn_id,
                   ev->ssl,
                   std::string(ev->sni, strnlen(ev->sni, sizeof(ev->sni)))});
  } else if (kind == AW_EV_TLS_CLOSE && size >= sizeof(aw_tls_close)) {
    const auto* ev = static_cast<const aw_tls_close*>(data);
    sink_->on_close({ev->ts_ns + boot_offset_,
                     {ev->pid, ev->proc_start_ns},
                     ev->tid,
                     ev->conn_id,
                     ev->ssl,
                     ev->bytes_out,
                     ev->bytes_in});
  }
}

void BpfCapture::hold_unbound(const aw_tls_data* ev, size_t size) {
  static constexpr size_t kMaxKeys = 256;
  static constexpr size_t kMaxBytesPerKey = 4 << 20;
  const UnboundKey k{ev->pid, ev->ssl};
  auto it = unbound_.find(k);
  if (it == unbound_.end()) {
    if (unbound_.size() >= kMaxKeys) {
      auto oldest = unbound_.begin();
      for (auto i = unbound_.begin(); i != unbound_.end(); ++i)
        if (i->second.seq < oldest->second.seq) oldest = i;
      unbound_dropped_ += oldest->second.events.size();
      spdlog::warn(
          "dropping {} rustls records of pid {} sealed before their socket was known: no write "
          "of them was seen ({} dropped so far)",
          oldest->second.events.size(), oldest->first.pid, unbound_dropped_);
      unbound_.erase(oldest);
    }
    it = unbound_.emplace(k, Unbound{{}, 0, ++unbound_seq_}).first;
  }
  if (it->second.bytes + size > kMaxBytesPerKey) {
    ++unbound_dropped_;
    return;
  }
  it->second.events.emplace_back(static_cast<const char*>(static_cast<const void*>(ev)), size);
  it->second.bytes += size;
}

void BpfCapture::bind_unbound(const aw_aead_bind& b) {
  const auto it = unbound_.find({b.pid, b.key});
  if (it == unbound_.end()) return;
  Unbound held = std::move(it->second);
  unbound_.erase(it);
  for (std::string& e : held.events) {
    auto* ev = reinterpret_cast<aw_tls_data*>(e.data());
    if (ev->proc_start_ns != b.proc_start_ns) continue;  // a reused pid: not this process's
    ev->flags &= ~static_cast<uint32_t>(AW_F_UNBOUND);
    ev->conn_id = b.conn_id;
    ev->ssl = b.ssl;
    ev->fd = b.fd;
    ev->stream_off += b.base_off;
    ev->local = b.local;
    ev->peer = b.peer;
    handle_data(e.data(), e.size());
  }
}

void BpfCapture::set_gate(bool enabled, bool any_host, bool any_process) {
  // The .bss globals are memory-mapped: the programs see the store at once.
  tls_->bss->gate_any_host = any_host ? 1 : 0;
  tls_->bss->gate_any_process = any_process ? 1 : 0;
  tls_->bss->gate_enabled = enabled ? 1 : 0;
}

namespace {

template <typename Key>
bool update_gate_map(bpf_map* map, const Key& key, bool on, std::string_view what) {
  const uint32_t one = 1;
  const int rc = on ? bpf_map__update_elem(map, &key, sizeof(key), &one, sizeof(one), BPF_ANY)
                    : bpf_map__delete_elem(map, &key, sizeof(key), 0);
  if (rc != 0 && !(rc == -ENOENT && !on)) {
    spdlog::error("cannot {} the enforcement gate for {}: {}", on ? "add to" : "remove from", what,
                  std::strerror(-rc));
    return false;
  }
  return true;
}

}  // namespace

bool BpfCapture::gate_pid(uint32_t pid, bool on) {
  return update_gate_map(tls_->maps.gate_pids, pid, on, "pid " + std::to_string(pid));
}

bool BpfCapture::gate_cgroup(uint64_t cgroup_id, bool on) {
  return update_gate_map(tls_->maps.gate_cgroups, cgroup_id, on,
                         "cgroup " + std::to_string(cgroup_id));
}

bool BpfCapture::gate_host(std::string_view host, bool on) {
  uint64_t h = AW_HOST_HASH_SEED;
  for (char c : host) h = aw_host_hash_step(h, static_cast<uint8_t>(c));
  return update_gate_map(tls_->maps.gate_hosts, h, on, "host " + std::string(host));
}

int BpfCapture::poll_data(int timeout_ms, CaptureSink& sink) {
  sink_ = &sink;
  // Chunks do not wake the reader (tls.bpf.c, wakeup_flags): wait at most a few
  // milliseconds, then take whatever is there.
  int n = data_rb_->poll(std::min(timeout_ms, kDataPollMs));
  if (n >= 0) {
    const int more = data_rb_->consume();
    n = more < 0 ? more : n + more;
  }
  apply_due_exits();
  return n;
}

uint64_t sum_percpu(int map_fd, uint32_t slot) {
  static const int ncpus = libbpf_num_possible_cpus();
  std::vector<uint64_t> values(static_cast<size_t>(std::max(ncpus, 1)));
  if (bpf_map_lookup_elem(map_fd, &slot, values.data()) != 0) return 0;
  uint64_t total = 0;
  for (uint64_t v : values) total += v;
  return total;
}

Counters BpfCapture::counters() const {
  Counters c;
  const int fd = bpf_map__fd(tls_->maps.counters);
  c.calls = sum_percpu(fd, AW_CNT_CALLS);
  c.chunks = sum_percpu(fd, AW_CNT_CHUNKS);
  c.bytes = sum_percpu(fd, AW_CNT_BYTES);
  c.ringbuf_drop_chunks = sum_percpu(fd, AW_CNT_RB_DROP_CHUNKS);
  c.ringbuf_drop_bytes = sum_percpu(fd, AW_CNT_RB_DROP_BYTES);
  c.truncated_calls = sum_percpu(fd, AW_CNT_TRUNC_CALLS);
  c.truncated_bytes = sum_percpu(fd, AW_CNT_TRUNC_BYTES);
  c.read_faults = sum_percpu(fd, AW_CNT_READ_FAULTS);
  c.ctrl_drops = sum_percpu(fd, AW_CNT_CTRL_DROPS);
  c.no_entry = sum_percpu(fd, AW_CNT_NO_ENTRY);
  c.holds = sum_percpu(fd, AW_CNT_HOLDS);
  c.hold_drops = sum_percpu(fd, AW_CNT_HOLD_DROPS);
  c.proc_event_drops = sum_percpu(bpf_map__fd(proc_->maps.proc_drops), 0);
  const int sfd = bpf_map__fd(stdio_->maps.stdio_counters);
  c.stdio_watched = stdio_->bss->watched_count;
  c.stdio_calls = sum_percpu(sfd, AW_STDIO_CALLS);
  c.stdio_bytes = sum_percpu(sfd, AW_STDIO_BYTES);
  c.stdio_drop_chunks = sum_percpu(sfd, AW_STDIO_RB_DROP_CHUNKS);
  c.stdio_drop_bytes = sum_percpu(sfd, AW_STDIO_RB_DROP_BYTES);
  c.stdio_truncated_bytes = sum_percpu(sfd, AW_STDIO_TRUNC_BYTES);
  c.stdio_read_faults = sum_percpu(sfd, AW_STDIO_READ_FAULTS);
  c.plain_connections = sum_percpu(sfd, AW_STDIO_SOCK_OPENS);
  c.plain_open = static_cast<uint64_t>(std::max(0, stdio_->bss->sock_count));
  c.plain_map_full = sum_percpu(sfd, AW_STDIO_SOCK_FULL);
  c.plain_calls = sum_percpu(sfd, AW_STDIO_SOCK_CALLS);
  c.plain_bytes = sum_percpu(sfd, AW_STDIO_SOCK_BYTES);
  bpf_program* prog;
  for (bpf_object* obj : {tls_->obj, stdio_->obj}) {
    bpf_object__for_each_program(prog, obj) {
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
        c.bpf_recursion_misses += info.recursion_misses;
    }
  }
  c.attach_failures = attach_failures_.load();
  c.attach_count = attach_count_.load();
  c.attach_latency_last_ms = double(latency_last_us_.load()) / 1000.0;
  c.attach_latency_max_ms = double(latency_max_us_.load()) / 1000.0;
  return c;
}

}  // namespace

std::unique_ptr<Capture> Capture::open(const Options& options, std::string& error) {
  auto capture = std::make_unique<BpfCapture>(options);
  if (!capture->load(error)) return nullptr;
  return capture;
}

}  // namespace agentwall::capture
