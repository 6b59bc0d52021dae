// Where events go, as the user writes it: `agentwall run --sink URI`. Every form and
// option is documented in docs/SINKS.md.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "agent/sinks/format.h"
#include "agent/sinks/spool.h"

namespace agentwall::sinks {

enum class SinkKind { kStdout, kFile, kSyslogUdp, kSyslogTcp, kSyslogTls, kHttp, kOtlp };
std::string_view to_string(SinkKind k);

// What an HTTP sink's body is: one event per request (webhook: a JSON array per batch),
// Splunk HEC, Elasticsearch _bulk.
enum class HttpApi { kWebhook, kHec, kBulk };

struct TlsOptions {
  bool enabled = false;
  std::string ca_file;      // trust these CAs (PEM) instead of the system store
  std::string cert_file;    // client certificate (PEM), optional
  std::string key_file;     // its key
  bool verify = true;       // verify the server certificate and its name
  std::string server_name;  // SNI and the name checked; default: the host
};

struct SinkConfig {
  std::string uri;   // as given, for messages (secrets in it are masked)
  std::string name;  // unique per agent; names the spool directory
  SinkKind kind = SinkKind::kStdout;
  Format format = Format::kJson;  // how each event is written
  // Filter: event types (exact, or a prefix ending in '*'); empty = every type.
  std::vector<std::string> types;
  int min_severity = 0;  // OCSF severity_id; events below are not sent

  // file
  std::string path;
  uint64_t max_size = 100ull << 20;  // rotate past this many bytes (0: never)
  int max_files = 5;                 // rotated files kept: path.1 … path.N

  // network
  std::string host;
  uint16_t port = 0;
  std::string http_path;  // HTTP: path and query sent
  TlsOptions tls;
  int facility = 13;  // syslog: log audit
  HttpApi api = HttpApi::kWebhook;
  std::string token;       // HEC token (Authorization: Splunk …) or bearer token
  std::string index;       // HEC index / Elasticsearch index
  std::string sourcetype;  // HEC
  std::vector<std::pair<std::string, std::string>> headers;  // extra HTTP headers
  bool gzip = true;                                          // HTTP bodies (Content-Encoding: gzip)
  bool otlp_logs = true, otlp_traces = true;
  size_t batch_max = 500;                         // events per request / write
  std::chrono::milliseconds flush_interval{200};  // a partial batch waits at most this
  std::chrono::milliseconds timeout{5000};        // connect, write, response
  std::chrono::milliseconds backoff_min{200}, backoff_max{30000};

  // Durable spool (network sinks; stdout and files write directly).
  bool spooled = false;
  SpoolOptions spool;  // spool.dir is filled in by the agent from its state dir
};

// Parses one --sink URI. nullopt and `error` (what is wrong and the accepted forms).
std::optional<SinkConfig> parse_sink_uri(std::string_view uri, std::string& error);

// The URI with token, password and key values replaced by "***", for logs.
std::string redact_uri(std::string_view uri);

}  // namespace agentwall::sinks
