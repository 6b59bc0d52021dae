// What every adapter needs: JSON reads that never throw, capped texts, the conversation
// kept within its limits, and the readers for shapes that several API families share.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agent/llm/adapter.h"
#include "agent/llm/call.h"

namespace agentwall::llm::providers {

using nlohmann::json;

// ---- Reads: a missing member or one of another type reads as absent. ----------------------

// The member `key` of `obj`, or null when `obj` is not an object or has no such member.
const json* member(const json& obj, std::string_view key);
// The same, trying `alt` when `key` is absent: Google's REST APIs accept a field's
// proto name (snake_case) as well as its JSON name (camelCase).
const json* member(const json& obj, std::string_view key, std::string_view alt);
const json* object_member(const json& obj, std::string_view key, std::string_view alt = {});
const json* array_member(const json& obj, std::string_view key, std::string_view alt = {});
std::string_view string_member(const json& obj, std::string_view key, std::string_view alt = {});
// Integers, and floats holding a whole number (some servers send 12.0).
std::optional<int64_t> int_member(const json& obj, std::string_view key, std::string_view alt = {});
std::optional<bool> bool_member(const json& obj, std::string_view key);

// JSON text of `value`; never throws (bytes that are not UTF-8 are replaced).
std::string dump_json(const json& value);

// Keeps a declared JSON Schema (an object) for verifying the answer against it, within
// kMaxSchemaBytes / kMaxToolSchemas. `tool` empty: the schema of the answer itself.
void keep_schema(LlmCall& call, std::string_view tool, const json* schema);

// ---- Texts ---------------------------------------------------------------------------------

// A text that stops at its cap. Once cut it stays cut, so a later streamed piece that would
// still fit cannot land after the hole.
struct CappedText {
  std::string text;
  bool cut = false;
  // When set (an answer's text), every appended piece goes here as well, uncapped.
  const ResponseAccumulator::TextTap* tap = nullptr;

  void append(std::string_view piece, size_t cap);
  // Appends `sep` first when both the text and the piece are non-empty.
  void append_joined(std::string_view piece, size_t cap, std::string_view sep = "\n");
  // Starts over (a final, whole value replaces streamed fragments).
  void assign(std::string_view whole, size_t cap);
};

// Appends message content in any of the shapes the APIs use: a string, one part, or an array
// of parts (OpenAI content parts, Responses input items' parts, Anthropic blocks, Cohere
// parts). Text parts are joined by newlines; other parts are noted as "[image]", "[audio]",
// "[file]", "[document]", "[tool_call NAME]"; reasoning is left out.
void append_content(CappedText& out, const json& content, size_t cap);

// The note a request's earlier tool call leaves in the conversation text.
std::string tool_call_note(std::string_view name);

// ---- The conversation ----------------------------------------------------------------------

// Adds a message, keeping only the newest `limits.max_messages`. A dropped message or a cut
// text marks the call `text_truncated`.
void push_message(LlmCall& call, std::string_view role, CappedText text,
                  const LlmCallLimits& limits);
// The same for a message that is one plain text.
void push_text_message(LlmCall& call, std::string_view role, std::string_view text,
                       const LlmCallLimits& limits);
// Adds to the system prompt; several system messages are joined by a blank line.
void append_system(LlmCall& call, std::string_view text, bool cut, const LlmCallLimits& limits);

// ---- Shared response shapes ----------------------------------------------------------------

// The error a body or event reports, empty when none: {"error": {"message": …}} (OpenAI,
// Gemini, Anthropic's {"type": "error", "error": {…}}), {"error": "…"} (Ollama, gateways),
// {"type"|"object": "error", "message": …} (Responses stream, vLLM).
std::string error_message(const json& body);

// Reads a usage object in the OpenAI / Anthropic spelling: prompt_tokens or input_tokens,
// completion_tokens or output_tokens, total_tokens, the cached and reasoning details of
// Chat Completions and Responses, DeepSeek's prompt_cache_hit_tokens, Anthropic's
// cache_read_input_tokens / cache_creation_input_tokens. Only fields present are set, so
// streamed updates merge. True when anything was read.
bool read_usage(const json& usage, Usage& out);

// Path without query string or fragment.
std::string_view path_only(std::string_view path);
// For ".../models/{model}:{method}" paths (Gemini, Vertex): the model and the method.
struct ModelMethod {
  std::string_view model;
  std::string_view method;
};
ModelMethod model_method(std::string_view path);
// %XX escapes undone (a path's model may be escaped: "claude-sonnet-4%4020250514").
std::string percent_decode(std::string_view s);
bool ends_with(std::string_view s, std::string_view suffix);

// Collects one tool call from fragments.
struct ToolCallBuilder {
  std::string id;
  CappedText name;
  CappedText arguments;

  ToolCall build() const { return ToolCall{id, name.text, arguments.text}; }
};

// A bound on the tool calls kept from one response, against streams that invent indexes.
constexpr size_t kMaxToolCalls = 1024;

// What an accumulator has gathered from a response, whatever the API.
struct Collected {
  CappedText output;
  std::vector<ToolCall> tool_calls;
  std::string finish_reason;
  std::string response_id;
  std::string response_model;
  std::string error;
  Usage usage;
  bool parsed = false;
  bool truncated = false;  // a tool call's text was cut

  void add_tool_call(const ToolCallBuilder& b);
  void set_error(std::string_view message, size_t cap);
  void move_into(LlmCall& call);
};

// An accumulator for APIs whose streamed pieces and whole body have one shape (Gemini,
// Ollama, unknown APIs): each JSON object is read the same way; the provider's error
// message is taken from any of them. A body that is an array of them (Gemini's stream
// without alt=sse) is read piece by piece.
class PieceAccumulator : public ResponseAccumulator {
 public:
  explicit PieceAccumulator(const LlmCallLimits& limits) : cap_(limits.max_text_bytes) {
    out_.output.tap = &tap_;
  }

  void on_event(std::string_view, const json& data) final { take(data); }
  void on_body(const json& body) final { take(body); }
  void finish(LlmCall& call) final { out_.move_into(call); }

 protected:
  // One JSON object of the response.
  virtual void read(const json& obj) = 0;

  size_t cap_;
  Collected out_;

 private:
  void take(const json& obj, bool top = true) {
    if (obj.is_array() && top) {
      for (const json& piece : obj) take(piece, false);
      return;
    }
    if (!obj.is_object()) return;
    out_.parsed = true;
    if (const std::string error = error_message(obj); !error.empty()) out_.set_error(error, cap_);
    read(obj);
  }
};

}  // namespace agentwall::llm::providers
