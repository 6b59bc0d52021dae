#include "agent/protocol/content/content.h"

#include <brotli/decode.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cctype>

namespace agentwall::protocol {

// Decodes one coding. decode() consumes all of the input or fills all of the output, unless
// the data is corrupt; output it cannot fit stays inside and comes out on the next call.
class ContentDecoder::Codec {
 public:
  virtual ~Codec() = default;
  virtual std::string_view name() const = 0;
  // Advances `in` and `out`. false when the data is corrupt, with the reason in `why`.
  virtual bool decode(const uint8_t*& in, size_t& in_len, uint8_t*& out, size_t& out_len,
                      std::string& why) = 0;
  // The bytes so far form a whole encoded body.
  virtual bool complete() const = 0;
};

namespace {

constexpr size_t kChunk = 16 * 1024;
// Each coding holds a window and a chunk; a header listing hundreds would be a memory bomb.
constexpr size_t kMaxCodings = 4;
// RFC 9659: zstd content coding windows are at most 8 MiB; larger ones are refused.
constexpr int kZstdWindowLogMax = 23;

using Codec = ContentDecoder::Codec;

// gzip (multi-member) and deflate (zlib-wrapped or raw) through zlib.
class ZlibCodec final : public Codec {
 public:
  explicit ZlibCodec(bool gzip) : gzip_(gzip) {}
  ~ZlibCodec() override {
    if (initialized_) inflateEnd(&z_);
  }
  std::string_view name() const override { return gzip_ ? "gzip" : "deflate"; }
  bool complete() const override { return ended_ && !active_; }

  bool decode(const uint8_t*& in, size_t& in_len, uint8_t*& out, size_t& out_len,
              std::string& why) override {
    for (;;) {
      if (!active_) {
        if (in_len == 0) return true;
        // After the end, only another gzip member counts; the rest is ignored, as gzip(1)
        // and browsers do.
        if (ended_ && (ignoring_ || !gzip_ || in[0] != kMagic[0])) {
          ignoring_ = true;
          in += in_len;
          in_len = 0;
          return true;
        }
        if (!begin(in, in_len, why)) return false;
        if (!active_) return true;  // deflate: the second byte decides the framing
      }
      if (gzip_ && !check_magic(in, in_len, why)) return false;
      if (held_len_ > 0) {  // the byte held back to sniff the framing goes in first
        const uint8_t* held = held_;
        size_t left = held_len_;
        const int rc = inflate_some(held, left, out, out_len);
        if (rc != Z_OK && rc != Z_BUF_ERROR) return fail(rc, why);
        if (left > 0) return true;  // output full
        held_len_ = 0;
      }
      const int rc = inflate_some(in, in_len, out, out_len);
      if (rc == Z_STREAM_END) {
        active_ = false;
        ended_ = true;
        continue;
      }
      if (rc == Z_OK || rc == Z_BUF_ERROR) return true;  // input used up or output full
      return fail(rc, why);
    }
  }

 private:
  static constexpr uint8_t kMagic[2] = {0x1f, 0x8b};

  bool begin(const uint8_t*& in, size_t& in_len, std::string& why) {
    int window_bits = 16 + MAX_WBITS;
    if (!gzip_) {
      // A zlib header is a CMF byte (method 8, window <= 32K) and a check making the pair a
      // multiple of 31; servers also send raw deflate, which rarely looks like one.
      if (held_len_ == 0 && in_len < 2) {
        held_[held_len_++] = *in++;
        --in_len;
        return true;
      }
      const uint8_t cmf = held_len_ ? held_[0] : in[0];
      const uint8_t flg = held_len_ ? in[0] : in[1];
      const bool zlib = (cmf & 0x0f) == 8 && (cmf >> 4) <= 7 && ((cmf << 8) | flg) % 31 == 0;
      window_bits = zlib ? MAX_WBITS : -MAX_WBITS;
    }
    const int rc = initialized_ ? inflateReset(&z_) : inflateInit2(&z_, window_bits);
    if (rc != Z_OK) {
      why = "cannot start zlib";
      return false;
    }
    initialized_ = true;
    active_ = true;
    magic_seen_ = 0;
    return true;
  }

