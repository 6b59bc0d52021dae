// OpenAI's API family. Chat Completions, legacy Completions and Embeddings answer with the same
// body shape (choices, usage) and stream chunks of it; the Responses API has its own output
// items and a stream of typed events that ends with the whole response object.
#include <map>

#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm::providers {
namespace {

std::string_view operation_for(std::string_view path) {
  const std::string_view p = path_only(path);
  if (ends_with(p, "/chat/completions")) return "chat";
  if (ends_with(p, "/responses")) return "responses";
  if (ends_with(p, "/embeddings")) return "embeddings";
  if (ends_with(p, "/completions")) return "completions";
  return "unknown";
}

// Azure names the deployment in the path (/openai/deployments/{name}/…) and clients often
// leave the body's model out.
std::string_view azure_deployment(std::string_view path) {
  constexpr std::string_view kMarker = "/openai/deployments/";
  const std::string_view p = path_only(path);
  const size_t at = p.find(kMarker);
  if (at == std::string_view::npos) return {};
  const std::string_view rest = p.substr(at + kMarker.size());
  return rest.substr(0, rest.find('/'));
}

bool is_system_role(std::string_view role) {
  return role == "system" || role == "developer";
}

// A tool call's name, in Chat Completions' nesting (function / custom) or flat (Responses).
std::string_view tool_call_name(const json& call) {
  for (const char* kind : {"function", "custom"}) {
    if (const json* inner = object_member(call, kind)) return string_member(*inner, "name");
  }
  return string_member(call, "name");
}

void read_chat_messages(const json& messages, const LlmCallLimits& limits, LlmCall& call) {
  const size_t cap = limits.max_text_bytes;
  for (const json& m : messages) {
    if (!m.is_object()) continue;
    const std::string_view role = string_member(m, "role");
    CappedText text;
    if (const json* content = member(m, "content")) append_content(text, *content, cap);
    if (const json* calls = array_member(m, "tool_calls")) {
      for (const json& tc : *calls) text.append_joined(tool_call_note(tool_call_name(tc)), cap);
    }
    if (const json* fc = object_member(m, "function_call")) {
      text.append_joined(tool_call_note(string_member(*fc, "name")), cap);
    }
    if (is_system_role(role)) {
      append_system(call, text.text, text.cut, limits);
    } else {
      push_message(call, role, std::move(text), limits);
    }
  }
}

void read_responses_input(const json& input, const LlmCallLimits& limits, LlmCall& call) {
  const size_t cap = limits.max_text_bytes;
  if (input.is_string()) {
    push_text_message(call, "user", input.get_ref<const std::string&>(), limits);
    return;
  }
  if (!input.is_array()) return;
  for (const json& item : input) {
    if (item.is_string()) {
      push_text_message(call, "user", item.get_ref<const std::string&>(), limits);
      continue;
    }
    CappedText text;
    const std::string_view type = string_member(item, "type");
    if (type.empty() || type == "message") {
      const std::string_view role = string_member(item, "role");
      if (const json* content = member(item, "content")) append_content(text, *content, cap);
      if (is_system_role(role)) {
        append_system(call, text.text, text.cut, limits);
      } else {
        push_message(call, role.empty() ? "user" : role, std::move(text), limits);
      }
    } else if (type == "function_call" || type == "custom_tool_call" || type == "mcp_call") {
      text.append(tool_call_note(string_member(item, "name")), cap);
      push_message(call, "assistant", std::move(text), limits);
    } else if (type == "function_call_output" || type == "custom_tool_call_output") {
      if (const json* output = member(item, "output")) append_content(text, *output, cap);
      push_message(call, "tool", std::move(text), limits);
    }
    // Reasoning items, item references and built-in tool records carry no conversation text.
  }
}

void read_tools(const json& body, LlmCall& call) {
  if (const json* tools = array_member(body, "tools")) {
    for (const json& tool : *tools) {
      std::string_view name = tool_call_name(tool);
      if (!name.empty()) {
        // Chat Completions nests the parameters in `function`; Responses has them flat.
        const json* fn = object_member(tool, "function");
        keep_schema(call, name, object_member(fn ? *fn : tool, "parameters"));
      }
      // Built-in tools (web_search, file_search, code_interpreter, …) are named by their type.
      if (name.empty()) name = string_member(tool, "type");
      if (!name.empty()) call.tools.emplace_back(name);
    }
  }
  if (const json* functions = array_member(body, "functions")) {
    for (const json& fn : *functions) {
      const std::string_view name = string_member(fn, "name");
      if (!name.empty()) call.tools.emplace_back(name);
      if (!name.empty()) keep_schema(call, name, object_member(fn, "parameters"));
    }
  }
  // The answer's schema: response_format (Chat Completions) or text.format (Responses).
  const json* format = object_member(body, "response_format");
  if (const json* text = object_member(body, "text"); format == nullptr && text != nullptr)
    format = object_member(*text, "format");
  if (format != nullptr && string_member(*format, "type") == "json_schema") {
    const json* js = object_member(*format, "json_schema");
    keep_schema(call, {}, object_member(js ? *js : *format, "schema"));
  }
}

// One input is a string or a single token array; a batch is an array of either.
int64_t embedding_input_count(const json& input) {
  if (input.is_string()) return 1;
  if (!input.is_array() || input.empty()) return 0;
  for (const json& v : input) {
    if (!v.is_number()) return static_cast<int64_t>(input.size());
  }
  return 1;
}

class OpenAiAdapter final : public Adapter {
 public:
  std::string_view api() const override { return "openai"; }

