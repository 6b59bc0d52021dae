// The LLM stage: recognises LLM API calls among HTTP exchanges, reads them with the
// provider's adapter, settles usage (the provider's figures, or a local BPE count when it gave
// none), prices them and hands one LlmRecord per call to the next stage.
#pragma once

#include <optional>
#include <string>

#include "agent/llm/call.h"
#include "agent/llm/inspect.h"
#include "agent/llm/prices.h"
#include "agent/protocol/stage.h"

namespace agentwall::llm {

struct LlmOptions {
  // What adapters keep while reading: large, because a missing usage is estimated from it.
  LlmCallLimits collect{1 << 20, 1024};
  // Bytes of each text (message, system prompt, output, arguments) written into events;
  // 0 leaves message content out of events entirely.
  size_t content_cap = 4096;
  const PriceTable* prices = nullptr;  // null: the built-in table
  // Runs the detection engine on every call (findings in the event, secrets and personal
  // data masked in its content); null: no detection.
  const Inspector* inspector = nullptr;
  int detect_threshold = 50;  // score from which the event says "flagged"
};

struct SettledUsage {
  int64_t input_tokens = 0;   // all prompt tokens, cache reads and writes included
  int64_t output_tokens = 0;  // all completion tokens, reasoning included
  int64_t cache_read_tokens = 0;
  int64_t cache_write_tokens = 0;
  int64_t reasoning_tokens = 0;
  bool estimated = false;  // some figure was counted locally, not reported by the provider
};

struct LlmRecord {
  uint64_t exchange_id = 0;
  uint64_t time_ns = 0;  // when the request started
  LlmCall call;
  std::string host;  // without port
  std::string path;
  std::string method;
  protocol::HttpVersion version = protocol::HttpVersion::kHttp1;
  int status = 0;
  bool has_request = false;
  bool has_response = false;
  uint32_t request_flags = 0;
  uint32_t response_flags = 0;
  SettledUsage usage;
  std::optional<Cost> cost;  // absent when the model is not in the price table
  std::optional<double> first_byte_ms;
  std::optional<double> total_ms;
  std::string api_key_fingerprint;
  stream::Connection conn;
  ProcessInfo process;
  Inspection inspection;
};

class LlmSink {
 public:
  virtual ~LlmSink() = default;
  virtual void on_llm_call(const LlmRecord& record) = 0;
  // The request is complete, before its response: what policies judge before the request
  // leaves (the record has no response, usage or cost yet). Only for the connections the
  // sink wants: building the record copies the whole request.
  virtual bool wants_request(uint64_t /*conn_id*/) const { return false; }
  virtual void on_llm_request(const LlmRecord& /*request*/, std::string_view /*body*/) {}
};

struct LlmStats {
  uint64_t calls = 0;
  uint64_t estimated = 0;  // calls whose usage was (partly) counted locally
  uint64_t unpriced = 0;   // calls whose model has no price
  uint64_t bad_json = 0;   // request bodies or streamed events that were not valid JSON
};

class LlmStage final : public protocol::ExchangeSink {
 public:
  LlmStage(LlmSink& out, LlmOptions options = {});

  void on_request(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&) override;
  void on_response_head(const stream::Connection&, const ProcessInfo&,
                        protocol::HttpExchange&) override;
  void on_response_body(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&,
                        std::string_view decoded) override;
  void on_exchange(const stream::Connection&, const ProcessInfo&, protocol::HttpExchange&) override;

  const LlmStats& stats() const { return stats_; }
  const LlmOptions& options() const { return options_; }

 private:
  LlmSink& out_;
  LlmOptions options_;
  LlmStats stats_;
};

// "sha256:" and the first 16 hex digits of SHA-256 over the key: enough to tell keys apart
// and correlate, never enough to recover one.
std::string key_fingerprint(std::string_view key);
// The API key a request carries (Authorization Bearer, x-api-key, api-key, x-goog-api-key,
// a `key=` query parameter); empty when none.
std::string_view find_api_key(const protocol::HttpMessage& request);

// The `llm.exchange` event (docs/EVENTS.md), one JSON line.
std::string llm_exchange_json(const LlmRecord& r, const LlmOptions& options);

}  // namespace agentwall::llm
