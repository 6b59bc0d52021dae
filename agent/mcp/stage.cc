#include "agent/mcp/stage.h"

#include "agent/mcp/text.h"

#include <algorithm>

#include "agent/common/json_writer.h"
#include "agent/common/time.h"
#include "agent/llm/call.h"  // append_capped
#include "agent/protocol/sse/sse.h"
#include "agent/stream/event_json.h"

namespace agentwall::mcp {

using protocol::header_value;
using protocol::HttpExchange;

namespace {

constexpr const char* kStreamable = "streamable_http";
constexpr const char* kLegacySse = "http+sse";

std::string query_param(std::string_view target, std::string_view name) {
  const size_t q = target.find('?');
  if (q == std::string_view::npos) return {};
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    const std::string_view kv = rest.substr(0, amp);
    const size_t eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == name)
      return std::string(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    rest.remove_prefix(amp + 1);
  }
  return {};
}

std::string path_only(std::string_view target) {
  return std::string(target.substr(0, target.find('?')));
}

bool is_event_stream(const protocol::Headers& h, std::string_view name) {
  return header_value(h, name).find("text/event-stream") != std::string_view::npos;
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `key`: the JSON value as it is, or past `cap` bytes its text cut, as `key_text`, with
// `key_truncated`.
void capped_json(JsonWriter& w, std::string_view key, const nlohmann::json& j, size_t cap) {
  const std::string text = dump(j);
  if (text.size() <= cap) {
    w.key(key).raw(text);
    return;
  }
  std::string cut;
  bool was_cut = false;
  llm::append_capped(cut, text, cap, was_cut);
  w.field(std::string(key) + "_text", cut).field(std::string(key) + "_truncated", true);
}

// The text parts of a tool result or prompt, joined, capped.
std::string result_text(const nlohmann::json& result, size_t cap) {
  std::string out;
  const auto content = result.is_object() ? result.find("content") : result.end();
  if (content == result.end() || !content->is_array()) return out;
  bool cut = false;
  for (const auto& part : *content) {
    const std::string text = str_at(part, "text");
    if (text.empty()) continue;
    if (!out.empty()) out += "\n";
    llm::append_capped(out, text, cap > out.size() ? cap - out.size() : 0, cut);
    if (cut) break;
  }
  return out;
}

}  // namespace

struct McpStage::Pending {
  Message req;
  uint64_t time_ns = 0;
  std::string transport, session_key, url;
  ProcessInfo process;
  stream::Connection conn;
  bool from_client = true;
  std::shared_ptr<const ProcessInfo> stdio_server;  // stdio: the server (process: the client)
};

struct McpStage::Stream final : protocol::ExchangeState {
  std::string transport = kStreamable;
  std::string session_key;  // what requests are filed under and answers looked up by
  std::string session_id;   // what events name (the response's Mcp-Session-Id, once known)
  std::string url;
  bool sse = false;
  protocol::SseParser parser;
  std::vector<std::string> filed;  // pending keys this POST filed: answered on it, or never
  std::shared_ptr<const ProcessInfo> stdio_server;
};

McpStage::McpStage(Emit emit, McpOptions options) : emit_(std::move(emit)), opt_(options) {}
McpStage::~McpStage() = default;

bool McpStage::claims(const HttpExchange& x) {
  if (!x.has_request) return false;
  const protocol::HttpMessage& r = x.request;
  if (!header_value(r.headers, "mcp-session-id").empty() ||
      !header_value(r.headers, "mcp-protocol-version").empty())
    return true;
  if (r.method == "POST") return looks_like_jsonrpc(r.body);
  if (r.method == "GET" && is_event_stream(r.headers, "accept")) {
    const std::string path = path_only(r.path);
    return path.ends_with("/sse") || path.ends_with("/mcp");
  }
  return false;
}

const SessionInfo* McpStage::session(uint32_t pid, const std::string& id) const {
  const auto it = sessions_.find(std::to_string(pid) + "|" + id);
  return it == sessions_.end() ? nullptr : &it->second;
}

void McpStage::on_request(const stream::Connection& conn, const ProcessInfo& proc,
                          HttpExchange& x) {
  ++stats_.exchanges;
  auto s = std::make_unique<Stream>();
  const protocol::HttpMessage& r = x.request;
  s->url = (conn.plain ? "http://" : "https://") + r.authority + path_only(r.path);
  const std::string legacy_session = query_param(r.path, "sessionId");
  const std::string_view header_session = header_value(r.headers, "mcp-session-id");
  if (!legacy_session.empty() && header_session.empty()) {
    s->transport = kLegacySse;
    s->session_key = legacy_session;
  } else {
    s->session_key = std::string(header_session);
  }
  s->session_id = s->session_key;
  Stream& st = *s;
  x.state = std::move(s);
  if (r.method != "POST" || r.body.empty()) return;
  std::vector<Message> msgs;
  if (!parse(r.body, msgs)) {
    ++stats_.bad_json;
    return;
  }
  from_client(st, conn, proc, x.request.first_ns, std::move(msgs));
}

void McpStage::from_client(Stream& s, const stream::Connection& conn, const ProcessInfo& proc,
                           uint64_t time_ns, std::vector<Message> msgs) {
  const std::string pid = std::to_string(proc.key.pid);
  for (Message& m : msgs) {
    ++stats_.messages;
    if (m.kind == Kind::kNotification) {
      emit_notification(s, conn, proc, m, time_ns, true);
    } else if (m.kind == Kind::kRequest) {
      const std::string key = pid + "|" + s.session_key + "|c|" + m.id;
      if (pending_.size() >= opt_.max_pending) {
        ++stats_.unanswered;
        emit_pair(pending_.begin()->second, nullptr, 0, pending_.begin()->second.session_key);
        pending_.erase(pending_.begin());
      }
      Pending& p = pending_[key];
      p = Pending{std::move(m), time_ns, s.transport, s.session_key, s.url, proc, conn, true};
      p.stdio_server = s.stdio_server;
      if (s.transport == kStreamable) s.filed.push_back(key);
      // Over HTTP its last bytes may be held in the kernel: the policy judges it now.
      if (opt_.observer && !s.stdio_server && opt_.observer->wants_mcp_request(conn.id))
        opt_.observer->on_mcp_request(call_of(p, nullptr, s.session_id), conn.id);
    } else {
      // The client answers a request of the server (sampling, elicitation, roots).
      const std::string key = pid + "|" + s.session_key + "|s|" + m.id;
      const auto it = pending_.find(key);
      if (it == pending_.end()) {
        ++stats_.unmatched;
        continue;
      }
      emit_pair(it->second, &m, time_ns, s.session_id);
      pending_.erase(it);
    }
  }
}

void McpStage::from_server(Stream& s, const stream::Connection& conn, const ProcessInfo& proc,
                           std::vector<Message> msgs, uint64_t time_ns) {
  const std::string pid = std::to_string(proc.key.pid);
  for (Message& m : msgs) {
    ++stats_.messages;
    if (m.kind == Kind::kNotification) {
      emit_notification(s, conn, proc, m, time_ns, false);
    } else if (m.kind == Kind::kRequest) {
      Pending& p = pending_[pid + "|" + s.session_key + "|s|" + m.id];
      p = Pending{std::move(m), time_ns, s.transport, s.session_key, s.url, proc, conn, false};
      p.stdio_server = s.stdio_server;
    } else {
      const auto it = pending_.find(pid + "|" + s.session_key + "|c|" + m.id);
      if (it == pending_.end()) {
        ++stats_.unmatched;
        continue;
      }
      emit_pair(it->second, &m, time_ns, s.session_id);
      pending_.erase(it);
    }
  }
}

void McpStage::server_payload(Stream& s, const stream::Connection& conn, const ProcessInfo& proc,
                              std::string_view text, uint64_t time_ns) {
  std::vector<Message> msgs;
  if (!parse(text, msgs)) {
    ++stats_.bad_json;
    return;
  }
  from_server(s, conn, proc, std::move(msgs), time_ns);
}

void McpStage::on_response_head(const stream::Connection&, const ProcessInfo&, HttpExchange& x) {
  auto* s = dynamic_cast<Stream*>(x.state.get());
  if (!s) return;
  const std::string_view sid = header_value(x.response.headers, "mcp-session-id");
  if (!sid.empty()) s->session_id = std::string(sid);
  if (is_event_stream(x.response.headers, "content-type")) {
    s->sse = true;
    x.store_response_body = false;
  }
}

void McpStage::on_response_body(const stream::Connection& conn, const ProcessInfo& proc,
                                HttpExchange& x, std::string_view decoded) {
  auto* s = dynamic_cast<Stream*>(x.state.get());
  if (!s || !s->sse) return;
  const uint64_t now = x.response.last_ns ? x.response.last_ns : conn.last_ns;
  s->parser.feed(decoded, [&](const protocol::SseEvent& e) {
    if (e.event == "endpoint") {
      // Legacy HTTP+SSE: the stream names the endpoint the client posts to, and its session.
      const std::string id = query_param(e.data, "sessionId");
      if (!id.empty()) {
        s->transport = kLegacySse;
        s->session_key = s->session_id = id;
      }
      return;
    }
    if (e.data.empty()) return;  // keep-alive, priming event
    server_payload(*s, conn, proc, e.data, now);
  });
}

void McpStage::on_exchange(const stream::Connection& conn, const ProcessInfo& proc,
                           HttpExchange& x) {
  auto* s = dynamic_cast<Stream*>(x.state.get());
  if (!s) return;
  const uint64_t end = x.response.last_ns ? x.response.last_ns : conn.last_ns;
  if (s->sse) {
    s->parser.finish(true, [&](const protocol::SseEvent& e) {
      if (!e.data.empty() && e.event != "endpoint") server_payload(*s, conn, proc, e.data, end);
    });
  } else if (x.has_response && looks_like_jsonrpc(x.response.body)) {
    server_payload(*s, conn, proc, x.response.body, end);
  }
  // Streamable HTTP answers a POST's requests on its own response: what is left never came.
  for (const std::string& key : s->filed) {
    const auto it = pending_.find(key);
    if (it == pending_.end()) continue;
    ++stats_.unanswered;
    emit_pair(it->second, nullptr, 0, s->session_id);
    pending_.erase(it);
  }
  x.state.reset();
}

void McpStage::flush() {
  for (auto& [key, p] : pending_) {
    ++stats_.unanswered;
    emit_pair(p, nullptr, 0, p.session_key);
  }
  pending_.clear();
}

namespace {

// `stdio_server`: a stdio session's server, which may have been running before the agent.
void session_fields(JsonWriter& w, const std::string& session_id, const SessionInfo* s,
                    const ProcessInfo* stdio_server) {
  if (!session_id.empty()) w.field("session_id", session_id);
  if (stdio_server && stdio_server->stdio_joined) w.field("joined_midway", true);
  if (!s) return;
  if (!s->protocol_version.empty()) w.field("protocol_version", s->protocol_version);
  w.key("client").begin_object().field("name", s->client_name);
  w.field("version", s->client_version).end_object();
  w.key("server").begin_object().field("name", s->server_name);
  w.field("version", s->server_version).end_object();
}

// `process` is the client's; over HTTPS `connection` says where it talked to, over stdio
// `server_process` which process it talked to.
void where_json(JsonWriter& w, const ProcessInfo& process, const ProcessInfo* stdio_server,
                const stream::Connection& conn) {
  w.key("process");
  stream::process_json(w, process);
  if (stdio_server) {
    w.key("server_process");
    stream::process_json(w, *stdio_server);
  } else {
    w.key("connection");
    stream::connection_json(w, conn);
  }
}

}  // namespace

void McpStage::emit_all(const std::vector<std::string>& lines) {
  for (const std::string& l : lines) emit_(l);
}

namespace {

AlertContext alert_context(const ProcessInfo& proc, const std::string& session_id,
                           uint64_t time_ns) {
  JsonWriter w;
  stream::process_json(w, proc);
  return {time_ns, w.take(), session_id, proc.exe.empty() ? proc.comm : proc.exe};
}

}  // namespace

// What a server offers, pinned and checked by the inventory.
void McpStage::inventory(const Message& req, const Message& answer, const std::string& url,
                         const ProcessInfo& proc, const std::string& session_id, uint64_t time_ns) {
  if (answer.kind != Kind::kResult || !answer.result.is_object()) return;
  const SessionInfo* s = session(proc.key.pid, session_id);
  const ServerId id{s ? s->server_name : "", s ? s->server_version : "", url};
  const AlertContext ctx = alert_context(proc, session_id, time_ns);
  const nlohmann::json& r = answer.result;
  if (req.method == "tools/call" && opt_.calls) {
    const nlohmann::json args =
        req.params.is_object() ? req.params.value("arguments", nlohmann::json()) : nlohmann::json();
    emit_all(opt_.calls->on_call(proc.key.pid, id, str_at(req.params, "name"), args,
                                 result_text(r, 1 << 20), r.value("isError", false), ctx));
  }
  if (!opt_.inventory) return;
  if (req.method == "tools/list" && r.contains("tools")) {
    emit_all(opt_.inventory->on_tools(id, r["tools"], ctx));
  } else if (req.method == "initialize") {
    emit_all(opt_.inventory->on_instructions(id, str_at(r, "instructions"), ctx));
  } else if (req.method == "prompts/list" && r.contains("prompts")) {
    opt_.inventory->on_names(id, "prompts", r["prompts"], ctx);
  } else if (req.method == "resources/list" && r.contains("resources")) {
    opt_.inventory->on_names(id, "resources", r["resources"], ctx);
  }
}

void McpStage::emit_pair(const Pending& p, const Message* answer, uint64_t answer_ns,
                         const std::string& session_id) {
  const Message& req = p.req;
  if (req.method == "initialize" && answer && answer->kind == Kind::kResult) {
    SessionInfo& s = sessions_[std::to_string(p.process.key.pid) + "|" + session_id];
    const nlohmann::json client = req.params.is_object()
                                      ? req.params.value("clientInfo", nlohmann::json())
                                      : nlohmann::json();
    const nlohmann::json server = answer->result.is_object()
                                      ? answer->result.value("serverInfo", nlohmann::json())
                                      : nlohmann::json();
    s.client_name = str_at(client, "name");
    s.client_version = str_at(client, "version");
    s.server_name = str_at(server, "name");
    s.server_version = str_at(server, "version");
    s.protocol_version = str_at(answer->result, "protocolVersion");
  }
  if (req.method == "tools/list" && answer && answer->kind == Kind::kResult) {
    const auto it = sessions_.find(std::to_string(p.process.key.pid) + "|" + session_id);
    if (it != sessions_.end()) it->second.tools_listed = true;
  }
  JsonWriter w;
  w.begin_object();
  w.field("type", "mcp.message").field("time", format_rfc3339(p.time_ns));
  w.field("transport", p.transport).field("kind", "request");
  w.field("direction", p.from_client ? "client_to_server" : "server_to_client");
  w.field("method", req.method).key("id").raw(req.id);
  session_fields(w, session_id, session(p.process.key.pid, session_id), p.stdio_server.get());
  if (!p.stdio_server) w.field("url", p.url);
  if (req.method == "tools/call") {
    w.field("tool", str_at(req.params, "name"));
    if (req.params.is_object() && req.params.contains("arguments"))
      capped_json(w, "arguments", req.params["arguments"], opt_.content_cap);
  } else if (req.method == "resources/read") {
    w.field("resource", str_at(req.params, "uri"));
  } else if (req.method == "prompts/get") {
    w.field("prompt", str_at(req.params, "name"));
  } else if (req.method == "initialize") {
    w.field("requested_protocol_version", str_at(req.params, "protocolVersion"));
  }
  if (!answer) {
    w.field("status", "no_response");
  } else if (answer->kind == Kind::kError) {
    w.field("status", "error").key("error").begin_object();
    if (answer->error.is_object() && answer->error.contains("code") &&
        answer->error["code"].is_number_integer())
      w.field("code", answer->error["code"].get<int64_t>());
    w.field("message", str_at(answer->error, "message")).end_object();
  } else {
    const nlohmann::json& r = answer->result;
    w.field("status", "ok");
    if (req.method == "tools/call") {
      const bool is_error = r.is_object() && r.value("isError", false);
      w.field("is_error", is_error).field("result_text", result_text(r, opt_.content_cap));
    } else if (req.method == "tools/list" || req.method == "prompts/list" ||
               req.method == "resources/list") {
      const char* member = req.method == "tools/list"     ? "tools"
                           : req.method == "prompts/list" ? "prompts"
                                                          : "resources";
      w.key(member).begin_array();
      if (r.is_object() && r.contains(member) && r[member].is_array())
        for (const auto& item : r[member])
          w.value(str_at(item, req.method == "resources/list" ? "uri" : "name"));
      w.end_array();
    } else if (req.method == "initialize") {
      const std::string instructions = str_at(r, "instructions");
      if (!instructions.empty()) {
        std::string cut;
        bool was_cut = false;
        llm::append_capped(cut, instructions, opt_.content_cap, was_cut);
        w.field("instructions", cut);
      }
    }
    if (answer_ns >= p.time_ns && p.time_ns)
      w.field("latency_ms", double(answer_ns - p.time_ns) / 1e6);
  }
  where_json(w, p.process, p.stdio_server.get(), p.conn);
  w.end_object();
  ++stats_.events;
  emit_(w.take());
  if (answer) inventory(req, *answer, p.url, p.process, session_id, answer_ns);
  if (opt_.observer && p.from_client) opt_.observer->on_mcp_call(call_of(p, answer, session_id));
}

McpCall McpStage::call_of(const Pending& p, const Message* answer,
                          const std::string& session_id) const {
  const Message& req = p.req;
  McpCall c;
  c.process = p.process;
  const SessionInfo* s = session(p.process.key.pid, session_id);
  c.server = s ? s->server_name : "";
  c.method = req.method;
  c.tool = str_at(req.params, "name");
  c.session_id = session_id;
  c.transport = p.transport;
  c.url = p.url;
  c.rpc_id = req.id;
  if (req.method == "tools/call" && req.params.is_object())
    c.arguments = req.params.value("arguments", nlohmann::json::object());
  c.answered = answer != nullptr;
  c.time_ns = p.time_ns;
  if (answer && answer->kind == Kind::kResult && answer->result.is_object()) {
    c.result_text = result_text(answer->result, 1 << 20);
    c.is_error = answer->result.value("isError", false);
  }
  c.is_error = c.is_error || (answer && answer->kind == Kind::kError);
  return c;
}

void McpStage::emit_notification(const Stream& s, const stream::Connection& conn,
                                 const ProcessInfo& proc, const Message& m, uint64_t time_ns,
                                 bool from_client) {
  JsonWriter w;
  w.begin_object();
  w.field("type", "mcp.message").field("time", format_rfc3339(time_ns));
  w.field("transport", s.transport).field("kind", "notification");
  w.field("direction", from_client ? "client_to_server" : "server_to_client");
  w.field("method", m.method);
  const SessionInfo* si = session(proc.key.pid, s.session_id);
  session_fields(w, s.session_id, si, s.stdio_server.get());
  if (!s.stdio_server) w.field("url", s.url);
  if (!m.params.is_null()) capped_json(w, "params", m.params, opt_.content_cap);
  where_json(w, proc, s.stdio_server.get(), conn);
  w.end_object();
  ++stats_.events;
  emit_(w.take());
  // Announced before the session listed the tools (the reference servers do so as they add
  // tools at `initialized`), it concerns no listing the client holds; the first listing is
  // checked against the pins anyway. A session whose start was not seen cannot tell.
  if (opt_.inventory && !from_client && m.method == "notifications/tools/list_changed" &&
      (!si || si->tools_listed)) {
    const ServerId id{si ? si->server_name : "", si ? si->server_version : "", s.url};
    emit_all(opt_.inventory->on_list_changed(id, alert_context(proc, s.session_id, time_ns)));
  }
}

// ---- MCP over stdio ----

std::string StdioKey::session_id() const {
  return std::to_string(client_pid) + "-" + std::to_string(server.pid);
}

void McpStage::on_stdio(const StdioKey& key, const ProcessInfo& server, const ProcessInfo* client,
                        Direction dir, std::string_view line, uint64_t time_ns) {
  const std::string sid = key.session_id();
  std::unique_ptr<Stream>& s = stdio_[sid];
  if (!s) {
    s = std::make_unique<Stream>();
    s->transport = "stdio";
    s->session_key = s->session_id = sid;
    // What the inventory pins the server under: the command that starts it, as stable across
    // runs as an HTTP server's URL.
    s->url = "stdio:" + (server.cmdline.empty() ? server.exe : server.cmdline);
    s->stdio_server = std::make_shared<const ProcessInfo>(server);
  }
  std::vector<Message> msgs;
  if (!parse(line, msgs)) {
    ++stats_.bad_json;
    return;
  }
  const ProcessInfo& proc = client ? *client : server;
  const stream::Connection no_connection;
  if (dir == Direction::kIn)
    from_client(*s, no_connection, proc, time_ns, std::move(msgs));
  else
    from_server(*s, no_connection, proc, std::move(msgs), time_ns);
}

void McpStage::end_stdio(const StdioKey& key) {
  const std::string sid = key.session_id();
  if (!stdio_.erase(sid)) return;
  std::erase_if(pending_, [&](auto& kv) {
    if (kv.second.transport != "stdio" || kv.second.session_key != sid) return false;
    ++stats_.unanswered;
    emit_pair(kv.second, nullptr, 0, sid);
    return true;
  });
  std::erase_if(sessions_, [&](const auto& kv) { return kv.first.ends_with("|" + sid); });
}

// ---- end MCP over stdio ----

}  // namespace agentwall::mcp
