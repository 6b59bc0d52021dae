#include <doctest/doctest.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "agent/protocol/content/content.h"

using namespace agentwall::protocol;
using Status = ContentDecoder::Status;

namespace {

constexpr std::string_view kBody =
    R"({"id":"chatcmpl-1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"The quick brown fox jumps over the lazy dog. The quick brown fox jumps over the lazy dog."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":20}})";

// The tests link the decoders only, so brotli streams were made once with libbrotlienc
// (BrotliEncoderCompress, window 22): kBody, gzip(kBody) and 100 MiB of zeros.
// 149 bytes
constexpr unsigned char kBodyBr[] = {
    0x1b, 0x15, 0x01, 0x20, 0x8c, 0xc3, 0x74, 0xa3, 0x3d, 0x5f, 0x94, 0x70, 0x8d, 0xd2, 0x14,
    0x44, 0x3a, 0xa7, 0xec, 0xe7, 0x7c, 0x3b, 0x50, 0x7a, 0x0e, 0x18, 0x5a, 0x87, 0xa5, 0xab,
    0xef, 0xdb, 0xa6, 0xe7, 0x39, 0xae, 0xe3, 0x6c, 0x31, 0x4f, 0xab, 0x46, 0x20, 0x48, 0x10,
    0xbd, 0x66, 0xd0, 0xee, 0xae, 0xd6, 0xca, 0x6e, 0x48, 0xcb, 0x76, 0xe2, 0xbc, 0x8b, 0x92,
    0xaf, 0x97, 0x3a, 0x03, 0x69, 0x15, 0x6f, 0x69, 0x3f, 0x75, 0xca, 0x22, 0xf8, 0x2b, 0x70,
    0x3d, 0x87, 0x10, 0x44, 0x7f, 0x2e, 0xb8, 0x2f, 0x54, 0x08, 0xa6, 0x2a, 0x84, 0xf2, 0x12,
    0x9c, 0x0e, 0xe2, 0x1e, 0x84, 0x2d, 0xac, 0x4e, 0x75, 0xdd, 0x48, 0x66, 0xb0, 0x17, 0xe3,
    0xb5, 0x32, 0x69, 0xab, 0x78, 0x94, 0x9e, 0x63, 0x7d, 0x4c, 0xb2, 0xb1, 0xd4, 0x22, 0x3f,
    0xf9, 0xa3, 0xd2, 0x73, 0x98, 0x16, 0x07, 0x79, 0x3b, 0xf8, 0x62, 0xa7, 0xb7, 0x4f, 0xcb,
    0xd8, 0x4f, 0x5b, 0x58, 0x3c, 0xbc, 0xc2, 0xb2, 0xcd, 0x3f, 0x43, 0x86, 0x6d, 0xfe,
};
// 195 bytes
constexpr unsigned char kBodyGzipBr[] = {
    0x0b, 0x5f, 0x80, 0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0x95, 0x8f,
    0x4b, 0x0e, 0xc2, 0x30, 0x0c, 0x44, 0xaf, 0x12, 0xcd, 0xba, 0xa0, 0xd2, 0x65, 0xce, 0xc1,
    0x0e, 0x21, 0x14, 0x52, 0x43, 0x43, 0xdb, 0xb8, 0xc4, 0x2e, 0xbf, 0xaa, 0x77, 0x27, 0x95,
    0x80, 0x3d, 0x2b, 0x4b, 0x6f, 0x6c, 0xeb, 0xcd, 0x84, 0x50, 0xc3, 0xc2, 0x37, 0x4e, 0x7d,
    0x3f, 0x74, 0xab, 0x0d, 0x0a, 0xf0, 0xf1, 0x42, 0x5e, 0x3f, 0x74, 0xed, 0x39, 0x73, 0xd2,
    0xc0, 0x31, 0x47, 0xbe, 0xe1, 0xe0, 0x49, 0x60, 0x77, 0x13, 0x42, 0xac, 0xe9, 0x01, 0x5b,
    0x16, 0xe8, 0x49, 0xc4, 0x9d, 0x09, 0x76, 0x42, 0xe2, 0x2e, 0x4f, 0x38, 0x91, 0x20, 0xea,
    0xa2, 0x2e, 0x37, 0x1c, 0x95, 0xe2, 0xf2, 0x6f, 0xdb, 0x90, 0xb9, 0x8e, 0xc1, 0xb7, 0xe6,
    0x98, 0xf8, 0x1e, 0xcd, 0x89, 0x1f, 0xe6, 0x32, 0xf6, 0x83, 0x18, 0xbe, 0x51, 0x32, 0x9a,
    0xe3, 0xce, 0xbd, 0x9e, 0xa6, 0xe6, 0xf3, 0xda, 0xfc, 0xb3, 0x8c, 0xb9, 0xc0, 0x29, 0xc4,
    0x20, 0xcd, 0x21, 0x91, 0x93, 0xac, 0x6a, 0x21, 0xca, 0x03, 0xe6, 0x7d, 0x81, 0xf1, 0xeb,
    0x36, 0xa4, 0x5c, 0x45, 0x0f, 0xca, 0x2d, 0xc5, 0x5c, 0x61, 0x53, 0x2d, 0x6e, 0xdf, 0x72,
    0x3f, 0x5c, 0x95, 0xf3, 0xfc, 0x06, 0x04, 0xa2, 0x4b, 0x9c, 0x16, 0x01, 0x00, 0x00, 0x03,
};
// 165 bytes
constexpr unsigned char kZerosBr[] = {
    0xcb, 0xff, 0xff, 0x3f, 0x00, 0x24, 0x00, 0xe2, 0xb1, 0x40, 0x72, 0xef, 0xff, 0xf8, 0xff,
    0xff, 0x07, 0x80, 0x04, 0x40, 0x1c, 0x16, 0x80, 0xee, 0xfd, 0x1f, 0xff, 0xff, 0xff, 0x00,
    0x90, 0x00, 0x88, 0xc3, 0x02, 0xd0, 0xbd, 0xff, 0xe3, 0xff, 0xff, 0x1f, 0x00, 0x12, 0x00,
    0x71, 0x58, 0x00, 0xba, 0xf7, 0x7f, 0xfc, 0xff, 0xff, 0x03, 0x40, 0x02, 0x20, 0x0e, 0x0b,
    0x40, 0xf7, 0xfe, 0x8f, 0xff, 0xff, 0x7f, 0x00, 0x48, 0x00, 0xc4, 0x61, 0x01, 0xe8, 0xde,
    0xff, 0xf1, 0xff, 0xff, 0x0f, 0x00, 0x09, 0x80, 0x38, 0x2c, 0x00, 0xdd, 0xfb, 0x3f, 0xfe,
    0xff, 0xff, 0x01, 0x20, 0x01, 0x10, 0x87, 0x05, 0xa0, 0x7b, 0xff, 0xc7, 0xff, 0xff, 0x3f,
    0x00, 0x24, 0x00, 0xe2, 0xb0, 0x00, 0x74, 0xef, 0xff, 0xf8, 0xff, 0xff, 0x07, 0x80, 0x04,
    0x40, 0x1c, 0x16, 0x80, 0xee, 0xfd, 0x1f, 0xff, 0xff, 0xff, 0x00, 0x90, 0x00, 0x88, 0xc3,
    0x02, 0xd0, 0xbd, 0xff, 0xe3, 0xff, 0xff, 0x1f, 0x00, 0x12, 0x00, 0x71, 0x58, 0x00, 0xba,
    0xf7, 0x7f, 0xf9, 0xff, 0xff, 0x03, 0x40, 0x02, 0x20, 0x0e, 0x0b, 0x40, 0xf7, 0xfe, 0x07,
};

std::string bytes(const unsigned char* data, size_t len) {
  return std::string(reinterpret_cast<const char*>(data), len);
}

// window_bits as for deflateInit2: 15 zlib, -15 raw deflate, 16 + 15 gzip.
std::string zlib_compress(std::string_view in, int window_bits, int level = 6) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, level, Z_DEFLATED, window_bits, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}
std::string gzip(std::string_view in, int level = 6) {
  return zlib_compress(in, 16 + 15, level);
}

