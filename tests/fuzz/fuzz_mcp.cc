// The MCP layer on hostile bytes: JSON-RPC framing and pairing. The input is cut by NUL
// bytes into a request body and a response body; byte 0 picks the response's content type
// (SSE or JSON), whether the request names a session, and the piece size the response is fed
// in. Whatever the bytes, the stage must not crash, it emits only mcp.message and mcp.alert
// objects, and flush() leaves nothing waiting.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/mcp/inventory.h"
#include "agent/mcp/jsonrpc.h"
#include "agent/mcp/stage.h"

namespace {

using namespace agentwall;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const size_t cut = rest.find('\0');
  const std::string_view request = rest.substr(0, cut);
  const std::string_view response = cut == std::string_view::npos ? "" : rest.substr(cut + 1);

  std::vector<mcp::Message> messages;
  mcp::parse(rest, messages);

  mcp::Inventory inventory({});
  mcp::CallChecker calls({});
  mcp::McpOptions options;
  options.inventory = &inventory;
  options.calls = &calls;
  options.max_pending = 64;
  uint64_t emitted = 0;
  mcp::McpStage stage(
      [&](const std::string& line) {
        ++emitted;
        const auto j = nlohmann::json::parse(line, nullptr, false);
        check(!j.is_discarded() && j.is_object() && j.contains("type"));
        const auto& type = j["type"];
        check(type == "mcp.message" || type == "mcp.alert");
      },
      options);

  stream::Connection conn;
  conn.id = 1;
  ProcessInfo proc;
  proc.key.pid = 42;
  for (int round = 0; round < 2; ++round) {  // twice: the second exchange meets the state
    protocol::HttpExchange x;
    x.id = uint64_t(round) + 1;
    x.has_request = true;
    x.request.method = "POST";
    x.request.path = (mode & 1) ? "/messages?sessionId=s1" : "/mcp";
    x.request.authority = "127.0.0.1:1";
    if (mode & 2) x.request.headers.push_back({"mcp-session-id", "s1"});
    x.request.body = std::string(request);
    stage.on_request(conn, proc, x);
    x.has_response = true;
    x.response.status = 200;
    x.response.headers.push_back(
        {"content-type", (mode & 4) ? "text/event-stream" : "application/json"});
    stage.on_response_head(conn, proc, x);
    const size_t piece = 1 + (mode >> 3);
    if (x.store_response_body) {
      x.response.body = std::string(response);
    } else {
      for (size_t at = 0; at < response.size(); at += piece)
        stage.on_response_body(conn, proc, x, response.substr(at, piece));
    }
    stage.on_exchange(conn, proc, x);
  }
  stage.flush();
  // Every mcp.message counted came out (alerts come on top).
  check(emitted >= stage.stats().events);
  // After flush nothing waits: a second flush emits nothing.
  const uint64_t before = emitted;
  stage.flush();
  check(emitted == before);
  return 0;
}
