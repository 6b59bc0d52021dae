// Byte transports for the network sinks: TCP and TLS streams with deadlines, UDP
// datagrams, HTTP/1.1 POST with keep-alive. Blocking: each sink's sender thread owns its
// connection. TLS is OpenSSL; the agent's own TLS traffic is never captured (its pid is
// excluded in the kernel).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/sinks/uri.h"

namespace agentwall::sinks {

// A client TLS context for one sink: trust store, optional client certificate.
class TlsContext {
 public:
  static std::shared_ptr<TlsContext> create(const TlsOptions& options, std::string& error);
  ~TlsContext();
  SSL_CTX* get() const { return ctx_; }
  const TlsOptions& options() const { return options_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  TlsOptions options_;
};

class Stream {
 public:
  // Connects to host:port (TLS when `tls` is set), everything within `timeout`.
  static std::unique_ptr<Stream> connect(const std::string& host, uint16_t port,
                                         std::shared_ptr<TlsContext> tls,
                                         std::chrono::milliseconds timeout, std::string& error);
  ~Stream();
  bool write_all(std::string_view data, std::string& error);
  // Reads at least one byte (up to n); 0 on orderly close, -1 on error or timeout.
  long read_some(char* buf, size_t n, std::string& error);
  // False when the peer has closed or reset the connection (checked without blocking).
  bool alive();
  int fd() const { return fd_; }

 private:
  Stream() = default;
  bool wait(short events, std::string& error);
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::shared_ptr<TlsContext> tls_;
  std::chrono::milliseconds timeout_{5000};
};

class Datagram {
 public:
  static std::unique_ptr<Datagram> open(const std::string& host, uint16_t port, std::string& error);
  ~Datagram();
  bool send(std::string_view data, std::string& error);

 private:
  int fd_ = -1;
};

struct HttpResponse {
  int status = 0;
  std::string body;
  bool keep_alive = true;
};

// Sends one POST on `stream` and reads the response (Content-Length or chunked).
bool http_post(Stream& stream, const std::string& host, const std::string& path,
               const std::vector<std::pair<std::string, std::string>>& headers,
               std::string_view body, HttpResponse& response, std::string& error);

// gzip (RFC 1952) of `data`.
std::string gzip_compress(std::string_view data);

}  // namespace agentwall::sinks
