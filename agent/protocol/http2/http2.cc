#include "agent/protocol/http2/http2.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <string>

namespace agentwall::protocol::http2 {
namespace {

constexpr std::string_view kClientPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kFrameHeaderLen = 9;

enum FrameType : uint8_t {
  kData = 0,
  kHeaders = 1,
  kPriority = 2,
  kRstStream = 3,
  kSettings = 4,
  kPushPromise = 5,
  kPing = 6,
  kGoaway = 7,
  kWindowUpdate = 8,
  kContinuation = 9,
};

enum FrameFlag : uint8_t {
  kEndStream = 0x1,
  kAck = 0x1,
  kEndHeaders = 0x4,
  kPadded = 0x8,
  kPriorityFlag = 0x20,
};

// Encoders may grow their table up to what the other direction's SETTINGS allowed, which this
// decoder never sees; this is generous for what clients and servers announce in practice. A
// larger table only makes blocks unknown, never wrong (see Decoder::inflater_).
constexpr size_t kMaxHpackTable = 64 * 1024;
// Streams remembered for `trailers`; well above the usual SETTINGS_MAX_CONCURRENT_STREAMS.
constexpr size_t kMaxAnsweredStreams = 1024;

struct FrameHeader {
  uint32_t length;
  uint8_t type;
  uint8_t flags;
  bool reserved;
  uint32_t stream_id;
};

uint32_t read_u32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

FrameHeader parse_frame_header(const uint8_t* p) {
  return {
      .length = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2],
      .type = p[3],
      .flags = p[4],
      .reserved = (p[5] & 0x80) != 0,
      .stream_id = read_u32(p + 5) & 0x7fffffff,
  };
}

std::string type_name(uint8_t type) {
  static constexpr const char* kNames[] = {
      "DATA",         "HEADERS", "PRIORITY", "RST_STREAM",    "SETTINGS",
      "PUSH_PROMISE", "PING",    "GOAWAY",   "WINDOW_UPDATE", "CONTINUATION"};
  if (type <= kContinuation) return kNames[type];
  return "frame type " + std::to_string(type);
}

// Bytes of the payload the frame needs before its variable part.
size_t fixed_fields_len(const FrameHeader& h) {
  const size_t pad = (h.flags & kPadded) ? 1 : 0;
  switch (h.type) {
    case kData:
      return pad;
    case kHeaders:
      return pad + ((h.flags & kPriorityFlag) ? 5 : 0);
    case kPushPromise:
      return pad + 4;
    case kRstStream:
      return 4;
    case kGoaway:
      return 8;
    default:
      return 0;
  }
}

// What makes this header a connection error for a receiver (RFC 9113 section 6), or nullptr.
// Unknown types are always acceptable.
const char* frame_header_problem(const FrameHeader& h) {
  const bool needs_stream = h.type == kData || h.type == kHeaders || h.type == kPriority ||
                            h.type == kRstStream || h.type == kPushPromise ||
                            h.type == kContinuation;
  const bool needs_zero = h.type == kSettings || h.type == kPing || h.type == kGoaway;
  if (needs_stream && h.stream_id == 0) return "needs a stream id";
  if (needs_zero && h.stream_id != 0) return "must be on stream 0";
  if (h.length < fixed_fields_len(h)) return "is shorter than its fixed fields";
  switch (h.type) {
    case kRstStream:
    case kWindowUpdate:
      if (h.length != 4) return "must be 4 bytes long";
      break;
    case kPing:
      if (h.length != 8) return "must be 8 bytes long";
      break;
    case kSettings:
      if (h.length % 6 != 0) return "length is not a multiple of 6";
      if ((h.flags & kAck) && h.length != 0) return "ACK carries a payload";
      break;
  }
  return nullptr;
}

bool has_pseudo_header(const Headers& fields) {
  return std::any_of(fields.begin(), fields.end(),
                     [](const Header& h) { return !h.name.empty() && h.name[0] == ':'; });
}

bool is_informational(const Headers& fields) {
  for (const Header& h : fields) {
    if (h.name == ":status") return !h.value.empty() && h.value[0] == '1';
  }
  return false;
}

}  // namespace

void Decoder::InflaterDeleter::operator()(nghttp2_hd_inflater* p) const {
  nghttp2_hd_inflate_del(p);
}

Decoder::Decoder(Start start, FrameSink& sink) : Decoder(start, sink, Limits{}) {}

Decoder::Decoder(Start start, FrameSink& sink, Limits limits)
    : sink_(sink),
      limits_(limits),
      phase_(start == Start::kPreface ? Phase::kPreface : Phase::kFrameHeader),
      orphans_possible_(start == Start::kMidStream),
      // Mid-stream, a fresh inflater is exactly right too: it learns the entries added from
      // here on and refuses indexes to older ones.
      inflater_stale_(true) {}

