#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "agent/protocol/sse/lines.h"
#include "agent/protocol/sse/sse.h"

using namespace agentwall::protocol;
using namespace std::string_literals;

namespace {

struct Ev {
  std::string event, data, id;
  bool operator==(const Ev&) const = default;
};

doctest::String toString(const Ev& e) {
  return ("{" + e.event + "|" + e.data + "|" + e.id + "}").c_str();
}

// Feeds `stream` in pieces cut at `cuts` (ascending offsets) and collects the events.
std::vector<Ev> parse(std::string_view stream, const std::vector<size_t>& cuts = {},
                      bool flush_partial = false, size_t max_event_bytes = 1 << 20) {
  SseParser parser(max_event_bytes);
  std::vector<Ev> events;
  const auto collect = [&](const SseEvent& e) { events.push_back({e.event, e.data, e.id}); };
  size_t at = 0;
  for (size_t cut : cuts) {
    parser.feed(stream.substr(at, cut - at), collect);
    CHECK(parser.buffered() <= max_event_bytes);
    at = cut;
  }
  parser.feed(stream.substr(at), collect);
  parser.finish(flush_partial, collect);
  CHECK(parser.events() == events.size());
  return events;
}

std::vector<Ev> parse_bytewise(std::string_view stream, bool flush_partial = false,
                               size_t max_event_bytes = 1 << 20) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  return parse(stream, cuts, flush_partial, max_event_bytes);
}

// The same events however the stream is cut: in two at every offset, in three at a stride,
// and byte by byte.
void check_split_invariant(std::string_view stream, bool flush_partial = false,
                           size_t max_event_bytes = 1 << 20) {
  const std::vector<Ev> whole = parse(stream, {}, flush_partial, max_event_bytes);
  CHECK(parse_bytewise(stream, flush_partial, max_event_bytes) == whole);
  for (size_t i = 0; i <= stream.size(); ++i) {
    CAPTURE(i);
    REQUIRE(parse(stream, {i}, flush_partial, max_event_bytes) == whole);
    for (size_t j = i; j <= stream.size(); j += 7) {
      REQUIRE(parse(stream, {i, j}, flush_partial, max_event_bytes) == whole);
    }
  }
}

constexpr std::string_view kOpenAi =
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n"
    "data: [DONE]\n\n";

constexpr std::string_view kAnthropic =
    "event: message_start\n"
    "data: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}\n\n"
    "event: ping\n"
    "data: {\"type\": \"ping\"}\n\n"
    "event: content_block_delta\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"Hi\"}}\n\n"
    "event: message_stop\n"
    "data: {\"type\":\"message_stop\"}\n\n";

// Everything at once: BOM, all line ends, comments, ids, retry, unknown fields, multi-line
// data, an event without data, a field without a colon.
constexpr std::string_view kMixed =
    "\xEF\xBB\xBF: comment\r\n"
    "id: 1\r"
    "event: a\r\n"
    "data: one\n"
    "data:two\r"
    "data:  three\r\n"
    "retry: 1000\n"
    "unknown: x\n"
    "\r\n"
    "event: no-data\n"
    "\r"
    "data\n"
    "\n"
    "id\n"
    "data: last\r"
    "\r";

}  // namespace

TEST_CASE("sse: OpenAI chat completions stream") {
  const std::vector<Ev> events = parse(kOpenAi);
  REQUIRE(events.size() == 4);
  CHECK(events[1] == Ev{"", R"({"id":"c1","choices":[{"delta":{"content":"Hel"}}]})", ""});
  CHECK(events[3] == Ev{"", "[DONE]", ""});
  check_split_invariant(kOpenAi);
}

TEST_CASE("sse: Anthropic messages stream") {
  const std::vector<Ev> events = parse(kAnthropic);
  REQUIRE(events.size() == 4);
  CHECK(events[0] ==
        Ev{"message_start", R"({"type":"message_start","message":{"id":"msg_1"}})", ""});
  CHECK(events[1] == Ev{"ping", R"({"type": "ping"})", ""});
  CHECK(events[3] == Ev{"message_stop", R"({"type":"message_stop"})", ""});
  check_split_invariant(kAnthropic);
}

