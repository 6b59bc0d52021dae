// The pipeline after capture, shared by `agentwall run` and `agentwall replay`: stream →
// HTTP → LLM → event lines. Pure: unit tests drive it with recordings.
#pragma once

#include <functional>
#include <string>

#include "agent/llm/stage.h"
#include "agent/protocol/stage.h"
#include "agent/stream/tracker.h"

namespace agentwall::output {

struct PipelineOptions {
  protocol::StageLimits http;
  llm::LlmOptions llm;
  // Also sees every LLM call (after its event is emitted) and, if it wants them, every
  // request as soon as it is complete: the decide stage.
  llm::LlmSink* observer = nullptr;
};

class Pipeline final : private llm::LlmSink {
 public:
  using Emit = std::function<void(const std::string& line)>;
  // `emit` receives every event as one JSON line (no newline).
  Pipeline(Emit emit, PipelineOptions options = {});

  // Where the capture stream goes in.
  CaptureSink& input() { return tracker_; }
  // Ends every connection still open: their exchanges come out, marked cut.
  void flush() { http_.flush(); }

  const stream::TrackerStats& stream_stats() const { return tracker_.stats(); }
  protocol::HttpStageStats http_stats() const { return http_.stats(); }
  const llm::LlmStats& llm_stats() const { return llm_.stats(); }

 private:
  void on_llm_call(const llm::LlmRecord& r) override;
  bool wants_request(uint64_t conn_id) const override {
    return observer_ && observer_->wants_request(conn_id);
  }
  void on_llm_request(const llm::LlmRecord& r, std::string_view body) override {
    observer_->on_llm_request(r, body);
  }

  Emit emit_;
  llm::LlmSink* observer_;
  llm::LlmStage llm_;
  protocol::HttpStage http_;
  stream::Tracker tracker_;
};

}  // namespace agentwall::output