std::string zstd(std::string_view in, int window_log = 0) {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  if (window_log) ZSTD_CCtx_setParameter(ctx, ZSTD_c_windowLog, window_log);
  // Streamed without a pledged size, so the frame header keeps the full window.
  std::string out(ZSTD_compressBound(in.size()) + 64, '\0');
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  ZSTD_outBuffer dst{out.data(), out.size(), 0};
  REQUIRE_FALSE(ZSTD_isError(ZSTD_compressStream2(ctx, &dst, &src, ZSTD_e_continue)));
  REQUIRE(ZSTD_compressStream2(ctx, &dst, &src, ZSTD_e_end) == 0);
  out.resize(dst.pos);
  ZSTD_freeCCtx(ctx);
  return out;
}

struct Decoded {
  Status status;
  std::string out;
  std::string error;
};

// Feeds `encoded` in pieces cut at `cuts` (ascending offsets), then finishes.
Decoded decode(std::string_view encoding, std::string_view encoded,
               const std::vector<size_t>& cuts = {}, const DecodeLimits& limits = {}) {
  ContentDecoder decoder(encoding, limits);
  Decoded d{Status::kOk, {}, {}};
  size_t at = 0;
  for (size_t cut : cuts) {
    decoder.feed(encoded.substr(at, cut - at), d.out);
    at = cut;
  }
  decoder.feed(encoded.substr(at), d.out);
  d.status = decoder.finish(d.out);
  d.error = decoder.error();
  CHECK(decoder.out_bytes() == d.out.size());
  return d;
}

