#include "agent/llm/stage.h"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <nlohmann/json.hpp>
#include <unordered_map>

#include "agent/common/fast_json.h"
#include "agent/common/time.h"
#include "agent/detect/stream_scan.h"
#include "agent/llm/adapter.h"
#include "agent/llm/tokenizer/tokenizer.h"
#include "agent/protocol/sse/lines.h"
#include "agent/protocol/sse/sse.h"

namespace agentwall::llm {
namespace {

using nlohmann::json;

enum class Framing : uint8_t { kWhole, kSse, kLines };

// What the stage keeps for one LLM exchange while its response arrives.
struct CallState final : protocol::ExchangeState {
  Route route;
  LlmCall call;
  std::unique_ptr<ResponseAccumulator> acc;
  Framing framing = Framing::kWhole;
  protocol::SseParser sse;
  protocol::LineSplitter lines;
  std::string fingerprint;
  // A streamed answer's text is scanned as it arrives, in bounded memory.
  std::unique_ptr<detect::StreamScanner> answer_scan;
  StreamedAnswer answer;
  CallState() : sse(1 << 20), lines(1 << 20) {}

  void keep(std::vector<detect::Finding> found) {
    for (detect::Finding& f : found) {
      if (answer.findings.size() < StreamedAnswer::kMaxFindings) {
        answer.findings.push_back(std::move(f));
      } else {
        ++answer.dropped;
      }
    }
  }
  void scan_answer(const detect::Engine& engine) {
    answer_scan = std::make_unique<detect::StreamScanner>(engine, detect::Source::kModelOutput,
                                                          detect::kAnswerScanOptions);
    acc->tap_output([this](std::string_view piece) { keep(answer_scan->feed(piece)); });
  }
  void finish_answer() {
    if (!answer_scan) return;
    keep(answer_scan->finish());
    answer.bytes = answer_scan->total();
  }
};

std::string_view host_of(const protocol::HttpMessage& req, const stream::Connection& conn,
                         std::string& storage) {
  std::string_view a = req.authority;
  if (a.empty()) a = conn.sni;
  if (a.empty()) {
    storage = conn.peer.to_string();
    a = storage;
  }
  if (a.starts_with('[')) {
    const size_t close = a.find(']');
    return close == std::string_view::npos ? a : a.substr(1, close - 1);
  }
  const size_t colon = a.rfind(':');
  if (colon != std::string_view::npos && a.find(':') == colon) a = a.substr(0, colon);
  return a;
}

bool starts_json(std::string_view body) {
  for (char c : body) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    return c == '{' || c == '[';
  }
  return false;
}

// Every text a request sends to the model, uncapped, for the local token count: string
// values under the keys that carry prompt text in the providers' request shapes.
void collect_prompt_text(const json& j, std::string& out, int depth = 0) {
  if (depth > 32) return;
  if (j.is_object()) {
    for (const auto& [k, v] : j.items()) {
      if (v.is_string()) {
        if (k == "content" || k == "text" || k == "input" || k == "prompt" || k == "system" ||
            k == "instructions" || k == "description" || k == "arguments" || k == "output" ||
            k == "name") {
          out += v.get_ref<const std::string&>();
          out += '\n';
        }
      } else if (k == "tools" || k == "functions") {
        // Tool schemas are sent to the model as text; their JSON is the closest count.
        out += v.dump(-1, ' ', false, json::error_handler_t::replace);
      } else {
        collect_prompt_text(v, out, depth + 1);
      }
    }
  } else if (j.is_array()) {
    for (const auto& v : j) {
      if (v.is_string()) {
        out += v.get_ref<const std::string&>();
        out += '\n';
      } else {
        collect_prompt_text(v, out, depth + 1);
      }
    }
  }
}

// The prompt text a local count would run over, kept until the response says whether the
// provider reported usage (it usually does: the count is then never made).
std::string prompt_text(const json* body, const LlmCall& call) {
  std::string text;
  if (body) {
    collect_prompt_text(*body, text);
  } else {
    text = call.system;
    for (const auto& m : call.messages) text += m.text;
  }
  return text;
}

int64_t estimate_input(const std::string& text, const LlmCall& call) {
  const Encoding enc = encoding_for_model(call.model);
  int64_t n = static_cast<int64_t>(count_tokens(text, enc));
  // Chat formats wrap each message in markup: OpenAI counts 3 tokens per message plus its
  // role (one token for every role name), and 3 to prime the reply.
  if (call.operation == "chat" || call.operation == "responses")
    n += 4 * static_cast<int64_t>(call.messages.size() + (call.system.empty() ? 0 : 1)) + 3;
  return std::max<int64_t>(n, 1);
}

int64_t estimate_output(const LlmCall& call) {
  const Encoding enc =
      encoding_for_model(call.response_model.empty() ? call.model : call.response_model);
  int64_t n = static_cast<int64_t>(count_tokens(call.output_text, enc));
  for (const auto& t : call.tool_calls) {
    n += static_cast<int64_t>(count_tokens(t.name, enc) + count_tokens(t.arguments, enc)) + 3;
  }
  return n;
}

// Provider figures brought to one convention: input includes cached tokens, output
// includes reasoning tokens (OpenTelemetry's gen_ai.usage.* meaning). OpenAI already
// reports so; Anthropic reports cache reads and writes beside input_tokens; Gemini reports
// thoughts beside candidates.
// `prompt` gives the request's text for a local count; it is called only when the
// provider reported no input figure (usually it did, and the text is never gathered).
template <typename PromptFn>
SettledUsage settle(const LlmCall& call, PromptFn prompt, bool has_response, bool cut_short) {
  const Usage& u = call.usage;
  SettledUsage s;
  s.cache_read_tokens = u.cache_read_tokens.value_or(0);
  s.cache_write_tokens = u.cache_write_tokens.value_or(0);
  s.reasoning_tokens = u.reasoning_tokens.value_or(0);
  if (u.input_tokens) {
    s.input_tokens = *u.input_tokens;
    if (call.api == "anthropic") s.input_tokens += s.cache_read_tokens + s.cache_write_tokens;
  } else {
    s.input_tokens = estimate_input(prompt(), call);
    s.estimated = true;
  }
  const bool embeddings = call.operation == "embeddings";
  if (u.output_tokens && !cut_short) {
    s.output_tokens = *u.output_tokens;
    if (call.api == "gemini") s.output_tokens += s.reasoning_tokens;
  } else if (!embeddings && has_response) {
    // A stream cut short only carries the provider's running count (Anthropic's
    // message_start says 1): what was seen is counted instead.
    s.output_tokens = std::max(estimate_output(call), u.output_tokens.value_or(0));
    s.estimated = true;
  }
  return s;
}

// One streamed piece (an SSE event's data, an NDJSON line) to the adapter. A piece that is
// not JSON is counted in `bad_json`; pass null for the unterminated last piece of a stream
// cut short, which is partial rather than bad.
void take_piece(CallState& st, std::string_view event, std::string_view data, uint64_t* bad_json) {
  if (data.empty() || data == "[DONE]") return;
  const json j = parse_json(data);
  if (j.is_discarded()) {
    if (bad_json) ++*bad_json;
    return;
  }
  st.acc->on_event(event, j);
}

std::string header_or_empty(const protocol::HttpMessage& m, std::string_view name) {
  return std::string(protocol::header_value(m.headers, name));
}

}  // namespace

