#include "agent/sinks/transport.h"

#include "agent/common/ascii.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

namespace agentwall::sinks {
namespace {

std::string ssl_error_text() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown TLS error" : out;
}

int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                        deadline - std::chrono::steady_clock::now())
                        .count();
  return left < 0 ? 0 : static_cast<int>(left);
}

bool wait_fd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

bool ci_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii::lower(a[i]) != ascii::lower(b[i])) return false;
  return true;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::create(const TlsOptions& o, std::string& error) {
  auto t = std::shared_ptr<TlsContext>(new TlsContext());
  t->options_ = o;
  t->ctx_ = SSL_CTX_new(TLS_client_method());
  if (!t->ctx_) {
    error = "cannot create a TLS context: " + ssl_error_text();
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
  if (o.verify) {
    SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_PEER, nullptr);
    if (!o.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(t->ctx_, o.ca_file.c_str(), nullptr) != 1) {
        error = "cannot load the CA file " + o.ca_file + " (ca=): " + ssl_error_text();
        return nullptr;
      }
    } else if (SSL_CTX_set_default_verify_paths(t->ctx_) != 1) {
      error = "cannot load the system CA store: " + ssl_error_text() +
              "; give the SIEM's CA with ca=/path/ca.pem";
      return nullptr;
    }
  } else {
    SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_NONE, nullptr);
  }
  if (!o.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(t->ctx_, o.cert_file.c_str()) != 1) {
      error = "cannot load the client certificate " + o.cert_file + " (cert=): " + ssl_error_text();
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(t->ctx_, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(t->ctx_) != 1) {
      error = "cannot load the client key " + o.key_file + " (key=), or it does not match " +
              o.cert_file + ": " + ssl_error_text();
      return nullptr;
    }
  }
  return t;
}

TlsContext::~TlsContext() {
  if (ctx_) SSL_CTX_free(ctx_);
}

std::unique_ptr<Stream> Stream::connect(const std::string& host, uint16_t port,
                                        std::shared_ptr<TlsContext> tls,
                                        std::chrono::milliseconds timeout, std::string& error) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return nullptr;
  }
  std::unique_ptr<Stream> s(new Stream());
  s->timeout_ = timeout;
  s->tls_ = tls;
  std::string last = "no address";
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      last = std::strerror(errno);
      continue;
    }
    int rc = ::connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      if (!wait_fd(fd, POLLOUT, deadline)) {
        last = "connect timed out";
        close(fd);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err ? -1 : 0;
      errno = err;
    }
    if (rc != 0) {
      last = std::strerror(errno);
      close(fd);
      continue;
    }
    s->fd_ = fd;
    break;
  }
  freeaddrinfo(res);
  if (s->fd_ < 0) {
    error = "cannot connect to " + host + ":" + port_s + ": " + last;
    return nullptr;
  }
  const int one = 1;
  setsockopt(s->fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  if (!tls) return s;

  s->ssl_ = SSL_new(tls->get());
  SSL_set_fd(s->ssl_, s->fd_);
  const std::string& name = tls->options().server_name.empty() ? host : tls->options().server_name;
  in6_addr addr6{};
  in_addr addr4{};
  const bool is_ip = inet_pton(AF_INET, name.c_str(), &addr4) == 1 ||
                     inet_pton(AF_INET6, name.c_str(), &addr6) == 1;
  if (!is_ip) SSL_set_tlsext_host_name(s->ssl_, name.c_str());
  if (tls->options().verify) {
    X509_VERIFY_PARAM* param = SSL_get0_param(s->ssl_);
    if (is_ip)
      X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
    else
      X509_VERIFY_PARAM_set1_host(param, name.c_str(), 0);
  }
  for (;;) {
    ERR_clear_error();
    const int r = SSL_connect(s->ssl_);
    if (r == 1) break;
    const int e = SSL_get_error(s->ssl_, r);
    if ((e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) &&
        wait_fd(s->fd_, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline))
      continue;
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      error = "TLS handshake with " + host + ":" + port_s + " timed out";
      return nullptr;
    }
    const long v = SSL_get_verify_result(s->ssl_);
    error = "TLS handshake with " + host + ":" + port_s + " failed: " +
            (v != X509_V_OK
                 ? std::string("certificate not trusted: ") + X509_verify_cert_error_string(v) +
                       " (give the CA with ca=, or verify=false to accept any)"
                 : ssl_error_text());
    return nullptr;
  }
  return s;
}