Decoded decode_bytewise(std::string_view encoding, std::string_view encoded) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < encoded.size(); ++i) cuts.push_back(i);
  return decode(encoding, encoded, cuts);
}

// One encoded sample of kBody per header value.
std::vector<std::pair<std::string, std::string>> samples() {
  return {
      {"gzip", gzip(kBody)},
      {"x-gzip", gzip(kBody)},
      {"GZip", gzip(kBody)},
      {"deflate", zlib_compress(kBody, 15)},
      {"deflate", zlib_compress(kBody, -15)},  // raw, as some servers send it
      {"br", bytes(kBodyBr, sizeof kBodyBr)},
      {"zstd", zstd(kBody)},
      {"identity", std::string(kBody)},
      {"", std::string(kBody)},
      {"gzip, br", bytes(kBodyGzipBr, sizeof kBodyGzipBr)},
      {"deflate, gzip", gzip(zlib_compress(kBody, 15))},
      {"gzip, zstd", zstd(gzip(kBody))},
      {" identity ,gzip ", gzip(kBody)},
      {"gzip, gzip, gzip, gzip", gzip(gzip(gzip(gzip(kBody))))},
  };
}

}  // namespace

TEST_CASE("content: every coding decodes whole, bytewise and split at every position") {
  for (const auto& [name, body] : samples()) {
    const std::string& encoding = name;  // clang 14 lambdas (CAPTURE) cannot see bindings
    const std::string& encoded = body;
    CAPTURE(encoding);
    const Decoded whole = decode(encoding, encoded);
    CHECK(whole.status == Status::kOk);
    CHECK(whole.error == "");
    CHECK(whole.out == kBody);
    CHECK(decode_bytewise(encoding, encoded).out == kBody);
    for (size_t cut = 0; cut <= encoded.size(); ++cut) {
      CAPTURE(cut);
      const Decoded split = decode(encoding, encoded, {cut});
      REQUIRE(split.status == Status::kOk);
      REQUIRE(split.out == kBody);
    }
  }
}

