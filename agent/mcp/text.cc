#include "agent/mcp/text.h"

#include <cctype>

#include "agent/llm/call.h"  // append_capped

namespace agentwall::mcp {

std::string str_at(const nlohmann::json& j, const char* key) {
  if (!j.is_object()) return {};
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string capped(std::string_view s, size_t n) {
  std::string out;
  bool cut = false;
  llm::append_capped(out, s, n, cut);
  if (cut) out += "…";
  return out;
}

std::string lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool contains_word(std::string_view text, std::string_view word) {
  if (word.empty()) return false;
  auto part = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
  const bool path = word.front() == '.' || word.front() == '/';
  for (size_t at = text.find(word); at != std::string_view::npos; at = text.find(word, at + 1)) {
    const bool before = at == 0 || path || !part(text[at - 1]);
    const bool after = at + word.size() >= text.size() || !part(text[at + word.size()]);
    if (before && after) return true;
  }
  return false;
}

}  // namespace agentwall::mcp
