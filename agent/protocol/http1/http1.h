// HTTP/1.1 message framing for one direction of a captured connection (RFC 9112): heads,
// Content-Length and chunked bodies, bodies delimited by the connection's end, keep-alive
// and pipelining. Fed in pieces split anywhere; holes in the byte stream are survived where
// the framing allows and otherwise resynchronised at the next message start.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/http.h"

namespace agentwall::protocol::http1 {

struct Head {
  bool request = true;
  std::string method;  // request
  std::string target;  // request
  int status = 0;      // response
  int minor_version = 1;
  Headers headers;  // names in lower case
};

class ParserSink {
 public:
  virtual ~ParserSink() = default;
  virtual void on_head(const Head& head) = 0;
  // Body bytes with the transfer coding removed (content coding still applied).
  virtual void on_body(std::string_view bytes) = 0;
  // The message is over; `flags` holds MessageFlags (gap, cut, malformed).
  virtual void on_end(uint32_t flags) = 0;
  // Asked for each response head: true when the request it answers was HEAD, so the
  // response has no body whatever its headers say.
  virtual bool response_to_head() { return false; }
  // Bytes that could not be read as HTTP and were skipped looking for the next message.
  virtual void on_skipped(uint64_t /*bytes*/) {}
};

class Parser {
 public:
  enum class Kind : uint8_t { kRequest, kResponse };
  struct Limits {
    size_t max_head = 64 * 1024;  // request/status line plus headers
    size_t max_line = 8 * 1024;   // chunk-size and trailer lines
  };

  // `resync`: the agent started in the middle of the stream, so the first bytes may be the
  // tail of a message: skip to the first message start.
  Parser(Kind kind, ParserSink& sink, bool resync = false);
  Parser(Kind kind, ParserSink& sink, bool resync, Limits limits);

  void feed(std::string_view data);
  // `len` bytes of the stream were lost.
  void gap(uint64_t len);
  // The connection ended: a body delimited by the close is complete, any other message
  // in progress is cut.
  void finish();

  // After a 101 response (or a successful CONNECT) the bytes are no longer HTTP.
  bool opaque() const { return state_ == State::kOpaque; }
  bool in_message() const;
  size_t buffered() const { return buf_.size(); }
  uint64_t skipped_bytes() const { return skipped_; }

  // Does `bytes` start like an HTTP/1.x request (`POST /`) or response (`HTTP/1.1 200`)?
  // 1: yes; 0: too short to tell, but could; -1: no.
  static int match_request(std::string_view bytes);
  static int match_response(std::string_view bytes);

 private:
  enum class State : uint8_t {
    kHead,
    kBodyLength,
    kChunkSize,
    kChunkData,
    kChunkDataEnd,
    kTrailers,
    kBodyUntilClose,
    kResync,
    kOpaque,
  };

  size_t step(std::string_view in);  // consumes a prefix of `in`, returns its length
  size_t step_head(std::string_view in);
  size_t step_line(std::string_view in, std::string& line, bool& done);
  size_t step_resync(std::string_view in);
  bool parse_head(std::string_view text, Head& head) const;
  void start_body(const Head& head);
  void end_message(uint32_t extra_flags = 0);
  void lose_sync();

  Kind kind_;
  ParserSink& sink_;
  Limits limits_;
  State state_ = State::kHead;
  std::string buf_;            // partial head or line
  uint64_t remaining_ = 0;     // body or chunk bytes still to come
  uint32_t flags_ = 0;         // of the message in progress
  bool head_seen_ = false;     // a head of the current message was delivered
  bool at_line_start_ = true;  // resync: the next byte starts a line
  std::string resync_tail_;    // resync: bytes kept across pieces to match a start
  uint64_t skipped_ = 0;
};

}  // namespace agentwall::protocol::http1
