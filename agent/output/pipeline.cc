#include "agent/output/pipeline.h"

namespace agentwall::output {

Pipeline::Pipeline(Emit emit, PipelineOptions options)
    : emit_(std::move(emit)),
      llm_(*this, options.llm),
      http_(llm_, options.http),
      tracker_(http_) {}

void Pipeline::on_llm_call(const llm::LlmRecord& r) {
  emit_(llm::llm_exchange_json(r, llm_.options()));
}

}  // namespace agentwall::output