Decoder::~Decoder() = default;

size_t Decoder::buffered() const {
  size_t n = header_have_ + fixed_have_ + block_.field_bytes;
  if (inflater_) n += nghttp2_hd_inflate_get_dynamic_table_size(inflater_.get());
  return n;
}

void Decoder::fail(std::string_view what) {
  if (failed()) return;
  phase_ = Phase::kFailed;
  block_ = Block{};
  inflater_.reset();
  answered_.clear();
  sink_.on_error(what);
}

void Decoder::feed(std::string_view in) {
  for (;;) {
    switch (phase_) {
      case Phase::kFailed:
        return;
      case Phase::kPreface: {
        const size_t n = std::min(in.size(), kClientPreface.size() - preface_seen_);
        if (in.substr(0, n) != kClientPreface.substr(preface_seen_, n)) {
          fail("the client direction does not start with the HTTP/2 preface");
          return;
        }
        preface_seen_ += n;
        in.remove_prefix(n);
        if (preface_seen_ < kClientPreface.size()) return;
        phase_ = Phase::kFrameHeader;
        break;
      }
      case Phase::kFrameHeader: {
        const size_t n = std::min(in.size(), kFrameHeaderLen - header_have_);
        std::copy_n(in.begin(), n, header_ + header_have_);
        header_have_ += n;
        in.remove_prefix(n);
        if (header_have_ < kFrameHeaderLen) return;
        begin_frame();
        break;
      }
      case Phase::kFixedFields: {
        const size_t n = std::min(in.size(), fixed_len_ - fixed_have_);
        std::copy_n(in.begin(), n, fixed_ + fixed_have_);
        fixed_have_ += n;
        in.remove_prefix(n);
        if (fixed_have_ < fixed_len_) return;
        fixed_fields_done();
        break;
      }
      case Phase::kBody: {
        if (body_left_ > 0) {
          if (in.empty()) return;
          const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), body_left_));
          body_left_ -= n;
          body(in.substr(0, n));
          in.remove_prefix(n);
          if (body_left_ > 0) return;
        }
        phase_ = Phase::kTail;
        break;
      }
      case Phase::kTail: {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(in.size(), tail_left_));
        tail_left_ -= n;
        in.remove_prefix(n);
        if (tail_left_ > 0) return;
        end_frame();
        break;
      }
    }
  }
}

void Decoder::begin_frame() {
  const FrameHeader h = parse_frame_header(header_);
  length_ = h.length;
  type_ = h.type;
  flags_ = h.flags;
  stream_id_ = h.stream_id;
  header_have_ = 0;
  fixed_have_ = 0;
  body_left_ = 0;
  tail_left_ = 0;
  end_stream_reported_ = false;

  if (length_ > limits_.max_frame) {
    fail(type_name(type_) + " frame of " + std::to_string(length_) +
         " bytes is over the limit of " + std::to_string(limits_.max_frame));
    return;
  }
  if (block_.open && (type_ != kContinuation || stream_id_ != block_.stream_id)) {
    fail("expected CONTINUATION on stream " + std::to_string(block_.stream_id) + ", got " +
         type_name(type_) + " on stream " + std::to_string(stream_id_));
    return;
  }
  if (const char* problem = frame_header_problem(h)) {
    fail(type_name(type_) + " frame on stream " + std::to_string(stream_id_) + " " + problem);
    return;
  }
  if (type_ == kContinuation && !block_.open) {
    if (!orphans_possible_) {
      fail("CONTINUATION on stream " + std::to_string(stream_id_) + " without a header block");
      return;
    }
    block_ = Block{};
    block_.open = true;
    block_.stream_id = stream_id_;
    block_.orphan = true;
    lose_block();
  }
  if (type_ != kContinuation) orphans_possible_ = false;
  fixed_len_ = fixed_fields_len(h);
  phase_ = Phase::kFixedFields;
}

void Decoder::fixed_fields_done() {
  const bool padded = (flags_ & kPadded) != 0;
  const size_t pad =
      padded && (type_ == kData || type_ == kHeaders || type_ == kPushPromise) ? fixed_[0] : 0;
  const uint64_t rest = length_ - fixed_len_;
  if (pad > rest) {
    fail(type_name(type_) + " frame on stream " + std::to_string(stream_id_) +
         " has more padding than payload");
    return;
  }
  switch (type_) {
    case kData:
    case kContinuation:
      body_left_ = rest - pad;
      break;
    case kHeaders:
      body_left_ = rest - pad;
      begin_block(stream_id_, (flags_ & kEndStream) != 0, false, 0);
      break;
    case kPushPromise:
      body_left_ = rest - pad;
      begin_block(stream_id_, false, true, read_u32(fixed_ + (padded ? 1 : 0)) & 0x7fffffff);
      break;
    case kRstStream:
      answered_.erase(stream_id_);
      sink_.on_reset(stream_id_, read_u32(fixed_));
      break;
    case kGoaway:
      sink_.on_goaway(read_u32(fixed_) & 0x7fffffff, read_u32(fixed_ + 4));
      break;
  }
  tail_left_ = rest - body_left_;
  phase_ = Phase::kBody;
}

