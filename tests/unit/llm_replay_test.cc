// Recorded real traffic (SDK clients, curl, urllib → the provider stand-in, captured by
// `agentwall run --record`; tests/integration/make_llm_fixtures.py) replayed through the
// whole pipeline, whole, re-split at every byte, cut, and joined mid-connection.
#include <doctest/doctest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "agent/output/pipeline.h"
#include "agent/record/tape.h"

using namespace agentwall;
using nlohmann::json;

namespace {

std::string fixture(const char* name) {
  return std::string(AGENTWALL_FIXTURES) + "/" + name;
}

record::Tape load(const char* name) {
  record::Tape t;
  std::string error;
  REQUIRE_MESSAGE(t.load(fixture(name), error), error);
  return t;
}

std::vector<json> run(const record::Tape& t, size_t end = SIZE_MAX) {
  std::vector<json> out;
  output::Pipeline p([&](const std::string& line) { out.push_back(json::parse(line)); });
  t.play(p.input(), 0, 0, end);
  p.flush();
  return out;
}

std::vector<json> run_records(const std::vector<record::TapeRecord>& records) {
  record::Tape t;
  t.records = records;
  return run(t);
}

bool has_flag(const json& e, const std::string& f) {
  for (const auto& x : e["flags"]) {
    if (x == f) return true;
  }
  return false;
}

// The tape's chunks of one connection and direction joined into one byte stream.
struct Joined {
  std::string bytes[2];
  record::OwnedChunk first[2];
  uint64_t last_time[2] = {0, 0};
};

Joined join(const record::Tape& t) {
  Joined j;
  for (const auto& r : t.records) {
    const auto* o = std::get_if<record::OwnedChunk>(&r);
    if (!o) continue;
    const int d = static_cast<int>(o->chunk.dir);
    if (j.bytes[d].empty()) j.first[d] = *o;
    j.bytes[d] += o->data;
    j.last_time[d] = o->chunk.time_ns;
  }
  return j;
}

record::OwnedChunk piece(const record::OwnedChunk& proto, std::string_view data, uint64_t off,
                         uint64_t time) {
  record::OwnedChunk c = proto;
  c.data = std::string(data);
  c.chunk.stream_off = off;
  c.chunk.call_len = uint32_t(data.size());
  c.chunk.call_off = 0;
  c.chunk.flags = kChunkLast;
  c.chunk.time_ns = time;
  return c;
}

// The exchange as one chunk per direction, except `split_dir`, cut in two at `at`.
std::vector<record::TapeRecord> resplit(const record::Tape& t, const Joined& j, int split_dir,
                                        size_t at) {
  std::vector<record::TapeRecord> out;
  for (const auto& r : t.records) {
    if (std::holds_alternative<ProcessInfo>(r)) out.push_back(r);
  }
  for (int d = 0; d < 2; ++d) {
    const std::string_view all = j.bytes[d];
    const uint64_t t0 = j.first[d].chunk.time_ns;
    if (d == split_dir && at > 0 && at < all.size()) {
      out.emplace_back(piece(j.first[d], all.substr(0, at), 0, t0));
      out.emplace_back(piece(j.first[d], all.substr(at), at, j.last_time[d]));
    } else {
      out.emplace_back(piece(j.first[d], all.substr(0, 1), 0, t0));
      if (all.size() > 1) out.emplace_back(piece(j.first[d], all.substr(1), 1, j.last_time[d]));
    }
  }
  return out;
}

}  // namespace

