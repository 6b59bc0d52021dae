#include "agent/llm/providers/common.h"

#include <cmath>
#include <limits>

namespace agentwall::llm::providers {

const json* member(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  const auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

const json* member(const json& obj, std::string_view key, std::string_view alt) {
  const json* v = member(obj, key);
  if (v == nullptr && !alt.empty()) v = member(obj, alt);
  return v;
}

const json* object_member(const json& obj, std::string_view key, std::string_view alt) {
  const json* v = member(obj, key, alt);
  return v != nullptr && v->is_object() ? v : nullptr;
}

const json* array_member(const json& obj, std::string_view key, std::string_view alt) {
  const json* v = member(obj, key, alt);
  return v != nullptr && v->is_array() ? v : nullptr;
}

std::string_view string_member(const json& obj, std::string_view key, std::string_view alt) {
  const json* v = member(obj, key, alt);
  if (v == nullptr || !v->is_string()) return {};
  return v->get_ref<const std::string&>();
}

std::optional<int64_t> int_member(const json& obj, std::string_view key, std::string_view alt) {
  const json* v = member(obj, key, alt);
  if (v == nullptr) return std::nullopt;
  if (v->is_number_unsigned()) {
    const uint64_t u = v->get<uint64_t>();
    return u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())
               ? std::numeric_limits<int64_t>::max()
               : static_cast<int64_t>(u);
  }
  if (v->is_number_integer()) return v->get<int64_t>();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    // 2^63 itself does not fit; anything below it with no fraction does.
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.2e18) {
      return static_cast<int64_t>(d);
    }
  }
  return std::nullopt;
}

std::optional<bool> bool_member(const json& obj, std::string_view key) {
  const json* v = member(obj, key);
  if (v == nullptr || !v->is_boolean()) return std::nullopt;
  return v->get<bool>();
}

