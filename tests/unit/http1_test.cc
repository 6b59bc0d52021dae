// HTTP/1.1 framing: the parser on hand-written wire bytes, split anywhere, with holes.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "agent/protocol/http1/http1.h"

using namespace agentwall::protocol;
using http1::Parser;

namespace {

struct Msg {
  http1::Head head;
  std::string body;
  uint32_t flags = 0;
  bool ended = false;
};

class Collect final : public http1::ParserSink {
 public:
  std::vector<Msg> msgs;
  bool head_request = false;
  uint64_t skipped = 0;
  void on_head(const http1::Head& h) override { msgs.push_back({h, {}, 0, false}); }
  void on_body(std::string_view b) override {
    REQUIRE(!msgs.empty());
    msgs.back().body.append(b);
  }
  void on_end(uint32_t flags) override {
    REQUIRE(!msgs.empty());
    CHECK_FALSE(msgs.back().ended);
    msgs.back().flags = flags;
    msgs.back().ended = true;
  }
  bool response_to_head() override { return head_request; }
  void on_skipped(uint64_t n) override { skipped += n; }
};

std::vector<Msg> parse_all(Parser::Kind kind, std::string_view wire, size_t split = 0) {
  Collect c;
  Parser p(kind, c);
  if (split == 0) {
    p.feed(wire);
  } else {
    p.feed(wire.substr(0, split));
    p.feed(wire.substr(split));
  }
  p.finish();
  return c.msgs;
}

const std::string kChatRequest =
    "POST /v1/chat/completions HTTP/1.1\r\n"
    "Host: api.openai.com\r\n"
    "Authorization: Bearer sk-x\r\n"
    "Content-Type: application/json\r\n"
    "Content-Length: 29\r\n"
    "\r\n"
    "{\"model\":\"gpt-4o-mini\",\"a\":1}";

const std::string kChunkedResponse =
    "HTTP/1.1 200 OK\r\n"
    "Content-Type: text/event-stream\r\n"
    "Transfer-Encoding: chunked\r\n"
    "\r\n"
    "f\r\ndata: {\"a\":1}\n\n\r\n"
    "10;ext=1\r\ndata: [DONE]\n\n\r\n\r\n"
    "0\r\nX-Trailer: yes\r\n\r\n";

}  // namespace

TEST_CASE("http1: a request with Content-Length, whole and split at every byte") {
  for (size_t split = 0; split < kChatRequest.size(); ++split) {
    const auto msgs = parse_all(Parser::Kind::kRequest, kChatRequest, split);
    REQUIRE(msgs.size() == 1);
    const Msg& m = msgs[0];
    CHECK(m.ended);
    CHECK(m.flags == 0);
    CHECK(m.head.method == "POST");
    CHECK(m.head.target == "/v1/chat/completions");
    CHECK(header_value(m.head.headers, "host") == "api.openai.com");
    CHECK(header_value(m.head.headers, "Content-Type") == "application/json");
    CHECK(m.body == "{\"model\":\"gpt-4o-mini\",\"a\":1}");
  }
}

TEST_CASE("http1: a chunked response with extensions and trailers, split at every byte") {
  for (size_t split = 0; split < kChunkedResponse.size(); ++split) {
    const auto msgs = parse_all(Parser::Kind::kResponse, kChunkedResponse, split);
    REQUIRE(msgs.size() == 1);
    CHECK(msgs[0].head.status == 200);
    CHECK(msgs[0].body == "data: {\"a\":1}\n\ndata: [DONE]\n\n\r\n");
    CHECK(msgs[0].ended);
    CHECK(msgs[0].flags == 0);
  }
}

TEST_CASE("http1: byte-by-byte feeding of keep-alive requests") {
  const std::string wire =
      kChatRequest + "GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n" + kChatRequest;
  Collect c;
  Parser p(Parser::Kind::kRequest, c);
  for (char ch : wire) p.feed(std::string_view(&ch, 1));
  p.finish();
  REQUIRE(c.msgs.size() == 3);
  CHECK(c.msgs[1].head.method == "GET");
  CHECK(c.msgs[1].body.empty());
  CHECK(c.msgs[2].body == c.msgs[0].body);
  for (const auto& m : c.msgs) CHECK(m.flags == 0);
}