  // zlib's own message for a bad gzip magic points past it; this one names the first byte.
  bool check_magic(const uint8_t*& in, size_t& in_len, std::string& why) {
    for (size_t i = 0; magic_seen_ + i < 2 && i < in_len; ++i) {
      if (in[i] != kMagic[magic_seen_ + i]) {
        in += i;
        in_len -= i;
        why = "invalid header";
        return false;
      }
    }
    return true;
  }

  int inflate_some(const uint8_t*& in, size_t& in_len, uint8_t*& out, size_t& out_len) {
    // zlib counts in uInt; pieces larger than 4 GiB are fed in turns by the caller's loop.
    const uInt in_now = static_cast<uInt>(std::min<size_t>(in_len, UINT32_MAX));
    const uInt out_now = static_cast<uInt>(std::min<size_t>(out_len, UINT32_MAX));
    z_.next_in = const_cast<Bytef*>(in);
    z_.avail_in = in_now;
    z_.next_out = out;
    z_.avail_out = out_now;
    const int rc = inflate(&z_, Z_NO_FLUSH);
    const size_t used = in_now - z_.avail_in;
    if (gzip_) magic_seen_ = std::min<size_t>(2, magic_seen_ + used);
    in += used;
    in_len -= used;
    out += out_now - z_.avail_out;
    out_len -= out_now - z_.avail_out;
    return rc;
  }

  bool fail(int rc, std::string& why) {
    if (rc == Z_NEED_DICT) {
      why = "needs a preset dictionary";
    } else if (rc == Z_MEM_ERROR) {
      why = "out of memory";
    } else {
      why = z_.msg ? z_.msg : "corrupt data";
    }
    return false;
  }

  const bool gzip_;
  z_stream z_{};
  bool initialized_ = false;
  bool active_ = false;    // inside a member (gzip) or the stream (deflate)
  bool ended_ = false;     // a member or the stream ended
  bool ignoring_ = false;  // trailing bytes after the end
  size_t magic_seen_ = 0;
  uint8_t held_[1] = {};
  size_t held_len_ = 0;
};

class BrotliCodec final : public Codec {
 public:
  BrotliCodec() : state_(BrotliDecoderCreateInstance(nullptr, nullptr, nullptr)) {}
  ~BrotliCodec() override {
    if (state_) BrotliDecoderDestroyInstance(state_);
  }
  std::string_view name() const override { return "br"; }
  bool complete() const override { return done_; }

  bool decode(const uint8_t*& in, size_t& in_len, uint8_t*& out, size_t& out_len,
              std::string& why) override {
    if (!state_) {
      why = "cannot start the brotli decoder";
      return false;
    }
    if (done_) {  // bytes after the end are ignored
      in += in_len;
      in_len = 0;
      return true;
    }
    const auto result =
        BrotliDecoderDecompressStream(state_, &in_len, &in, &out_len, &out, nullptr);
    if (result == BROTLI_DECODER_RESULT_ERROR) {
      why = describe(BrotliDecoderGetErrorCode(state_));
      return false;
    }
    if (result == BROTLI_DECODER_RESULT_SUCCESS) {
      done_ = true;
      in += in_len;
      in_len = 0;
    }
    return true;
  }

 private:
  // "_ERROR_FORMAT_PADDING_1" reads as "corrupt data (format padding 1)".
  static std::string describe(BrotliDecoderErrorCode code) {
    std::string_view raw = BrotliDecoderErrorString(code);
    if (raw.starts_with("_ERROR_")) raw.remove_prefix(7);
    std::string words(raw);
    for (char& c : words) c = c == '_' ? ' ' : static_cast<char>(std::tolower(c));
    return "corrupt data (" + words + ")";
  }

