// Google's generateContent family, on the Gemini API (generativelanguage.googleapis.com) and
// Vertex AI. The model and the method are in the path (…/models/{model}:{method}); a streamed
// answer is a sequence of whole GenerateContentResponse objects (SSE with ?alt=sse, else one
// JSON array).
//
// Usage is kept as reported: promptTokenCount includes cachedContentTokenCount, and
// candidatesTokenCount excludes thoughtsTokenCount (OpenAI counts reasoning in its output).
#include "agent/llm/providers/adapters.h"
#include "agent/llm/providers/common.h"

namespace agentwall::llm::providers {
namespace {

std::string_view operation_for(std::string_view method) {
  if (method == "generateContent" || method == "streamGenerateContent") return "chat";
  if (method == "countTokens") return "count_tokens";
  if (method == "embedContent" || method == "batchEmbedContents") return "embeddings";
  return "unknown";
}

std::string_view media_note(std::string_view mime) {
  if (mime.starts_with("image/")) return "[image]";
  if (mime.starts_with("audio/")) return "[audio]";
  if (mime.starts_with("video/")) return "[video]";
  return "[file]";
}

// Request parts as conversation text.
void append_parts(CappedText& out, const json& content, size_t cap) {
  const json* parts = array_member(content, "parts");
  if (parts == nullptr) return;
  for (const json& part : *parts) {
    if (!part.is_object()) continue;
    if (bool_member(part, "thought").value_or(false)) continue;  // reasoning, not what was said
    if (const json* text = member(part, "text"); text != nullptr && text->is_string()) {
      out.append_joined(text->get_ref<const std::string&>(), cap);
    } else if (const json* data = object_member(part, "inlineData", "inline_data")) {
      out.append_joined(media_note(string_member(*data, "mimeType", "mime_type")), cap);
    } else if (const json* file = object_member(part, "fileData", "file_data")) {
      out.append_joined(media_note(string_member(*file, "mimeType", "mime_type")), cap);
    } else if (const json* call = object_member(part, "functionCall", "function_call")) {
      out.append_joined(tool_call_note(string_member(*call, "name")), cap);
    } else if (const json* result = object_member(part, "functionResponse", "function_response")) {
      // What a tool returned goes back to the model: keep it, it can steer the answer.
      out.append_joined("[tool_result " + std::string(string_member(*result, "name")) + "]", cap);
      if (const json* response = member(*result, "response")) {
        out.append_joined(dump_json(*response), cap, " ");
      }
    } else if (object_member(part, "executableCode", "executable_code") != nullptr) {
      out.append_joined("[code]", cap);
    } else if (object_member(part, "codeExecutionResult", "code_execution_result") != nullptr) {
      out.append_joined("[code_result]", cap);
    }
  }
}

void read_contents(const json& contents, const LlmCallLimits& limits, LlmCall& call) {
  const auto read_one = [&](const json& content) {
    if (!content.is_object()) return;
    CappedText text;
    append_parts(text, content, limits.max_text_bytes);
    const std::string_view role = string_member(content, "role");
    push_message(call, role.empty() ? "user" : role, std::move(text), limits);
  };
  if (contents.is_array()) {
    for (const json& content : contents) read_one(content);
  } else {
    read_one(contents);
  }
}

void read_tools(const json& tools, LlmCall& call) {
  for (const json& tool : tools) {
    if (!tool.is_object()) continue;
    for (const auto& [key, value] : tool.items()) {
      if (key == "functionDeclarations" || key == "function_declarations") {
        if (!value.is_array()) continue;
        for (const json& decl : value) {
          const std::string_view name = string_member(decl, "name");
          if (name.empty()) continue;
          call.tools.emplace_back(name);
          const json* schema =
              object_member(decl, "parametersJsonSchema", "parameters_json_schema");
          keep_schema(call, name, schema ? schema : object_member(decl, "parameters"));
        }
      } else {
        call.tools.push_back(key);  // built-in: googleSearch, codeExecution, urlContext, …
      }
    }
  }
}

Usage read_usage_metadata(const json& u) {
  Usage usage;
  usage.input_tokens = int_member(u, "promptTokenCount", "prompt_token_count");
  usage.output_tokens = int_member(u, "candidatesTokenCount", "candidates_token_count");
  usage.cache_read_tokens = int_member(u, "cachedContentTokenCount", "cached_content_token_count");
  usage.reasoning_tokens = int_member(u, "thoughtsTokenCount", "thoughts_token_count");
  usage.total_tokens = int_member(u, "totalTokenCount", "total_token_count");
  return usage;
}

class GeminiAdapter final : public Adapter {
 public:
  std::string_view api() const override { return "gemini"; }

