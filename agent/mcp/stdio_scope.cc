#include "agent/mcp/stdio_scope.h"

#include <vector>

namespace agentwall::mcp {
namespace {

std::vector<std::string_view> words(std::string_view text, size_t max) {
  std::vector<std::string_view> out;
  while (!text.empty() && out.size() < max) {
    const size_t start = text.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    text.remove_prefix(start);
    const size_t end = text.find(' ');
    out.push_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end);
  }
  return out;
}

std::string_view basename(std::string_view path) {
  const size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

// A program or package name that says "MCP server": mcp-server-git, mcp_server.py,
// github-mcp-server, @modelcontextprotocol/server-filesystem, server-everything.js.
bool mcp_server_name(std::string_view word) {
  if (word.find("@modelcontextprotocol/server-") != std::string_view::npos) return true;
  const std::string_view base = basename(word);
  if (base.starts_with("mcp-server") || base.starts_with("mcp_server")) return true;
  if (base.find("-mcp-server") != std::string_view::npos ||
      base.find("_mcp_server") != std::string_view::npos)
    return true;
  // node .../server-NAME.js: the reference servers' entry points.
  return base.starts_with("server-") && (base.ends_with(".js") || base.ends_with(".mjs"));
}

}  // namespace

bool looks_like_mcp_server(std::string_view cmdline) {
  // The program, and what it runs: the first word after it that is not an option nor a
  // launcher's verb (npx -y X, uv run X, python -m X, npm exec X). Later words are the
  // server's own arguments (or another program's), which may name anything.
  const std::vector<std::string_view> w = words(cmdline, 16);
  if (w.empty()) return false;
  if (mcp_server_name(w[0])) return true;
  for (size_t i = 1; i < w.size(); ++i) {
    const std::string_view word = w[i];
    if (word.starts_with("-") || word == "run" || word == "exec" || word == "x" || word == "dlx" ||
        word == "tool")
      continue;
    // A package or module named mcp-*, mcp_*: uvx mcp-obsidian, python -m mcp_server_git.
    return mcp_server_name(word) || basename(word).starts_with("mcp");
  }
  return false;
}

StdioScope::StdioScope(const StdioScopeOptions& options) : heuristics_(options.heuristics) {
  for (const std::string& g : options.exes) exes_.emplace_back(g);
}

bool StdioScope::is_candidate(const ProcessInfo& p) const {
  if (heuristics_ && looks_like_mcp_server(p.cmdline)) return true;
  if (exes_.empty()) return false;
  const std::vector<std::string_view> w = words(p.cmdline, 8);
  for (const policy::Glob& g : exes_) {
    if (!p.exe.empty() && g.matches(p.exe)) return true;
    for (std::string_view word : w)
      if (g.matches(word)) return true;
  }
  return false;
}

}  // namespace agentwall::mcp
