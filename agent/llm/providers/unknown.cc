// Any JSON API on an LLM host whose shape we do not know (Cohere's native API, model listings,
// a new endpoint): only what reads the same almost everywhere — model, OpenAI-like messages,
// a usage object, an error.
#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm::providers {
namespace {

class UnknownAdapter final : public Adapter {
 public:
  std::string_view api() const override { return "unknown"; }

  void parse_request(const RequestView& req, const json* body, LlmCall& call) const override {
    const LlmCallLimits& limits = req.limits;
    call.api = api();
    call.operation = "unknown";
    if (body == nullptr || !body->is_object()) return;
    call.request_parsed = true;
    call.model = string_member(*body, "model");
    call.stream = bool_member(*body, "stream").value_or(false);
    append_system(call, string_member(*body, "system"), false, limits);
    if (const json* messages = array_member(*body, "messages")) {
      for (const json& m : *messages) {
        const std::string_view role = string_member(m, "role");
        const json* content = member(m, "content");
        if (role.empty() || content == nullptr) continue;  // not a chat message
        CappedText text;
        append_content(text, *content, limits.max_text_bytes);
        if (role == "system" || role == "developer") {
          append_system(call, text.text, text.cut, limits);
        } else {
          push_message(call, role, std::move(text), limits);
        }
      }
    }
  }

  std::unique_ptr<ResponseAccumulator> new_response(const LlmCall&,
                                                    const LlmCallLimits& limits) const override;
};

class UnknownAccumulator final : public PieceAccumulator {
 public:
  using PieceAccumulator::PieceAccumulator;

 private:
  void read(const json& obj) override {
    if (const std::string_view m = string_member(obj, "model"); !m.empty()) {
      out_.response_model = m;
    }
    if (const std::string_view id = string_member(obj, "id"); !id.empty()) out_.response_id = id;
    if (const json* usage = object_member(obj, "usage")) {
      // Cohere nests its counts: usage.tokens (processed) and usage.billed_units.
      if (!read_usage(*usage, out_.usage)) {
        if (const json* tokens = object_member(*usage, "tokens")) {
          read_usage(*tokens, out_.usage);
        } else if (const json* billed = object_member(*usage, "billed_units")) {
          read_usage(*billed, out_.usage);
        }
      }
    }
  }
};

std::unique_ptr<ResponseAccumulator> UnknownAdapter::new_response(
    const LlmCall&, const LlmCallLimits& limits) const {
  return std::make_unique<UnknownAccumulator>(limits);
}

}  // namespace

const Adapter& unknown_adapter() {
  static const UnknownAdapter adapter;
  return adapter;
}

}  // namespace agentwall::llm::providers
