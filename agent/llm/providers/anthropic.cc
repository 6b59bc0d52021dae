// Anthropic's Messages API, from api.anthropic.com or Vertex AI (rawPredict, model in the path).
//
// Usage is kept as Anthropic reports it: input_tokens counts only the prompt tokens that were
// neither read from nor written to the cache, so the whole prompt is input + cache_read +
// cache_write (unlike OpenAI, whose prompt_tokens include the cached ones).
#include <map>

#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm::providers {
namespace {

bool is_tool_block(std::string_view type) {
  return type == "tool_use" || type == "server_tool_use" || type == "mcp_tool_use";
}

class AnthropicAdapter final : public Adapter {
 public:
  std::string_view api() const override { return "anthropic"; }

  void parse_request(const RequestView& req, const json* body, LlmCall& call) const override {
    const LlmCallLimits& limits = req.limits;
    const std::string_view path = path_only(req.path);
    // Vertex: …/publishers/anthropic/models/{model}:rawPredict, or models/count-tokens:rawPredict.
    const ModelMethod vertex = model_method(path);
    const bool counting = ends_with(path, "/count_tokens") || vertex.model == "count-tokens";
    call.api = api();
    call.operation = counting ? "count_tokens" : "chat";
    if (!counting) call.model = percent_decode(vertex.model);
    call.stream = vertex.method == "streamRawPredict";
    if (body == nullptr || !body->is_object()) return;
    call.request_parsed = true;
    if (const std::string_view model = string_member(*body, "model"); !model.empty()) {
      call.model = model;
    }
    call.stream = bool_member(*body, "stream").value_or(call.stream);
    call.max_output_tokens = int_member(*body, "max_tokens").value_or(0);
    if (const json* system = member(*body, "system")) {
      CappedText text;
      append_content(text, *system, limits.max_text_bytes);
      append_system(call, text.text, text.cut, limits);
    }
    if (const json* messages = array_member(*body, "messages")) {
      for (const json& m : *messages) {
        if (!m.is_object()) continue;
        CappedText text;
        if (const json* content = member(m, "content")) {
          append_content(text, *content, limits.max_text_bytes);
        }
        push_message(call, string_member(m, "role"), std::move(text), limits);
      }
    }
    if (const json* tools = array_member(*body, "tools")) {
      for (const json& tool : *tools) {
        // Server tools (web_search_20250305, …) have a name too; fall back to the type.
        std::string_view name = string_member(tool, "name");
        if (!name.empty()) keep_schema(call, name, object_member(tool, "input_schema"));
        if (name.empty()) name = string_member(tool, "type");
        if (!name.empty()) call.tools.emplace_back(name);
      }
    }
    // Structured outputs: output_format {type: json_schema, schema}.
    if (const json* format = object_member(*body, "output_format");
        format != nullptr && string_member(*format, "type") == "json_schema") {
      keep_schema(call, {}, object_member(*format, "schema"));
    }
  }

  std::unique_ptr<ResponseAccumulator> new_response(const LlmCall&,
                                                    const LlmCallLimits& limits) const override;
};

class MessagesAccumulator final : public ResponseAccumulator {
 public:
  explicit MessagesAccumulator(const LlmCallLimits& limits) : cap_(limits.max_text_bytes) {
    out_.output.tap = &tap_;
  }

  void on_event(std::string_view event, const json& data) override {
    if (!data.is_object()) return;
    out_.parsed = true;
    std::string_view type = string_member(data, "type");
    if (type.empty()) type = event;
    if (type == "message_start") {
      if (const json* message = object_member(data, "message")) read_message(*message);
    } else if (type == "content_block_start") {
      const json* block = object_member(data, "content_block");
      const auto index = int_member(data, "index");
      if (block != nullptr && index) start_block(*index, *block);
    } else if (type == "content_block_delta") {
      const json* delta = object_member(data, "delta");
      const auto index = int_member(data, "index");
      if (delta != nullptr && index) read_delta(*index, *delta);
    } else if (type == "message_delta") {
      if (const json* delta = object_member(data, "delta")) read_stop_reason(*delta);
      // Cumulative: each message_delta's counts replace the last.
      if (const json* usage = member(data, "usage")) read_usage(*usage, out_.usage);
    } else if (type == "error") {
      out_.set_error(error_message(data), cap_);
    }
    // ping, content_block_stop, message_stop: nothing to keep.
  }

  void on_body(const json& body) override {
    if (!body.is_object()) return;
    out_.parsed = true;
    if (const std::string error = error_message(body); !error.empty()) out_.set_error(error, cap_);
    read_message(body);
    // count_tokens answers {"input_tokens": N}.
    read_usage(body, out_.usage);
  }

  void finish(LlmCall& call) override {
    for (auto& [index, block] : tools_) {
      // A tool without parameters streams no input_json_delta; its input is {}.
      if (block.call.arguments.text.empty()) block.call.arguments.text = "{}";
      out_.add_tool_call(block.call);
    }
    out_.move_into(call);
  }

 private:
  struct ToolBlock {
    ToolCallBuilder call;
    bool streamed = false;  // input_json_delta seen: the fragments replace the start's input
  };

  void read_message(const json& message) {
    if (const std::string_view id = string_member(message, "id"); !id.empty()) {
      out_.response_id = id;
    }
    if (const std::string_view m = string_member(message, "model"); !m.empty()) {
      out_.response_model = m;
    }
    read_stop_reason(message);
    if (const json* usage = member(message, "usage")) read_usage(*usage, out_.usage);
    if (const json* content = array_member(message, "content")) {
      int64_t index = 0;
      for (const json& block : *content) start_block(index++, block);
    }
  }

  void read_stop_reason(const json& obj) {
    if (const std::string_view r = string_member(obj, "stop_reason"); !r.empty()) {
      out_.finish_reason = r;
    }
  }

  void start_block(int64_t index, const json& block) {
    const std::string_view type = string_member(block, "type");
    if (type == "text") {
      out_.output.append(string_member(block, "text"), cap_);
    } else if (is_tool_block(type)) {
      if (tools_.find(index) == tools_.end() && tools_.size() >= kMaxToolCalls) {
        out_.truncated = true;
        return;
      }
      ToolBlock& tb = tools_[index];
      tb.call.id = string_member(block, "id");
      tb.call.name.assign(string_member(block, "name"), cap_);
      if (const json* input = member(block, "input")) {
        tb.call.arguments.assign(dump_json(*input), cap_);
      }
    }
    // thinking and redacted_thinking are the model's reasoning, not its answer.
  }

  void read_delta(int64_t index, const json& delta) {
    const std::string_view type = string_member(delta, "type");
    if (type == "text_delta") {
      out_.output.append(string_member(delta, "text"), cap_);
    } else if (type == "input_json_delta") {
      const auto it = tools_.find(index);
      if (it == tools_.end()) return;
      ToolBlock& tb = it->second;
      if (!tb.streamed) tb.call.arguments.assign("", cap_);
      tb.streamed = true;
      tb.call.arguments.append(string_member(delta, "partial_json"), cap_);
    }
    // thinking_delta, signature_delta, citations_delta: not part of the answer text.
  }

  size_t cap_;
  Collected out_;
  std::map<int64_t, ToolBlock> tools_;  // by content block index
};

std::unique_ptr<ResponseAccumulator> AnthropicAdapter::new_response(
    const LlmCall&, const LlmCallLimits& limits) const {
  return std::make_unique<MessagesAccumulator>(limits);
}

}  // namespace

const Adapter& anthropic_adapter() {
  static const AnthropicAdapter adapter;
  return adapter;
}

}  // namespace agentwall::llm::providers
