#include "agent/mcp/jsonrpc.h"

namespace agentwall::mcp {
namespace {

bool one(const nlohmann::json& j, Message& m) {
  if (!j.is_object()) return false;
  const auto v = j.find("jsonrpc");
  if (v == j.end() || !v->is_string() || v->get_ref<const std::string&>() != "2.0") return false;
  const auto id = j.find("id");
  const bool has_id = id != j.end() && (id->is_string() || id->is_number());
  if (has_id) m.id = id->dump();
  if (const auto method = j.find("method"); method != j.end()) {
    if (!method->is_string()) return false;
    m.method = method->get<std::string>();
    m.kind = has_id ? Kind::kRequest : Kind::kNotification;
    if (const auto p = j.find("params"); p != j.end()) m.params = *p;
    return true;
  }
  if (const auto r = j.find("result"); r != j.end() && has_id) {
    m.kind = Kind::kResult;
    m.result = *r;
    return true;
  }
  if (const auto e = j.find("error"); e != j.end()) {
    m.kind = Kind::kError;  // an error may have a null id (the request could not be read)
    m.error = *e;
    return true;
  }
  return false;
}

}  // namespace

bool looks_like_jsonrpc(std::string_view text) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos || (text[first] != '{' && text[first] != '[')) return false;
  return text.find("\"jsonrpc\"") != std::string_view::npos;
}

bool parse(std::string_view text, std::vector<Message>& out, size_t* invalid) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return false;
  if (j.is_array()) {
    std::vector<Message> got;
    size_t bad = 0;
    for (const auto& item : j) {
      Message m;
      if (one(item, m))
        got.push_back(std::move(m));
      else
        ++bad;
    }
    if (got.empty()) return false;
    if (invalid) *invalid += bad;
    for (auto& m : got) out.push_back(std::move(m));
    return true;
  }
  Message m;
  if (!one(j, m)) return false;
  out.push_back(std::move(m));
  return true;
}

}  // namespace agentwall::mcp
