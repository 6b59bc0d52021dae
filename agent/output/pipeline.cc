#include "agent/output/pipeline.h"

namespace agentwall::output {
namespace {

// Without an inventory of its own (the daemon's is persistent), the pipeline keeps one in
// memory: a replay shows the alerts the live agent would have raised.
// The tool-call checker always comes from here, with the detection engine when there is one.
mcp::McpOptions with_inventory(mcp::McpOptions o, const llm::LlmOptions& llm,
                               mcp::McpObserver* observer, std::unique_ptr<mcp::Inventory>& own,
                               std::unique_ptr<mcp::CallChecker>& calls) {
  const detect::Engine* engine = llm.inspector ? &llm.inspector->engine() : nullptr;
  if (!o.inventory) {
    mcp::InventoryOptions io;
    io.engine = engine;
    io.threshold = llm.detect_threshold;
    own = std::make_unique<mcp::Inventory>(io);
    o.inventory = own.get();
  }
  if (!o.observer) o.observer = observer;
  if (!o.calls) {
    mcp::CallCheckOptions co;
    co.engine = engine;
    co.threshold = llm.detect_threshold;
    calls = std::make_unique<mcp::CallChecker>(co);
    o.calls = calls.get();
  }
  return o;
}

}  // namespace

Pipeline::Pipeline(Emit emit, PipelineOptions options)
    : emit_(std::move(emit)),
      observer_(options.observer),
      llm_(*this, options.llm),
      mcp_(emit_,
           with_inventory(options.mcp, options.llm, options.mcp_observer, own_inventory_, calls_)),
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
