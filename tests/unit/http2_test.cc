#include <doctest/doctest.h>
#include <nghttp2/nghttp2.h>

#include <random>
#include <string>
#include <vector>

#include "agent/protocol/http2/http2.h"

using namespace agentwall::protocol;
using agentwall::protocol::http2::Decoder;

namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

enum : uint8_t {
  kData,
  kHeaders,
  kPriority,
  kRst,
  kSettings,
  kPush,
  kPing,
  kGoaway,
  kWindow,
  kCont
};
enum : uint8_t { kEndStream = 1, kEndHeaders = 4, kPadded = 8, kPrio = 0x20 };

std::string be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string frame(uint8_t type, uint8_t flags, uint32_t stream, std::string_view payload) {
  std::string f;
  const auto len = static_cast<uint32_t>(payload.size());
  f += static_cast<char>(len >> 16);
  f += static_cast<char>(len >> 8);
  f += static_cast<char>(len);
  f += static_cast<char>(type);
  f += static_cast<char>(flags);
  f += be32(stream);
  f += payload;
  return f;
}

std::string padded(std::string_view content, uint8_t pad) {
  return static_cast<char>(pad) + std::string(content) + std::string(pad, '\0');
}

std::string settings() {
  return frame(kSettings, 0, 0, std::string("\0\x03\0\0\0\x64", 6));
}

// The sending side's HPACK encoder.
class Encoder {
 public:
  explicit Encoder(size_t max_table = 4096) { nghttp2_hd_deflate_new(&deflater_, max_table); }
  ~Encoder() { nghttp2_hd_deflate_del(deflater_); }
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  std::string block(const Headers& headers) {
    std::vector<nghttp2_nv> nva;
    for (const Header& h : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(h.name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(h.value.data())), h.name.size(),
                     h.value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(out.data()),
                                            out.size(), nva.data(), nva.size());
    REQUIRE(n >= 0);
    out.resize(static_cast<size_t>(n));
    return out;
  }
  void change_table_size(size_t size) { nghttp2_hd_deflate_change_table_size(deflater_, size); }

 private:
  nghttp2_hd_deflater* deflater_ = nullptr;
};

const Headers kGet = {{":method", "GET"},
                      {":scheme", "https"},
                      {":authority", "api.example.com"},
                      {":path", "/v1/models"}};
const Headers kPost = {{":method", "POST"},
                       {":scheme", "https"},
                       {":authority", "api.example.com"},
                       {":path", "/v1/chat/completions"},
                       {"content-type", "application/json"},
                       {"authorization", "Bearer sk-test"}};
const Headers kOk = {{":status", "200"}, {"content-type", "text/event-stream"}};

// Events as lines; DATA pieces of one frame run are joined so that how bytes were split does
// not show.
class Recorder : public http2::FrameSink {
 public:
  std::vector<std::string> events;
  std::string text() const {
    std::string s;
    for (const auto& e : events) s += e + "\n";
    return s;
  }
  bool has_error() const { return !events.empty() && events.back().starts_with("error "); }