  void parse_request(const RequestView& req, const json* body, LlmCall& call) const override {
    const LlmCallLimits& limits = req.limits;
    call.api = api();
    call.operation = operation_for(req.path);
    call.model = azure_deployment(req.path);
    if (body == nullptr || !body->is_object()) return;
    call.request_parsed = true;
    if (const std::string_view model = string_member(*body, "model"); !model.empty()) {
      call.model = model;
    }
    call.stream = bool_member(*body, "stream").value_or(false);
    for (const char* key : {"max_completion_tokens", "max_output_tokens", "max_tokens"}) {
      if (const auto n = int_member(*body, key)) {
        call.max_output_tokens = *n;
        break;
      }
    }
    if (call.operation == "responses") {
      append_system(call, string_member(*body, "instructions"), false, limits);
      if (const json* input = member(*body, "input")) read_responses_input(*input, limits, call);
    } else {
      if (const json* messages = array_member(*body, "messages")) {
        read_chat_messages(*messages, limits, call);
      }
      if (const json* prompt = member(*body, "prompt")) {
        // Legacy Completions: one prompt or a batch of them.
        if (prompt->is_string()) {
          push_text_message(call, "user", prompt->get_ref<const std::string&>(), limits);
        } else if (prompt->is_array()) {
          for (const json& p : *prompt) {
            if (p.is_string()) {
              push_text_message(call, "user", p.get_ref<const std::string&>(), limits);
            }
          }
        }
      }
    }
    if (call.operation == "embeddings") {
      if (const json* input = member(*body, "input")) {
        call.embedding_inputs = embedding_input_count(*input);
      }
    }
    read_tools(*body, call);
  }

  std::unique_ptr<ResponseAccumulator> new_response(const LlmCall& call,
                                                    const LlmCallLimits& limits) const override;
};

// Chat Completions, Completions and Embeddings. A body and a stream chunk differ only in
// `message` versus `delta`, so both go through read().
class ChoicesAccumulator final : public ResponseAccumulator {
 public:
  explicit ChoicesAccumulator(const LlmCallLimits& limits) : cap_(limits.max_text_bytes) {
    out_.output.tap = &tap_;
  }

  void on_event(std::string_view, const json& data) override { read(data); }
  void on_body(const json& body) override { read(body); }

  void finish(LlmCall& call) override {
    for (const auto& [index, builder] : tools_) out_.add_tool_call(builder);
    // A refusal is the model's answer when it gave no other.
    if (out_.output.text.empty() && !refusal_.text.empty()) out_.output = std::move(refusal_);
    out_.move_into(call);
  }

 private:
  void read(const json& obj) {
    if (!obj.is_object()) return;
    out_.parsed = true;
    if (const std::string error = error_message(obj); !error.empty()) out_.set_error(error, cap_);
    if (const std::string_view id = string_member(obj, "id"); !id.empty()) out_.response_id = id;
    if (const std::string_view m = string_member(obj, "model"); !m.empty()) out_.response_model = m;
    if (const json* usage = member(obj, "usage")) read_usage(*usage, out_.usage);
    // Groq puts a stream's usage in x_groq.
    if (const json* groq = object_member(obj, "x_groq")) {
      if (const json* usage = member(*groq, "usage")) read_usage(*usage, out_.usage);
    }
    const json* choices = array_member(obj, "choices");
    if (choices == nullptr) return;
    for (const json& choice : *choices) {
      // With n > 1 the choices are alternatives; the first one is the answer we report.
      if (int_member(choice, "index").value_or(0) != 0) continue;
      read_choice(choice);
    }
  }