TEST_CASE("sse: CRLF, lone CR and LF end lines alike, split anywhere") {
  const std::vector<Ev> expected = {
      {"a", "one\ntwo\n three", "1"},
      {"", "", "1"},
      {"", "last", ""},
  };
  CHECK(parse(kMixed) == expected);
  check_split_invariant(kMixed);

  std::string crlf(kAnthropic), cr(kAnthropic);
  for (size_t at = crlf.find('\n'); at != std::string::npos; at = crlf.find('\n', at + 2)) {
    crlf.replace(at, 1, "\r\n");
  }
  for (char& c : cr) c = c == '\n' ? '\r' : c;
  CHECK(parse(crlf) == parse(kAnthropic));
  CHECK(parse(cr) == parse(kAnthropic));
  check_split_invariant(cr);
}

TEST_CASE("sse: the standard's examples") {
  // A "data" field without a colon adds an empty line; the event is dispatched.
  CHECK(parse("data\n\ndata\ndata\n\ndata:") == std::vector<Ev>{{"", "", ""}, {"", "\n", ""}});
  // One space after the colon is removed, no more.
  CHECK(parse("data:test\n\ndata: test\n\ndata:  test\n\n") ==
        std::vector<Ev>{{"", "test", ""}, {"", "test", ""}, {"", " test", ""}});
  CHECK(parse("data: YHOO\ndata: +2\ndata: 10\n\n") == std::vector<Ev>{{"", "YHOO\n+2\n10", ""}});
}

TEST_CASE("sse: events without data are not dispatched and do not leak their name") {
  CHECK(parse("event: orphan\n\ndata: x\n\n") == std::vector<Ev>{{"", "x", ""}});
  CHECK(parse(": only a comment\n\n: another\n\n").empty());
}

TEST_CASE("sse: the last event id lasts until changed; ids with NUL are ignored") {
  const std::string stream = "id: 7\ndata: a\n\ndata: b\n\nid: x\0y\ndata: c\n\nid\ndata: d\n\n"s;
  CHECK(parse(stream) ==
        std::vector<Ev>{{"", "a", "7"}, {"", "b", "7"}, {"", "c", "7"}, {"", "d", ""}});
}

TEST_CASE("sse: a byte order mark is removed once, at the start only") {
  CHECK(parse("\xEF\xBB\xBF"
              "data: x\n\n") == std::vector<Ev>{{"", "x", ""}});
  CHECK(parse_bytewise("\xEF\xBB\xBF"
                       "data: x\n\n") == std::vector<Ev>{{"", "x", ""}});
  // A second one is part of the field name, which is then unknown.
  CHECK(parse("\xEF\xBB\xBF\xEF\xBB\xBF"
              "data: x\n\n")
            .empty());
  // A BOM's first bytes without the rest are text.
  CHECK(parse("\xEF\xBB"
              "data: x\n\ndata: y\n\n") == std::vector<Ev>{{"", "y", ""}});
  CHECK(parse_bytewise("\xEF\xBB"
                       "data: x\n\ndata: y\n\n") == std::vector<Ev>{{"", "y", ""}});
}

TEST_CASE("sse: an unterminated event is dispatched at the end only when asked") {
  for (std::string_view tail : {"data: a\ndata: b", "data: a\ndata: b\n", "data: a\ndata: b\r"}) {
    CAPTURE(tail);
    const std::string stream = "data: first\n\n" + std::string(tail);
    CHECK(parse(stream, {}, false) == std::vector<Ev>{{"", "first", ""}});
    CHECK(parse(stream, {}, true) == std::vector<Ev>{{"", "first", ""}, {"", "a\nb", ""}});
    check_split_invariant(stream, true);
  }
  CHECK(parse("event: x\n", {}, true).empty());
}

