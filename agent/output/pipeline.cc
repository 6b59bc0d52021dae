#include "agent/output/pipeline.h"

namespace agentwall::output {

Pipeline::Pipeline(Emit emit, PipelineOptions options)
    : emit_(std::move(emit)),
      observer_(options.observer),
      llm_(*this, options.llm),
      mcp_(emit_, options.mcp),
      router_(llm_, mcp_),
      http_(router_, options.http),
      tracker_(http_) {}

void Pipeline::on_llm_call(const llm::LlmRecord& r) {
  emit_(llm::llm_exchange_json(r, llm_.options()));
  if (observer_) observer_->on_llm_call(r);
}

void Pipeline::Router::on_request(const stream::Connection& c, const ProcessInfo& p,
                                  protocol::HttpExchange& x) {
  if (mcp::McpStage::claims(x)) mcp_ids_.insert(x.id);
  to(x).on_request(c, p, x);
}

void Pipeline::Router::on_exchange(const stream::Connection& c, const ProcessInfo& p,
                                   protocol::HttpExchange& x) {
  to(x).on_exchange(c, p, x);
  mcp_ids_.erase(x.id);
}

}  // namespace agentwall::output