  void on_headers(uint32_t id, const Headers& headers, bool end, bool trailers) override {
    std::string e = "headers " + std::to_string(id) + flags(end, trailers);
    for (const auto& h : headers) e += " " + h.name + "=" + h.value;
    events.push_back(e);
  }
  void on_headers_unknown(uint32_t id, bool end, bool trailers) override {
    events.push_back("unknown " + std::to_string(id) + flags(end, trailers));
  }
  void on_data(uint32_t id, std::string_view data, bool end) override {
    const std::string prefix = "data " + std::to_string(id) + " ";
    if (open_data_ && events.back().starts_with(prefix)) {
      events.back() += data;
    } else if (!data.empty() || end) {
      events.push_back(prefix + std::string(data));
    }
    open_data_ = !end && (!data.empty() || open_data_);
    if (end) events.back() += " <end>";
  }
  void on_data_lost(uint32_t id, uint64_t len) override {
    open_data_ = false;
    events.push_back("lost " + std::to_string(id) + " " + std::to_string(len));
  }
  void on_reset(uint32_t id, uint32_t code) override {
    open_data_ = false;
    events.push_back("reset " + std::to_string(id) + " " + std::to_string(code));
  }
  void on_push_promise(uint32_t id, uint32_t promised, const Headers& headers) override {
    std::string e = "push " + std::to_string(id) + " " + std::to_string(promised);
    for (const auto& h : headers) e += " " + h.name + "=" + h.value;
    events.push_back(e);
  }
  void on_goaway(uint32_t last, uint32_t code) override {
    events.push_back("goaway " + std::to_string(last) + " " + std::to_string(code));
  }
  void on_error(std::string_view what) override { events.push_back("error " + std::string(what)); }

 private:
  static std::string flags(bool end, bool trailers) {
    return std::string(end ? " end" : "") + (trailers ? " trailers" : "");
  }
  bool open_data_ = false;
};

std::string decode(Decoder::Start start, std::string_view bytes, Decoder::Limits limits = {}) {
  Recorder r;
  Decoder d(start, r, limits);
  d.feed(bytes);
  return r.text();
}

}  // namespace

TEST_CASE("http2: client preface, SETTINGS, HEADERS and DATA make a request") {
  Encoder enc;
  const std::string body = R"({"model":"m","messages":[]})";
  const std::string wire =
      std::string(kPreface) + settings() + frame(kWindow, 0, 0, be32(1 << 20)) +
      frame(kHeaders, kEndHeaders, 1, enc.block(kPost)) + frame(kData, kEndStream, 1, body);
  CHECK(decode(Decoder::Start::kPreface, wire) ==
        "headers 1 :method=POST :scheme=https :authority=api.example.com "
        ":path=/v1/chat/completions content-type=application/json "
        "authorization=Bearer sk-test\n"
        "data 1 " +
            body + " <end>\n");
}

