// The protocol and LLM stages on hand-made connections: what recordings of real clients do
// not show (bombs, zstd, pipelining, a response whose request came before the agent, the
// server's side of a connection).
#include <doctest/doctest.h>
#include <zlib.h>
#include <zstd.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/output/pipeline.h"

using namespace agentwall;
using nlohmann::json;

namespace {

struct Conn {
  output::Pipeline& p;
  uint64_t id;
  uint64_t off[2] = {0, 0};
  uint64_t time = 1'000'000'000;
  std::string sni;

  void send(Direction d, std::string_view data) {
    TlsChunk c;
    c.time_ns = (time += 1'000'000);
    c.process = {77, 1};
    c.comm = "client";
    c.conn_id = id;
    c.dir = d;
    c.flags = kChunkLast;
    c.stream_off = off[int(d)];
    c.call_len = uint32_t(data.size());
    c.data = data;
    off[int(d)] += data.size();
    p.input().on_chunk(c);
  }
  void close() {
    TlsClose c;
    c.time_ns = (time += 1'000'000);
    c.process = {77, 1};
    c.conn_id = id;
    c.bytes_out = off[0];
    c.bytes_in = off[1];
    p.input().on_close(c);
  }
};

struct Run {
  std::vector<json> events;
  output::Pipeline p{[this](const std::string& l) { events.push_back(json::parse(l)); }};
  Run() {
    ProcessInfo info;
    info.key = {77, 1};
    info.comm = "client";
    info.complete = true;
    p.input().on_process(info);
  }
};

const std::string kBody =
    R"({"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]})";

std::string request(std::string_view host = "api.openai.com") {
  return "POST /v1/chat/completions HTTP/1.1\r\nHost: " + std::string(host) +
         "\r\nAuthorization: Bearer sk-unit\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(kBody.size()) + "\r\n\r\n" + kBody;
}

std::string completion(std::string_view text) {
  return json{{"id", "chatcmpl-1"},
              {"model", "gpt-4o-mini-2024-07-18"},
              {"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", text}}},
                 {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 11}, {"completion_tokens", 3}}}}
      .dump();
}

std::string response(std::string_view body, std::string_view encoding = "") {
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
  if (!encoding.empty()) head += "Content-Encoding: " + std::string(encoding) + "\r\n";
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

std::string gzip(std::string_view in) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 31, 9, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = uInt(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

bool has_flag(const json& e, std::string_view f) {
  for (const auto& x : e["flags"]) {
    if (x == f) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("stage: a gzip bomb is stopped at the limit, flagged and counted") {
  Run r;
  Conn c{r.p, 1};
  c.send(Direction::kOut, request());
  const std::string bomb = gzip(std::string(200u << 20, '0'));  // 200 MiB of zeros
  CHECK(bomb.size() < (1u << 20));
  c.send(Direction::kIn, response(bomb, "gzip"));
  c.close();
  REQUIRE(r.events.size() == 1);
  CHECK(has_flag(r.events[0], "response_bomb_limit"));
  CHECK(r.p.http_stats().bomb_limited == 1);
}

TEST_CASE("stage: a zstd response is decoded end to end") {
  Run r;
  Conn c{r.p, 2};
  c.send(Direction::kOut, request());
  const std::string body = completion("zstd says hi");
  std::string z(ZSTD_compressBound(body.size()), '\0');
  z.resize(ZSTD_compress(z.data(), z.size(), body.data(), body.size(), 3));
  c.send(Direction::kIn, response(z, "zstd"));
  c.close();
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0]["output_text"] == "zstd says hi");
  CHECK(r.events[0]["usage"]["source"] == "provider");
  CHECK(r.events[0]["flags"].empty());
}

TEST_CASE("stage: pipelined requests are paired with their responses in order") {
  Run r;
  Conn c{r.p, 3};
  c.send(Direction::kOut, request() + request() + request());
  c.send(Direction::kIn, response(completion("first")) + response(completion("second")));
  c.send(Direction::kIn, response(completion("third")));
  c.close();
  REQUIRE(r.events.size() == 3);
  CHECK(r.events[0]["output_text"] == "first");
  CHECK(r.events[1]["output_text"] == "second");
  CHECK(r.events[2]["output_text"] == "third");
  for (const auto& e : r.events) CHECK(e["flags"].empty());
}

TEST_CASE("stage: a request whose response never came is reported when the connection ends") {
  Run r;
  Conn c{r.p, 4};
  c.send(Direction::kOut, request());
  c.close();
  REQUIRE(r.events.size() == 1);
  CHECK(has_flag(r.events[0], "no_response"));
  CHECK(r.events[0]["model"] == "gpt-4o-mini");
  CHECK(r.events[0]["usage"]["input_tokens"].get<int>() > 0);  // counted, marked
  CHECK(r.events[0]["usage"]["source"] == "estimated");
}

TEST_CASE("stage: the agent started after the request: the response still counts, marked") {
  Run r;
  Conn c{r.p, 5};
  // Only SNI says where it goes: the request went before the agent was there.
  TlsSni s;
  s.process = {77, 1};
  s.conn_id = 5;
  s.sni = "api.openai.com";
  r.p.input().on_sni(s);
  c.send(Direction::kIn, response(completion("late")));
  c.close();
  REQUIRE(r.events.size() == 1);
  CHECK(has_flag(r.events[0], "no_request"));
  CHECK(r.events[0]["provider"] == "openai");
  CHECK(r.events[0]["output_text"] == "late");
  CHECK(r.events[0]["usage"]["input_tokens"] == 11);
}

TEST_CASE("stage: the server's side of a connection and non-HTTP traffic are left alone") {
  Run r;
  Conn server{r.p, 6};
  server.send(Direction::kIn, request());  // it receives requests: a server
  server.send(Direction::kOut, response(completion("x")));
  server.close();
  Conn smtp{r.p, 7};
  smtp.send(Direction::kIn, "220 mail.example.com ESMTP ready\r\n");
  smtp.send(Direction::kOut, "EHLO client\r\n");
  smtp.close();
  CHECK(r.events.empty());
  CHECK(r.p.http_stats().connections_other == 2);
}