std::string dump_json(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

void CappedText::append(std::string_view piece, size_t cap) {
  if (tap != nullptr && *tap && !piece.empty()) (*tap)(piece);
  if (cut) return;
  append_capped(text, piece, cap, cut);
}

void CappedText::append_joined(std::string_view piece, size_t cap, std::string_view sep) {
  if (piece.empty()) return;
  if (!text.empty()) append(sep, cap);
  append(piece, cap);
}

void CappedText::assign(std::string_view whole, size_t cap) {
  text.clear();
  cut = false;
  append_capped(text, whole, cap, cut);
}

namespace {

// Content nests (a tool result holds blocks); a hostile payload must not nest us off the stack.
constexpr int kMaxContentDepth = 8;

void append_content_at(CappedText& out, const json& content, size_t cap, int depth);

void append_part(CappedText& out, const json& part, size_t cap, int depth) {
  if (part.is_string()) {
    out.append_joined(part.get_ref<const std::string&>(), cap);
    return;
  }
  if (!part.is_object()) return;
  const std::string_view type = string_member(part, "type");
  if (type.empty() || type == "text" || type == "input_text" || type == "output_text") {
    out.append_joined(string_member(part, "text"), cap);
  } else if (type == "refusal") {
    out.append_joined(string_member(part, "refusal"), cap);
  } else if (type == "image_url" || type == "input_image" || type == "image") {
    out.append_joined("[image]", cap);
  } else if (type == "input_audio" || type == "audio") {
    out.append_joined("[audio]", cap);
  } else if (type == "file" || type == "input_file") {
    out.append_joined("[file]", cap);
  } else if (type == "document") {
    out.append_joined("[document]", cap);
  } else if (type == "tool_use" || type == "server_tool_use" || type == "mcp_tool_use" ||
             type == "function_call") {
    out.append_joined(tool_call_note(string_member(part, "name")), cap);
  } else if (type == "tool_result" || type == "mcp_tool_result" || type == "function_call_output") {
    const json* inner = member(part, "content");
    if (inner == nullptr) inner = member(part, "output");
    if (inner != nullptr) append_content_at(out, *inner, cap, depth + 1);
  } else if (type == "thinking" || type == "redacted_thinking" || type == "reasoning") {
    // The model's reasoning sent back for continuity: not part of what was said.
  } else {
    out.append_joined("[" + std::string(type) + "]", cap);
  }
}

void append_content_at(CappedText& out, const json& content, size_t cap, int depth) {
  if (depth > kMaxContentDepth) return;
  if (content.is_array()) {
    for (const json& part : content) append_part(out, part, cap, depth);
  } else {
    append_part(out, content, cap, depth);
  }
}

}  // namespace

void append_content(CappedText& out, const json& content, size_t cap) {
  append_content_at(out, content, cap, 0);
}

std::string tool_call_note(std::string_view name) {
  return "[tool_call " + std::string(name) + "]";
}

void push_message(LlmCall& call, std::string_view role, CappedText text,
                  const LlmCallLimits& limits) {
  call.text_truncated = call.text_truncated || text.cut;
  call.messages.push_back(ChatMessage{std::string(role), std::move(text.text)});
  if (call.messages.size() > limits.max_messages) {
    // At most max_messages stay, so this shift stays cheap.
    call.messages.erase(call.messages.begin());
    call.text_truncated = true;
  }
}

void push_text_message(LlmCall& call, std::string_view role, std::string_view text,
                       const LlmCallLimits& limits) {
  CappedText capped;
  capped.append(text, limits.max_text_bytes);
  push_message(call, role, std::move(capped), limits);
}

void append_system(LlmCall& call, std::string_view text, bool cut, const LlmCallLimits& limits) {
  call.text_truncated = call.text_truncated || cut;
  if (text.empty()) return;
  if (!call.system.empty()) {
    append_capped(call.system, "\n\n", limits.max_text_bytes, call.text_truncated);
  }
  append_capped(call.system, text, limits.max_text_bytes, call.text_truncated);
}

std::string error_message(const json& body) {
  if (!body.is_object()) return {};
  if (const json* e = member(body, "error")) {
    if (e->is_string()) return e->get<std::string>();
    if (!e->is_object()) return {};  // "error": null on success (Responses API)
    for (const char* key : {"message", "type", "status", "code"}) {
      const std::string_view s = string_member(*e, key);
      if (!s.empty()) return std::string(s);
    }
    if (const auto code = int_member(*e, "code")) return "error " + std::to_string(*code);
    return "error";
  }
  if (string_member(body, "type") == "error" || string_member(body, "object") == "error") {
    const std::string_view msg = string_member(body, "message");
    return msg.empty() ? "error" : std::string(msg);
  }
  return {};
}

bool read_usage(const json& usage, Usage& out) {
  if (!usage.is_object()) return false;
  bool any = false;
  const auto set = [&](std::optional<int64_t>& field, std::optional<int64_t> v) {
    if (!v) return;
    field = v;
    any = true;
  };
  set(out.input_tokens, int_member(usage, "prompt_tokens", "input_tokens"));
  set(out.output_tokens, int_member(usage, "completion_tokens", "output_tokens"));
  set(out.total_tokens, int_member(usage, "total_tokens"));
  set(out.cache_read_tokens, int_member(usage, "prompt_cache_hit_tokens"));
  set(out.cache_read_tokens, int_member(usage, "cache_read_input_tokens"));
  set(out.cache_write_tokens, int_member(usage, "cache_creation_input_tokens"));
  if (const json* d = object_member(usage, "prompt_tokens_details", "input_tokens_details")) {
    set(out.cache_read_tokens, int_member(*d, "cached_tokens"));
  }
  if (const json* d = object_member(usage, "completion_tokens_details", "output_tokens_details")) {
    set(out.reasoning_tokens, int_member(*d, "reasoning_tokens"));
  }
  return any;
}

std::string_view path_only(std::string_view path) {
  return path.substr(0, path.find_first_of("?#"));
}

ModelMethod model_method(std::string_view path) {
  const std::string_view p = path_only(path);
  const std::string_view segment = p.substr(p.rfind('/') + 1);
  const size_t colon = segment.find(':');
  if (colon == std::string_view::npos) return {};
  return {segment.substr(0, colon), segment.substr(colon + 1)};
}

std::string percent_decode(std::string_view s) {
  const auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

void Collected::add_tool_call(const ToolCallBuilder& b) {
  if (tool_calls.size() >= kMaxToolCalls) {
    truncated = true;
    return;
  }
  truncated = truncated || b.name.cut || b.arguments.cut;
  tool_calls.push_back(b.build());
}

void Collected::set_error(std::string_view message, size_t cap) {
  error.clear();
  bool cut = false;
  append_capped(error, message, cap, cut);
  truncated = truncated || cut;
}

void Collected::move_into(LlmCall& call) {
  call.output_text = std::move(output.text);
  call.text_truncated = call.text_truncated || output.cut || truncated;
  call.tool_calls = std::move(tool_calls);
  call.finish_reason = std::move(finish_reason);
  call.response_id = std::move(response_id);
  call.response_model = std::move(response_model);
  call.error = std::move(error);
  call.usage = usage;
  call.response_parsed = call.response_parsed || parsed;
}

void keep_schema(LlmCall& call, std::string_view tool, const json* schema) {
  if (schema == nullptr || !schema->is_object()) return;
  if (!tool.empty() && call.tool_schemas.size() >= kMaxToolSchemas) return;
  std::string text = dump_json(*schema);
  if (text.size() > kMaxSchemaBytes) return;
  if (tool.empty()) {
    call.output_schema = std::move(text);
  } else {
    call.tool_schemas[std::string(tool)] = std::move(text);
  }
}

}  // namespace agentwall::llm::providers