TEST_CASE("content: counters and identity") {
  const std::string encoded = gzip(kBody);
  ContentDecoder gz("gzip");
  std::string out;
  CHECK_FALSE(gz.identity());
  CHECK(gz.feed(std::string_view(), out) == Status::kOk);
  CHECK(gz.feed(encoded, out) == Status::kOk);
  CHECK(gz.in_bytes() == encoded.size());
  CHECK(gz.out_bytes() == kBody.size());

  ContentDecoder plain("identity");
  CHECK(plain.identity());
  out.clear();
  plain.feed("abc", out);
  plain.feed(std::string_view(), out);
  plain.feed("def", out);
  CHECK(plain.finish(out) == Status::kOk);
  CHECK(out == "abcdef");
  CHECK(plain.in_bytes() == 6);
  CHECK(plain.out_bytes() == 6);
}

TEST_CASE("content: gzip members are concatenated and trailing bytes ignored") {
  const std::string two = gzip("first member, ") + gzip("second member");
  for (size_t cut = 0; cut <= two.size(); ++cut) {
    const Decoded d = decode("gzip", two, {cut});
    REQUIRE(d.status == Status::kOk);
    REQUIRE(d.out == "first member, second member");
  }
  CHECK(decode("gzip", gzip(kBody) + std::string(8, '\0')).out == kBody);
  // Once bytes are ignored, a later gzip magic is ignored with them.
  const Decoded junk = decode("gzip", gzip("a") + "xx" + gzip("b"));
  CHECK(junk.status == Status::kOk);
  CHECK(junk.out == "a");
  // A second member cut short is a truncated body.
  const std::string cut_member = gzip("a") + gzip("b").substr(0, 5);
  CHECK(decode("gzip", cut_member).status == Status::kError);
}

TEST_CASE("content: zstd frames are concatenated") {
  const std::string frames = zstd("one ") + zstd("two");
  CHECK(decode("zstd", frames).out == "one two");
  CHECK(decode_bytewise("zstd", frames).out == "one two");
  const std::string one = zstd("one");
  const Decoded garbage = decode("zstd", one + "junk");
  CHECK(garbage.status == Status::kError);
  CHECK(garbage.error == "zstd: invalid frame magic at byte " + std::to_string(one.size()));
  CHECK(garbage.out == "one");
  // Skippable frames carry nothing but are frames.
  const std::string skippable("\x5a\x2a\x4d\x18\x03\0\0\0abc", 11);
  CHECK(decode("zstd", skippable + zstd("x") + skippable).out == "x");
  CHECK(decode_bytewise("zstd", skippable + zstd("x") + skippable).out == "x");
}

TEST_CASE("content: a stream cut anywhere is an error at finish, an empty body is not") {
  for (const auto& [name, body] : samples()) {
    const std::string& encoding = name;  // clang 14 lambdas (CAPTURE) cannot see bindings
    const std::string& encoded = body;
    if (ContentDecoder(encoding).identity()) continue;
    CAPTURE(encoding);
    CHECK(decode(encoding, "").status == Status::kOk);
    for (size_t len = 1; len < encoded.size(); ++len) {
      CAPTURE(len);
      const Decoded d = decode(encoding, encoded.substr(0, len));
      REQUIRE(d.status == Status::kError);
      REQUIRE(d.error.find("stream truncated after") != std::string::npos);
      REQUIRE(kBody.starts_with(d.out));
    }
  }
  CHECK(decode("br", bytes(kBodyBr, 20)).error.starts_with("br: stream truncated after 20 bytes"));
}

