// The pipeline after capture, shared by `agentwall run` and `agentwall replay`: stream →
// HTTP → LLM or MCP → event lines. Pure: unit tests drive it with recordings.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>

#include "agent/llm/stage.h"
#include "agent/mcp/stage.h"
#include "agent/mcp/stdio.h"
#include "agent/protocol/stage.h"
#include "agent/stream/tracker.h"

namespace agentwall::output {

struct PipelineOptions {
  protocol::StageLimits http;
  llm::LlmOptions llm;
  mcp::McpOptions mcp;
  mcp::StdioOptions stdio;  // MCP over stdio: line framing, and what is not MCP after all
  // Also sees every LLM call (after its event is emitted) and, if it wants them, every
  // request as soon as it is complete: the decide stage.
  llm::LlmSink* observer = nullptr;
  // Sees every MCP call with its answer: the decide stage's policy.
  mcp::McpObserver* mcp_observer = nullptr;
};

class Pipeline final : private llm::LlmSink {
 public:
  using Emit = std::function<void(const std::string& line)>;
  // `emit` receives every event as one JSON line (no newline).
  Pipeline(Emit emit, PipelineOptions options = {});

  // Where the capture stream goes in.
  CaptureSink& input() { return tracker_; }
  // Ends every connection still open: their exchanges come out, marked cut.
  void flush() {
    http_.flush();
    mcp_.flush();
  }

  const stream::TrackerStats& stream_stats() const { return tracker_.stats(); }
  protocol::HttpStageStats http_stats() const { return http_.stats(); }
  const llm::LlmStats& llm_stats() const { return llm_.stats(); }
  const mcp::McpStats& mcp_stats() const { return mcp_.stats(); }
  mcp::StdioStats stdio_stats() const { return stdio_.stats(); }

 private:
  void on_llm_call(const llm::LlmRecord& r) override;
  bool wants_request(uint64_t conn_id) const override {
    return observer_ && observer_->wants_request(conn_id);
  }
  void on_llm_request(const llm::LlmRecord& r, std::string_view body) override {
    observer_->on_llm_request(r, body);
  }

  // Each exchange goes to one semantic stage: MCP when its request is MCP, else LLM.
  class Router final : public protocol::ExchangeSink {
   public:
    Router(protocol::ExchangeSink& llm, mcp::McpStage& mcp) : llm_(llm), mcp_(mcp) {}
    void on_request(const stream::Connection& c, const ProcessInfo& p,
                    protocol::HttpExchange& x) override;
    void on_response_head(const stream::Connection& c, const ProcessInfo& p,
                          protocol::HttpExchange& x) override {
      to(x).on_response_head(c, p, x);
    }
    void on_response_body(const stream::Connection& c, const ProcessInfo& p,
                          protocol::HttpExchange& x, std::string_view decoded) override {
      to(x).on_response_body(c, p, x, decoded);
    }
    void on_exchange(const stream::Connection& c, const ProcessInfo& p,
                     protocol::HttpExchange& x) override;

   private:
    protocol::ExchangeSink& to(const protocol::HttpExchange& x) {
      return mcp_ids_.count(x.id) ? static_cast<protocol::ExchangeSink&>(mcp_) : llm_;
    }
    protocol::ExchangeSink& llm_;
    mcp::McpStage& mcp_;
    std::unordered_set<uint64_t> mcp_ids_;  // exchanges of the MCP stage, until they end
  };

  // Each byte stream goes to one protocol: the stdio of watched processes to the stdio stage,
  // TLS connections to HTTP.
  class StreamRouter final : public stream::StreamSink {
   public:
    StreamRouter(stream::StreamSink& http, stream::StreamSink& stdio)
        : http_(http), stdio_(stdio) {}
    void on_process(const ProcessInfo& p) override {
      http_.on_process(p);
      stdio_.on_process(p);
    }
    void on_data(const stream::Connection& c, const ProcessInfo* p, const TlsChunk& x) override {
      to(c).on_data(c, p, x);
    }
    void on_gap(const stream::Connection& c, Direction d, uint64_t off, uint64_t len,
                stream::GapReason r) override {
      to(c).on_gap(c, d, off, len, r);
    }
    void on_close(const stream::Connection& c, const TlsClose& x) override { to(c).on_close(c, x); }
    void on_forget(const stream::Connection& c) override { to(c).on_forget(c); }

   private:
    stream::StreamSink& to(const stream::Connection& c) { return c.pipe ? stdio_ : http_; }
    stream::StreamSink& http_;
    stream::StreamSink& stdio_;
  };

  Emit emit_;
  llm::LlmSink* observer_;
  llm::LlmStage llm_;
  std::unique_ptr<mcp::Inventory> own_inventory_;  // in memory, when none is given
  std::unique_ptr<mcp::CallChecker> calls_;
  mcp::McpStage mcp_;
  Router router_;
  protocol::HttpStage http_;
  mcp::StdioStage stdio_;
  StreamRouter streams_;
  stream::Tracker tracker_;
};

}  // namespace agentwall::output
