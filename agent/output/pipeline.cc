#include "agent/output/pipeline.h"

namespace agentwall::output {

Pipeline::Pipeline(Emit emit, PipelineOptions options)
    : emit_(std::move(emit)),
      observer_(options.observer),
      llm_(*this, options.llm),
      http_(llm_, options.http),
      tracker_(http_) {}

void Pipeline::on_llm_call(const llm::LlmRecord& r) {
  emit_(llm::llm_exchange_json(r, llm_.options()));
  if (observer_) observer_->on_llm_call(r);
}

}  // namespace agentwall::output
