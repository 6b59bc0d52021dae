#include "agent/output/pipeline.h"

namespace agentwall::output {
namespace {

// Without an inventory of its own (the daemon's is persistent), the pipeline keeps one in
// memory: a replay shows the alerts the live agent would have raised.
mcp::McpOptions with_inventory(mcp::McpOptions o, const llm::LlmOptions& llm,
                               std::unique_ptr<mcp::Inventory>& own) {
  if (!o.inventory) {
    mcp::InventoryOptions io;
    io.engine = llm.inspector ? &llm.inspector->engine() : nullptr;
    own = std::make_unique<mcp::Inventory>(io);
    o.inventory = own.get();
  }
  return o;
}

}  // namespace

Pipeline::Pipeline(Emit emit, PipelineOptions options)
    : emit_(std::move(emit)),
      observer_(options.observer),
      llm_(*this, options.llm),
      mcp_(emit_, with_inventory(options.mcp, options.llm, own_inventory_)),
      router_(llm_, mcp_),
      http_(router_, options.http),
      stdio_(mcp_, options.stdio),
      streams_(http_, stdio_),
      tracker_(streams_) {}

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