TEST_CASE("llm replay: urllib chat completion, non-streamed, whole") {
  const auto events = run(load("llm-urllib-openai-chat.awrec"));
  REQUIRE(events.size() == 1);
  const json& e = events[0];
  CHECK(e["type"] == "llm.exchange");
  CHECK(e["provider"] == "openai");
  CHECK(e["operation"] == "chat");
  CHECK(e["model"] == "gpt-4o-mini");
  CHECK(e["response_model"] == "gpt-4o-mini-2024-07-18");
  CHECK(e["stream"] == false);
  CHECK(e["status"] == 200);
  CHECK(e["messages"].size() == 1);
  CHECK(e["system"].get<std::string>().starts_with("You are agentwall's integration test"));
  CHECK(e["output_text"].get<std::string>().starts_with("Stand-in answer to: Say hello"));
  CHECK(e["usage"]["source"] == "provider");
  CHECK(e["usage"]["input_tokens"].get<int>() > 0);
  CHECK(e["cost_usd"].get<double>() > 0);
  CHECK(e["flags"].empty());
  CHECK(e["process"]["exe"].get<std::string>().find("python") != std::string::npos);
  CHECK(e["api_key_fingerprint"].get<std::string>().starts_with("sha256:"));
}

TEST_CASE("llm replay: the same exchange split at every byte, both ways, gives the same event") {
  for (const char* name : {"llm-urllib-openai-chat.awrec", "llm-urllib-openai-gzip.awrec"}) {
    CAPTURE(name);
    const record::Tape t = load(name);
    const Joined j = join(t);
    REQUIRE(!j.bytes[0].empty());
    REQUIRE(!j.bytes[1].empty());
    const auto base = run_records(resplit(t, j, -1, 0));
    REQUIRE(base.size() == 1);
    CHECK(base[0]["flags"].empty());
    CHECK(base[0]["usage"]["source"] == "provider");
    for (int d = 0; d < 2; ++d) {
      for (size_t at = 1; at < j.bytes[d].size(); ++at) {
        const auto got = run_records(resplit(t, j, d, at));
        REQUIRE(got.size() == 1);
        if (got[0] != base[0]) {
          CAPTURE(d);
          CAPTURE(at);
          CHECK(got[0].dump() == base[0].dump());
          return;
        }
      }
    }
  }
}

TEST_CASE("llm replay: gzip response decoded") {
  const auto events = run(load("llm-urllib-openai-gzip.awrec"));
  REQUIRE(events.size() == 1);
  CHECK(events[0]["output_text"].get<std::string>().starts_with("Stand-in answer to:"));
  CHECK(events[0]["flags"].empty());
}

TEST_CASE("llm replay: brotli SSE stream from the Anthropic SDK with a tool call") {
  const auto events = run(load("llm-node-anthropic-stream-br.awrec"));
  REQUIRE(events.size() == 1);
  const json& e = events[0];
  CHECK(e["provider"] == "anthropic");
  CHECK(e["stream"] == true);
  REQUIRE(e["tool_calls"].size() == 1);
  CHECK(e["tool_calls"][0]["name"] == "get_weather");
  CHECK(json::parse(e["tool_calls"][0]["arguments"].get<std::string>()).is_object());
  CHECK(e["usage"]["source"] == "provider");
  CHECK(e["usage"]["cache_read_tokens"].get<int>() > 0);
  CHECK(e["usage"]["cache_write_tokens"].get<int>() > 0);
  CHECK(e["flags"].empty());
}

TEST_CASE("llm replay: three streams multiplexed on one HTTP/2 connection") {
  const auto events = run(load("llm-curl-h2-parallel.awrec"));
  REQUIRE(events.size() == 3);
  std::set<std::string> outputs;
  int estimated = 0;
  for (const auto& e : events) {
    CHECK(e["http_version"] == "2");
    CHECK(e["stream"] == true);
    CHECK(e["flags"].empty());
    CHECK(e["connection"]["id"] == events[0]["connection"]["id"]);
    // Each answer belongs to its own request: the stand-in echoes the request's words.
    const std::string asked = e["messages"][0]["text"];
    const std::string said = e["output_text"];
    CHECK(said.find(asked.substr(0, 20)) != std::string::npos);
    outputs.insert(said);
    if (e["usage"]["source"] == "estimated") ++estimated;
    CHECK(e["usage"]["input_tokens"].get<int>() > 0);
    CHECK(e["usage"]["output_tokens"].get<int>() > 0);
  }
  CHECK(outputs.size() == 3);
  CHECK(estimated == 1);  // the one request without stream_options.include_usage
}