  void read_choice(const json& choice) {
    if (const std::string_view reason = string_member(choice, "finish_reason"); !reason.empty()) {
      out_.finish_reason = reason;
    }
    // Legacy Completions put the text on the choice itself.
    if (const std::string_view text = string_member(choice, "text"); !text.empty()) {
      out_.output.append(text, cap_);
    }
    const json* message = object_member(choice, "message");
    const bool is_delta = message == nullptr;
    if (is_delta) message = object_member(choice, "delta");
    if (message == nullptr) return;
    if (const json* content = member(*message, "content")) {
      if (content->is_string()) {
        out_.output.append(content->get_ref<const std::string&>(), cap_);
      } else if (content->is_array()) {
        append_content(out_.output, *content, cap_);  // Mistral's typed content chunks
      }
    }
    refusal_.append(string_member(*message, "refusal"), cap_);
    if (const json* calls = array_member(*message, "tool_calls")) {
      for (const json& tc : *calls) read_tool_call(tc, is_delta);
    }
    if (const json* fc = object_member(*message, "function_call")) read_tool_call(*fc, is_delta);
  }

  // Streamed tool calls arrive as fragments keyed by `index`: the first names the call, the
  // rest carry pieces of its arguments. Some compatible servers leave `index` out; then a new
  // id starts a new call and a fragment without one continues the last.
  void read_tool_call(const json& tc, bool is_delta) {
    if (!tc.is_object()) return;
    const std::string_view id = string_member(tc, "id");
    std::optional<int64_t> key = int_member(tc, "index");
    if (!key) {
      for (const auto& [index, builder] : tools_) {
        if (!id.empty() && builder.id == id) key = index;
      }
    }
    if (!key) {
      const int64_t next = tools_.empty() ? 0 : tools_.rbegin()->first + 1;
      key = (is_delta && id.empty() && !tools_.empty()) ? tools_.rbegin()->first : next;
    }
    auto it = tools_.find(*key);
    if (it == tools_.end()) {
      if (tools_.size() >= kMaxToolCalls) {
        out_.truncated = true;
        return;
      }
      it = tools_.emplace(*key, ToolCallBuilder{}).first;
    }
    ToolCallBuilder& b = it->second;
    if (b.id.empty()) b.id = id;
    const json* fn = object_member(tc, "function");
    if (fn == nullptr) fn = object_member(tc, "custom");
    const json& f = fn != nullptr ? *fn : tc;  // legacy function_call is flat
    // Some servers repeat the whole name in every fragment.
    if (const std::string_view name = string_member(f, "name"); name != b.name.text) {
      b.name.append(name, cap_);
    }
    b.arguments.append(string_member(f, "arguments"), cap_);
    b.arguments.append(string_member(f, "input"), cap_);
  }

  size_t cap_;
  Collected out_;
  CappedText refusal_;
  std::map<int64_t, ToolCallBuilder> tools_;
};

// Built-in tool calls of the Responses API (web_search_call, …) are named after the tool.
std::string_view builtin_tool_name(std::string_view type) {
  constexpr std::string_view kSuffix = "_call";
  return ends_with(type, kSuffix) ? type.substr(0, type.size() - kSuffix.size()) : type;
}

// Fills `b` from a Responses output item when the item is a tool call.
bool read_tool_item(const json& item, ToolCallBuilder& b, size_t cap) {
  const std::string_view type = string_member(item, "type");
  if (type.empty() || type == "message" || type == "reasoning") return false;
  b.id = string_member(item, "call_id");
  if (b.id.empty()) b.id = string_member(item, "id");
  if (type == "function_call" || type == "custom_tool_call" || type == "mcp_call") {
    b.name.assign(string_member(item, "name"), cap);
    const std::string_view args = string_member(item, "arguments");
    b.arguments.assign(args.empty() ? string_member(item, "input") : args, cap);
    return true;
  }
  if (!ends_with(type, "_call")) return false;
  b.name.assign(builtin_tool_name(type), cap);
  if (const json* action = object_member(item, "action")) {
    b.arguments.assign(dump_json(*action), cap);
  }
  return true;
}

class ResponsesAccumulator final : public ResponseAccumulator {
 public:
  explicit ResponsesAccumulator(const LlmCallLimits& limits) : cap_(limits.max_text_bytes) {
    out_.output.tap = &tap_;
  }

  void on_event(std::string_view event, const json& data) override {
    if (!data.is_object()) return;
    out_.parsed = true;
    std::string_view type = string_member(data, "type");
    if (type.empty()) type = event;
    if (type == "response.output_text.delta") {
      out_.output.append(string_member(data, "delta"), cap_);
    } else if (type == "response.refusal.delta") {
      refusal_.append(string_member(data, "delta"), cap_);
    } else if (type == "response.output_item.added" || type == "response.output_item.done") {
      read_item_event(data);
    } else if (type == "response.function_call_arguments.delta" ||
               type == "response.mcp_call_arguments.delta" ||
               type == "response.custom_tool_call_input.delta") {
      if (ToolCallBuilder* b = builder_for(data)) {
        b->arguments.append(string_member(data, "delta"), cap_);
      }
    } else if (type == "response.function_call_arguments.done" ||
               type == "response.mcp_call_arguments.done") {
      if (ToolCallBuilder* b = builder_for(data)) {
        b->arguments.assign(string_member(data, "arguments"), cap_);
      }
    } else if (const json* response = object_member(data, "response")) {
      // response.created / in_progress / completed / incomplete / failed all carry it; the
      // terminal ones carry it whole.
      read_response(*response);
    } else if (const std::string error = error_message(data); !error.empty()) {
      out_.set_error(error, cap_);
    }
  }