  void parse_request(const RequestView& req, const json* body, LlmCall& call) const override {
    const LlmCallLimits& limits = req.limits;
    const ModelMethod mm = model_method(req.path);
    call.api = api();
    call.operation = operation_for(mm.method);
    call.model = percent_decode(mm.model);
    call.stream = mm.method == "streamGenerateContent";
    if (body == nullptr || !body->is_object()) return;
    call.request_parsed = true;
    if (call.model.empty()) {
      std::string_view model = string_member(*body, "model");
      if (model.starts_with("models/")) model.remove_prefix(7);
      call.model = model;
    }
    if (const json* system = member(*body, "systemInstruction", "system_instruction")) {
      CappedText text;
      if (system->is_string()) {
        text.append(system->get_ref<const std::string&>(), limits.max_text_bytes);
      }
      append_parts(text, *system, limits.max_text_bytes);
      append_system(call, text.text, text.cut, limits);
    }
    if (const json* contents = member(*body, "contents")) read_contents(*contents, limits, call);
    if (const json* tools = array_member(*body, "tools")) read_tools(*tools, call);
    if (const json* config = object_member(*body, "generationConfig", "generation_config")) {
      call.max_output_tokens =
          int_member(*config, "maxOutputTokens", "max_output_tokens").value_or(0);
      const json* schema = object_member(*config, "responseJsonSchema", "response_json_schema");
      keep_schema(call, {},
                  schema ? schema : object_member(*config, "responseSchema", "response_schema"));
    }
    if (mm.method == "embedContent") {
      call.embedding_inputs = member(*body, "content") != nullptr ? 1 : 0;
    } else if (const json* requests = array_member(*body, "requests")) {
      call.embedding_inputs = static_cast<int64_t>(requests->size());
    }
  }

  std::unique_ptr<ResponseAccumulator> new_response(const LlmCall&,
                                                    const LlmCallLimits& limits) const override;
};

class GenerateAccumulator final : public PieceAccumulator {
 public:
  using PieceAccumulator::PieceAccumulator;

 private:
  void read(const json& obj) override {
    if (const auto id = string_member(obj, "responseId", "response_id"); !id.empty()) {
      out_.response_id = id;
    }
    if (const auto version = string_member(obj, "modelVersion", "model_version");
        !version.empty()) {
      out_.response_model = version;
    }
    // Each piece reports the usage so far; the last one holds the totals.
    if (const json* usage = object_member(obj, "usageMetadata", "usage_metadata")) {
      out_.usage = read_usage_metadata(*usage);
    }
    // countTokens
    if (const auto total = int_member(obj, "totalTokens", "total_tokens")) {
      out_.usage.input_tokens = total;
      out_.usage.cache_read_tokens =
          int_member(obj, "cachedContentTokenCount", "cached_content_token_count");
    }
    if (const json* feedback = object_member(obj, "promptFeedback", "prompt_feedback")) {
      // The prompt was refused before any candidate was made.
      if (const auto reason = string_member(*feedback, "blockReason", "block_reason");
          !reason.empty()) {
        out_.finish_reason = reason;
      }
    }
    if (const json* candidates = array_member(obj, "candidates")) {
      for (const json& candidate : *candidates) {
        // With candidateCount > 1 the first candidate is the answer we report.
        if (int_member(candidate, "index").value_or(0) == 0) read_candidate(candidate);
      }
    }
  }

  void read_candidate(const json& candidate) {
    if (const auto reason = string_member(candidate, "finishReason", "finish_reason");
        !reason.empty()) {
      out_.finish_reason = reason;
    }
    const json* content = object_member(candidate, "content");
    const json* parts = content != nullptr ? array_member(*content, "parts") : nullptr;
    if (parts == nullptr) return;
    for (const json& part : *parts) {
      if (bool_member(part, "thought").value_or(false)) continue;
      out_.output.append(string_member(part, "text"), cap_);
      // Function calls come whole, never in fragments.
      if (const json* call = object_member(part, "functionCall", "function_call")) {
        ToolCallBuilder b;
        b.id = string_member(*call, "id");
        b.name.assign(string_member(*call, "name"), cap_);
        if (const json* args = member(*call, "args")) b.arguments.assign(dump_json(*args), cap_);
        out_.add_tool_call(b);
      }
    }
  }
};

std::unique_ptr<ResponseAccumulator> GeminiAdapter::new_response(
    const LlmCall&, const LlmCallLimits& limits) const {
  return std::make_unique<GenerateAccumulator>(limits);
}

}  // namespace

const Adapter& gemini_adapter() {
  static const GeminiAdapter adapter;
  return adapter;
}

}  // namespace agentwall::llm::providers
