// Ollama's native API. It streams unless the request says "stream": false, as NDJSON: each line
// a piece of the answer, the last one with "done": true and the token counts.
#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm::providers {
namespace {

std::string_view operation_for(std::string_view path) {
  const std::string_view p = path_only(path);
  if (ends_with(p, "/api/chat")) return "chat";
  if (ends_with(p, "/api/generate")) return "generate";
  if (ends_with(p, "/api/embed") || ends_with(p, "/api/embeddings")) return "embeddings";
  return "unknown";
}

void append_images(CappedText& text, const json& obj, size_t cap) {
  if (const json* images = array_member(obj, "images")) {
    for (size_t i = 0; i < images->size(); ++i) text.append_joined("[image]", cap);
  }
}

class OllamaAdapter final : public Adapter {
 public:
  std::string_view api() const override { return "ollama"; }

  void parse_request(const RequestView& req, const json* body, LlmCall& call) const override {
    const LlmCallLimits& limits = req.limits;
    const size_t cap = limits.max_text_bytes;
    call.api = api();
    call.operation = operation_for(req.path);
    const bool generates = call.operation == "chat" || call.operation == "generate";
    call.stream = generates;  // Ollama's default
    if (body == nullptr || !body->is_object()) return;
    call.request_parsed = true;
    call.model = string_member(*body, "model");
    call.stream = bool_member(*body, "stream").value_or(generates);
    if (const json* options = object_member(*body, "options")) {
      call.max_output_tokens = int_member(*options, "num_predict").value_or(0);
    }
    if (const json* messages = array_member(*body, "messages")) {
      for (const json& m : *messages) {
        if (!m.is_object()) continue;
        const std::string_view role = string_member(m, "role");
        CappedText text;
        text.append(string_member(m, "content"), cap);
        append_images(text, m, cap);
        if (const json* calls = array_member(m, "tool_calls")) {
          for (const json& tc : *calls) {
            const json* fn = object_member(tc, "function");
            text.append_joined(tool_call_note(fn ? string_member(*fn, "name") : ""), cap);
          }
        }
        if (role == "system") {
          append_system(call, text.text, text.cut, limits);
        } else {
          push_message(call, role, std::move(text), limits);
        }
      }
    }
    if (call.operation == "generate") {
      append_system(call, string_member(*body, "system"), false, limits);
      // An empty generate request only loads the model; it says nothing.
      if (member(*body, "prompt") != nullptr) {
        CappedText text;
        text.append(string_member(*body, "prompt"), cap);
        append_images(text, *body, cap);
        push_message(call, "user", std::move(text), limits);
      }
    }
    if (const json* tools = array_member(*body, "tools")) {
      for (const json& tool : *tools) {
        const json* fn = object_member(tool, "function");
        const std::string_view name = fn ? string_member(*fn, "name") : "";
        if (!name.empty()) call.tools.emplace_back(name);
      }
    }
    if (call.operation == "embeddings") {
      const json* input = member(*body, "input");
      if (input == nullptr) input = member(*body, "prompt");  // legacy /api/embeddings
      if (input != nullptr && input->is_string()) call.embedding_inputs = 1;
      if (input != nullptr && input->is_array()) {
        call.embedding_inputs = static_cast<int64_t>(input->size());
      }
    }
  }

  std::unique_ptr<ResponseAccumulator> new_response(const LlmCall&,
                                                    const LlmCallLimits& limits) const override;
};

// A whole body and an NDJSON line have the same shape; the last (or only) one has the counts.
class OllamaAccumulator final : public PieceAccumulator {
 public:
  using PieceAccumulator::PieceAccumulator;

 private:
  void read(const json& obj) override {
    if (const std::string_view m = string_member(obj, "model"); !m.empty()) {
      out_.response_model = m;
    }
    out_.output.append(string_member(obj, "response"), cap_);  // /api/generate
    if (const json* message = object_member(obj, "message")) {
      out_.output.append(string_member(*message, "content"), cap_);
      if (const json* calls = array_member(*message, "tool_calls")) {
        for (const json& tc : *calls) read_tool_call(tc);
      }
    }
    if (const std::string_view reason = string_member(obj, "done_reason"); !reason.empty()) {
      out_.finish_reason = reason;
    }
    if (const auto n = int_member(obj, "prompt_eval_count")) out_.usage.input_tokens = n;
    if (const auto n = int_member(obj, "eval_count")) out_.usage.output_tokens = n;
  }

  // Ollama sends each tool call whole, arguments as an object.
  void read_tool_call(const json& tc) {
    const json* fn = object_member(tc, "function");
    if (fn == nullptr) return;
    ToolCallBuilder b;
    b.id = string_member(tc, "id");
    b.name.assign(string_member(*fn, "name"), cap_);
    if (const json* args = member(*fn, "arguments")) {
      b.arguments.assign(args->is_string() ? args->get_ref<const std::string&>() : dump_json(*args),
                         cap_);
    }
    out_.add_tool_call(b);
  }
};

std::unique_ptr<ResponseAccumulator> OllamaAdapter::new_response(
    const LlmCall&, const LlmCallLimits& limits) const {
  return std::make_unique<OllamaAccumulator>(limits);
}

}  // namespace

const Adapter& ollama_adapter() {
  static const OllamaAdapter adapter;
  return adapter;
}

}  // namespace agentwall::llm::providers
