// ssl_write_bench: what one SSL_write costs the calling thread, over a real TLS 1.3
// connection on loopback, so that run.sh can measure it with and without uprobes on
// libssl attached. Three modes, chosen by the first flags (read before Google Benchmark
// sees the command line):
//
//   ssl_write_bench [--server=spin|raw|ssl] [--cpus=W,S] [--benchmark_* flags]
//       Google Benchmark: BM_SSL_write/1024 and BM_SSL_write/65536.
//   ssl_write_bench --rate-mbps R [--seconds S] [--size N] [--server=spin|raw|ssl] [--cpus=W,S]
//       Paced load: SSL_write N-byte buffers at R MB/s (1 MB = 10^6 bytes) of plaintext
//       for S seconds (R = 0: as fast as possible) and print one JSON line with the
//       achieved rate.
//   ssl_write_bench --print-libssl
//       Print the path of the libssl this process maps (where SSL_write lives), the file
//       a uprobe must be attached to. Fails when libssl is linked statically.
//
// The connection: a client SSL in the calling thread and a server thread in the same
// process, on 127.0.0.1 with an ephemeral port, a self-signed P-256 certificate made in
// memory, TLS 1.3 only, no session tickets. After the handshake the server discards what
// it receives, by one of --server=
//   spin  recv() the ciphertext without decrypting it, non-blocking, in a loop that yields
//         the CPU but never sleeps (the benchmarks' default: see serve());
//   raw   recv() the ciphertext, blocking (the load mode's default);
//   ssl   SSL_read() it, which a tool that probes SSL_read as well then captures a second
//         time on the other core.
// With spin and raw the only libssl data calls in the process are the measured SSL_writes.
// --cpus=W,S pins the writing thread to CPU W and the server thread to CPU S (default: not
// pinned).

#include <arpa/inet.h>
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "ssl_write_bench: %s", what.c_str());
  if (errno != 0) std::fprintf(stderr, " (errno: %s)", std::strerror(errno));
  std::fprintf(stderr, "\n");
  ERR_print_errors_fp(stderr);
  std::exit(2);
}

enum class ServerMode { kSpin, kRaw, kSsl };

const char* to_string(ServerMode m) {
  switch (m) {
    case ServerMode::kSpin:
      return "spin";
    case ServerMode::kRaw:
      return "raw";
    case ServerMode::kSsl:
      return "ssl";
  }
  return "?";
}

// CPUs the writing thread and the server thread are pinned to; -1 = not pinned. Where the
// two threads land decides how loopback TCP's work is split between them, so left to the
// scheduler the cost of one SSL_write changes from one process to the next.
int g_writer_cpu = -1;
int g_server_cpu = -1;

void pin_to(int cpu) {
  if (cpu < 0) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) die("cannot pin to CPU " + std::to_string(cpu));
}

struct Identity {
  EVP_PKEY* key = nullptr;
  X509* cert = nullptr;
};

