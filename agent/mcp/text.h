// Small text helpers the MCP layer's parts share.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace agentwall::mcp {

// `j[key]` when `j` is an object and that member a string; empty otherwise.
std::string str_at(const nlohmann::json& j, const char* key);

// At most `n` bytes of `s` (cut on a UTF-8 boundary), with "…" when something was cut.
std::string capped(std::string_view s, size_t n);

std::string lower(std::string s);

// `word` stands in `text` not as part of a longer word (letters, digits, '_'). A word that
// starts with '.' or '/' (a path) may follow a word character.
bool contains_word(std::string_view text, std::string_view word);

}  // namespace agentwall::mcp