  BrotliDecoderState* state_;
  bool done_ = false;
};

// zstd frames may be concatenated (RFC 8878); anything after a frame must be another frame.
class ZstdCodec final : public Codec {
 public:
  ZstdCodec() : ctx_(ZSTD_createDCtx()) {
    if (ctx_) ZSTD_DCtx_setParameter(ctx_, ZSTD_d_windowLogMax, kZstdWindowLogMax);
  }
  ~ZstdCodec() override { ZSTD_freeDCtx(ctx_); }
  std::string_view name() const override { return "zstd"; }
  bool complete() const override { return frame_done_; }

  bool decode(const uint8_t*& in, size_t& in_len, uint8_t*& out, size_t& out_len,
              std::string& why) override {
    if (!ctx_) {
      why = "cannot start the zstd decoder";
      return false;
    }
    // A call with no input between frames would start waiting for the next one.
    if (in_len == 0 && frame_done_) return true;
    ZSTD_inBuffer src{in, in_len, 0};
    ZSTD_outBuffer dst{out, out_len, 0};
    bool ok = true;
    do {
      if (!check_magic(src)) {
        why = "invalid frame magic";
        ok = false;
        break;
      }
      const size_t before_in = src.pos, before_out = dst.pos;
      const size_t rc = ZSTD_decompressStream(ctx_, &dst, &src);
      if (ZSTD_isError(rc)) {
        why = ZSTD_getErrorName(rc);
        ok = false;
        break;
      }
      note_header(static_cast<const uint8_t*>(src.src) + before_in, src.pos - before_in);
      frame_out_ += dst.pos - before_out;
      // The decoder stops at the end of a frame: what follows starts the next one.
      frame_done_ = rc == 0;
      if (!content_size_holds()) {
        why = "frame content size mismatch";
        ok = false;
        break;
      }
      if (frame_done_) {
        header_len_ = 0;
        frame_out_ = 0;
        content_size_ = ZSTD_CONTENTSIZE_UNKNOWN;
      }
      magic_seen_ = frame_done_ ? 0 : std::min<size_t>(4, magic_seen_ + src.pos - before_in);
      if (src.pos == before_in && dst.pos == before_out) break;
    } while (src.pos < src.size && dst.pos < dst.size);
    in += src.pos;
    in_len -= src.pos;
    out += dst.pos;
    out_len -= dst.pos;
    return ok;
  }

 private:
  // libzstd checks a frame's declared content size when it decodes the frame in one call but
  // not always when the frame arrives in pieces; the check is done here, so that the outcome
  // does not depend on how the body was cut.
  void note_header(const uint8_t* bytes, size_t n) {
    if (header_len_ == sizeof(header_) || n == 0) return;
    const size_t take = std::min(n, sizeof(header_) - header_len_);
    std::copy_n(bytes, take, header_ + header_len_);
    header_len_ += take;
    // Skippable frames output nothing: there is nothing to check. ZSTD_getFrameContentSize()
    // (the stable API) fails until the whole header, at most 18 bytes, is there.
    if (skippable_) {
      header_len_ = sizeof(header_);
      return;
    }
    const unsigned long long size = ZSTD_getFrameContentSize(header_, header_len_);
    if (size == ZSTD_CONTENTSIZE_ERROR) return;  // incomplete; a bad one fails in libzstd
    content_size_ = size;
    header_len_ = sizeof(header_);  // parsed: stop collecting
  }
  bool content_size_holds() const {
    if (content_size_ == ZSTD_CONTENTSIZE_UNKNOWN) return true;
    return frame_done_ ? frame_out_ == content_size_ : frame_out_ <= content_size_;
  }