// A self-signed certificate for CN=localhost, valid for a day, made in memory.
Identity make_identity() {
  Identity id;
  id.key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  if (!id.key) die("EC key generation failed");
  id.cert = X509_new();
  if (!id.cert) die("X509_new failed");
  X509_set_version(id.cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(id.cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(id.cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(id.cert), 86400);
  X509_set_pubkey(id.cert, id.key);
  X509_NAME* name = X509_get_subject_name(id.cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(id.cert, name);
  if (X509_sign(id.cert, id.key, EVP_sha256()) == 0) die("X509_sign failed");
  return id;
}

// One TLS 1.3 connection over loopback TCP: the client end is used by the caller, the
// server end runs in its own thread and discards everything until the client closes.
class TlsPair {
 public:
  explicit TlsPair(ServerMode mode) : mode_(mode) {
    id_ = make_identity();

    sctx_ = SSL_CTX_new(TLS_server_method());
    cctx_ = SSL_CTX_new(TLS_client_method());
    if (!sctx_ || !cctx_) die("SSL_CTX_new failed");
    for (SSL_CTX* ctx : {sctx_, cctx_}) {
      SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
      SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    }
    if (SSL_CTX_use_certificate(sctx_, id_.cert) != 1) die("SSL_CTX_use_certificate failed");
    if (SSL_CTX_use_PrivateKey(sctx_, id_.key) != 1) die("SSL_CTX_use_PrivateKey failed");
    SSL_CTX_set_num_tickets(sctx_, 0);  // nothing flows server -> client after the handshake
    // The client trusts exactly this certificate and checks the name.
    if (X509_STORE_add_cert(SSL_CTX_get_cert_store(cctx_), id_.cert) != 1) {
      die("X509_STORE_add_cert failed");
    }
    SSL_CTX_set_verify(cctx_, SSL_VERIFY_PEER, nullptr);

    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) die("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;  // ephemeral
    if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      die("bind 127.0.0.1:0 failed");
    }
    if (listen(listen_fd_, 1) != 0) die("listen failed");
    socklen_t len = sizeof(addr);
    if (getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      die("getsockname failed");
    }

    server_ = std::thread([this] { serve(); });

    client_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (client_fd_ < 0) die("socket failed");
    if (connect(client_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      die("connect to 127.0.0.1 failed");
    }
    int one = 1;
    setsockopt(client_fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    client_ = SSL_new(cctx_);
    if (!client_) die("SSL_new failed");
    SSL_set_fd(client_, client_fd_);
    SSL_set_tlsext_host_name(client_, "localhost");
    SSL_set1_host(client_, "localhost");
    if (SSL_connect(client_) != 1) die("TLS handshake (client) failed");
    if (SSL_version(client_) != TLS1_3_VERSION) die("negotiated a version other than TLS 1.3");
  }

  ~TlsPair() {
    SSL_shutdown(client_);  // close_notify; the server then sees EOF
    shutdown(client_fd_, SHUT_WR);
    server_.join();
    SSL_free(client_);
    close(client_fd_);
    close(listen_fd_);
    SSL_CTX_free(cctx_);
    SSL_CTX_free(sctx_);
    X509_free(id_.cert);
    EVP_PKEY_free(id_.key);
    if (server_failed_.load()) die("TLS handshake (server) failed");
  }

  TlsPair(const TlsPair&) = delete;
  TlsPair& operator=(const TlsPair&) = delete;

  SSL* client() const { return client_; }

 private:
  void serve() {
    pin_to(g_server_cpu);
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      server_failed_ = true;
      return;
    }
    SSL* ssl = SSL_new(sctx_);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) != 1) {
      server_failed_ = true;
    } else {
      std::vector<unsigned char> sink(256 * 1024);
      if (mode_ == ServerMode::kSpin) {
        // As kRaw, but never asleep in recv(): the writer's loopback send then never has a
        // reader to wake, a wakeup that the writer pays or not depending on how the two
        // threads happen to run. A remote peer costs the writer no wakeup either. Between
        // drains it sleeps 50 µs (the socket buffers hold far more than that), so that the
        // CPU stays free for the tool under test, as on a machine with spare capacity.
        const timespec pause{0, 50 * 1000};
        for (;;) {
          ssize_t n = recv(fd, sink.data(), sink.size(), MSG_DONTWAIT);
          if (n > 0) continue;
          if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) break;
          nanosleep(&pause, nullptr);
        }
      } else if (mode_ == ServerMode::kRaw) {
        // The handshake is done and no read-ahead is on, so the rest is application
        // data records: throw the ciphertext away without decrypting it.
        while (recv(fd, sink.data(), sink.size(), 0) > 0) {
        }
      } else {
        while (SSL_read(ssl, sink.data(), static_cast<int>(sink.size())) > 0) {
        }
      }
    }
    SSL_free(ssl);
    close(fd);
  }

  ServerMode mode_;
  Identity id_;
  SSL_CTX* sctx_ = nullptr;
  SSL_CTX* cctx_ = nullptr;
  int listen_fd_ = -1;
  int client_fd_ = -1;
  SSL* client_ = nullptr;
  std::thread server_;
  std::atomic<bool> server_failed_{false};
};

ServerMode g_server_mode = ServerMode::kSpin;  // the load mode's default is kRaw
std::unique_ptr<TlsPair> g_pair;  // one connection for every benchmark run of the process

// Printable, so a tool that prints the buffer as text does the same work as for HTTP.
std::vector<unsigned char> payload(size_t size) {
  std::vector<unsigned char> buf(size);
  uint32_t x = 2463534242u;
  for (auto& b : buf) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<unsigned char>('a' + x % 26);
  }
  return buf;
}