std::string key_fingerprint(std::string_view key) {
  // Hosts use a handful of keys: remember their fingerprints rather than hash every call.
  thread_local std::unordered_map<std::string, std::string> cache;
  std::string k(key);
  if (const auto it = cache.find(k); it != cache.end()) return it->second;
  if (cache.size() >= 4096) cache.clear();
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "sha256:";
  for (int i = 0; i < 8; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 15];
  }
  cache.emplace(std::move(k), out);
  return out;
}

std::string_view find_api_key(const protocol::HttpMessage& req) {
  std::string_view auth = protocol::header_value(req.headers, "authorization");
  if (auth.size() > 7 && (auth.starts_with("Bearer ") || auth.starts_with("bearer ")))
    return auth.substr(7);
  for (const char* h : {"x-api-key", "api-key", "x-goog-api-key"}) {
    std::string_view v = protocol::header_value(req.headers, h);
    if (!v.empty()) return v;
  }
  // Gemini's ?key=… query parameter.
  std::string_view path = req.path;
  const size_t q = path.find('?');
  if (q != std::string_view::npos) {
    std::string_view query = path.substr(q + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      std::string_view kv = query.substr(0, amp);
      if (kv.starts_with("key=")) return kv.substr(4);
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  return {};
}

LlmStage::LlmStage(LlmSink& out, LlmOptions options) : out_(out), options_(options) {
  if (!options_.prices) options_.prices = &PriceTable::builtin();
}

void LlmStage::on_request(const stream::Connection& conn, const ProcessInfo& process,
                          protocol::HttpExchange& x) {
  const protocol::HttpMessage& req = x.request;
  std::string storage;
  const std::string_view host = host_of(req, conn, storage);
  RequestView view{req.method, host, req.path, &req.headers, conn.peer.port, options_.collect};
  Route r = route(view);
  if (!r.adapter) return;
  auto st = std::make_unique<CallState>();
  st->route = r;
  st->call.provider = r.provider;
  st->call.api = std::string(r.adapter->api());
  json body;
  const json* body_ptr = nullptr;
  if (!req.body.empty() && starts_json(req.body)) {
    body = parse_json(req.body);
    if (body.is_discarded()) {
      ++stats_.bad_json;
    } else {
      body_ptr = &body;
    }
  }
  r.adapter->parse_request(view, body_ptr, st->call);
  const std::string_view key = find_api_key(req);
  if (!key.empty()) st->fingerprint = key_fingerprint(key);
  st->acc = r.adapter->new_response(st->call, options_.collect);
  if (out_.wants_request(conn.id)) {
    LlmRecord rec;
    rec.exchange_id = x.id;
    rec.time_ns = req.first_ns;
    rec.call = st->call;
    rec.host = std::string(host);
    rec.path = req.path;
    rec.method = req.method;
    rec.version = x.version;
    rec.has_request = true;
    rec.request_flags = req.flags;
    rec.api_key_fingerprint = st->fingerprint;
    rec.conn = conn;
    rec.process = process;
    out_.on_llm_request(rec, req.body);
  }
  x.state = std::move(st);
}

void LlmStage::on_response_head(const stream::Connection& conn, const ProcessInfo&,
                                protocol::HttpExchange& x) {
  auto* st = dynamic_cast<CallState*>(x.state.get());
  if (!st && !x.has_request) {
    // The request came before the agent: a response from a known LLM host is still a call.
    std::string storage;
    const std::string_view host = host_of(x.request, conn, storage);
    if (!is_known_llm_host(host)) return;
    RequestView view{"", host, "", &x.request.headers, conn.peer.port, options_.collect};
    Route r = route(view);
    if (!r.adapter) return;
    // Without a path the API is the provider's main one: read the response as such.
    r.adapter = &adapter_for_provider(r.provider);
    auto fresh = std::make_unique<CallState>();
    fresh->route = r;
    fresh->call.provider = r.provider;
    fresh->call.api = std::string(r.adapter->api());
    fresh->acc = r.adapter->new_response(fresh->call, options_.collect);
    st = fresh.get();
    x.state = std::move(fresh);
  }
  if (!st) return;
  const std::string ctype = header_or_empty(x.response, "content-type");
  if (ctype.find("text/event-stream") != std::string::npos) {
    st->framing = Framing::kSse;
  } else if (ctype.find("ndjson") != std::string::npos ||
             ctype.find("application/jsonl") != std::string::npos) {
    st->framing = Framing::kLines;
  }
  if (st->framing != Framing::kWhole) {
    st->call.stream = true;
    x.store_response_body = false;
    if (options_.inspector && !st->answer_scan) st->scan_answer(options_.inspector->engine());
  }
}

void LlmStage::on_response_body(const stream::Connection&, const ProcessInfo&,
                                protocol::HttpExchange& x, std::string_view decoded) {
  auto* st = dynamic_cast<CallState*>(x.state.get());
  if (!st || st->framing == Framing::kWhole) return;
  if (st->framing == Framing::kSse) {
    st->sse.feed(decoded, [&](const protocol::SseEvent& ev) {
      take_piece(*st, ev.event, ev.data, &stats_.bad_json);
    });
  } else {
    st->lines.feed(decoded,
                   [&](std::string_view line) { take_piece(*st, "", line, &stats_.bad_json); });
  }
}

void LlmStage::on_exchange(const stream::Connection& conn, const ProcessInfo& process,
                           protocol::HttpExchange& x) {
  auto* st = dynamic_cast<CallState*>(x.state.get());
  if (!st) return;
  const protocol::HttpMessage& resp = x.response;
  if (x.has_response) {
    if (st->framing == Framing::kSse) {
      // A cut stream still carries what it carried.
      st->sse.finish(
          true, [&](const protocol::SseEvent& ev) { take_piece(*st, ev.event, ev.data, nullptr); });
    } else if (st->framing == Framing::kLines) {
      st->lines.finish([&](std::string_view line) { take_piece(*st, "", line, nullptr); });
    } else if (!resp.body.empty() && starts_json(resp.body)) {
      const json j = parse_json(resp.body);
      if (j.is_array()) {
        // Gemini's streamGenerateContent without alt=sse: one JSON array of responses.
        st->call.stream = true;
        for (const auto& el : j) st->acc->on_event("", el);
      } else if (!j.is_discarded()) {
        st->acc->on_body(j);
      } else if (!(resp.flags & protocol::kMsgBodyCapped)) {
        ++stats_.bad_json;
      }
    }
  }
  st->finish_answer();
  st->acc->finish(st->call);

  LlmRecord r;
  r.exchange_id = x.id;
  r.call = std::move(st->call);
  r.time_ns = x.request.first_ns ? x.request.first_ns : resp.first_ns;
  std::string storage;
  r.host = std::string(host_of(x.request, conn, storage));
  r.path = x.request.path;
  r.method = x.request.method;
  r.version = x.version;
  r.status = resp.status;
  r.has_request = x.has_request;
  r.has_response = x.has_response;
  r.request_flags = x.request.flags;
  r.response_flags = resp.flags;
  // Streaming clients often stop reading once the provider's last event arrived (Ollama's
  // done:true, [DONE]) and close without the chunked terminator: the answer was whole.
  // So do HTTP/2 clients, by resetting the stream (hyper cancels it once the body it was
  // reading is dropped: Codex, after the Responses API's response.completed).
  if (st->framing != Framing::kWhole && !r.call.finish_reason.empty() &&
      (r.response_flags & protocol::kMsgGap) == 0)
    r.response_flags &= ~uint32_t(protocol::kMsgCut | protocol::kMsgReset);
  const bool cut_short =
      (r.response_flags & (protocol::kMsgCut | protocol::kMsgGap | protocol::kMsgReset)) != 0;
  r.usage = settle(
      r.call,
      [&] {
        // The request body is still held: read it again rather than keep a copy of its text
        // for every call.
        json body;
        if (starts_json(x.request.body)) body = parse_json(x.request.body);
        return prompt_text(body.is_discarded() || body.is_null() ? nullptr : &body, r.call);
      },
      x.has_response, cut_short);
  if (r.usage.estimated) ++stats_.estimated;
  const PriceTable& prices = *options_.prices;
  if (prices.free_provider(r.call.provider)) {
    r.cost = Cost{.priced_as = "local"};
  } else {
    std::optional<ModelPrice> p;
    if (!r.call.response_model.empty()) p = prices.find(r.call.response_model);
    if (!p) p = prices.find(r.call.model);
    if (p) {
      r.cost = price_call(*p, r.usage.input_tokens, r.usage.output_tokens,
                          r.usage.cache_read_tokens, r.usage.cache_write_tokens);
    } else {
      ++stats_.unpriced;
    }
  }
  if (x.request.first_ns && resp.first_ns && x.has_response) {
    r.first_byte_ms = double(resp.first_ns - std::min(resp.first_ns, x.request.first_ns)) / 1e6;
    r.total_ms = double(resp.last_ns - std::min(resp.last_ns, x.request.first_ns)) / 1e6;
  }
  r.api_key_fingerprint = std::move(st->fingerprint);
  r.conn = conn;
  r.process = process;
  if (options_.inspector) r.inspection = options_.inspector->inspect(r.call, &st->answer);
  ++stats_.calls;
  x.state.reset();
  out_.on_llm_call(r);
}

}  // namespace agentwall::llm