Stream::~Stream() {
  if (ssl_) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (fd_ >= 0) close(fd_);
}

bool Stream::wait(short events, std::string& error) {
  if (wait_fd(fd_, events, std::chrono::steady_clock::now() + timeout_)) return true;
  error = "timed out after " + std::to_string(timeout_.count()) + " ms";
  return false;
}

bool Stream::write_all(std::string_view data, std::string& error) {
  while (!data.empty()) {
    if (ssl_) {
      ERR_clear_error();
      size_t written = 0;
      const int r = SSL_write_ex(ssl_, data.data(), data.size(), &written);
      if (r == 1) {
        data.remove_prefix(written);
        continue;
      }
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, error)) return false;
        continue;
      }
      error = "TLS write failed: " +
              (e == SSL_ERROR_SYSCALL ? std::string(std::strerror(errno)) : ssl_error_text());
      return false;
    }
    const ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait(POLLOUT, error)) return false;
      continue;
    }
    error = std::string("write failed: ") + std::strerror(errno);
    return false;
  }
  return true;
}

long Stream::read_some(char* buf, size_t n, std::string& error) {
  for (;;) {
    if (ssl_) {
      ERR_clear_error();
      size_t got = 0;
      const int r = SSL_read_ex(ssl_, buf, n, &got);
      if (r == 1) return static_cast<long>(got);
      const int e = SSL_get_error(ssl_, r);
      if (e == SSL_ERROR_ZERO_RETURN) return 0;
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (!wait(e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, error)) return -1;
        continue;
      }
      if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) return 0;  // closed without notify
      error = "TLS read failed: " + ssl_error_text();
      return -1;
    }
    const ssize_t r = recv(fd_, buf, n, 0);
    if (r >= 0) return static_cast<long>(r);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (!wait(POLLIN, error)) return -1;
      continue;
    }
    error = std::string("read failed: ") + std::strerror(errno);
    return -1;
  }
}

bool Stream::alive() {
  pollfd p{fd_, POLLIN | POLLRDHUP, 0};
  if (poll(&p, 1, 0) <= 0) return true;
  if (p.revents & (POLLERR | POLLHUP | POLLRDHUP)) return false;
  // Readable: a syslog receiver never talks back, so this is EOF, a reset, or TLS records
  // (a close_notify). Peek at the socket to tell.
  char c;
  const ssize_t r = recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
  if (r == 0) return false;
  if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return false;
  return true;
}

std::unique_ptr<Datagram> Datagram::open(const std::string& host, uint16_t port,
                                         std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  const std::string port_s = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), port_s.c_str(), &hints, &res); rc != 0) {
    error = "cannot resolve " + host + ": " + gai_strerror(rc);
    return nullptr;
  }
  std::unique_ptr<Datagram> d(new Datagram());
  for (addrinfo* ai = res; ai; ai = ai->ai_next) {
    const int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      d->fd_ = fd;
      break;
    }
    close(fd);
  }
  freeaddrinfo(res);
  if (d->fd_ < 0) {
    error = "cannot open a UDP socket to " + host + ":" + port_s + ": " + std::strerror(errno);
    return nullptr;
  }
  return d;
}

Datagram::~Datagram() {
  if (fd_ >= 0) close(fd_);
}

bool Datagram::send(std::string_view data, std::string& error) {
  for (;;) {
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    // ECONNREFUSED: an earlier datagram met a closed port (ICMP). UDP has no delivery
    // guarantee; the next send tries again.
    error = std::string("UDP send failed: ") + std::strerror(errno);
    return false;
  }
}