void BM_SSL_write(benchmark::State& state) {
  if (!g_pair) g_pair = std::make_unique<TlsPair>(g_server_mode);
  const auto size = static_cast<int>(state.range(0));
  const std::vector<unsigned char> buf = payload(static_cast<size_t>(size));
  SSL* ssl = g_pair->client();
  for (auto _ : state) {
    int n = SSL_write(ssl, buf.data(), size);
    if (n != size) {
      state.SkipWithError("SSL_write failed");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * size);
}
BENCHMARK(BM_SSL_write)->Arg(1024)->Arg(65536);

double now_s() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

void sleep_until(double t) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(t);
  ts.tv_nsec = static_cast<long>((t - static_cast<double>(ts.tv_sec)) * 1e9);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

// Writes `size`-byte buffers at `rate_mbps` MB/s for `seconds`; each write is due when the
// bytes before it have had their time at the target rate, so a late write is caught up
// without sleeping and the average stays on target.
int run_load(double rate_mbps, double seconds, int size) {
  TlsPair pair(g_server_mode);
  const std::vector<unsigned char> buf = payload(static_cast<size_t>(size));
  SSL* ssl = pair.client();
  const double bytes_per_s = rate_mbps * 1e6;
  uint64_t bytes = 0;
  uint64_t calls = 0;
  const double cpu0 = cpu_s();
  const double start = now_s();
  const double end = start + seconds;
  double now = start;
  while (now < end) {
    if (bytes_per_s > 0) {
      const double due = start + static_cast<double>(bytes) / bytes_per_s;
      if (due > now) {
        if (due >= end) break;
        sleep_until(due);
      }
    }
    int n = SSL_write(ssl, buf.data(), size);
    if (n != size) die("SSL_write failed");
    bytes += static_cast<uint64_t>(n);
    ++calls;
    now = now_s();
  }
  const double elapsed = now_s() - start;
  const double cpu = cpu_s() - cpu0;
  std::printf(
      "{\"mode\":\"load\",\"target_mbps\":%.1f,\"achieved_mbps\":%.2f,\"bytes\":%llu,"
      "\"calls\":%llu,\"seconds\":%.3f,\"size\":%d,\"server\":\"%s\",\"pid\":%d,"
      "\"cpu_seconds\":%.3f}\n",
      rate_mbps, static_cast<double>(bytes) / elapsed / 1e6, static_cast<unsigned long long>(bytes),
      static_cast<unsigned long long>(calls), elapsed, size, to_string(g_server_mode),
      static_cast<int>(getpid()), cpu);
  std::fflush(stdout);
  return 0;
}

int print_libssl() {
  Dl_info info{};
  void* fn = reinterpret_cast<void*>(&SSL_write);
  if (dladdr(fn, &info) == 0 || !info.dli_fname) die("dladdr(SSL_write) failed");
  Dl_info self{};
  void* main_fn = reinterpret_cast<void*>(&print_libssl);
  if (dladdr(main_fn, &self) != 0 && self.dli_fbase == info.dli_fbase) {
    die("SSL_write is in the executable itself: libssl is linked statically");
  }
  char real[4096];
  if (!realpath(info.dli_fname, real)) die(std::string("realpath failed for ") + info.dli_fname);
  std::printf("%s\n", real);
  return 0;
}

bool take_value(std::string_view arg, std::string_view name, int& i, int argc, char** argv,
                std::string& out) {
  if (arg == name) {
    if (i + 1 >= argc) die(std::string(name) + " needs a value");
    out = argv[++i];
    return true;
  }
  if (arg.size() > name.size() && arg.substr(0, name.size()) == name && arg[name.size()] == '=') {
    out = std::string(arg.substr(name.size() + 1));
    return true;
  }
  return false;
}

double to_number(const std::string& s, const char* flag) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || *end != '\0' || v < 0) die(std::string("bad value for ") + flag + ": " + s);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);

  std::string rate, seconds, size, server, cpus;
  bool want_libssl = false;
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (take_value(a, "--rate-mbps", i, argc, argv, rate)) continue;
    if (take_value(a, "--seconds", i, argc, argv, seconds)) continue;
    if (take_value(a, "--size", i, argc, argv, size)) continue;
    if (take_value(a, "--server", i, argc, argv, server)) continue;
    if (take_value(a, "--cpus", i, argc, argv, cpus)) continue;
    if (a == "--print-libssl") {
      want_libssl = true;
      continue;
    }
    rest.push_back(argv[i]);
  }
  const bool load_mode = !rate.empty() || !seconds.empty() || !size.empty();
  // A paced load leaves the writer idle most of the time: a spinning server would burn a
  // core the agent under test needs.
  if (load_mode) g_server_mode = ServerMode::kRaw;
  if (!server.empty()) {
    if (server == "spin") {
      g_server_mode = ServerMode::kSpin;
    } else if (server == "raw") {
      g_server_mode = ServerMode::kRaw;
    } else if (server == "ssl") {
      g_server_mode = ServerMode::kSsl;
    } else {
      die("--server must be spin, raw or ssl");
    }
  }
  if (want_libssl) return print_libssl();
  if (!cpus.empty() && cpus != "none") {
    const auto comma = cpus.find(',');
    if (comma == std::string::npos) die("--cpus must be WRITER,SERVER (CPU numbers) or none");
    g_writer_cpu = static_cast<int>(to_number(cpus.substr(0, comma), "--cpus"));
    g_server_cpu = static_cast<int>(to_number(cpus.substr(comma + 1), "--cpus"));
  }
  pin_to(g_writer_cpu);  // before any thread starts: the server thread then re-pins itself

  if (load_mode) {
    if (rest.size() > 1) die(std::string("unknown argument in load mode: ") + rest[1]);
    const double r = rate.empty() ? 0 : to_number(rate, "--rate-mbps");
    const double s = seconds.empty() ? 5 : to_number(seconds, "--seconds");
    const double n = size.empty() ? 16384 : to_number(size, "--size");
    if (n < 1 || n > (1 << 30)) die("--size must be in 1..2^30");
    return run_load(r, s, static_cast<int>(n));
  }

  int bargc = static_cast<int>(rest.size());
  rest.push_back(nullptr);
  benchmark::Initialize(&bargc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(bargc, rest.data())) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_pair.reset();
  return 0;
}