TEST_CASE("http1: responses without a body: HEAD, 204, 304, 1xx; body until close") {
  Collect c;
  c.head_request = true;
  Parser p(Parser::Kind::kResponse, c);
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n");
  c.head_request = false;
  p.feed("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n");
  p.feed("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n");
  p.feed("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end");
  CHECK(c.msgs.size() == 5);
  CHECK_FALSE(c.msgs.back().ended);
  p.finish();
  REQUIRE(c.msgs.size() == 5);
  CHECK(c.msgs[0].body.empty());
  CHECK(c.msgs[1].head.status == 100);
  CHECK(c.msgs[2].head.status == 204);
  CHECK(c.msgs[3].body.empty());
  CHECK(c.msgs[4].body == "until the end");
  CHECK(c.msgs[4].flags == 0);
}

TEST_CASE("http1: a hole inside a body of known length keeps the framing") {
  Collect c;
  Parser p(Parser::Kind::kRequest, c);
  const std::string wire = kChatRequest + kChatRequest;
  const size_t body_at = kChatRequest.find("\r\n\r\n") + 4;
  p.feed(std::string_view(wire).substr(0, body_at + 5));
  p.gap(10);
  p.feed(std::string_view(wire).substr(body_at + 15));
  p.finish();
  REQUIRE(c.msgs.size() == 2);
  CHECK(c.msgs[0].flags == kMsgGap);
  CHECK(c.msgs[0].body.size() == 29 - 10);
  CHECK(c.msgs[1].flags == 0);
  CHECK(c.msgs[1].body == "{\"model\":\"gpt-4o-mini\",\"a\":1}");
}

TEST_CASE("http1: a hole that swallows a message boundary resynchronises at the next request") {
  Collect c;
  Parser p(Parser::Kind::kRequest, c);
  p.feed(std::string_view(kChatRequest).substr(0, 40));
  p.gap(5000);
  // The tail of some message, then a new request.
  p.feed("tail of a lost body\r\n" + kChatRequest);
  p.finish();
  REQUIRE(c.msgs.size() == 1);  // the first head was never complete
  CHECK(c.msgs[0].head.target == "/v1/chat/completions");
  CHECK(c.msgs[0].flags == 0);
  CHECK(c.skipped > 0);
}

TEST_CASE("http1: starting mid-stream skips to the first message start, even across pieces") {
  Collect c;
  Parser p(Parser::Kind::kResponse, c, /*resync=*/true);
  const std::string wire =
      "partial body of an earlier response\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
  const size_t cut = wire.find("HTTP/1.1") + 4;  // inside the status line
  p.feed(std::string_view(wire).substr(0, cut));
  p.feed(std::string_view(wire).substr(cut));
  p.finish();
  REQUIRE(c.msgs.size() == 1);
  CHECK(c.msgs[0].body == "ok");
  CHECK(c.skipped == wire.find("HTTP/1.1"));
}

TEST_CASE("http1: a connection that ends inside a message marks it cut") {
  Collect c;
  Parser p(Parser::Kind::kResponse, c);
  p.feed("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this");
  p.finish();
  REQUIRE(c.msgs.size() == 1);
  CHECK(c.msgs[0].flags == kMsgCut);
  CHECK(c.msgs[0].body == "only this");
}

TEST_CASE("http1: garbage and hostile heads never crash and are not taken for messages") {
  CHECK(parse_all(Parser::Kind::kRequest, std::string(100000, 'A')).empty());
  CHECK(parse_all(Parser::Kind::kRequest, "POST / HTTP/1.1\r\n" + std::string(70000, 'x')).empty());
  // Bad chunk size: the message ends malformed.
  auto m = parse_all(Parser::Kind::kResponse,
                     "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
  REQUIRE(m.size() == 1);
  CHECK((m[0].flags & kMsgMalformed));
  // Bad Content-Length.
  m = parse_all(Parser::Kind::kRequest, "POST / HTTP/1.1\r\nContent-Length: 12x\r\n\r\n");
  REQUIRE(m.size() == 1);
  CHECK((m[0].flags & kMsgMalformed));
  // Header line without a colon: not HTTP.
  CHECK(parse_all(Parser::Kind::kRequest, "GET / HTTP/1.1\r\nno colon here\r\n\r\n").empty());
}

TEST_CASE("http1: protocol detection helpers") {
  CHECK(Parser::match_request("POST /v1") == 1);
  CHECK(Parser::match_request("POS") == 0);
  CHECK(Parser::match_request("PRI * HTTP/2.0") == -1);
  CHECK(Parser::match_request("\x16\x03\x01") == -1);
  CHECK(Parser::match_response("HTTP/1.1 200 OK") == 1);
  CHECK(Parser::match_response("HTTP/1") == 0);
  CHECK(Parser::match_response("HTTP/2 200") == -1);
}