  void on_body(const json& body) override {
    if (!body.is_object()) return;
    out_.parsed = true;
    read_response(body);
  }

  void finish(LlmCall& call) override {
    for (const auto& [index, builder] : tools_) out_.add_tool_call(builder);
    if (out_.output.text.empty() && !refusal_.text.empty()) out_.output = std::move(refusal_);
    out_.move_into(call);
  }

 private:
  void read_item_event(const json& data) {
    const json* item = object_member(data, "item");
    const auto index = int_member(data, "output_index");
    if (item == nullptr || !index) return;
    ToolCallBuilder b;
    if (!read_tool_item(*item, b, cap_)) return;
    if (tools_.find(*index) == tools_.end() && tools_.size() >= kMaxToolCalls) {
      out_.truncated = true;
      return;
    }
    ToolCallBuilder& slot = tools_[*index];
    // "added" has the name and empty arguments; keep fragments that came in between.
    if (b.arguments.text.empty()) b.arguments = std::move(slot.arguments);
    slot = std::move(b);
    if (const std::string_view item_id = string_member(*item, "id"); !item_id.empty()) {
      item_index_[std::string(item_id)] = *index;
    }
  }

  ToolCallBuilder* builder_for(const json& data) {
    std::optional<int64_t> index = int_member(data, "output_index");
    if (!index) {
      const auto it = item_index_.find(std::string(string_member(data, "item_id")));
      if (it == item_index_.end()) return nullptr;
      index = it->second;
    }
    const auto it = tools_.find(*index);
    return it == tools_.end() ? nullptr : &it->second;
  }

  // The response object, whole (a body, or a terminal event) or as first announced. When it
  // lists output items, they replace what the deltas built: they are the final word.
  void read_response(const json& r) {
    if (const std::string error = error_message(r); !error.empty()) out_.set_error(error, cap_);
    if (const std::string_view id = string_member(r, "id"); !id.empty()) out_.response_id = id;
    if (const std::string_view m = string_member(r, "model"); !m.empty()) out_.response_model = m;
    if (const json* usage = member(r, "usage")) read_usage(*usage, out_.usage);
    const std::string_view status = string_member(r, "status");
    if (status == "incomplete" || status == "failed" || status == "completed" ||
        status == "cancelled") {
      out_.finish_reason = status;
      // "incomplete" says more through its reason (max_output_tokens, content_filter).
      if (const json* details = object_member(r, "incomplete_details")) {
        if (const std::string_view reason = string_member(*details, "reason"); !reason.empty()) {
          out_.finish_reason = reason;
        }
      }
    }
    const json* output = array_member(r, "output");
    if (output == nullptr || output->empty()) return;
    CappedText text, refusal;
    std::map<int64_t, ToolCallBuilder> tools;
    int64_t index = 0;
    for (const json& item : *output) {
      ToolCallBuilder b;
      if (string_member(item, "type") == "message") {
        if (const json* content = array_member(item, "content")) {
          for (const json& part : *content) {
            const std::string_view part_type = string_member(part, "type");
            if (part_type == "output_text") text.append(string_member(part, "text"), cap_);
            if (part_type == "refusal") refusal.append(string_member(part, "refusal"), cap_);
          }
        }
      } else if (tools.size() < kMaxToolCalls && read_tool_item(item, b, cap_)) {
        tools.emplace(index, std::move(b));
      }
      ++index;
    }
    // The text replaces what the deltas built (and went through the tap as they came).
    out_.output.text = std::move(text.text);
    out_.output.cut = text.cut;
    refusal_ = std::move(refusal);
    tools_ = std::move(tools);
  }

  size_t cap_;
  Collected out_;
  CappedText refusal_;
  std::map<int64_t, ToolCallBuilder> tools_;  // by output_index
  std::map<std::string, int64_t> item_index_;
};

std::unique_ptr<ResponseAccumulator> OpenAiAdapter::new_response(
    const LlmCall& call, const LlmCallLimits& limits) const {
  if (call.operation == "responses") return std::make_unique<ResponsesAccumulator>(limits);
  return std::make_unique<ChoicesAccumulator>(limits);
}

}  // namespace

const Adapter& openai_adapter() {
  static const OpenAiAdapter adapter;
  return adapter;
}

}  // namespace agentwall::llm::providers
