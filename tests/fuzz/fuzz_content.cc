// Content-Encoding decoding on hostile bytes. Byte 0 picks the coding, byte 1 the piece size;
// the rest is the body. The limits must hold at every step, a failure must stick, and the
// outcome must not depend on how the body was cut unless a limit stopped it.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "agent/protocol/content/content.h"

namespace {

using agentwall::protocol::ContentDecoder;
using agentwall::protocol::DecodeLimits;
using Status = ContentDecoder::Status;

constexpr std::string_view kCodings[] = {
    "gzip",
    "deflate",
    "br",
    "zstd",
    "identity",
    "gzip, br",
    "deflate, zstd",
    "br, gzip",
    "zstd, br",
    "gzip, gzip",
    "x-gzip, zstd",
    "br, br",
    "compress",
    "",
    "deflate, gzip",
    "gzip, identity, deflate",
};

// Small limits, so that bombs are reached within an input's reach.
constexpr DecodeLimits kLimits{256 * 1024, 64, 16 * 1024};

void check(bool ok) {
  if (!ok) __builtin_trap();
}

struct Outcome {
  Status status;
  std::string out;
};

Outcome decode(std::string_view coding, std::string_view body, size_t piece) {
  ContentDecoder decoder(coding, kLimits);
  Outcome o{Status::kOk, {}};
  for (size_t at = 0; at < body.size(); at += piece) {
    const size_t before = o.out.size();
    const Status was = decoder.status();
    const Status now = decoder.feed(body.substr(at, piece), o.out);
    check(now == decoder.status());
    check(was == Status::kOk || (now == was && o.out.size() == before));
    check(decoder.out_bytes() == o.out.size());
    check(decoder.in_bytes() <= at + std::min(piece, body.size() - at));
    if (!decoder.identity()) {
      check(o.out.size() <= kLimits.max_output);
      check(o.out.size() <= std::max(kLimits.ratio_grace, decoder.in_bytes() * kLimits.max_ratio));
    }
    check((now == Status::kOk) == decoder.error().empty());
  }
  o.status = decoder.finish(o.out);
  check(decoder.out_bytes() == o.out.size());
  check((o.status == Status::kOk) == decoder.error().empty());
  return o;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const std::string_view coding = kCodings[data[0] % std::size(kCodings)];
  const size_t piece = 1 + data[1];
  const std::string_view body(reinterpret_cast<const char*>(data + 2), size - 2);
  const Outcome pieces = decode(coding, body, piece);
  const Outcome whole = decode(coding, body, body.size() + 1);
  if (pieces.status != Status::kBombLimit && whole.status != Status::kBombLimit) {
    check(pieces.status == whole.status);
    if (whole.status == Status::kOk) check(pieces.out == whole.out);
  }
  return 0;
}
