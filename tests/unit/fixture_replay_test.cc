// Recorded real traffic (curl → a local TLS server, captured by agentwall run --record)
// replayed through the stream stage.
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "agent/record/recording.h"
#include "agent/stream/tracker.h"

using namespace agentwall;

namespace {
class Streams final : public stream::StreamSink {
 public:
  std::map<std::pair<uint64_t, int>, std::string> bytes;
  std::vector<ProcessInfo> processes;
  std::string sni;
  std::string peer;
  int32_t fd = -2;
  uint64_t gaps = 0;
  uint64_t closed_out = 0, closed_in = 0;
  void on_process(const ProcessInfo& p) override { processes.push_back(p); }
  void on_data(const stream::Connection& c, const ProcessInfo* p, const TlsChunk& chunk) override {
    REQUIRE(p != nullptr);
    std::string& s = bytes[{c.id, static_cast<int>(chunk.dir)}];
    CHECK(chunk.stream_off == s.size());
    s.append(chunk.data);
    sni = c.sni;
    peer = c.peer.to_string();
    fd = c.fd;
  }
  void on_gap(const stream::Connection&, Direction, uint64_t, uint64_t,
              stream::GapReason) override {
    ++gaps;
  }
  void on_close(const stream::Connection&, const TlsClose& c) override {
    closed_out = c.bytes_out;
    closed_in = c.bytes_in;
  }
};
}  // namespace

TEST_CASE("fixture: curl HTTP/1.1 chat completion replays whole and attributed") {
  Streams s;
  stream::Tracker t(s);
  const auto r = record::replay_file(AGENTWALL_FIXTURES "/curl-http1-chat.awrec", t);
  REQUIRE_MESSAGE(r.ok(), r.error);
  REQUIRE(s.processes.size() == 1);
  CHECK(s.processes[0].exe == "/usr/bin/curl");
  CHECK(s.processes[0].complete);
  REQUIRE(s.bytes.size() == 2);  // one connection, both directions
  const std::string& out = s.bytes.begin()->second;
  const std::string& in = std::next(s.bytes.begin())->second;
  CHECK(out.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"));
  CHECK(out.find("Authorization: Bearer sk-fixture-not-a-real-key\r\n") != std::string::npos);
  const auto body_at = out.find("\r\n\r\n");
  REQUIRE(body_at != std::string::npos);
  const auto request = nlohmann::json::parse(out.substr(body_at + 4));
  CHECK(request["model"] == "gpt-4o-mini");
  CHECK(in.starts_with("HTTP/1.1 200 OK\r\n"));
  const auto response = nlohmann::json::parse(in.substr(in.find("\r\n\r\n") + 4));
  CHECK(response["usage"]["total_tokens"] == 16);
  CHECK(s.sni == "localhost");
  CHECK(s.peer == "127.0.0.1:18444");
  CHECK(s.fd >= 0);
  CHECK(s.gaps == 0);
  CHECK(s.closed_out == out.size());
  CHECK(s.closed_in == in.size());
}
