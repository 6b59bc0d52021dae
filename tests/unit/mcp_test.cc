// The MCP layer: JSON-RPC framing, and recorded real traffic (the official SDK's client and
// server, tests/integration/clients/mcp_{client,server}.mjs, over HTTPS, captured by
// `agentwall run --record`) replayed through the pipeline: Streamable HTTP with SSE
// responses, with JSON responses, and the legacy HTTP+SSE transport, in that order.
// sdk-http-transports.client.jsonl holds what the client printed for each session.
#include <doctest/doctest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "agent/mcp/jsonrpc.h"
#include "agent/output/pipeline.h"
#include "agent/record/recording.h"

using namespace agentwall;
using nlohmann::json;

TEST_CASE("jsonrpc: requests, notifications, results, errors and batches") {
  std::vector<mcp::Message> m;
  REQUIRE(mcp::parse(R"({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"x"}})", m));
  REQUIRE(m.size() == 1);
  CHECK(m[0].kind == mcp::Kind::kRequest);
  CHECK(m[0].id == "7");
  CHECK(m[0].params["name"] == "x");
  m.clear();
  REQUIRE(mcp::parse(R"([{"jsonrpc":"2.0","method":"notifications/initialized"},
                         {"jsonrpc":"2.0","id":"a","result":{}},
                         {"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"bad"}},
                         {"jsonrpc":"1.0","id":1,"result":{}}, 42])",
                     m));
  REQUIRE(m.size() == 3);
  CHECK(m[0].kind == mcp::Kind::kNotification);
  CHECK(m[1].kind == mcp::Kind::kResult);
  CHECK(m[1].id == "\"a\"");
  CHECK(m[2].kind == mcp::Kind::kError);
  CHECK(m[2].id.empty());
  m.clear();
  CHECK_FALSE(mcp::parse(R"({"jsonrpc":"2.0","id":1})", m));  // neither method nor answer
  CHECK_FALSE(mcp::parse(R"({"model":"gpt-4o","messages":[]})", m));
  CHECK_FALSE(mcp::parse("{\"jsonrpc\":\"2.0\",", m));
  CHECK(m.empty());
  CHECK(mcp::looks_like_jsonrpc(" [{\"jsonrpc\":\"2.0\"}]"));
  CHECK_FALSE(mcp::looks_like_jsonrpc("jsonrpc"));
}

TEST_CASE("fixture: the SDK over three HTTP transports becomes paired mcp.message events") {
  std::vector<json> events;
  output::Pipeline pipeline([&](const std::string& line) { events.push_back(json::parse(line)); });
  const auto r =
      record::replay_file(AGENTWALL_FIXTURES "/mcp/sdk-http-transports.awrec", pipeline.input());
  REQUIRE_MESSAGE(r.ok(), r.error);
  pipeline.flush();
  std::vector<json> clients;
  std::ifstream in(AGENTWALL_FIXTURES "/mcp/sdk-http-transports.client.jsonl");
  for (std::string line; std::getline(in, line);) clients.push_back(json::parse(line));
  REQUIRE(clients.size() == 3);
  // Per session: initialize, notifications/initialized, tools/list, three tools/call. Only
  // the clients' side: the servers' connections are not read as HTTP clients.
  REQUIRE(events.size() == 18);
  const char* transports[] = {"streamable_http", "streamable_http", "http+sse"};
  for (size_t s = 0; s < 3; ++s) {
    INFO("session " << s);
    const json& client = clients[s];
    const json* e = &events[s * 6];
    const std::string session = e[0]["session_id"];
    for (size_t i = 0; i < 6; ++i) {
      CHECK(e[i]["type"] == "mcp.message");
      CHECK(e[i]["transport"] == transports[s]);
      CHECK(e[i]["session_id"] == session);
      CHECK(e[i]["client"]["name"] == "agentwall-test-client");
      CHECK(e[i]["server"] == client["server"]);
      CHECK(e[i]["process"]["exe"] == "/usr/bin/node");
    }
    if (!client["session_id"].is_null()) CHECK(session == client["session_id"]);
    CHECK(e[0]["method"] == "initialize");
    CHECK(e[0]["status"] == "ok");
    CHECK(e[0]["protocol_version"] == "2025-11-25");
    CHECK(e[0]["instructions"] == "Tools for agentwall's tests.");
    CHECK(e[1]["kind"] == "notification");
    CHECK(e[1]["method"] == "notifications/initialized");
    CHECK(e[2]["method"] == "tools/list");
    CHECK(e[2]["tools"] == client["tools"]);
    for (size_t c = 0; c < 3; ++c) {
      const json& call = client["calls"][c];
      const json& ev = e[3 + c];
      CHECK(ev["method"] == "tools/call");
      CHECK(ev["id"] == json(c + 2));
      CHECK(ev["tool"] == call["name"]);
      CHECK(ev["arguments"] == call["arguments"]);
      CHECK(ev["is_error"] == call["result"].value("isError", false));
      CHECK(ev["result_text"] == call["result"]["content"][0]["text"]);
      CHECK(ev["latency_ms"].get<double>() > 0);
    }
  }
  CHECK(pipeline.mcp_stats().unanswered == 0);
  CHECK(pipeline.mcp_stats().unmatched == 0);
  CHECK(pipeline.llm_stats().calls == 0);
}