TEST_CASE("llm replay: a stream cut in the middle keeps what it carried, marked and estimated") {
  const record::Tape t = load("llm-node-anthropic-stream-br.awrec");
  // Find the records of the response and stop halfway through them.
  std::vector<size_t> in_chunks;
  for (size_t i = 0; i < t.records.size(); ++i) {
    const auto* o = std::get_if<record::OwnedChunk>(&t.records[i]);
    if (o && o->chunk.dir == Direction::kIn) in_chunks.push_back(i);
  }
  REQUIRE(in_chunks.size() >= 4);
  const auto events = run(t, in_chunks[in_chunks.size() / 2]);
  REQUIRE(events.size() == 1);
  const json& e = events[0];
  CHECK(has_flag(e, "response_cut"));
  CHECK(e["usage"]["source"] == "estimated");
  CHECK(e["usage"]["input_tokens"].get<int>() > 0);  // from message_start
  CHECK(e["model"] == "claude-3-5-haiku-20241022");
}

TEST_CASE("llm replay: joined mid-connection, nothing is misattributed and nothing crashes") {
  for (const char* name :
       {"llm-curl-h2-parallel.awrec", "llm-node-sdk-mix.awrec", "llm-urllib-openai-chat.awrec"}) {
    CAPTURE(name);
    const record::Tape t = load(name);
    const auto whole = run(t);
    std::set<std::string> true_outputs;
    for (const auto& e : whole) true_outputs.insert(e["output_text"].get<std::string>());
    // Start after each chunk in turn (process records are kept: the agent knows processes).
    for (size_t skip = 1; skip < t.records.size(); ++skip) {
      std::vector<record::TapeRecord> rest;
      for (size_t i = 0; i < t.records.size(); ++i) {
        if (i >= skip || std::holds_alternative<ProcessInfo>(t.records[i]))
          rest.push_back(t.records[i]);
      }
      for (const auto& e : run_records(rest)) {
        const std::string out = e["output_text"];
        // What is reported must be true: either a whole answer seen before, or a part of
        // one (the stream was joined late), never another exchange's text.
        bool ok = out.empty() || true_outputs.count(out);
        for (const auto& t_out : true_outputs) ok = ok || t_out.find(out) != std::string::npos;
        CHECK_MESSAGE(ok, "skip=" << skip << " reported output: " << out);
      }
    }
  }
}

TEST_CASE("llm replay: the SDK mix, every provider and API") {
  const auto events = run(load("llm-node-sdk-mix.awrec"));
  REQUIRE(events.size() == 11);
  std::map<std::string, int> seen;
  for (const auto& e : events) {
    seen[e["provider"].get<std::string>() + "/" + e["operation"].get<std::string>() +
         (e["stream"].get<bool>() ? "/stream" : "")]++;
    CHECK(e["flags"].empty());
    CHECK(e["status"] == 200);
    CHECK(e["usage"]["input_tokens"].get<int>() > 0);
    CHECK(!e["cost_usd"].is_null());
  }
  CHECK(seen["openai/chat/stream"] == 2);
  CHECK(seen["openai/chat"] == 1);
  CHECK(seen["openai/responses/stream"] == 1);
  CHECK(seen["openai/embeddings"] == 1);
  CHECK(seen["anthropic/chat/stream"] == 1);
  CHECK(seen["anthropic/chat"] == 1);
  CHECK(seen["gemini/chat/stream"] == 1);
  CHECK(seen["gemini/chat"] == 1);
  CHECK(seen["ollama/chat/stream"] == 1);
  CHECK(seen["ollama/chat"] == 1);
}
