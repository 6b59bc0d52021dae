// MCP over stdio: the stdin and stdout streams of watched processes (bpf/stdio.bpf.c), cut
// into lines and handed to the MCP stage as messages of the session between the server and
// the client that started it. A watched process is confirmed as an MCP server by its first
// line in: a JSON-RPC `initialize` request; anything else and it is let go (`reject`). A
// server that was running before the agent (ProcessInfo::stdio_joined) is past its
// `initialize`: any JSON-RPC 2.0 line confirms it, and its first line in may be the end of a
// message cut by the agent's start, so only its second decides against it.
// Pure: unit tests drive it with recorded or made-up streams.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

#include "agent/mcp/line_framer.h"
#include "agent/mcp/stage.h"
#include "agent/stream/tracker.h"

namespace agentwall::mcp {

struct StdioOptions {
  size_t max_line = LineFramer::kDefaultMaxLine;  // longer lines are dropped and counted
  // A watched process that is not an MCP server after all: capture can stop watching it.
  std::function<void(uint32_t pid)> reject;
};

struct StdioStats {
  uint64_t sessions = 0;         // servers confirmed by their `initialize`
  uint64_t joined = 0;           // servers running before the agent, confirmed mid-session
  uint64_t sessions_open = 0;    // of those, still running
  uint64_t rejected = 0;         // watched processes whose first line was not `initialize`
                                 // (joined ones: whose first two lines were not JSON-RPC)
  uint64_t lines = 0;            // lines of confirmed sessions handed to the MCP stage
  uint64_t oversized_lines = 0;  // lines longer than max_line, dropped
  uint64_t gaps = 0;             // holes in the captured streams
  uint64_t dropped_bytes = 0;    // bytes of dropped lines, holes included
};

class StdioStage final : public stream::StreamSink {
 public:
  StdioStage(McpStage& mcp, StdioOptions options = {});

  void on_process(const ProcessInfo& p) override;
  void on_data(const stream::Connection& conn, const ProcessInfo* process,
               const TlsChunk& chunk) override;
  void on_gap(const stream::Connection& conn, Direction dir, uint64_t offset, uint64_t len,
              stream::GapReason reason) override;
  void on_forget(const stream::Connection& conn) override;

  StdioStats stats() const;

 private:
  enum class State { kUnconfirmed, kConfirmed, kRejected };
  struct Server {
    ProcessInfo info;
    StdioKey key;
    State state = State::kUnconfirmed;
    bool spared = false;  // joined mid-way: its first line in was not JSON-RPC, let pass
    LineFramer in, out;   // stdin: what the client sent; stdout: what the server answered
    Server(const ProcessInfo& p, size_t max_line);
  };
  Server& server(const ProcessInfo& p);
  void on_line(Server& s, Direction dir, std::string_view line, uint64_t time_ns);

  McpStage& mcp_;
  StdioOptions opt_;
  std::unordered_map<ProcessKey, std::unique_ptr<Server>, ProcessKeyHash> servers_;
  StdioStats stats_;
  LineFramerStats ended_;  // framer counts of servers already gone
};

}  // namespace agentwall::mcp