TEST_CASE("http2: the client direction must start with the preface") {
  const std::string out = decode(Decoder::Start::kPreface, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(out.starts_with("error "));
}

TEST_CASE("http2: a response in many DATA frames") {
  Encoder enc;
  std::string wire =
      settings() + frame(kSettings, 1, 0, "") + frame(kHeaders, kEndHeaders, 1, enc.block(kOk));
  std::string expected_body;
  for (int i = 0; i < 50; ++i) {
    const std::string chunk = "data: {\"delta\":" + std::to_string(i) + "}\n\n";
    expected_body += chunk;
    wire += frame(kData, 0, 1, chunk);
  }
  wire += frame(kData, kEndStream, 1, "");
  CHECK(decode(Decoder::Start::kFrames, wire) ==
        "headers 1 :status=200 content-type=text/event-stream\n"
        "data 1 " +
            expected_body + " <end>\n");
}

TEST_CASE("http2: interleaved streams keep their own headers and data") {
  Encoder enc;
  std::string wire = std::string(kPreface) + settings();
  for (uint32_t id : {1u, 3u, 5u}) {
    Headers h = kPost;
    h[3].value = "/v1/stream/" + std::to_string(id);
    wire += frame(kHeaders, kEndHeaders, id, enc.block(h));
  }
  wire += frame(kData, 0, 3, "three-a ");
  wire += frame(kData, 0, 1, "one-a ");
  wire += frame(kData, 0, 5, "five-a ");
  wire += frame(kData, kEndStream, 1, "one-b");
  wire += frame(kData, kEndStream, 5, "five-b");
  wire += frame(kData, kEndStream, 3, "three-b");
  const std::string out = decode(Decoder::Start::kPreface, wire);
  CHECK(out.find(":path=/v1/stream/1 ") != std::string::npos);
  CHECK(out.find(":path=/v1/stream/3 ") != std::string::npos);
  CHECK(out.find(":path=/v1/stream/5 ") != std::string::npos);
  CHECK(
      out.ends_with("data 3 three-a \ndata 1 one-a \ndata 5 five-a \ndata 1 one-b <end>\n"
                    "data 5 five-b <end>\ndata 3 three-b <end>\n"));
}

TEST_CASE("http2: CONTINUATION carries the rest of a header block") {
  Encoder enc;
  const std::string block = enc.block(kPost);
  const std::string wire = frame(kHeaders, kEndStream, 7, block.substr(0, 5)) +
                           frame(kCont, 0, 7, block.substr(5, 10)) +
                           frame(kCont, kEndHeaders, 7, block.substr(15));
  const std::string out = decode(Decoder::Start::kFrames, wire);
  CHECK(out.starts_with("headers 7 end :method=POST"));
  CHECK(out.find("authorization=Bearer sk-test") != std::string::npos);
}

TEST_CASE("http2: only CONTINUATION of the same stream may follow an unfinished block") {
  Encoder enc;
  const std::string block = enc.block(kGet);
  const std::string headers = frame(kHeaders, 0, 1, block.substr(0, 4));
  CHECK(decode(Decoder::Start::kFrames, headers + frame(kData, 0, 1, "x")).starts_with("error "));
  CHECK(decode(Decoder::Start::kFrames, headers + frame(kCont, kEndHeaders, 3, block.substr(4)))
            .starts_with("error "));
  CHECK(decode(Decoder::Start::kFrames, frame(kCont, kEndHeaders, 1, block)).starts_with("error "));
}

TEST_CASE("http2: padding on DATA and HEADERS is removed") {
  Encoder enc;
  const std::string priority = be32(0x80000003) + "\x10";
  const std::string wire =
      frame(kHeaders, kEndHeaders | kPadded | kPrio, 1, padded(priority + enc.block(kOk), 7)) +
      frame(kData, kPadded, 1, padded("hello ", 3)) + frame(kData, kPadded, 1, padded("", 0)) +
      frame(kData, kPadded | kEndStream, 1, padded("world", 200));
  CHECK(decode(Decoder::Start::kFrames, wire) ==
        "headers 1 :status=200 content-type=text/event-stream\n"
        "data 1 hello world <end>\n");
  // Padding longer than the payload is a connection error.
  CHECK(decode(Decoder::Start::kFrames, frame(kData, kPadded, 1, "\x05xyz")).starts_with("error "));
}

TEST_CASE("http2: trailers, informational responses and RST_STREAM") {
  Encoder enc;
  const Headers cont = {{":status", "100"}};
  const Headers trailers = {{"grpc-status", "0"}};
  // One statement per block: the encoder's table depends on the order.
  std::string wire = frame(kHeaders, kEndHeaders, 1, enc.block(cont));
  wire += frame(kHeaders, kEndHeaders, 1, enc.block(kOk));
  wire += frame(kData, 0, 1, "body");
  wire += frame(kHeaders, kEndHeaders | kEndStream, 1, enc.block(trailers));
  wire += frame(kHeaders, kEndHeaders, 3, enc.block(kOk));
  wire += frame(kRst, 0, 3, be32(8));
  CHECK(decode(Decoder::Start::kFrames, wire) ==
        "headers 1 :status=100\n"
        "headers 1 :status=200 content-type=text/event-stream\n"
        "data 1 body\n"
        "headers 1 end trailers grpc-status=0\n"
        "headers 3 :status=200 content-type=text/event-stream\n"
        "reset 3 8\n");
}

TEST_CASE("http2: control frames and unknown types are passed over") {
  Encoder enc;
  const Headers promised = {{":method", "GET"}, {":path", "/style.css"}};
  std::string wire = frame(kPing, 0, 0, "12345678") + frame(kPing, 1, 0, "12345678") +
                     frame(kPriority, 0, 1, be32(0) + "\x20") + frame(kWindow, 0, 1, be32(1000)) +
                     frame(0x42, 0xff, 9, "ignored");
  wire += frame(kPush, kEndHeaders, 1, be32(2) + enc.block(promised));
  wire += frame(kHeaders, kEndHeaders, 2, enc.block(kOk));
  wire += frame(kGoaway, 0, 0, be32(2) + be32(0) + "debug text");
  CHECK(decode(Decoder::Start::kFrames, wire) ==
        "push 1 2 :method=GET :path=/style.css\n"
        "headers 2 :status=200 content-type=text/event-stream\n"
        "goaway 2 0\n");
}

// A conversation touching every path of the frame parser, for the split tests.
std::string small_conversation() {
  Encoder enc;
  const std::string block = enc.block(kPost);
  std::string wire = std::string(kPreface) + settings() +
                     frame(kHeaders, kPadded, 1, padded(block.substr(0, 9), 2)) +
                     frame(kCont, kEndHeaders, 1, block.substr(9)) +
                     frame(kData, kPadded, 1, padded("{\"a\":", 4)) +
                     frame(kPing, 0, 0, "abcdefgh") + frame(kData, 0, 1, "1}");
  wire += frame(kHeaders, kEndHeaders | kEndStream, 1, enc.block({{"x-checksum", "abc"}}));
  wire += frame(kHeaders, kEndHeaders | kEndStream, 3, enc.block(kPost));
  wire += frame(kRst, 0, 3, be32(0));
  return wire;
}

TEST_CASE("http2: every split position gives the same events") {
  const std::string wire = small_conversation();
  const std::string whole = decode(Decoder::Start::kPreface, wire);
  CHECK(whole.find("error") == std::string::npos);
  CHECK(whole.find("headers 1 :method=POST") != std::string::npos);
  CHECK(whole.find("data 1 {\"a\":1}\n") != std::string::npos);
  CHECK(whole.find("headers 1 end trailers x-checksum=abc") != std::string::npos);
  CHECK(whole.find("headers 3 end :method=POST") != std::string::npos);
  CHECK(whole.find("reset 3 0") != std::string::npos);

  for (size_t i = 0; i <= wire.size(); ++i) {
    for (size_t j = i; j <= wire.size(); ++j) {
      Recorder r;
      Decoder d(Decoder::Start::kPreface, r);
      d.feed(std::string_view(wire).substr(0, i));
      d.feed(std::string_view(wire).substr(i, j - i));
      d.feed(std::string_view(wire).substr(j));
      if (r.text() != whole) {
        CAPTURE(i);
        CAPTURE(j);
        REQUIRE(r.text() == whole);
      }
    }
  }
  Recorder r;
  Decoder d(Decoder::Start::kPreface, r);
  for (char c : wire) d.feed(std::string_view(&c, 1));
  CHECK(r.text() == whole);
  CHECK(d.buffered() > 0);  // the HPACK table
}

// Stream 1 adds "x-session: one" to the table, stream 3 adds "x-session: two", stream 5 sends
// "x-session: two" again as index 62, the newest entry. Bytes of stream 3's block are lost: a
// decoder that kept its table would read index 62 as "one". It must say unknown instead.
TEST_CASE("http2: after bytes of a header block are lost, old table entries are unknown") {
  Encoder enc;
  Headers one = kGet;
  one.push_back({"x-session", "one"});
  const Headers two = {{":method", "GET"}, {"x-session", "two"}};
  const std::string first = frame(kHeaders, kEndHeaders | kEndStream, 1, enc.block(one));
  const std::string lost = frame(kHeaders, kEndHeaders | kEndStream, 3, enc.block(two));
  const std::string again = frame(kHeaders, kEndHeaders | kEndStream, 5, enc.block(two));
  REQUIRE(again.substr(9) == "\x82\xbe");  // :method GET (static 2), then dynamic entry 62
  // Only static-table references and literals: decodable without the old entries.
  const Headers fresh = {{":method", "GET"}, {":path", "/"}, {"x-new", "value"}};
  const std::string literal = frame(kHeaders, kEndHeaders | kEndStream, 7, enc.block(fresh));
  // References the entry added by stream 7's block, after the loss: known.
  const std::string reuse = frame(kHeaders, kEndHeaders | kEndStream, 9, enc.block(fresh));

  SUBCASE("nothing lost: all decoded") {
    const std::string out = decode(Decoder::Start::kFrames, first + lost + again + literal + reuse);
    CHECK(out.find("headers 5 end :method=GET x-session=two\n") != std::string::npos);
  }
  // Part of the block, or all of it so that the inflater is left between blocks.
  for (const auto& loss : {std::pair<size_t, size_t>{10, 12}, {9, lost.size()}}) {
    const size_t from = loss.first;
    const size_t to = loss.second;
    CAPTURE(from);
    CAPTURE(to);
    Recorder r;
    Decoder d(Decoder::Start::kFrames, r);
    d.feed(first);
    d.feed(lost.substr(0, from));
    d.gap(to - from);
    d.feed(lost.substr(to));
    d.feed(again + literal + reuse);
    CHECK(r.text() ==
          "headers 1 end :method=GET :scheme=https :authority=api.example.com :path=/v1/models "
          "x-session=one\n"
          "unknown 3 end\n"
          "unknown 5 end\n"
          "headers 7 end :method=GET :path=/ x-new=value\n"
          "headers 9 end :method=GET :path=/ x-new=value\n");
  }
  SUBCASE("bytes of a DATA frame lost: the table is intact") {
    Recorder r;
    Decoder d(Decoder::Start::kFrames, r);
    const std::string data = frame(kData, 0, 1, "0123456789");
    d.feed(first + lost + data.substr(0, 11));
    d.gap(4);
    d.feed(data.substr(15) + again);
    CHECK(r.text().find("data 1 01\nlost 1 4\ndata 1 6789\n") != std::string::npos);
    CHECK(r.text().ends_with("x-session=two\n"));
  }
}

TEST_CASE("http2: lost bytes that cross a frame boundary end decoding") {
  Encoder enc;
  const std::string wire = frame(kData, 0, 1, "abcdef") + frame(kData, kEndStream, 1, "gh");
  Recorder r;
  Decoder d(Decoder::Start::kFrames, r);
  d.feed(wire.substr(0, 12));
  d.gap(3);  // the rest of the frame exactly: still in sync
  CHECK_FALSE(d.failed());
  d.feed(wire.substr(15, 3));
  d.gap(100);
  CHECK(d.failed());
  CHECK(r.text().starts_with("data 1 abc\nlost 1 3\nerror "));
  d.feed(wire);  // ignored
  CHECK(r.events.size() == 3);

  Recorder r2;
  Decoder d2(Decoder::Start::kPreface, r2);
  d2.feed(kPreface.substr(0, 3));
  d2.gap(kPreface.size() - 3);  // inside the preface: harmless
  d2.feed(wire);
  CHECK(r2.text() == "data 1 abcdefgh <end>\n");
}

TEST_CASE("http2: a lost HEADERS pad length or RST_STREAM code is reported as unknown") {
  Encoder enc;
  std::string wire = frame(kHeaders, kEndHeaders | kPadded, 1, padded(enc.block(kOk), 3));
  wire += frame(kRst, 0, 1, be32(2));
  wire += frame(kHeaders, kEndHeaders, 3, enc.block(kOk));
  Recorder r;
  Decoder d(Decoder::Start::kFrames, r);
  const size_t rst = wire.find(frame(kRst, 0, 1, be32(2)));
  d.feed(wire.substr(0, 9));
  d.gap(1);
  d.feed(wire.substr(10, rst + 9 - 10));
  d.gap(4);
  d.feed(wire.substr(rst + 13));
  // Stream 3's block refers to the content-type entry added by stream 1's.
  CHECK(r.text() == "unknown 1\nreset 1 4294967295\nunknown 3\n");
}

TEST_CASE("http2: mid-stream start") {
  Encoder enc;
  enc.block(kPost);                            // sent before the capture started
  const std::string block = enc.block(kPost);  // mostly indexes into the table
  const std::string tail = frame(kCont, kEndHeaders, 3, block.substr(2));
  std::string later = frame(kData, kEndStream, 3, "{}");
  later += frame(kHeaders, kEndHeaders | kEndStream, 5, enc.block(kPost));
  later +=
      frame(kHeaders, kEndHeaders | kEndStream, 7, enc.block({{":method", "GET"}, {"x-new", "1"}}));
  later += frame(kData, 0, 9, "x");
  // Indexes again; after DATA on its stream, an unknown block is taken for trailers.
  later += frame(kHeaders, kEndHeaders | kEndStream, 9, enc.block(kPost));
  CHECK(decode(Decoder::Start::kMidStream, tail + later) ==
        "data 3 {} <end>\nunknown 5 end\nheaders 7 end :method=GET x-new=1\n"
        "data 9 x\nunknown 9 end trailers\n");
  // A CONTINUATION is only excused as the capture's first frame.
  CHECK(decode(Decoder::Start::kMidStream, later + tail).ends_with("without a header block\n"));
}

TEST_CASE("http2: the HPACK table follows size updates and refuses sizes beyond its cap") {
  Encoder enc(65536);
  Headers h = kGet;
  h.push_back({"x-big", std::string(3000, 'v')});
  std::string wire = frame(kHeaders, kEndHeaders, 1, enc.block(h));
  enc.change_table_size(16384);
  wire += frame(kHeaders, kEndHeaders, 3, enc.block(h));
  h.back().value[0] = 'w';
  wire += frame(kHeaders, kEndHeaders, 5, enc.block(h));
  wire += frame(kHeaders, kEndHeaders, 7, enc.block(h));
  const std::string out = decode(Decoder::Start::kFrames, wire);
  CHECK(out.find("unknown") == std::string::npos);
  CHECK(out.find("headers 7 :method=GET :scheme=https :authority=api.example.com "
                 ":path=/v1/models x-big=w") != std::string::npos);

  Encoder huge(1 << 20);
  huge.change_table_size(1 << 20);
  std::string refused = frame(kHeaders, kEndHeaders, 1, huge.block(kGet));
  refused += frame(kHeaders, kEndHeaders, 3, huge.block(kGet));
  // The block announcing the size is unknown; the next one starts from a fresh table.
  CHECK(decode(Decoder::Start::kFrames, refused) == "unknown 1\nunknown 3\n");
}

TEST_CASE("http2: a header block over the cap is unknown but the table stays right") {
  Encoder enc;
  Headers big = kGet;
  big.push_back({"x-blob", std::string(2000, 'b')});
  std::string wire = frame(kHeaders, kEndHeaders, 1, enc.block(big));
  wire += frame(kHeaders, kEndHeaders, 3, enc.block(kGet));
  const std::string out = decode(Decoder::Start::kFrames, wire, {.max_header_bytes = 1000});
  CHECK(out ==
        "unknown 1\nheaders 3 :method=GET :scheme=https :authority=api.example.com "
        ":path=/v1/models\n");
}

TEST_CASE("http2: frames over the length limit end decoding") {
  const std::string wire = frame(kData, 0, 1, std::string(16385, 'x'));
  const std::string out = decode(Decoder::Start::kFrames, wire, {.max_frame = 16384});
  CHECK(out.starts_with("error DATA frame of 16385 bytes is over the limit"));
  CHECK(decode(Decoder::Start::kFrames, wire) == "data 1 " + std::string(16385, 'x') + "\n");
}

TEST_CASE("http2: malformed frames end decoding") {
  for (const std::string& bad : {
           frame(kSettings, 0, 1, ""),          // SETTINGS on a stream
           frame(kSettings, 0, 0, "12345"),     // not a multiple of 6
           frame(kSettings, 1, 0, "123456"),    // ACK with a payload
           frame(kData, 0, 0, "x"),             // DATA on stream 0
           frame(kPing, 0, 0, "1234"),          // short PING
           frame(kRst, 0, 1, "12"),             // short RST_STREAM
           frame(kWindow, 0, 0, "12345"),       // long WINDOW_UPDATE
           frame(kGoaway, 0, 0, "1234"),        // short GOAWAY
           frame(kHeaders, kPrio, 1, "12"),     // shorter than its priority fields
           frame(kPush, kEndHeaders, 1, "12"),  // no promised stream id
       }) {
    CAPTURE(bad);
    CHECK(decode(Decoder::Start::kFrames, bad).starts_with("error "));
  }
}

TEST_CASE("http2: random bytes never crash and memory stays bounded") {
  std::mt19937 rng(1);
  Encoder enc;
  const std::string valid = small_conversation();
  for (int round = 0; round < 3000; ++round) {
    std::string bytes = round % 2 ? valid : std::string(rng() % 200, '\0');
    for (size_t k = 0, n = rng() % 8; k < n && !bytes.empty(); ++k) {
      bytes[rng() % bytes.size()] = static_cast<char>(rng());
    }
    Recorder r;
    Decoder d(round % 3 == 0 ? Decoder::Start::kPreface : Decoder::Start::kMidStream, r);
    size_t pos = 0;
    while (pos < bytes.size()) {
      const size_t n = std::min<size_t>(bytes.size() - pos, 1 + rng() % 40);
      d.feed(std::string_view(bytes).substr(pos, n));
      pos += n;
      if (rng() % 10 == 0) d.gap(rng() % 8);
      CHECK(d.buffered() < 300 * 1024);
    }
  }
}

TEST_CASE("http2: protocol detection heuristics") {
  using http2::is_client_preface;
  using http2::looks_like_frame;
  CHECK(is_client_preface(kPreface));
  CHECK(is_client_preface("PRI * HT"));
  CHECK(is_client_preface(std::string(kPreface) + settings()));
  CHECK_FALSE(is_client_preface("POST / HTTP/1.1\r\n"));

  Encoder enc;
  CHECK(looks_like_frame(settings()));
  CHECK(looks_like_frame(frame(kSettings, 1, 0, "")));
  CHECK(looks_like_frame(frame(kHeaders, kEndHeaders, 1, enc.block(kOk))));
  CHECK(looks_like_frame(frame(kWindow, 0, 0, be32(100))));
  CHECK_FALSE(looks_like_frame(settings().substr(0, 8)));
  CHECK_FALSE(looks_like_frame("HTTP/1.1 200 OK\r\n"));
  CHECK_FALSE(looks_like_frame("\x16\x03\x01\x02\x00\x01\x00\x01\xfc"));  // a TLS record
  CHECK_FALSE(looks_like_frame(frame(kData, 0, 1, std::string(20000, 'x'))));
  CHECK(looks_like_frame(frame(kData, 0, 1, std::string(20000, 'x')), 1 << 20));
  CHECK_FALSE(looks_like_frame(frame(0x42, 0, 0, "")));          // unknown type
  CHECK_FALSE(looks_like_frame(frame(kSettings, 0x40, 0, "")));  // undefined flag
  CHECK_FALSE(looks_like_frame(frame(kData, 0, 0, "x")));        // DATA on stream 0
  CHECK_FALSE(looks_like_frame(frame(kPriority, 0, 1, "1234")));
  CHECK_FALSE(looks_like_frame(frame(kData, 0, 0x80000001u, "x")));  // reserved bit
}
