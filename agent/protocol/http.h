// The protocol stage's vocabulary: HTTP messages and exchanges, whatever the wire version.
// Pure header: HTTP/1.1 and HTTP/2 decoders produce these, the LLM and MCP layers read them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::protocol {

struct Header {
  std::string name;  // lower case (HTTP/2 requires it; HTTP/1.1 names are folded)
  std::string value;
};
using Headers = std::vector<Header>;

// First value of a header (name in lower case), empty when absent.
std::string_view header_value(const Headers& headers, std::string_view name);

enum class HttpVersion : uint8_t { kHttp1, kHttp2 };
std::string_view to_string(HttpVersion v);

// What went wrong or was left out while decoding a message. Several can hold at once.
enum MessageFlags : uint32_t {
  kMsgStartMissed = 1 << 0,     // the agent started after the message began
  kMsgGap = 1 << 1,             // bytes of the message were lost (ring full, capture cap)
  kMsgCut = 1 << 2,             // the connection ended before the message did
  kMsgBodyCapped = 1 << 3,      // the body was longer than the stored cap; the rest is counted
  kMsgDecodeError = 1 << 4,     // Content-Encoding could not be undone
  kMsgBombLimit = 1 << 5,       // decompression stopped by the ratio or size limit
  kMsgHeadersUnknown = 1 << 6,  // HTTP/2 header block could not be decoded (HPACK state lost)
  kMsgMalformed = 1 << 7,       // the framing was not valid HTTP
  kMsgReset = 1 << 8,           // HTTP/2 stream reset
};
// Names of the set flags, e.g. {"gap", "cut"}; stable strings used in events.
std::vector<std::string> flag_names(uint32_t flags);

struct HttpMessage {
  // Request: method, target path, authority (Host or :authority), scheme.
  std::string method;
  std::string path;
  std::string authority;
  // Response: status code (0 until known).
  int status = 0;
  Headers headers;
  // Decoded body (transfer and content encodings undone), at most the configured cap.
  std::string body;
  uint64_t wire_body_bytes = 0;     // body bytes as sent (before content decoding)
  uint64_t decoded_body_bytes = 0;  // body bytes after decoding, including any past the cap
  std::string content_encoding;     // as sent, e.g. "gzip"
  uint32_t flags = 0;
  uint64_t first_ns = 0;  // Unix time of the first and last byte seen
  uint64_t last_ns = 0;
  bool complete = false;  // the whole message was seen
};

// Something a consumer keeps per exchange (e.g. an LLM adapter's streaming state).
struct ExchangeState {
  virtual ~ExchangeState() = default;
};

struct HttpExchange {
  uint64_t id = 0;  // unique within the stage
  HttpVersion version = HttpVersion::kHttp1;
  uint32_t stream_id = 0;  // HTTP/2 stream; 0 for HTTP/1.1
  HttpMessage request;
  HttpMessage response;
  bool has_request = false;  // false when only the response was seen (agent started late)
  bool has_response = false;
  // A consumer that takes the response body piece by piece (e.g. an SSE stream) clears this
  // in on_response_head so the stage does not also keep it.
  bool store_response_body = true;
  std::unique_ptr<ExchangeState> state;  // owned by the consumer; lives as long as the exchange
};

struct HttpStageStats {
  uint64_t connections_http1 = 0;
  uint64_t connections_http2 = 0;
  uint64_t connections_other = 0;  // TLS traffic that is not HTTP
  uint64_t exchanges = 0;
  uint64_t malformed = 0;
  uint64_t body_capped = 0;
  uint64_t bomb_limited = 0;
  uint64_t decode_errors = 0;
  uint64_t hpack_lost = 0;
  uint64_t open_exchanges = 0;
  uint64_t buffered_bytes = 0;  // bytes held across all connections right now
};

}  // namespace agentwall::protocol