TEST_CASE("content: garbage and corruption are errors that say where") {
  const Decoded not_gzip = decode("gzip", "hello, world");
  CHECK(not_gzip.status == Status::kError);
  CHECK(not_gzip.error == "gzip: invalid header at byte 0");
  CHECK(not_gzip.out.empty());
  CHECK(decode_bytewise("gzip", "\x1fxyz").error == "gzip: invalid header at byte 1");

  std::string bad_crc = gzip(kBody);
  bad_crc[bad_crc.size() - 6] ^= 0x55;
  const Decoded crc = decode("gzip", bad_crc);
  CHECK(crc.status == Status::kError);
  CHECK(crc.error.starts_with("gzip: incorrect data check at byte "));

  CHECK(decode("deflate", "hello, world").status == Status::kError);
  CHECK(decode("br", "hello, world").error.starts_with("br: corrupt data ("));
  CHECK(decode("zstd", "hello, world").error == "zstd: invalid frame magic at byte 0");
  // Pre-1.0 zstd frames (libzstd's legacy formats) are not the zstd content coding.
  CHECK(decode("zstd", std::string("\x25\xb5\x2f\xfd\0\0\0\0", 8)).status == Status::kError);
  const Decoded inner = decode("gzip, zstd", zstd("not gzip"));
  CHECK(inner.error == "gzip: invalid header at byte 0 (Content-Encoding: gzip, zstd)");

  // The status sticks: nothing more is decoded after an error.
  ContentDecoder decoder("gzip");
  std::string out;
  CHECK(decoder.feed("xx", out) == Status::kError);
  CHECK(decoder.feed(gzip(kBody), out) == Status::kError);
  CHECK(decoder.finish(out) == Status::kError);
  CHECK(out.empty());
}

TEST_CASE("content: a zstd frame must hold the content size its header declares") {
  // Header: single segment, 211 bytes declared; then one empty raw last block. libzstd spots
  // the lie when the frame comes whole, and the decoder must when it comes in pieces too.
  const std::string liar("\x28\xb5\x2f\xfd\x20\xd3\x01\x00\x00", 9);
  CHECK(decode("zstd", liar).status == Status::kError);
  CHECK(decode_bytewise("zstd", liar).error == "zstd: frame content size mismatch at byte 9");
  // A true declaration passes either way, also for several frames in a row.
  auto declared = [](std::string_view in) {
    std::string out(ZSTD_compressBound(in.size()), '\0');
    out.resize(ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 3));
    unsigned long long size = ZSTD_getFrameContentSize(out.data(), out.size());
    REQUIRE(size == in.size());
    return out;
  };
  const std::string honest = declared("one ") + declared("two");
  CHECK(decode_bytewise("zstd", honest).out == "one two");
  CHECK(decode("zstd", honest).out == "one two");
}

TEST_CASE("content: zstd frames wanting more than an 8 MiB window are refused") {
  const std::string big = zstd(std::string(1000, 'x'), 27);
  const Decoded d = decode("zstd", big);
  CHECK(d.status == Status::kError);
  CHECK(d.error.find("too much memory") != std::string::npos);
  CHECK(decode("zstd", zstd(std::string(1000, 'x'), 23)).status == Status::kOk);
}

TEST_CASE("content: unknown codings are unsupported, not guessed") {
  for (const char* encoding : {"compress", "gzip, compress", "x-unknown", "gzip,,br;q=1"}) {
    CAPTURE(encoding);
    ContentDecoder decoder(encoding);
    std::string out;
    CHECK(decoder.status() == Status::kUnsupported);
    CHECK_FALSE(decoder.identity());
    CHECK(decoder.feed(gzip(kBody), out) == Status::kUnsupported);
    CHECK(out.empty());
  }
  CHECK(ContentDecoder("compress").error() == "unsupported Content-Encoding \"compress\"");
  CHECK(ContentDecoder("gzip, gzip, gzip, gzip, gzip").status() == Status::kUnsupported);
}

