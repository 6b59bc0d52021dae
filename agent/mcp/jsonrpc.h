// JSON-RPC 2.0, as MCP speaks it: one message or a batch per HTTP body, per SSE event or per
// stdio line. Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace agentwall::mcp {

enum class Kind { kRequest, kNotification, kResult, kError };

struct Message {
  Kind kind = Kind::kRequest;
  std::string id;      // the id as JSON text ("3", "\"abc\""); empty for a notification
  std::string method;  // requests and notifications
  nlohmann::json params, result, error;
};

// Cheap test before parsing: a JSON object or array that names "jsonrpc".
bool looks_like_jsonrpc(std::string_view text);

// Parses a message or a batch. Returns false (and leaves `out` alone) when the text is not
// JSON-RPC 2.0; members that are not messages inside a batch are skipped and counted in
// `invalid`.
bool parse(std::string_view text, std::vector<Message>& out, size_t* invalid = nullptr);

}  // namespace agentwall::mcp
