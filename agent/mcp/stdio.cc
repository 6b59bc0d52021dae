#include "agent/mcp/stdio.h"

#include "agent/mcp/jsonrpc.h"

namespace agentwall::mcp {
namespace {

bool is_initialize(std::string_view line) {
  std::vector<Message> msgs;
  return parse(line, msgs) && msgs.size() == 1 && msgs[0].kind == Kind::kRequest &&
         msgs[0].method == "initialize";
}

bool is_jsonrpc(std::string_view line) {
  std::vector<Message> msgs;
  return parse(line, msgs);
}

void add(LineFramerStats& total, const LineFramerStats& s) {
  total.lines += s.lines;
  total.oversized_lines += s.oversized_lines;
  total.gaps += s.gaps;
  total.dropped_bytes += s.dropped_bytes;
}

}  // namespace

StdioStage::Server::Server(const ProcessInfo& p, size_t max_line)
    : info(p),
      key{p.key, p.stdio_client ? p.stdio_client->key.pid : 0},
      in(max_line),
      out(max_line) {}

StdioStage::StdioStage(McpStage& mcp, StdioOptions options) : mcp_(mcp), opt_(std::move(options)) {}

void StdioStage::on_process(const ProcessInfo& p) {
  // Only processes whose stdio is captured come with their client; the others are not ours.
  if (const auto it = servers_.find(p.key); it != servers_.end()) it->second->info = p;
}

StdioStage::Server& StdioStage::server(const ProcessInfo& p) {
  std::unique_ptr<Server>& s = servers_[p.key];
  if (!s) s = std::make_unique<Server>(p, opt_.max_line);
  return *s;
}

void StdioStage::on_data(const stream::Connection& conn, const ProcessInfo* process,
                         const TlsChunk& chunk) {
  ProcessInfo unknown;
  if (!process) {
    unknown.key = conn.process;
    unknown.comm = conn.comm;
  }
  Server& s = server(process ? *process : unknown);
  if (s.state == State::kRejected) return;
  LineFramer& framer = chunk.dir == Direction::kIn ? s.in : s.out;
  framer.feed(chunk.data,
              [&](std::string_view line) { on_line(s, chunk.dir, line, chunk.time_ns); });
}

void StdioStage::on_line(Server& s, Direction dir, std::string_view line, uint64_t time_ns) {
  if (s.state == State::kRejected) return;  // the rest of the read that rejected it
  if (s.state == State::kUnconfirmed) {
    // The server speaks only once spoken to: what it writes before is not MCP (a banner).
    if (dir == Direction::kOut) return;
    const bool joined = s.info.stdio_joined;
    if (!(joined ? is_jsonrpc(line) : is_initialize(line))) {
      // Joined mid-way, the first line may be the tail of a message cut by the agent's start.
      if (joined && !s.spared) {
        s.spared = true;
        return;
      }
      s.state = State::kRejected;
      ++stats_.rejected;
      if (opt_.reject) opt_.reject(s.info.key.pid);
      return;
    }
    s.state = State::kConfirmed;
    ++stats_.sessions;
    if (joined) ++stats_.joined;
  }
  ++stats_.lines;
  mcp_.on_stdio(s.key, s.info, s.info.stdio_client.get(), dir, line, time_ns);
}

void StdioStage::on_gap(const stream::Connection& conn, Direction dir, uint64_t, uint64_t len,
                        stream::GapReason) {
  const auto it = servers_.find(conn.process);
  if (it == servers_.end()) return;
  (dir == Direction::kIn ? it->second->in : it->second->out).gap(len);
}

void StdioStage::on_forget(const stream::Connection& conn) {
  // The process exited: its stdin and stdout streams are forgotten one after the other.
  const auto it = servers_.find(conn.process);
  if (it == servers_.end()) return;
  Server& s = *it->second;
  if (s.state == State::kConfirmed) mcp_.end_stdio(s.key);
  add(ended_, s.in.stats());
  add(ended_, s.out.stats());
  servers_.erase(it);
}

StdioStats StdioStage::stats() const {
  StdioStats st = stats_;
  LineFramerStats f = ended_;
  for (const auto& [key, s] : servers_) {
    add(f, s->in.stats());
    add(f, s->out.stats());
    if (s->state == State::kConfirmed) ++st.sessions_open;
  }
  st.oversized_lines = f.oversized_lines;
  st.gaps = f.gaps;
  st.dropped_bytes = f.dropped_bytes;
  return st;
}

}  // namespace agentwall::mcp
