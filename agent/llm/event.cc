// The llm.exchange event: field names and meaning are documented in docs/EVENTS.md.
#include "agent/common/json_writer.h"
#include "agent/common/time.h"
#include "agent/llm/stage.h"
#include "agent/stream/event_json.h"

namespace agentwall::llm {
namespace {

// A text field capped at the event's content cap; `cut` tells whether any text was cut.
std::string_view capped(std::string_view s, size_t cap, bool& cut, std::string& scratch) {
  if (s.size() <= cap) return s;
  scratch.clear();
  append_capped(scratch, s, cap, cut);
  return scratch;
}

// What the detection engine found (docs/EVENTS.md); spans are byte offsets into the text at
// `where` as collected, before masking and capping.
void detection_json(JsonWriter& w, const Inspection& in, int threshold) {
  w.key("detection").begin_object();
  w.field("score", int64_t(in.score)).field("flagged", in.score >= threshold);
  w.key("findings").begin_array();
  detect::ListedFindings listed;
  for (const LocatedFinding& lf : in.findings) {
    const detect::Finding& f = lf.finding;
    if (!listed.take(lf.where, f.detector)) continue;
    w.begin_object().field("where", lf.where).field("detector", f.detector);
    w.field("category", detect::to_string(f.category)).field("confidence", f.confidence);
    w.key("spans").begin_array();
    for (const detect::Span& s : f.spans)
      w.begin_array().value(uint64_t(s.begin)).value(uint64_t(s.end)).end_array();
    w.end_array();
    w.field("explanation", f.explanation).end_object();
  }
  w.end_array();
  w.key("reasons").begin_array();
  for (const auto& reason : in.reasons) w.value(reason);
  w.end_array();
  if (in.answer_streamed_bytes > 0)
    w.field("answer_streamed_bytes", uint64_t(in.answer_streamed_bytes));
  if (in.answer_findings_dropped > 0)
    w.field("answer_findings_dropped", uint64_t(in.answer_findings_dropped));
  if (listed.dropped() > 0) w.field("findings_unlisted", uint64_t(listed.dropped()));
  w.end_object();
}

}  // namespace

std::string llm_exchange_json(const LlmRecord& r, const LlmOptions& o) {
  const LlmCall& c = r.call;
  const bool content = o.content_cap > 0;
  const size_t cap = o.content_cap;
  bool cut = c.text_truncated;
  std::string scratch, masked;
  // Secrets and personal data the inspection found never leave in clear. `where` names
  // the text only when there is something to mask (most events have nothing).
  const auto& redactions = r.inspection.redactions;
  auto text = [&](auto where, const std::string& s) -> std::string_view {
    if (!redactions.empty()) {
      if (const auto it = redactions.find(where()); it != redactions.end()) {
        masked = apply_redactions(s, it->second);
        return capped(masked, cap, cut, scratch);
      }
    }
    return capped(s, cap, cut, scratch);
  };

  JsonWriter w;
  w.begin_object();
  w.field("type", "llm.exchange");
  w.field("time", format_rfc3339(r.time_ns));
  w.field("id", r.exchange_id);
  w.field("provider", c.provider).field("api", c.api).field("operation", c.operation);
  w.field("host", r.host).field("method", r.method).field("path", r.path);
  w.field("http_version", protocol::to_string(r.version));
  w.field("model", c.model).field("response_model", c.response_model);
  w.field("stream", c.stream).field("status", int64_t(r.status));
  if (content) {
    w.key("messages").begin_array();
    for (size_t i = 0; i < c.messages.size(); ++i) {
      w.begin_object().field("role", c.messages[i].role);
      w.field("text", text([i] { return message_where(i); }, c.messages[i].text));
      w.end_object();
    }
    w.end_array();
    w.field("system", text([] { return std::string("system"); }, c.system));
  } else {
    w.field("messages_count", uint64_t(c.messages.size()));
  }
  w.key("tools").begin_array();
  for (const auto& t : c.tools) w.value(t);
  w.end_array();
  w.key("tool_calls").begin_array();
  for (size_t i = 0; i < c.tool_calls.size(); ++i) {
    const ToolCall& t = c.tool_calls[i];
    w.begin_object().field("id", t.id).field("name", t.name);
    if (content) w.field("arguments", text([i] { return arguments_where(i); }, t.arguments));
    w.end_object();
  }
  w.end_array();
  if (content)
    w.field("output_text", text([] { return std::string("output_text"); }, c.output_text));
  w.field("finish_reason", c.finish_reason);
  if (!c.response_id.empty()) w.field("response_id", c.response_id);
  if (!c.error.empty()) w.field("error", capped(c.error, 1024, cut, scratch));
  if (c.max_output_tokens) w.field("max_output_tokens", c.max_output_tokens);
  if (c.embedding_inputs) w.field("embedding_inputs", c.embedding_inputs);
  const SettledUsage& u = r.usage;
  w.key("usage").begin_object();
  w.field("input_tokens", u.input_tokens).field("output_tokens", u.output_tokens);
  w.field("cache_read_tokens", u.cache_read_tokens);
  w.field("cache_write_tokens", u.cache_write_tokens);
  w.field("reasoning_tokens", u.reasoning_tokens);
  w.field("total_tokens", u.input_tokens + u.output_tokens);
  w.field("source", u.estimated ? "estimated" : "provider");
  w.end_object();
  if (r.cost) {
    w.field("cost_usd", r.cost->usd);
    w.key("cost").begin_object();
    w.field("input_usd", r.cost->input_usd).field("cache_usd", r.cost->cache_usd);
    w.field("output_usd", r.cost->output_usd).field("priced_as", r.cost->priced_as);
    w.end_object();
  } else {
    w.key("cost_usd").null();
    w.key("cost").begin_object();
    w.key("priced_as").null();
    w.field("reason", "model not in the price table");
    w.end_object();
  }
  w.key("latency_ms").begin_object();
  if (r.first_byte_ms) w.field("first_byte", *r.first_byte_ms);
  if (r.total_ms) w.field("total", *r.total_ms);
  w.end_object();
  if (!r.api_key_fingerprint.empty()) w.field("api_key_fingerprint", r.api_key_fingerprint);
  w.key("flags").begin_array();
  for (const auto& f : protocol::flag_names(r.request_flags)) w.value("request_" + f);
  for (const auto& f : protocol::flag_names(r.response_flags)) w.value("response_" + f);
  if (!r.has_request) w.value("no_request");
  if (!r.has_response) w.value("no_response");
  if (r.has_request && !c.request_parsed) w.value("request_unparsed");
  if (r.has_response && !c.response_parsed) w.value("response_unparsed");
  if (cut) w.value("content_truncated");
  w.end_array();
  if (r.inspection.ran) detection_json(w, r.inspection, o.detect_threshold);
  w.key("process");
  stream::process_json(w, r.process);
  w.key("connection");
  stream::connection_json(w, r.conn);
  w.end_object();
  return w.take();
}

}  // namespace agentwall::llm