void Decoder::body(std::string_view piece) {
  if (type_ == kData) {
    const bool last = (flags_ & kEndStream) && body_left_ == 0 && tail_left_ == 0;
    end_stream_reported_ = last;
    sink_.on_data(stream_id_, piece, last);
  } else {
    inflate(piece);
  }
}

void Decoder::end_frame() {
  phase_ = Phase::kFrameHeader;
  if (type_ == kData) {
    const bool end_stream = (flags_ & kEndStream) != 0;
    if (end_stream && !end_stream_reported_) sink_.on_data(stream_id_, {}, true);
    if (end_stream) {
      answered_.erase(stream_id_);
    } else {
      mark_answered(stream_id_);
    }
  } else if ((type_ == kHeaders || type_ == kPushPromise || type_ == kContinuation) &&
             (flags_ & kEndHeaders)) {
    end_block();
  }
}

void Decoder::gap(uint64_t len) {
  if (len == 0) return;
  switch (phase_) {
    case Phase::kFailed:
      return;
    case Phase::kPreface:
      if (len > kClientPreface.size() - preface_seen_) {
        fail("bytes lost past the client preface: the next frame boundary is unknown");
        return;
      }
      preface_seen_ += len;
      if (preface_seen_ == kClientPreface.size()) phase_ = Phase::kFrameHeader;
      return;
    case Phase::kFrameHeader:
      fail("bytes lost at a frame header: the next frame boundary is unknown");
      return;
    case Phase::kFixedFields:
    case Phase::kBody:
    case Phase::kTail: {
      const uint64_t left =
          phase_ == Phase::kFixedFields ? length_ - fixed_have_ : body_left_ + tail_left_;
      if (len > left) {
        fail(std::to_string(len) + " bytes lost beyond the end of a " + type_name(type_) +
             " frame: the next frame boundary is unknown");
        return;
      }
      lose_frame_bytes(len);
      feed({});  // the frame may be complete now
      return;
    }
  }
}

void Decoder::lose_frame_bytes(uint64_t len) {
  const bool header_block = type_ == kHeaders || type_ == kPushPromise || type_ == kContinuation;
  if (phase_ == Phase::kFixedFields) {
    // Without the fixed fields the split between content and padding is unknown: the rest of
    // the frame is skipped.
    const uint64_t left = length_ - fixed_have_;
    switch (type_) {
      case kData:
        sink_.on_data_lost(stream_id_, left);
        break;
      case kHeaders:
        begin_block(stream_id_, (flags_ & kEndStream) != 0, false, 0);
        break;
      case kPushPromise:
        begin_block(stream_id_, false, true, 0);
        break;
      case kRstStream:
        answered_.erase(stream_id_);
        sink_.on_reset(stream_id_, kUnknownErrorCode);
        break;
    }
    if (header_block) lose_block();
    body_left_ = 0;
    tail_left_ = left - len;
    phase_ = Phase::kTail;
    return;
  }
  const uint64_t from_body = std::min(len, body_left_);
  body_left_ -= from_body;
  tail_left_ -= len - from_body;
  if (from_body == 0) return;  // only padding or ignored bytes
  if (type_ == kData) {
    sink_.on_data_lost(stream_id_, len);
  } else if (header_block) {
    lose_block();
  }
}

void Decoder::begin_block(uint32_t stream_id, bool end_stream, bool push, uint32_t promised) {
  block_ = Block{};
  block_.open = true;
  block_.stream_id = stream_id;
  block_.end_stream = end_stream;
  block_.push = push;
  block_.promised = promised;
  if (inflater_stale_ || !inflater_) {
    inflater_.reset();
    inflater_stale_ = false;
    nghttp2_hd_inflater* raw = nullptr;
    if (nghttp2_hd_inflate_new(&raw) == 0) {
      inflater_.reset(raw);
      nghttp2_hd_inflate_change_table_size(raw, kMaxHpackTable);
    }
  }
  if (!inflater_) lose_block();
}

void Decoder::drop_block_fields() {
  block_.fields = Headers{};
  block_.field_bytes = 0;
}

void Decoder::lose_block() {
  block_.unknown = block_.bypassed = true;
  drop_block_fields();
}

