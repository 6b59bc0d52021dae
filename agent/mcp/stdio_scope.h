// Which new processes may be MCP servers spoken to over stdio, decided at their exec (or, for
// those already running, at the agent's start) from their executable and command line, so
// that the kernel copies the stdin and stdout of those processes only (bpf/stdio.bpf.c), never
// every pipe on the host. A candidate is confirmed by what it reads: its first line must be a
// JSON-RPC `initialize` (StdioStage; any JSON-RPC line for one joined mid-way), otherwise it is
// no longer watched. Pure.
#pragma once

#include <string>
#include <vector>

#include "agent/capture/chunk.h"
#include "agent/policy/glob.h"

namespace agentwall::mcp {

struct StdioScopeOptions {
  // Globs (`*` spans slashes) over the executable path and each command-line word: what the
  // user names as an MCP server (--mcp-stdio-exe, mcp.stdio_exes).
  std::vector<std::string> exes;
  // The built-in guesses from command lines (docs/DESIGN.md, "MCP over stdio").
  bool heuristics = true;
};

class StdioScope {
 public:
  explicit StdioScope(const StdioScopeOptions& options);
  bool is_candidate(const ProcessInfo& process) const;

 private:
  std::vector<policy::Glob> exes_;
  bool heuristics_;
};

// The built-in guess alone, on a command line (words joined by spaces).
bool looks_like_mcp_server(std::string_view cmdline);

}  // namespace agentwall::mcp