  // Only zstd frames and skippable frames. libzstd also reads pre-1.0 "legacy" frames, which
  // are no content coding, and reads some of them only when they arrive whole. On a mismatch
  // `src.pos` is left at the bad byte.
  bool check_magic(ZSTD_inBuffer& src) {
    static constexpr uint8_t kFrame[4] = {0x28, 0xb5, 0x2f, 0xfd};
    static constexpr uint8_t kSkippable[4] = {0x50, 0x2a, 0x4d, 0x18};  // 0x50-0x5f first
    const auto* bytes = static_cast<const uint8_t*>(src.src) + src.pos;
    for (size_t i = 0; magic_seen_ + i < 4 && src.pos + i < src.size; ++i) {
      const size_t k = magic_seen_ + i;
      if (k == 0) skippable_ = (bytes[i] & 0xf0) == kSkippable[0];
      const uint8_t want = skippable_ ? kSkippable[k] : kFrame[k];
      if (k == 0 ? !skippable_ && bytes[i] != want : bytes[i] != want) {
        src.pos += i;
        return false;
      }
    }
    return true;
  }

  ZSTD_DCtx* ctx_;
  bool frame_done_ = false;
  size_t magic_seen_ = 0;  // bytes of the current frame's magic number already checked
  bool skippable_ = false;
  uint8_t header_[18] = {};  // the current frame's header until parsed (18: the largest)
  size_t header_len_ = 0;
  unsigned long long content_size_ = ZSTD_CONTENTSIZE_UNKNOWN;  // declared by the frame header
  unsigned long long frame_out_ = 0;                            // decoded from the frame so far
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

std::unique_ptr<Codec> make_codec(std::string_view coding) {
  if (iequals(coding, "gzip") || iequals(coding, "x-gzip"))
    return std::make_unique<ZlibCodec>(true);
  if (iequals(coding, "deflate")) return std::make_unique<ZlibCodec>(false);
  if (iequals(coding, "br")) return std::make_unique<BrotliCodec>();
  if (iequals(coding, "zstd")) return std::make_unique<ZstdCodec>();
  return nullptr;
}

std::string format_size(uint64_t n) {
  if (n >= (1 << 20) && n % (1 << 20) == 0) return std::to_string(n >> 20) + " MiB";
  if (n >= 1024 && n % 1024 == 0) return std::to_string(n >> 10) + " KiB";
  return std::to_string(n) + " bytes";
}

}  // namespace

ContentDecoder::ContentDecoder(std::string_view content_encoding, const DecodeLimits& limits)
    : limits_(limits), encoding_(trim(content_encoding)) {
  std::string_view rest = encoding_;
  std::vector<std::string_view> codings;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string_view coding = trim(rest.substr(0, comma));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (!coding.empty() && !iequals(coding, "identity")) codings.push_back(coding);
  }
  if (codings.size() > kMaxCodings) {
    fail(Status::kUnsupported, "Content-Encoding lists " + std::to_string(codings.size()) +
                                   " codings; at most " + std::to_string(kMaxCodings) +
                                   " are decoded");
    return;
  }
  for (auto it = codings.rbegin(); it != codings.rend(); ++it) {
    auto codec = make_codec(*it);
    if (!codec) {
      fail(Status::kUnsupported, "unsupported Content-Encoding \"" + std::string(*it) + "\"");
      stages_.clear();
      return;
    }
    stages_.push_back({std::move(codec), std::make_unique<uint8_t[]>(kChunk)});
  }
}

ContentDecoder::~ContentDecoder() = default;
ContentDecoder::ContentDecoder(ContentDecoder&&) noexcept = default;
ContentDecoder& ContentDecoder::operator=(ContentDecoder&&) noexcept = default;

ContentDecoder::Status ContentDecoder::feed(std::string_view in, std::string& out) {
  if (status_ != Status::kOk || in.empty()) return status_;
  if (stages_.empty()) {
    out.append(in);
    in_bytes_ += in.size();
    out_bytes_ += in.size();
    return status_;
  }
  run(0, reinterpret_cast<const uint8_t*>(in.data()), in.size(), out);
  return status_;
}

ContentDecoder::Status ContentDecoder::finish(std::string& /*out*/) {
  if (status_ != Status::kOk) return status_;
  for (const Stage& stage : stages_) {
    if (stage.in > 0 && !stage.codec->complete()) {
      fail_in(stage, "stream truncated after " + std::to_string(stage.in) + " bytes");
      break;
    }
  }
  return status_;
}

// Decodes `in` through stage `i` and on down the chain, one chunk at a time, so memory stays
// at one chunk per coding however much the input expands.
void ContentDecoder::run(size_t i, const uint8_t* in, size_t len, std::string& out) {
  Stage& stage = stages_[i];
  for (;;) {
    uint8_t* next = stage.buffer.get();
    size_t room = kChunk;
    std::string why;
    const size_t len_before = len;
    const bool ok = stage.codec->decode(in, len, next, room, why);
    const size_t consumed = len_before - len;
    const size_t produced = kChunk - room;
    stage.in += consumed;
    if (i == 0) in_bytes_ += consumed;
    // What came out before corrupt data is still the body.
    if (produced > 0 && !deliver(i, stage.buffer.get(), produced, out)) return;
    if (!ok) {
      fail_in(stage, why + " at byte " + std::to_string(stage.in));
      return;
    }
    if (len == 0 && room > 0) return;  // all input taken, nothing held back
    if (consumed == 0 && produced == 0) {
      fail_in(stage, "decoder made no progress");
      return;
    }
  }
}

// Hands a chunk that stage `i` produced to the next stage, or to `out` after the last.
bool ContentDecoder::deliver(size_t i, const uint8_t* data, size_t len, std::string& out) {
  const uint64_t allowed = allowed_output();
  Stage& stage = stages_[i];
  stage.out += len;
  if (i + 1 < stages_.size()) {
    // Inner codings are limited too: empty deflate blocks inside brotli expand to nothing but
    // can cost a lot of time.
    if (stage.out > allowed) {
      stop_at_limit();
      return false;
    }
    run(i + 1, data, len, out);
    return status_ == Status::kOk;
  }
  const uint64_t room = allowed > out_bytes_ ? allowed - out_bytes_ : 0;
  const size_t take = static_cast<size_t>(std::min<uint64_t>(len, room));
  out.append(reinterpret_cast<const char*>(data), take);
  out_bytes_ += take;
  if (take < len) {
    stop_at_limit();
    return false;
  }
  return true;
}

uint64_t ContentDecoder::allowed_output() const {
  uint64_t by_ratio;
  if (__builtin_mul_overflow(in_bytes_, limits_.max_ratio, &by_ratio)) by_ratio = UINT64_MAX;
  return std::min(limits_.max_output, std::max(limits_.ratio_grace, by_ratio));
}

void ContentDecoder::fail(Status status, std::string error) {
  status_ = status;
  error_ = std::move(error);
}

// "gzip: <what>", naming the whole header when the coding is one of several.
void ContentDecoder::fail_in(const Stage& stage, const std::string& what) {
  std::string error(stage.codec->name());
  error += ": " + what;
  if (stages_.size() > 1) error += " (Content-Encoding: " + encoding_ + ")";
  fail(Status::kError, std::move(error));
}

void ContentDecoder::stop_at_limit() {
  std::string error = "decompression stopped: ";
  if (allowed_output() >= limits_.max_output) {
    error += format_size(limits_.max_output) + " output limit";
  } else {
    error += std::to_string(limits_.max_ratio) + ":1 ratio limit at " +
             format_size(allowed_output()) + " from " + format_size(in_bytes_);
  }
  fail(Status::kBombLimit, error + " (Content-Encoding: " + encoding_ + ")");
}

}  // namespace agentwall::protocol
