// HTTP/2 frame decoding for one direction of one captured connection (RFC 9113, RFC 7541).
// The capture hands bytes split anywhere and sometimes loses some; the decoder turns them into
// stream events and never guesses: a header block it cannot decode for certain is reported as
// unknown, never with values that might belong to another block.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "agent/protocol/http.h"

struct nghttp2_hd_inflater;

namespace agentwall::protocol::http2 {

// Reset error code given when the RST_STREAM payload itself was lost.
inline constexpr uint32_t kUnknownErrorCode = 0xffffffff;

// Receives what one direction's decoder finds, in wire order. Calls are made from feed()/gap().
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  // A complete header block (HEADERS + CONTINUATION*). Pseudo-headers (":method", ":path",
  // ":authority", ":scheme", ":status") are ordinary entries, in wire order. `end_stream` is the
  // HEADERS frame's flag. `trailers`: the block follows the stream's final header block (when
  // decoded: it carries no pseudo-header).
  virtual void on_headers(uint32_t stream_id, const Headers& headers, bool end_stream,
                          bool trailers) = 0;
  // A header block whose fields cannot be known (HPACK state lost, bytes lost, block over the
  // cap). The stream exists; `trailers` is true when the stream already had DATA or a final
  // header block in this direction.
  virtual void on_headers_unknown(uint32_t stream_id, bool end_stream, bool trailers) = 0;
  // DATA payload without padding, in pieces as they arrive; `end_stream` on the frame's last
  // call (possibly with empty `data`).
  virtual void on_data(uint32_t stream_id, std::string_view data, bool end_stream) = 0;
  // `len` bytes of the stream's DATA frame were lost (may include padding).
  virtual void on_data_lost(uint32_t /*stream_id*/, uint64_t /*len*/) {}
  // RST_STREAM; kUnknownErrorCode when its payload was lost.
  virtual void on_reset(uint32_t stream_id, uint32_t error_code) = 0;
  // PUSH_PROMISE whose header block was decoded; undecodable promises are not reported.
  virtual void on_push_promise(uint32_t /*stream_id*/, uint32_t /*promised_stream_id*/,
                               const Headers& /*headers*/) {}
  virtual void on_goaway(uint32_t /*last_stream_id*/, uint32_t /*error_code*/) {}
  // The bytes stopped making sense as HTTP/2 (or frame sync was lost); the decoder gives up on
  // this direction and reports nothing more.
  virtual void on_error(std::string_view what) = 0;
};

class Decoder {
 public:
  enum class Start {
    kPreface,    // client direction from its first byte: the preface, then frames
    kFrames,     // server direction from its first byte
    kMidStream,  // a frame boundary, but earlier frames were missed (HPACK table unknown)
  };
  struct Limits {
    // Longest frame payload accepted; the peer's SETTINGS_MAX_FRAME_SIZE when known.
    uint32_t max_frame = (1u << 24) - 1;
    // Decoded size (names + values) above which a header block is reported unknown.
    size_t max_header_bytes = 256 * 1024;
  };

  Decoder(Start start, FrameSink& sink);
  Decoder(Start start, FrameSink& sink, Limits limits);
  ~Decoder();
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  void feed(std::string_view bytes);
  // `len` bytes of this direction were lost here. When they fall inside the current frame's
  // payload the decoder keeps frame sync (a touched header block becomes unknown and the HPACK
  // table is rebuilt from the next block on); otherwise the next frame boundary is unknowable
  // and the decoder fails.
  void gap(uint64_t len);

  bool failed() const { return phase_ == Phase::kFailed; }
  // Bytes held for this direction: partial frame fields, pending header fields, HPACK table.
  size_t buffered() const;

 private:
  enum class Phase { kPreface, kFrameHeader, kFixedFields, kBody, kTail, kFailed };
  struct InflaterDeleter {
    void operator()(nghttp2_hd_inflater* p) const;
  };

  void begin_frame();
  void fixed_fields_done();
  void body(std::string_view piece);
  void end_frame();
  void lose_frame_bytes(uint64_t len);

  void begin_block(uint32_t stream_id, bool end_stream, bool push, uint32_t promised);
  void inflate(std::string_view fragment);
  void finish_inflate();
  void end_block();
  void add_field(std::string_view name, std::string_view value);
  void drop_block_fields();
  void lose_block();  // its fields are unknown and the inflater must not see more of it

  void mark_answered(uint32_t stream_id);
  void fail(std::string_view what);

  FrameSink& sink_;
  const Limits limits_;
  Phase phase_;

  size_t preface_seen_ = 0;

  // Current frame.
  uint8_t header_[9] = {};
  size_t header_have_ = 0;
  uint32_t length_ = 0;
  uint8_t type_ = 0;
  uint8_t flags_ = 0;
  uint32_t stream_id_ = 0;
  uint8_t fixed_[8] = {};  // pad length, priority, promised stream, or a control payload
  size_t fixed_len_ = 0;
  size_t fixed_have_ = 0;
  uint64_t body_left_ = 0;
  uint64_t tail_left_ = 0;  // padding or ignored payload
  bool end_stream_reported_ = false;

  // Header block in progress (HEADERS or PUSH_PROMISE, then CONTINUATION until END_HEADERS).
  struct Block {
    bool open = false;
    uint32_t stream_id = 0;
    bool end_stream = false;
    bool push = false;
    uint32_t promised = 0;
    bool orphan = false;    // tail of a block whose start was missed (mid-stream start)
    bool unknown = false;   // fields cannot be reported
    bool bypassed = false;  // some of its bytes did not go through the inflater
    Headers fields;
    size_t field_bytes = 0;
  } block_;
  // Mid-stream, the first frames may be CONTINUATIONs of a block whose HEADERS was missed.
  bool orphans_possible_;

  // The inflater has seen every header block byte since it was created: dynamic-table index d
  // is then the d-th newest entry, which it knows exactly or not at all. A block it did not see
  // whole breaks that, so the next block starts a new one.
  std::unique_ptr<nghttp2_hd_inflater, InflaterDeleter> inflater_;
  bool inflater_stale_ = false;

  // Streams past their final header block in this direction (for `trailers` of unknown
  // blocks), capped: the oldest are forgotten.
  std::set<uint32_t> answered_;
};

// Could `bytes`, the first bytes of a direction, be the HTTP/2 client preface? True when they
// are a prefix of it (so far consistent) or start with it.
bool is_client_preface(std::string_view bytes);
// Do `bytes` start with a plausible frame header: known type, only that type's flags, reserved
// bit clear, stream id and length as the type requires, length <= `max_len`? False when fewer
// than 9 bytes.
bool looks_like_frame(std::string_view bytes, uint32_t max_len = 16384);

}  // namespace agentwall::protocol::http2