void Decoder::add_field(std::string_view name, std::string_view value) {
  if (block_.unknown) return;
  block_.field_bytes += name.size() + value.size();
  if (block_.field_bytes > limits_.max_header_bytes) {
    // Inflating goes on so the table stays right; only the fields are forgotten.
    block_.unknown = true;
    drop_block_fields();
    return;
  }
  block_.fields.push_back({std::string(name), std::string(value)});
}

namespace {

// One nghttp2 call; false when the block cannot be decoded.
bool inflate_step(nghttp2_hd_inflater* inflater, std::string_view& in, bool final, nghttp2_nv& nv,
                  int& flags) {
  static const uint8_t kNothing = 0;
  const auto* data = in.empty() ? &kNothing : reinterpret_cast<const uint8_t*>(in.data());
  flags = 0;
  const ssize_t rv = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, data, in.size(), final);
  if (rv < 0 || static_cast<size_t>(rv) > in.size()) return false;
  in.remove_prefix(static_cast<size_t>(rv));
  return true;
}

std::string_view as_view(const uint8_t* p, size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace

void Decoder::inflate(std::string_view fragment) {
  if (block_.bypassed) return;
  // Stops when nghttp2 has taken all the input and has nothing more to emit.
  for (;;) {
    nghttp2_nv nv;
    int flags;
    const size_t before = fragment.size();
    if (!inflate_step(inflater_.get(), fragment, false, nv, flags)) {
      lose_block();
      return;
    }
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      add_field(as_view(nv.name, nv.namelen), as_view(nv.value, nv.valuelen));
      continue;
    }
    if (fragment.empty()) return;
    if (fragment.size() == before) {  // no progress: never expected, but never loop
      lose_block();
      return;
    }
  }
}

void Decoder::finish_inflate() {
  for (;;) {
    std::string_view none;
    nghttp2_nv nv;
    int flags;
    if (!inflate_step(inflater_.get(), none, true, nv, flags)) break;
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      // nghttp2 emits each field once complete, but its API lets the final call emit one.
      add_field(as_view(nv.name, nv.namelen), as_view(nv.value, nv.valuelen));
    }
    if (flags & NGHTTP2_HD_INFLATE_FINAL) {
      nghttp2_hd_inflate_end_headers(inflater_.get());
      return;
    }
    if (!(flags & NGHTTP2_HD_INFLATE_EMIT)) break;
  }
  lose_block();
}

void Decoder::end_block() {
  if (!block_.bypassed) finish_inflate();
  if (block_.bypassed) inflater_stale_ = true;
  Block block = std::move(block_);
  block_ = Block{};
  if (block.orphan) {
    orphans_possible_ = false;
    return;  // its HEADERS frame (and END_STREAM) were missed: nothing sound to report
  }
  if (block.push) {
    if (!block.unknown) sink_.on_push_promise(block.stream_id, block.promised, block.fields);
    return;
  }
  bool final_headers = true;
  if (block.unknown) {
    sink_.on_headers_unknown(block.stream_id, block.end_stream,
                             answered_.contains(block.stream_id));
  } else {
    const bool trailers = !has_pseudo_header(block.fields);
    final_headers = !is_informational(block.fields);
    sink_.on_headers(block.stream_id, block.fields, block.end_stream, trailers);
  }
  if (block.end_stream) {
    answered_.erase(block.stream_id);
  } else if (final_headers) {
    mark_answered(block.stream_id);
  }
}

void Decoder::mark_answered(uint32_t stream_id) {
  answered_.insert(stream_id);
  if (answered_.size() > kMaxAnsweredStreams) answered_.erase(answered_.begin());
}

bool is_client_preface(std::string_view bytes) {
  const size_t n = std::min(bytes.size(), kClientPreface.size());
  return bytes.substr(0, n) == kClientPreface.substr(0, n);
}

bool looks_like_frame(std::string_view bytes, uint32_t max_len) {
  if (bytes.size() < kFrameHeaderLen) return false;
  const FrameHeader h = parse_frame_header(reinterpret_cast<const uint8_t*>(bytes.data()));
  static constexpr uint8_t kAllowedFlags[] = {
      kEndStream | kPadded,                                // DATA
      kEndStream | kEndHeaders | kPadded | kPriorityFlag,  // HEADERS
      0,                                                   // PRIORITY
      0,                                                   // RST_STREAM
      kAck,                                                // SETTINGS
      kEndHeaders | kPadded,                               // PUSH_PROMISE
      kAck,                                                // PING
      0,                                                   // GOAWAY
      0,                                                   // WINDOW_UPDATE
      kEndHeaders,                                         // CONTINUATION
  };
  if (h.type > kContinuation || (h.flags & ~kAllowedFlags[h.type]) != 0) return false;
  if (h.reserved || h.length > max_len) return false;
  if (h.type == kPriority && h.length != 5) return false;
  return frame_header_problem(h) == nullptr;
}

}  // namespace agentwall::protocol::http2
