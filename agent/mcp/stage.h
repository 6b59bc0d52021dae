// The MCP layer over HTTP: Streamable HTTP (POST with a JSON or SSE response, GET SSE
// streams, Mcp-Session-Id) and the legacy HTTP+SSE transport (GET /sse announcing a
// /messages?sessionId= endpoint, answers on the stream). JSON-RPC requests are paired with
// their answers by session and id, and each pair (and each notification) becomes one
// `mcp.message` event (docs/EVENTS.md). Pure: unit tests drive it with recordings.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "agent/mcp/calls.h"
#include "agent/mcp/inventory.h"
#include "agent/mcp/jsonrpc.h"
#include "agent/protocol/stage.h"

namespace agentwall::mcp {

// One MCP request from a client and what came back, for the policy (the decide stage).
struct McpCall {
  ProcessInfo process;  // the client
  std::string server, method, tool, session_id, transport, url;
  std::string rpc_id;        // the JSON-RPC id, as the message gave it (JSON text)
  nlohmann::json arguments;  // tools/call's arguments; null otherwise
  std::string result_text;   // tools/call's result text, uncapped
  bool answered = false, is_error = false;
  uint64_t time_ns = 0;  // when the request was sent
};

class McpObserver {
 public:
  virtual ~McpObserver() = default;
  // Whether a client's request on this connection should be handed over as soon as it is
  // complete (its write is held right now): only then is on_mcp_request called.
  virtual bool wants_mcp_request(uint64_t conn_id) const {
    (void)conn_id;
    return false;
  }
  // A client's request over HTTP, complete and not answered yet: the write that completes it
  // is held (`conn_id` is its connection's), so the policy can still stop it.
  virtual void on_mcp_request(const McpCall& request, uint64_t conn_id) {
    (void)request;
    (void)conn_id;
  }
  // The same request with its answer (or none: unanswered), after its event.
  virtual void on_mcp_call(const McpCall& call) = 0;
};

struct McpOptions {
  size_t content_cap = 4096;   // bytes of arguments and result text written into events
  size_t max_pending = 10000;  // requests waiting for an answer, across sessions
  // Where what servers offer is pinned and checked (tools/list, instructions, list_changed);
  // null: nothing is pinned.
  Inventory* inventory = nullptr;
  // Judges each tools/call (injection in results, dangerous arguments, toxic flows); null:
  // none.
  CallChecker* calls = nullptr;
  // Sees every request from a client with its answer (after its event); null: none.
  McpObserver* observer = nullptr;
};

// What `initialize` said about both ends of a session.
struct SessionInfo {
  std::string client_name, client_version, server_name, server_version, protocol_version;
  bool tools_listed = false;  // a tools/list of this session was answered
};

struct McpStats {
  uint64_t exchanges = 0;   // HTTP exchanges that carried MCP
  uint64_t messages = 0;    // JSON-RPC messages read
  uint64_t events = 0;      // mcp.message events
  uint64_t unanswered = 0;  // requests that never got an answer
  uint64_t unmatched = 0;   // answers to no request seen (the agent started late)
  uint64_t bad_json = 0;    // bodies or SSE events that were not JSON-RPC
};

// MCP over stdio: a session is the pair of processes at the two ends of a server's stdin
// and stdout.
struct StdioKey {
  ProcessKey server;
  uint32_t client_pid = 0;  // 0 when unknown
  // What events name the session: "CLIENT_PID-SERVER_PID".
  std::string session_id() const;
};

class McpStage final : public protocol::ExchangeSink {
 public:
  using Emit = std::function<void(const std::string& line)>;
  McpStage(Emit emit, McpOptions options = {});
  ~McpStage() override;

  // Whether an exchange is MCP, from its request: a JSON-RPC body, an Mcp-Session-Id, or an
  // event-stream GET of an MCP endpoint.
  static bool claims(const protocol::HttpExchange& x);

  void on_request(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&) override;
  void on_response_head(const stream::Connection&, const ProcessInfo&,
                        protocol::HttpExchange&) override;
  void on_response_body(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&,
                        std::string_view decoded) override;
  void on_exchange(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&) override;

  // ---- MCP over stdio ----
  // One line of the server's stdin (`kIn`: client to server) or stdout (`kOut`), framed by
  // StdioStage. `client` is null when the process at the other end is not known.
  void on_stdio(const StdioKey& key, const ProcessInfo& server, const ProcessInfo* client,
                Direction dir, std::string_view line, uint64_t time_ns);
  // The server is gone: its requests still waiting come out, marked unanswered.
  void end_stdio(const StdioKey& key);
  // ---- end MCP over stdio ----

  // Requests still waiting come out, marked unanswered (end of a replay, agent stopping).
  void flush();
  const McpStats& stats() const { return stats_; }

 private:
  struct Pending;
  struct Stream;
  void from_client(Stream& s, const stream::Connection&, const ProcessInfo&, uint64_t time_ns,
                   std::vector<Message> msgs);
  void from_server(Stream& s, const stream::Connection&, const ProcessInfo&,
                   std::vector<Message> msgs, uint64_t time_ns);
  void server_payload(Stream& s, const stream::Connection&, const ProcessInfo&,
                      std::string_view text, uint64_t time_ns);
  void emit_pair(const Pending& p, const Message* answer, uint64_t answer_ns,
                 const std::string& session_id);
  McpCall call_of(const Pending& p, const Message* answer, const std::string& session_id) const;
  void emit_notification(const Stream& s, const stream::Connection&, const ProcessInfo&,
                         const Message& m, uint64_t time_ns, bool from_client);
  const SessionInfo* session(uint32_t pid, const std::string& id) const;
  void inventory(const Message& req, const Message& answer, const std::string& url,
                 const ProcessInfo& proc, const std::string& session_id, uint64_t time_ns);
  void emit_all(const std::vector<std::string>& lines);

  Emit emit_;
  McpOptions opt_;
  McpStats stats_;
  std::map<std::string, Pending> pending_;                          // by pid|session|direction|id
  std::unordered_map<std::string, SessionInfo> sessions_;           // by pid|session
  std::unordered_map<std::string, std::unique_ptr<Stream>> stdio_;  // by session id
};

}  // namespace agentwall::mcp