TEST_CASE("content: the output limit stops decoding exactly at the limit") {
  const std::string zeros = gzip(std::string(20 << 20, '\0'), 1);
  DecodeLimits limits;
  limits.max_output = 1 << 20;
  limits.max_ratio = 1'000'000;
  ContentDecoder decoder("gzip", limits);
  std::string out;
  CHECK(decoder.feed(zeros, out) == Status::kBombLimit);
  CHECK(out.size() == limits.max_output);
  CHECK(decoder.out_bytes() == limits.max_output);
  CHECK(decoder.error() == "decompression stopped: 1 MiB output limit (Content-Encoding: gzip)");
  CHECK(decoder.feed(zeros, out) == Status::kBombLimit);
  CHECK(decoder.finish(out) == Status::kBombLimit);
  CHECK(out.size() == limits.max_output);

  // A body exactly at the limit is whole, not a bomb.
  const std::string exact(4096, 'a');
  limits.max_output = exact.size();
  const Decoded at_limit = decode("gzip", gzip(exact), {}, limits);
  CHECK(at_limit.status == Status::kOk);
  CHECK(at_limit.out == exact);
  limits.max_output = exact.size() - 1;
  const Decoded over = decode("gzip", gzip(exact), {}, limits);
  CHECK(over.status == Status::kBombLimit);
  CHECK(over.out.size() == exact.size() - 1);
}

TEST_CASE("content: the ratio limit stops bombs past the grace output") {
  const std::string br_zeros = bytes(kZerosBr, sizeof kZerosBr);  // 100 MiB in 165 bytes
  // Fed whole and bytewise: at 165 bytes in, the grace (1 MiB) is what may come out.
  for (bool bytewise : {false, true}) {
    ContentDecoder decoder("br");
    std::string out;
    Status status = Status::kOk;
    if (bytewise) {
      for (char c : br_zeros) status = decoder.feed(std::string_view(&c, 1), out);
    } else {
      status = decoder.feed(br_zeros, out);
    }
    CHECK(status == Status::kBombLimit);
    CHECK(out.size() == DecodeLimits{}.ratio_grace);
    CHECK(out.find_first_not_of('\0') == std::string::npos);
    CHECK(decoder.error().starts_with("decompression stopped: 1000:1 ratio limit at 1 MiB from "));
    CHECK(decoder.error().ends_with(" bytes (Content-Encoding: br)"));
  }

  // deflate tops out near 1030:1, so a zero bomb crosses the line soon after the grace.
  const std::string gz_zeros = gzip(std::string(20 << 20, '\0'));
  for (const auto& [name, body] : std::vector<std::pair<std::string, std::string>>{
           {"gzip", gz_zeros},
           {"zstd", zstd(std::string(100 << 20, '\0'))},
           {"gzip, zstd", zstd(gz_zeros)},
       }) {
    const std::string& encoding = name;
    const std::string& encoded = body;
    CAPTURE(encoding);
    ContentDecoder decoder(encoding);
    std::string out;
    CHECK(decoder.feed(encoded, out) == Status::kBombLimit);
    CHECK(out.size() >= DecodeLimits{}.ratio_grace);
    CHECK(out.size() <= std::max<uint64_t>(DecodeLimits{}.ratio_grace, decoder.in_bytes() * 1000));
    CHECK(out.size() < (20 << 20));
    CHECK(decoder.error().find(":1 ratio limit") != std::string::npos);
  }

  // Legitimately compressible bodies under the ratio pass.
  const std::string text(8 << 20, 'x');
  DecodeLimits loose;
  loose.max_ratio = 2000;
  CHECK(decode("gzip", gzip(text), {}, loose).out == text);
}

TEST_CASE("content: inner codings are limited too") {
  // 5 MiB of empty stored deflate blocks decode to nothing but cost time; zstd packs them small.
  std::string empty_blocks;
  for (int i = 0; i < (1 << 20); ++i) empty_blocks.append("\x00\x00\x00\xff\xff", 5);
  const std::string packed = zstd(empty_blocks);
  ContentDecoder decoder("deflate, zstd");
  std::string out;
  CHECK(decoder.feed(packed, out) == Status::kBombLimit);
  CHECK(out.empty());
  CHECK(decoder.error().starts_with("decompression stopped: 1000:1 ratio limit"));
}
