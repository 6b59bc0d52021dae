// The gate (agent/enforce/gate.h): pairing held writes with the policy's verdicts, masks for
// redaction and their fallbacks, with an actuator that records instead of touching processes.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "agent/enforce/gate.h"

using namespace agentwall;
using namespace agentwall::enforce;

namespace {

struct RecordingActuator final : Actuator {
  std::vector<std::string> calls;
  std::vector<Mask> masks;
  Outcome done(Verdict v, std::string name) {
    calls.push_back(std::move(name));
    return {true, v, calls.back(), "", 0};
  }
  Outcome allow(const TlsHold&) override { return done(Verdict::kAllow, "allow"); }
  Outcome block(const TlsHold&) override { return done(Verdict::kBlock, "block"); }
  Outcome redact(const TlsHold&, const std::vector<Mask>& m, char) override {
    masks = m;
    return done(Verdict::kRedact, "redact");
  }
  Outcome kill(const TlsHold&) override { return done(Verdict::kKill, "kill"); }
};

TlsChunk held_chunk(uint64_t conn, uint64_t off, std::string_view data, uint32_t call_off = 0) {
  TlsChunk c;
  c.conn_id = conn;
  c.process = {77, 1};
  c.dir = Direction::kOut;
  c.stream_off = off + call_off;
  c.call_off = call_off;
  c.flags = kChunkHeld | kChunkLast;
  c.data = data;
  return c;
}

TlsHold hold(uint64_t conn, uint64_t off, uint32_t len) {
  TlsHold h;
  h.conn_id = conn;
  h.process = {77, 1};
  h.tid = 77;
  h.stream_off = off;
  h.len = len;
  h.time_ns = 0;  // far in the past: only used when a deadline applies
  return h;
}

}  // namespace

TEST_CASE("enforce: masks cover every occurrence of each value in the held bytes") {
  std::string why;
  const std::string held = R"({"a":"key sk-1234 and sk-1234","b":"tok"})";
  auto m = find_masks(held, held, {"sk-1234", "tok"}, why);
  REQUIRE(m.size() == 3);
  CHECK(held.substr(m[0].offset, m[0].len) == "sk-1234");
  CHECK(held.substr(m[1].offset, m[1].len) == "sk-1234");
  CHECK(held.substr(m[2].offset, m[2].len) == "tok");
  CHECK(m[0].offset != m[1].offset);
}

TEST_CASE("enforce: a value also in bytes already sent cannot be masked") {
  std::string why;
  // The body holds the secret twice; the write being held carries only the second.
  CHECK(find_masks("... sk-1234 }", "{ sk-1234 ... sk-1234 }", {"sk-1234"}, why).empty());
  CHECK(why.find("already sent") != std::string::npos);
  CHECK(find_masks("no secret here", "sk-1234", {"sk-1234"}, why).empty());
  CHECK(why.find("not in the bytes") != std::string::npos);
}

TEST_CASE("enforce: a hold without a verdict is resumed and reported nowhere") {
  RecordingActuator act;
  std::vector<std::string> lines;
  Gate g(act, [&](const std::string& l) { lines.push_back(l); });
  g.on_chunk(held_chunk(1, 0, "GET / HTTP/1.1\r\n"));
  g.on_hold(hold(1, 0, 16));
  CHECK(act.calls == std::vector<std::string>{"allow"});
  CHECK(lines.empty());
  CHECK(g.stats().holds == 1);
  CHECK(g.stats().allowed == 1);
}

TEST_CASE("enforce: a verdict noted while the held bytes are judged is carried out") {
  RecordingActuator act;
  std::vector<std::string> lines;
  GateOptions opt;
  opt.deadline_ms = 1e18;  // the test's holds are timestamped at 0
  Gate g(
      act, [&](const std::string& l) { lines.push_back(l); }, opt);
  const std::string body = R"({"messages":[{"content":"use sk-abcdef please"}]})";
  g.on_chunk(held_chunk(9, 100, "POST /v1/chat HTTP/1.1\r\n\r\n" + body));
  RequestVerdict v;
  v.verdict = Verdict::kRedact;
  v.rule = "redact-secrets";
  v.secrets = {"sk-abcdef"};
  v.body = body;
  g.note_request(9, v);
  g.on_hold(hold(9, 100, 200));
  REQUIRE(act.calls == std::vector<std::string>{"redact"});
  REQUIRE(act.masks.size() == 1);
  CHECK(act.masks[0].len == 9);
  REQUIRE(lines.size() == 1);
  const auto j = nlohmann::json::parse(lines[0]);
  CHECK(j["type"] == "enforce.action");
  CHECK(j["action"] == "redact");
  CHECK(j["rule"] == "redact-secrets");
  CHECK(g.stats().redacted == 1);
}