bool http_post(Stream& stream, const std::string& host, const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& headers,
               std::string_view body, HttpResponse& response, std::string& error) {
  std::string req;
  req.reserve(body.size() + 512);
  req += "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nUser-Agent: agentwall\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  req += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  req.append(body);
  if (!stream.write_all(req, error)) return false;

  std::string in;
  char buf[16384];
  size_t header_end = std::string::npos;
  while ((header_end = in.find("\r\n\r\n")) == std::string::npos) {
    const long n = stream.read_some(buf, sizeof(buf), error);
    if (n <= 0) {
      if (n == 0) error = "the server closed the connection before answering";
      return false;
    }
    in.append(buf, static_cast<size_t>(n));
    if (in.size() > (1u << 20)) {
      error = "response headers longer than 1 MiB";
      return false;
    }
  }
  const std::string_view head(in.data(), header_end);
  if (!head.starts_with("HTTP/1.") || head.size() < 12) {
    error = "not an HTTP/1.x response";
    return false;
  }
  response.status = std::atoi(std::string(head.substr(9, 3)).c_str());
  response.keep_alive = head.substr(0, 8) == "HTTP/1.1";
  int64_t content_length = -1;
  bool chunked = false;
  size_t at = head.find("\r\n");
  while (at != std::string_view::npos && at < head.size()) {
    const size_t next = head.find("\r\n", at + 2);
    const std::string_view line = head.substr(
        at + 2, next == std::string_view::npos ? std::string_view::npos : next - at - 2);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      const std::string_view k = line.substr(0, colon);
      std::string_view v = line.substr(colon + 1);
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (ci_equal(k, "content-length")) content_length = std::atoll(std::string(v).c_str());
      if (ci_equal(k, "transfer-encoding") && v.find("chunked") != std::string_view::npos)
        chunked = true;
      if (ci_equal(k, "connection") && ci_equal(v, "close")) response.keep_alive = false;
    }
    at = next;
  }
  std::string rest = in.substr(header_end + 4);
  auto fill = [&](size_t want) -> bool {
    while (rest.size() < want) {
      const long n = stream.read_some(buf, sizeof(buf), error);
      if (n <= 0) {
        if (n == 0) error = "the server closed the connection mid-response";
        return false;
      }
      rest.append(buf, static_cast<size_t>(n));
    }
    return true;
  };
  constexpr size_t kMaxBody = 4u << 20;
  if (chunked) {
    size_t pos = 0;
    for (;;) {
      size_t eol;
      while ((eol = rest.find("\r\n", pos)) == std::string::npos)
        if (!fill(rest.size() + 1)) return false;
      const size_t size = std::strtoul(rest.c_str() + pos, nullptr, 16);
      if (size > kMaxBody) {
        error = "response chunk too large";
        return false;
      }
      if (!fill(eol + 2 + size + 2)) return false;
      if (size == 0) break;
      if (response.body.size() < kMaxBody) response.body.append(rest, eol + 2, size);
      pos = eol + 2 + size + 2;
    }
  } else if (content_length >= 0) {
    if (static_cast<size_t>(content_length) > kMaxBody) {
      error = "response body too large";
      return false;
    }
    if (!fill(static_cast<size_t>(content_length))) return false;
    response.body = rest.substr(0, static_cast<size_t>(content_length));
  } else if (response.status >= 200 && response.status != 204 && response.status != 304) {
    response.keep_alive = false;  // body until close
    for (;;) {
      const long n = stream.read_some(buf, sizeof(buf), error);
      if (n < 0) return false;
      if (n == 0) break;
      if (response.body.size() < kMaxBody) response.body.append(buf, static_cast<size_t>(n));
    }
  }
  return true;
}

std::string gzip_compress(std::string_view data) {
  z_stream z{};
  deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out;
  out.resize(deflateBound(&z, data.size()) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace agentwall::sinks
