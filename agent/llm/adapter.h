// Provider adapters: each one reads one API family's requests and responses into an LlmCall.
// The LLM stage picks the adapter (adapter_for), parses the request body once, hands the
// response to the adapter's accumulator as it arrives (SSE events, NDJSON lines) or whole
// (JSON body), then calls finish().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "agent/llm/call.h"
#include "agent/protocol/http.h"

namespace agentwall::llm {

// The parts of the request that identify a call.
struct RequestView {
  std::string_view method;
  std::string_view host;  // Host / :authority without the port; the TLS SNI when absent
  std::string_view path;  // with the query string
  const protocol::Headers* headers = nullptr;
  uint16_t port = 0;     // server port, 0 when unknown: names local servers (Ollama, vLLM, …)
  LlmCallLimits limits;  // caps for the texts parse_request keeps
};

// Collects a response, streamed or not.
class ResponseAccumulator {
 public:
  using TextTap = std::function<void(std::string_view piece)>;

  virtual ~ResponseAccumulator() = default;
  // `tap` receives each piece of the answer's text as it is read, in order, past the cap
  // on what is kept too: the detection engine scans a streamed answer as it arrives.
  // Pieces a final whole response repeats (the Responses API's `response.completed`) are
  // not passed again.
  void tap_output(TextTap tap) { tap_ = std::move(tap); }
  // One streamed piece: an SSE event (`event` is its event name, empty if none) or an
  // NDJSON line / JSON array element (`event` empty). `data` is the parsed JSON.
  virtual void on_event(std::string_view event, const nlohmann::json& data) = 0;
  // A whole non-streamed JSON body.
  virtual void on_body(const nlohmann::json& body) = 0;
  // The response is over (or was cut): move what was collected into `call`.
  virtual void finish(LlmCall& call) = 0;

 protected:
  TextTap tap_;
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string_view api() const = 0;  // "openai", "anthropic", "gemini", "ollama", …
  // Fills operation, model, stream, messages, system, tools, max_output_tokens from the
  // request. `body` is null when the request body was not JSON (or not seen).
  virtual void parse_request(const RequestView& req, const nlohmann::json* body,
                             LlmCall& call) const = 0;
  virtual std::unique_ptr<ResponseAccumulator> new_response(const LlmCall& call,
                                                            const LlmCallLimits& limits) const = 0;
};

struct Route {
  std::string provider;              // empty when the request is not an LLM API call
  const Adapter* adapter = nullptr;  // null together with provider empty
};

// Picks provider and adapter by host (known provider hosts, Azure and Vertex shapes) and,
// for other hosts (local servers, gateways, stand-ins), by path and headers (e.g.
// /v1/chat/completions, /v1/messages with anthropic-version, /v1beta/models/*:generateContent,
// /api/chat). Known LLM hosts with an unknown path get the "unknown" adapter, which reads
// what it can of any JSON API.
Route route(const RequestView& req);

// True for hosts of known LLM providers (used by the coverage view and by route()).
bool is_known_llm_host(std::string_view host);

// The adapter for a provider's main API, for a response whose request was not seen.
const Adapter& adapter_for_provider(std::string_view provider);

}  // namespace agentwall::llm