TEST_CASE("enforce: redaction that cannot be done falls back to block, and says so") {
  RecordingActuator act;
  std::vector<std::string> lines;
  GateOptions opt;
  opt.deadline_ms = 1e18;  // the test's holds are timestamped at 0
  Gate g(
      act, [&](const std::string& l) { lines.push_back(l); }, opt);
  // The secret was in the headers sent by an earlier write; this write is the body only.
  g.on_chunk(held_chunk(4, 50, R"({"content":"nothing"})"));
  RequestVerdict v;
  v.verdict = Verdict::kRedact;
  v.secrets = {"sk-abcdef"};
  v.body = R"({"content":"nothing"})";
  g.note_request(4, v);
  g.on_hold(hold(4, 50, 21));
  CHECK(act.calls == std::vector<std::string>{"block"});
  REQUIRE(lines.size() == 1);
  const auto j = nlohmann::json::parse(lines[0]);
  CHECK(j["action"] == "block");
  CHECK(j["requested"] == "redact");
  CHECK(j["how"].get<std::string>().find("redaction impossible") != std::string::npos);
}

TEST_CASE("enforce: a verdict after the deadline fails open, or closed when the rule says") {
  for (bool closed : {false, true}) {
    RecordingActuator act;
    std::vector<std::string> lines;
    GateOptions opt;
    opt.deadline_ms = 1;  // the hold is timestamped at 0: long past
    Gate g(
        act, [&](const std::string& l) { lines.push_back(l); }, opt);
    g.on_chunk(held_chunk(2, 0, "x"));
    RequestVerdict v;
    v.verdict = Verdict::kKill;
    v.fail_closed = closed;
    g.note_request(2, v);
    g.on_hold(hold(2, 0, 1));
    CHECK(act.calls == std::vector<std::string>{closed ? "block" : "allow"});
    CHECK(g.stats().deadline_missed == 1);
    REQUIRE(lines.size() == 1);
    CHECK(nlohmann::json::parse(lines[0])["note"].get<std::string>().find("deadline") !=
          std::string::npos);
  }
}

TEST_CASE("enforce: a verdict for a connection with nothing held is not kept") {
  RecordingActuator act;
  Gate g(act, nullptr);
  RequestVerdict v;
  v.verdict = Verdict::kBlock;
  g.note_request(3, v);  // an ungated connection: its request was judged, nothing is held
  g.on_chunk(held_chunk(3, 0, "later"));
  g.on_hold(hold(3, 0, 5));
  CHECK(act.calls == std::vector<std::string>{"allow"});
}

TEST_CASE("enforce: a blocked write written again at the same offset is blocked again") {
  RecordingActuator act;
  std::vector<std::string> lines;
  GateOptions opt;
  opt.deadline_ms = 1e18;  // the test's holds are timestamped at 0
  Gate g(
      act, [&](const std::string& l) { lines.push_back(l); }, opt);
  const std::string req = "POST /v1/messages HTTP/1.1\r\n\r\n{\"k\":\"sk-abcdef\"}";
  g.on_chunk(held_chunk(5, 300, req));
  RequestVerdict v;
  v.verdict = Verdict::kBlock;
  v.rule = "block-secrets";
  v.secrets = {"sk-abcdef"};
  g.note_request(5, v);
  g.on_hold(hold(5, 300, uint32_t(req.size())));
  // The client writes the same bytes again: nothing was sent, so the stream is still at 300,
  // and the pipeline, which already has those bytes, notes no verdict.
  g.on_chunk(held_chunk(5, 300, req));
  g.on_hold(hold(5, 300, uint32_t(req.size())));
  CHECK(act.calls == std::vector<std::string>{"block", "block"});
  REQUIRE(lines.size() == 2);
  const auto j = nlohmann::json::parse(lines[1]);
  CHECK(j["action"] == "block");
  CHECK(j["rule"] == "block-secrets");
  CHECK(j["note"].get<std::string>().find("blocked again") != std::string::npos);
  CHECK(g.stats().blocked == 2);

  // Another connection, and the same one at another offset, are not affected.
  g.on_hold(hold(6, 300, 10));
  g.on_hold(hold(5, 400, 10));
  CHECK(act.calls == std::vector<std::string>{"block", "block", "allow", "allow"});
  // Once let through, the refusal is forgotten; and a closed connection forgets it too.
  g.on_hold(hold(5, 300, 10));
  CHECK(act.calls.back() == "allow");
  g.on_chunk(held_chunk(5, 500, req));
  g.note_request(5, v);
  g.on_hold(hold(5, 500, uint32_t(req.size())));
  CHECK(act.calls.back() == "block");
  TlsClose c;
  c.conn_id = 5;
  g.on_close(c);
  g.on_hold(hold(5, 500, 10));
  CHECK(act.calls.back() == "allow");
  CHECK(lines.size() == 3);
}
