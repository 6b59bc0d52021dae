#include "agent/protocol/http.h"

#include <strings.h>

namespace agentwall::protocol {

std::string_view header_value(const Headers& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name.size() == name.size() && strncasecmp(h.name.data(), name.data(), name.size()) == 0)
      return h.value;
  }
  return {};
}

std::string_view to_string(HttpVersion v) {
  return v == HttpVersion::kHttp2 ? "2" : "1.1";
}

std::vector<std::string> flag_names(uint32_t flags) {
  static constexpr std::pair<uint32_t, const char*> kNames[] = {
      {kMsgStartMissed, "start_missed"},
      {kMsgGap, "gap"},
      {kMsgCut, "cut"},
      {kMsgBodyCapped, "body_capped"},
      {kMsgDecodeError, "decode_error"},
      {kMsgBombLimit, "bomb_limit"},
      {kMsgHeadersUnknown, "headers_unknown"},
      {kMsgMalformed, "malformed"},
      {kMsgReset, "reset"},
  };
  std::vector<std::string> out;
  for (const auto& [bit, name] : kNames) {
    if (flags & bit) out.emplace_back(name);
  }
  return out;
}

}  // namespace agentwall::protocol