TEST_CASE("sse: the parser is reusable after finish") {
  SseParser parser;
  std::vector<std::string> data;
  const auto collect = [&](const SseEvent& e) { data.push_back(e.data); };
  parser.feed(std::string_view(), collect);
  parser.feed("\xEF\xBB\xBFid: 1\ndata: a", collect);
  parser.feed(std::string_view(), collect);
  parser.finish(false, collect);
  CHECK(parser.buffered() == 0);
  parser.feed(
      "\xEF\xBB\xBF"
      "data: b\n\n",
      collect);
  CHECK(data == std::vector<std::string>{"b"});
}

TEST_CASE("sse: an oversized event is dropped and counted, the next one is read") {
  const std::string big = "event: big\ndata: " + std::string(100, 'x') + "\ndata: y\n\n";
  const std::string stream = "data: before\n\n" + big + "data: after\n\n";
  SseParser parser(64);
  std::vector<std::string> data;
  const auto collect = [&](const SseEvent& e) { data.push_back(e.data); };
  for (char c : stream) {
    parser.feed(std::string_view(&c, 1), collect);
    CHECK(parser.buffered() <= 64);
  }
  parser.finish(true, collect);
  CHECK(data == std::vector<std::string>{"before", "after"});
  CHECK(parser.oversized() == 1);
  CHECK(parser.events() == 2);
  check_split_invariant(stream, false, 64);

  // Many lines, each short, add up the same way.
  std::string many;
  for (int i = 0; i < 20; ++i) many += "data: 12345\r\n";
  check_split_invariant("data: a\n\n" + many + "\r\ndata: b\n\n", false, 64);
  CHECK(parse(many + "\ndata: b\n\n", {}, false, 64) == std::vector<Ev>{{"", "b", ""}});

  // An event of exactly the limit passes: lines are counted without their ends.
  const std::string exact = "data: " + std::string(58, 'z');  // 64 bytes
  CHECK(parse(exact + "\n\n", {}, false, 64).size() == 1);
  CHECK(parse(exact + "z\n\n", {}, false, 64).empty());
  // A dropped event cut by the end of the stream is not flushed.
  CHECK(parse("data: " + std::string(100, 'x'), {}, true, 64).empty());
}

TEST_CASE("lines: NDJSON lines, CRLF, empty lines, split anywhere") {
  const std::string stream =
      "{\"model\":\"llama3\",\"message\":{\"content\":\"Hi\"},\"done\":false}\n"
      "\r\n"
      "\n"
      "{\"done\":true}\r\n"
      "{\"tail\":1}";
  const std::vector<std::string> expected = {
      R"({"model":"llama3","message":{"content":"Hi"},"done":false})", R"({"done":true})",
      R"({"tail":1})"};
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    LineSplitter lines;
    std::vector<std::string> got;
    const auto collect = [&](std::string_view line) { got.emplace_back(line); };
    lines.feed(std::string_view(stream).substr(0, cut), collect);
    lines.feed(std::string_view(stream).substr(cut), collect);
    lines.finish(collect);
    REQUIRE(got == expected);
    REQUIRE(lines.lines() == 3);
  }
}

TEST_CASE("lines: an oversized line is dropped and counted however it arrives") {
  const std::string stream = "short\n" + std::string(20, 'x') + "\r\nok\n" + std::string(11, 'y') +
                             "\n" + std::string(10, 'z') + "\r\n";
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    LineSplitter lines(10);
    std::vector<std::string> got;
    const auto collect = [&](std::string_view line) { got.emplace_back(line); };
    lines.feed(std::string_view(stream).substr(0, cut), collect);
    CHECK(lines.buffered() <= 11);
    lines.feed(std::string_view(stream).substr(cut), collect);
    lines.finish(collect);
    REQUIRE(got == std::vector<std::string>{"short", "ok", std::string(10, 'z')});
    REQUIRE(lines.oversized() == 2);
  }
}
