// Undoing Content-Encoding (gzip, deflate, br, zstd and stacks of them) as a body streams in,
// with limits against decompression bombs. Memory per decoder is bounded whatever the input.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::protocol {

// How far a body may expand. Identity bodies are not decompressed and pass through unlimited:
// the HTTP stage caps what it stores.
struct DecodeLimits {
  uint64_t max_output = 64 << 20;  // decoded bytes, at most
  uint64_t max_ratio = 1000;       // decoded bytes per compressed byte, at most…
  uint64_t ratio_grace = 1 << 20;  // …checked only once the output is larger than this
};

class ContentDecoder {
 public:
  enum class Status { kOk, kBombLimit, kError, kUnsupported };

  // `content_encoding` is the header value: "gzip", "x-gzip", "deflate" (zlib-wrapped or raw),
  // "br", "zstd", "identity", "" or a list ("gzip, br": applied in that order, so undone in
  // reverse). Names are case-insensitive. An unknown coding, or more than four, gives
  // kUnsupported. zstd frames may use windows up to 8 MiB (RFC 9659).
  explicit ContentDecoder(std::string_view content_encoding, const DecodeLimits& limits = {});
  ~ContentDecoder();
  ContentDecoder(ContentDecoder&&) noexcept;
  ContentDecoder& operator=(ContentDecoder&&) noexcept;

  // Appends what `in` decodes to. Pieces may be split anywhere. Output stops exactly at the
  // limit (kBombLimit). Once the status is not kOk it stays so and nothing more is appended.
  // Bytes after the end of a gzip, deflate or br stream are ignored, as browsers do; after a
  // zstd frame only another frame may follow.
  Status feed(std::string_view in, std::string& out);
  // End of body: kError when the encoded stream stopped short. An empty body is not an error.
  // `out` is there for symmetry with feed(); every decoded byte has already been appended.
  Status finish(std::string& out);

  Status status() const { return status_; }
  // What went wrong and where, e.g. "gzip: invalid header at byte 0"; empty while kOk.
  const std::string& error() const { return error_; }
  uint64_t in_bytes() const { return in_bytes_; }  // encoded bytes consumed
  uint64_t out_bytes() const { return out_bytes_; }
  bool identity() const { return stages_.empty() && status_ != Status::kUnsupported; }

  class Codec;  // one coding's streaming decoder, defined in content.cc

 private:
  struct Stage {
    std::unique_ptr<Codec> codec;
    std::unique_ptr<uint8_t[]> buffer;  // what one decode step produces
    uint64_t in = 0;                    // bytes this coding consumed
    uint64_t out = 0;                   // bytes it produced
  };
  void run(size_t stage, const uint8_t* in, size_t len, std::string& out);
  bool deliver(size_t stage, const uint8_t* data, size_t len, std::string& out);
  uint64_t allowed_output() const;
  void fail(Status status, std::string error);
  void fail_in(const Stage& stage, const std::string& what);
  void stop_at_limit();

  std::vector<Stage> stages_;  // in decoding order: the last coding listed first
  DecodeLimits limits_;
  std::string encoding_;  // the header value, for messages
  Status status_ = Status::kOk;
  std::string error_;
  uint64_t in_bytes_ = 0;
  uint64_t out_bytes_ = 0;
};

}  // namespace agentwall::protocol
