// The llm.exchange event: field names and meaning are documented in docs/EVENTS.md.
#include <nlohmann/json.hpp>

#include "agent/common/time.h"
#include "agent/llm/stage.h"

namespace agentwall::llm {
namespace {

using ojson = nlohmann::ordered_json;

std::string capped(std::string_view s, size_t cap, bool& cut) {
  std::string out;
  append_capped(out, s, cap, cut);
  return out;
}

ojson process_json(const ProcessInfo& p, uint32_t uid_hint) {
  ojson j;
  j["pid"] = p.key.pid;
  j["start_ns"] = p.key.start_ns;
  j["comm"] = p.comm;
  if (p.complete) {
    j["ppid"] = p.ppid;
    j["uid"] = p.uid;
    j["exe"] = p.exe;
    j["cmdline"] = p.cmdline;
    if (!p.cgroup_path.empty()) j["cgroup"] = p.cgroup_path;
  } else {
    j["uid"] = uid_hint;
  }
  return j;
}

ojson connection_json(const stream::Connection& c) {
  ojson j;
  j["id"] = c.id;
  if (c.local.is_ip()) j["local"] = c.local.to_string();
  if (c.peer.is_ip()) j["peer"] = c.peer.to_string();
  if (!c.sni.empty()) j["sni"] = c.sni;
  if (c.fd >= 0) j["fd"] = c.fd;
  return j;
}

}  // namespace

std::string llm_exchange_json(const LlmRecord& r, const LlmOptions& o) {
  const LlmCall& c = r.call;
  const bool content = o.content_cap > 0;
  bool cut = c.text_truncated;
  ojson j;
  j["type"] = "llm.exchange";
  j["time"] = format_rfc3339(r.time_ns);
  j["id"] = r.exchange_id;
  j["provider"] = c.provider;
  j["api"] = c.api;
  j["operation"] = c.operation;
  j["host"] = r.host;
  j["method"] = r.method;
  j["path"] = r.path;
  j["http_version"] = protocol::to_string(r.version);
  j["model"] = c.model;
  j["response_model"] = c.response_model;
  j["stream"] = c.stream;
  j["status"] = r.status;
  if (content) {
    ojson msgs = ojson::array();
    for (const auto& m : c.messages)
      msgs.push_back({{"role", m.role}, {"text", capped(m.text, o.content_cap, cut)}});
    j["messages"] = std::move(msgs);
    j["system"] = capped(c.system, o.content_cap, cut);
  } else {
    j["messages_count"] = c.messages.size();
  }
  j["tools"] = c.tools;
  ojson calls = ojson::array();
  for (const auto& t : c.tool_calls) {
    ojson tc{{"id", t.id}, {"name", t.name}};
    if (content) tc["arguments"] = capped(t.arguments, o.content_cap, cut);
    calls.push_back(std::move(tc));
  }
  j["tool_calls"] = std::move(calls);
  if (content) j["output_text"] = capped(c.output_text, o.content_cap, cut);
  j["finish_reason"] = c.finish_reason;
  if (!c.response_id.empty()) j["response_id"] = c.response_id;
  if (!c.error.empty()) j["error"] = capped(c.error, 1024, cut);
  if (c.max_output_tokens) j["max_output_tokens"] = c.max_output_tokens;
  if (c.embedding_inputs) j["embedding_inputs"] = c.embedding_inputs;
  const SettledUsage& u = r.usage;
  j["usage"] = {{"input_tokens", u.input_tokens},
                {"output_tokens", u.output_tokens},
                {"cache_read_tokens", u.cache_read_tokens},
                {"cache_write_tokens", u.cache_write_tokens},
                {"reasoning_tokens", u.reasoning_tokens},
                {"total_tokens", u.input_tokens + u.output_tokens},
                {"source", u.estimated ? "estimated" : "provider"}};
  if (r.cost) {
    j["cost_usd"] = r.cost->usd;
    j["cost"] = {{"input_usd", r.cost->input_usd},
                 {"cache_usd", r.cost->cache_usd},
                 {"output_usd", r.cost->output_usd},
                 {"priced_as", r.cost->priced_as}};
  } else {
    j["cost_usd"] = nullptr;
    j["cost"] = {{"priced_as", nullptr}, {"reason", "model not in the price table"}};
  }
  ojson lat = ojson::object();
  if (r.first_byte_ms) lat["first_byte"] = *r.first_byte_ms;
  if (r.total_ms) lat["total"] = *r.total_ms;
  j["latency_ms"] = std::move(lat);
  if (!r.api_key_fingerprint.empty()) j["api_key_fingerprint"] = r.api_key_fingerprint;
  std::vector<std::string> flags;
  for (auto& f : protocol::flag_names(r.request_flags)) flags.push_back("request_" + f);
  for (auto& f : protocol::flag_names(r.response_flags)) flags.push_back("response_" + f);
  if (!r.has_request) flags.emplace_back("no_request");
  if (!r.has_response) flags.emplace_back("no_response");
  if (r.has_request && !c.request_parsed) flags.emplace_back("request_unparsed");
  if (r.has_response && !c.response_parsed) flags.emplace_back("response_unparsed");
  if (cut) flags.emplace_back("content_truncated");
  j["flags"] = flags;
  j["process"] = process_json(r.process, 0);
  j["connection"] = connection_json(r.conn);
  return j.dump(-1, ' ', false, ojson::error_handler_t::replace);
}

}  // namespace agentwall::llm
