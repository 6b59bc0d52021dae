// What the LLM layer understands of one API call, whatever the provider. Adapters fill it,
// the stage adds tokens, cost and context, the event writer turns it into `llm.exchange`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace agentwall::llm {

struct ChatMessage {
  std::string role;  // system, developer, user, assistant, tool, model, function
  std::string text;  // the text parts joined; non-text parts noted as "[image]", "[file]", …
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // as sent: JSON text for most providers
};

struct Usage {
  // Unset means the provider did not say.
  std::optional<int64_t> input_tokens;
  std::optional<int64_t> output_tokens;
  std::optional<int64_t> cache_read_tokens;   // prompt tokens served from the provider's cache
  std::optional<int64_t> cache_write_tokens;  // prompt tokens written to the cache (Anthropic)
  std::optional<int64_t> reasoning_tokens;    // included in output_tokens for OpenAI
  std::optional<int64_t> total_tokens;
};

// Texts are capped by LlmCallLimits when they are filled; `*_truncated` says when it happened.
struct LlmCall {
  std::string provider;   // who serves it: openai, azure-openai, anthropic, gemini, vertex-ai,
                          // openrouter, groq, mistral, deepseek, together, ollama, vllm, …
  std::string api;        // the adapter that read it: openai, anthropic, gemini, ollama, unknown
  std::string operation;  // chat, responses, embeddings, completions, generate, count_tokens, …
  std::string model;      // requested
  std::string response_model;  // as the response names it
  bool stream = false;
  std::vector<ChatMessage> messages;  // the conversation sent (not the system prompt)
  std::string system;                 // system / developer instructions
  std::vector<std::string> tools;     // names of the tools declared in the request
  // JSON Schemas the request declared, as JSON text (at most kMaxSchemaBytes each; larger
  // ones are left out): the one the answer must follow (OpenAI response_format / text.format
  // json_schema, Anthropic output_format, Gemini responseSchema) and each tool's parameters.
  std::string output_schema;
  std::map<std::string, std::string> tool_schemas;  // by tool name
  std::vector<ToolCall> tool_calls;                 // tool calls the model made in its answer
  std::string output_text;
  std::string finish_reason;
  std::string response_id;
  std::string error;              // the provider's error message when the call failed
  Usage usage;                    // as the provider reported it
  int64_t embedding_inputs = 0;   // embeddings: number of inputs
  int64_t max_output_tokens = 0;  // requested cap, when given
  bool text_truncated = false;    // some text above was cut at the cap
  bool request_parsed = false;    // the request body was JSON the adapter understood
  bool response_parsed = false;   // the response (or its events) was understood
};

constexpr size_t kMaxSchemaBytes = 64 * 1024;
constexpr size_t kMaxToolSchemas = 128;

struct LlmCallLimits {
  size_t max_text_bytes = 16 * 1024;  // per message, system prompt, output text, arguments
  size_t max_messages = 256;          // the newest are kept
};

// Appends `piece` to `dst` without letting it grow past `cap`; sets `truncated` if cut.
// Never cuts a UTF-8 sequence in half.
void append_capped(std::string& dst, std::string_view piece, size_t cap, bool& truncated);

}  // namespace agentwall::llm
